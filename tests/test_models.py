"""One suite over every registered recipe, plus the registry itself."""

import keras
import numpy as np
import pytest

import recipes
from recipes import get_model, list_models
from recipes._optional import has_tensorflow
from recipes.registry import get_spec


def _images(shape, n=16, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape), dtype=np.float32)
    y = rng.integers(0, classes, size=n)
    return x, y


def _tokens(timesteps, vocab, n=16, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(1, vocab, size=(n, timesteps)), rng.integers(0, classes, size=n)


# name -> (tiny builder kwargs, data maker, expected output shape of one batch of 16)
# Generative models get the same (x, y) data: fit() ignores their labels.
CASES = {
    "alexnet": (
        dict(input_shape=(28, 28, 1), num_classes=3, filters=(8, 8, 8, 8, 8), fc_units=(16, 16)),
        lambda: _images((28, 28, 1)),
        (16, 3),
    ),
    "dcgan": (
        dict(input_shape=(8, 8, 1), latent_dim=4, base_filters=4, kernel_size=3),
        lambda: _images((8, 8, 1)),
        (16, 8, 8, 1),
    ),
    "lstm": (dict(input_shape=(12,), vocab_size=50, embedding_dim=8, units=(8,)), lambda: _tokens(12, 50), (16, 1)),
    "mlp": (dict(input_shape=(8, 8, 1), num_classes=3, hidden_units=(16,)), lambda: _images((8, 8, 1)), (16, 3)),
    "vae": (
        # the plain ELBO, which training lowers even on noise (free bits may raise the logged KL)
        dict(input_shape=(8, 8, 1), latent_dim=2, filters=(4, 8), hidden_units=(8,), free_bits=0.0),
        lambda: _images((8, 8, 1)),
        (16, 8, 8, 1),
    ),
    "vgg16": (
        dict(input_shape=(32, 32, 3), num_classes=3, preset="small", filters=(4, 8, 8, 16, 16), fc_units=(16,)),
        lambda: _images((32, 32, 3)),
        (16, 3),
    ),
}


def _output(name, model, x):
    """What save/load must keep: predictions, or for generative models 16 images from a fixed seed."""
    if get_spec(name).task == "generation":
        return model.generate(16, seed=0)
    return model.predict(x, verbose=0)


def test_every_registered_model_has_a_case():
    assert sorted(CASES) == list_models()


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match=r"Unknown model 'resnet'\. Valid names: .*mlp"):
        get_model("resnet")


def test_a_default_reason_must_explain_a_default_in_one_line(monkeypatch):
    from recipes import registry, spec

    monkeypatch.setattr(spec, "_REGISTRY", dict(spec._REGISTRY))
    defaults = {"batch_size": 32, "model_args": {"units": [128]}}
    with pytest.raises(
        ValueError, match=r"^reasons must explain settings of defaults, one line each\. Received: \['epochs'\]$"
    ):
        registry.register_model("x", description="", task="classification", inputs="any", defaults=defaults,
                                reasons={"batch_size": "measured", "epochs": "not a default here"})  # fmt: skip
    registry.register_model(
        "x", description="", task="classification", inputs="any", defaults=defaults, reasons={"units": "measured"}
    )(lambda **kwargs: None)
    assert dict(get_spec("x").reasons) == {"units": "measured"}
    for name in list_models():  # every registered reason is one line about a setting the recipe sets
        spec = get_spec(name)
        for key, reason in spec.reasons.items():
            assert key in {*spec.defaults, *spec.defaults.get("model_args", {})} and "\n" not in reason


def test_list_models_is_sorted_and_exported(monkeypatch):
    from recipes import spec

    specs = dict(spec._REGISTRY)
    # registration order is no help: list_models must sort whatever order the modules ran in
    monkeypatch.setattr(spec, "_REGISTRY", dict(reversed(list(specs.items()))))
    assert list(spec._REGISTRY) != sorted(specs)
    assert list_models() == sorted(specs)
    for name in list_models():
        assert callable(getattr(recipes, f"build_{name}"))


CLASSIFIERS = [name for name in sorted(CASES) if get_spec(name).uses_labels]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_classifier_binary_head_and_optimizer_override(name):
    kwargs = {**CASES[name][0], "num_classes": 2, "optimizer": "sgd", "learning_rate": 0.05}
    model = get_model(name, **kwargs)
    assert model.output_shape == (None, 1) and model.get_layer("predictions").activation.__name__ == "sigmoid"
    assert model.loss == "binary_crossentropy"
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert np.isclose(float(model.optimizer.learning_rate), 0.05)
    kwargs.update(num_classes=3, optimizer="adam")
    model = get_model(name, **kwargs)
    assert model.output_shape == (None, 3) and model.loss == "sparse_categorical_crossentropy"
    assert isinstance(model.optimizer, keras.optimizers.Adam)


@pytest.mark.process
def test_public_api_in_one_hop_without_starting_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, recipes; assert 'tensorflow' not in sys.modules, 'import recipes started TensorFlow'; "
        "from recipes import load_dataset, default_callbacks, train, get_model, list_models, build_vae; "
        "print(load_dataset.__module__, default_callbacks.__module__, train.__module__, len(list_models()))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["recipes.datasets", "recipes.callbacks", "recipes.run.train", "6"]
    with pytest.raises(AttributeError, match="module 'recipes' has no attribute 'nothing'"):
        _ = recipes.nothing


@pytest.mark.parametrize("name", sorted(CASES))
def test_build_fit_save_load(name, tmp_path):
    kwargs, make_data, out_shape = CASES[name]
    model = get_model(name, learning_rate=1e-2, **kwargs)
    assert model.compiled
    x, y = make_data()
    assert tuple(_output(name, model, x).shape) == out_shape

    history = model.fit(x, y, epochs=6, batch_size=16, shuffle=False, verbose=0)
    for values in history.history.values():
        assert np.all(np.isfinite(values))
    if "d_loss" not in history.history:  # a GAN's two adversarial losses need not fall
        assert history.history["loss"][-1] < history.history["loss"][0]

    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(_output(name, model, x), _output(name, restored, x))


@pytest.mark.parametrize("name", sorted(CASES))
def test_compile_false_returns_uncompiled(name):
    kwargs, _, _ = CASES[name]
    model = get_model(name, compile=False, **kwargs)
    assert not model.compiled


def _training_state(model):
    """Every weight and every optimizer variable (both optimizers of a GAN)."""
    optimizers = [getattr(model, n, None) for n in ("optimizer", "d_optimizer", "g_optimizer")]
    variables = list(model.weights) + [v for o in optimizers if o is not None for v in o.variables]
    return [np.array(v) for v in variables]


def _reshuffled_data(name, engine):
    """The case's data as `recipes train` feeds it: reshuffled each epoch in an order set by
    the seed and the epoch, batches of 8, by either data engine."""
    x, y = CASES[name][1]()
    if engine == "pydataset":
        from recipes.datasets._pydataset import ArrayBatches

        return ArrayBatches(x, y, np.arange(len(x)), 8, seed=3)
    import tensorflow as tf

    from recipes.datasets._pipelines import reshuffled, with_epoch_counter

    ds, counter = reshuffled(tf.data.Dataset.from_tensor_slices((x, y)), len(x), seed=3)
    return with_epoch_counter(ds.batch(8), counter)


# Where TensorFlow is installed, every recipe on tf.data and the custom train steps (GAN, VAE) and the
# MLP on PyDataset; without it (.ci/run's install without TensorFlow) every recipe on PyDataset.
RESUME_CASES = [
    (name, engine)
    for name in sorted(CASES)
    for engine in ("tf.data", "pydataset")
    if (engine == "pydataset") != has_tensorflow() or (engine == "pydataset" and name in ("dcgan", "mlp", "vae"))
]


@pytest.mark.parametrize("name, engine", RESUME_CASES)
def test_a_run_killed_at_epoch_2_resumes_to_the_weights_of_an_uninterrupted_run(name, engine, tmp_path):
    """Resume is exact: weights, optimizers, random-number state (dropout, sampling, latent
    vectors) and the data's order, each in a freshly built model as a new process would."""
    from recipes.callbacks import EpochOrder, RunBackup

    kwargs = CASES[name][0]

    def fit(callbacks, data):
        keras.utils.set_random_seed(0)  # a new process with the run's seed
        model = get_model(name, **kwargs)
        model.fit(data, epochs=4, shuffle=False, verbose=0, callbacks=[EpochOrder(data), *callbacks])
        return model

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("killed")

    uninterrupted = _training_state(fit([], _reshuffled_data(name, engine)))
    with pytest.raises(RuntimeError, match="killed"):
        fit([RunBackup(str(tmp_path / "backup")), Kill()], _reshuffled_data(name, engine))
    resumed = fit([RunBackup(str(tmp_path / "backup"))], _reshuffled_data(name, engine))
    for whole, after_kill in zip(uninterrupted, _training_state(resumed), strict=True):
        np.testing.assert_array_equal(whole, after_kill)


@pytest.mark.parametrize("name", sorted(CASES))
def test_mixed_bfloat16_trains_with_finite_losses(name):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    kwargs, make_data, _ = CASES[name]
    x, y = make_data()
    history = get_model(name, **kwargs).fit(x, y, epochs=2, batch_size=8, verbose=0)
    for values in history.history.values():
        assert np.all(np.isfinite(values))


@pytest.mark.process
@pytest.mark.parametrize(
    "module, absent",
    [
        ("recipes.hardware", "recipes.models"),
        ("recipes.callbacks", "recipes.models"),
        ("recipes.config", "keras"),
        ("recipes.plots", "keras"),
        ("recipes._checks", "keras"),
    ],
)
def test_layers_point_one_way(module, absent):
    """The lower layers never import the models (which register every recipe) or Keras where
    they need none."""
    import subprocess
    import sys

    code = f"import sys, {module}; print({absent!r} in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"
