import keras
import numpy as np
import pytest
import tensorflow as tf

from recipes import build_vae
from recipes.models.vae import VAE, Sampling

TINY = dict(input_shape=(28, 28, 1), latent_dim=2, filters=(4, 8), hidden_units=(8,), seed=1)


def _images(shape=(28, 28, 1), n=32, seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def _optimizer_state(model):
    return [np.array(v) for v in model.optimizer.variables]


def test_keras_io_architecture_parameter_counts_and_names():
    vae = build_vae(input_shape=(28, 28, 1), latent_dim=2)
    assert vae.encoder.count_params() == 69_076  # the keras-io example's summary
    assert vae.decoder.count_params() == 65_089
    assert [l.name for l in vae.encoder.layers] == [
        "inputs",
        "block1_conv",
        "block2_conv",
        "flatten",
        "fc1",
        "z_mean",
        "z_log_var",
        "z",
    ]
    assert [l.name for l in vae.decoder.layers] == [
        "latent",
        "project_dense",
        "project_reshape",
        "block1_convT",
        "block2_convT",
        "reconstruction",
    ]
    assert vae.value_range == (0.0, 1.0) and vae.latent_dim == 2
    assert isinstance(vae.optimizer, keras.optimizers.Adam)


@pytest.mark.parametrize("shape", [(32, 32, 3), (12, 20, 1)])
def test_other_image_sizes_divisible_by_four(shape):
    vae = build_vae(input_shape=shape, latent_dim=3, filters=(4, 8), hidden_units=(8,))
    assert vae.decoder.output_shape == (None, *shape)
    assert vae.encode(_images(shape, n=2)).shape == (2, 3)


def test_dense_variant_for_flat_inputs():
    vae = build_vae(input_shape=(64,), latent_dim=2, hidden_units=(32, 16))
    assert [l.name for l in vae.encoder.layers] == ["inputs", "dense1", "dense2", "z_mean", "z_log_var", "z"]
    assert [l.name for l in vae.decoder.layers] == ["latent", "dense1", "dense2", "reconstruction"]
    assert vae.encoder.count_params() == 64 * 32 + 32 + 32 * 16 + 16 + 2 * (16 * 2 + 2)
    x = _images((64,), n=32)
    history = vae.fit(x, epochs=3, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert vae.decode(vae.encode(x)).shape == (32, 64)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            dict(input_shape=(30, 30, 1)),
            ValueError,
            r"input_shape must have a height and width divisible by 4 \(2\*\*len\(filters\)\)\. "
            r"Received: input_shape=\(30, 30, 1\)",
        ),
        (
            dict(input_shape=(28, 28)),
            ValueError,
            r"input_shape must be \(height, width, channels\) or \(features,\)\. Received: input_shape=\(28, 28\)",
        ),
        (dict(input_shape=(28, 0, 1)), ValueError, r"input_shape must contain positive integers"),
        (dict(latent_dim=0), ValueError, r"latent_dim must be >= 1\. Received: latent_dim=0"),
        (dict(filters=(32, -1)), ValueError, r"filters must contain integers >= 1"),
        (dict(optimizer="adamm"), ValueError, r"Unknown optimizer\..*Received: optimizer='adamm'"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(kwargs, error, message):
    with pytest.raises(error, match=message):
        build_vae(**kwargs)


def test_losses_are_nats_per_example():
    vae = build_vae(**TINY)
    # A near-zero variance makes z the mean, so both terms can be computed here.
    log_var = vae.encoder.get_layer("z_log_var")
    log_var.set_weights([np.zeros_like(log_var.kernel), np.full((2,), -30.0, "float32")])
    x = _images(n=8)
    mean = vae.encode(x)
    x_hat = np.clip(vae.decode(mean).astype("float64"), 1e-7, 1 - 1e-7)
    bce = -(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat)).sum(axis=(1, 2, 3)).mean()
    kl = (-0.5 * (1 - 30.0 - mean**2 - np.exp(-30.0))).sum(axis=1).mean()
    loss, reconstruction, kl_loss = (float(v) for v in vae.compute_losses(x))
    assert reconstruction == pytest.approx(bce, rel=1e-4)
    assert reconstruction == pytest.approx(28 * 28 * np.log(2), rel=0.05)  # an untrained decoder says ~0.5
    assert kl_loss == pytest.approx(kl, rel=1e-4)
    assert loss == pytest.approx(reconstruction + kl_loss, rel=1e-6)
    results = vae.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    assert results["reconstruction_loss"] == pytest.approx(bce, rel=1e-4)


def test_fit_with_validation_images_and_labelled_datasets():
    vae = build_vae(**TINY, free_bits=0.0)  # the plain ELBO, which training lowers even on noise
    x, val = _images(n=32), _images(n=8, seed=1)
    history = vae.fit(x, validation_data=val, epochs=3, batch_size=8, verbose=0)
    assert sorted(history.history) == [
        "kl_loss",
        "loss",
        "reconstruction_loss",
        "val_kl_loss",
        "val_loss",
        "val_reconstruction_loss",
    ]
    for values in history.history.values():
        assert np.all(np.isfinite(values))
    assert history.history["loss"][-1] < history.history["loss"][0]
    pairs = tf.data.Dataset.from_tensor_slices((x, np.zeros(32, "int32"))).batch(8)
    vae.fit(pairs, validation_data=pairs, epochs=1, shuffle=False, verbose=0)
    assert int(vae.optimizer.iterations) == 16


def test_encode_decode_sample_shapes_ranges_and_seeds():
    vae = build_vae(**TINY)
    x = _images(n=5)
    z = vae.encode(x)
    assert z.shape == (5, 2) and z.dtype == np.float32
    np.testing.assert_array_equal(z, vae.encode(x))  # the mean, not a sample
    x_hat = vae.decode(z)
    assert x_hat.shape == (5, 28, 28, 1) and x_hat.min() >= 0 and x_hat.max() <= 1
    np.testing.assert_array_equal(x_hat, vae.predict(x, verbose=0))
    new = vae.sample(4, seed=0)
    assert new.shape == (4, 28, 28, 1) and new.min() >= 0 and new.max() <= 1
    np.testing.assert_array_equal(new, vae.generate(4, seed=0))
    assert not np.allclose(new, vae.sample(4, seed=1))
    assert not np.allclose(vae.sample(4), vae.sample(4))


def test_sampling_layer_is_serialisable_and_draws_from_its_seed():
    layer = Sampling(seed=3, name="z")
    clone = Sampling.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config() and clone.seed == 3
    mean, log_var = np.zeros((1000, 2), "float32"), np.full((1000, 2), np.log(4.0), "float32")
    z = np.asarray(layer([mean, log_var]))
    assert z.std() == pytest.approx(2.0, rel=0.1)
    np.testing.assert_allclose(z, np.asarray(clone([mean, log_var])))


def test_save_load_restores_outputs_and_optimizer(tmp_path):
    vae = build_vae(**TINY)
    x = _images()
    vae.fit(x, epochs=2, batch_size=8, verbose=0)
    vae.save(tmp_path / "vae.keras")
    restored = keras.models.load_model(tmp_path / "vae.keras")
    assert isinstance(restored, VAE) and restored.compiled
    np.testing.assert_array_equal(vae.predict(x, verbose=0), restored.predict(x, verbose=0))
    np.testing.assert_array_equal(vae.encode(x), restored.encode(x))
    np.testing.assert_array_equal(vae.sample(3, seed=0), restored.sample(3, seed=0))
    saved, loaded = _optimizer_state(vae), _optimizer_state(restored)
    assert len(saved) == len(loaded) == 2 + 2 * len(vae.trainable_variables)
    for a, b in zip(saved, loaded):
        np.testing.assert_array_equal(a, b)
    assert int(restored.optimizer.iterations) == 8
    history = restored.fit(x, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and int(restored.optimizer.iterations) == 12


def test_mixed_float16_is_loss_scaled_and_finite():
    keras.mixed_precision.set_global_policy("mixed_float16")
    vae = build_vae(**TINY)
    assert isinstance(vae.optimizer, keras.optimizers.LossScaleOptimizer)
    history = vae.fit(_images(n=16), epochs=2, batch_size=8, verbose=0)
    for values in history.history.values():
        assert np.all(np.isfinite(values))
    # The sum over 784 pixels overflows float16 at the initial scale 2**15: each
    # skipped step halves the scale and does not count as an iteration.
    skipped = 4 - int(vae.optimizer.iterations)
    assert skipped < 4 and float(vae.optimizer.dynamic_scale) == 2.0 ** (15 - skipped)
    assert vae.sample(2, seed=0).dtype == np.float32


def test_free_bits_change_the_objective_not_the_logged_elbo():
    vae = build_vae(**{**TINY, "free_bits": 3.0})
    x = _images(n=16)
    vae(x, training=True)
    kl, slack = (float(v) for v in vae.losses)
    z_mean, z_log_var, _ = (np.asarray(t, "float64") for t in vae.encoder(x))
    per_dim = np.mean(-0.5 * (1 + z_log_var - z_mean**2 - np.exp(z_log_var)), axis=0)
    assert kl == pytest.approx(per_dim.sum(), rel=1e-4)
    assert slack == pytest.approx(np.sum(np.maximum(per_dim, 3.0) - per_dim), rel=1e-4)
    assert slack > 0  # an untrained encoder carries far less than 3 nats a dimension
    logs = vae.train_on_batch(x, return_dict=True)  # the logged losses are the plain ELBO's
    assert logs["loss"] == pytest.approx(logs["reconstruction_loss"] + logs["kl_loss"], rel=1e-5)
    assert build_vae(**{**TINY, "free_bits": 0.0})(x, training=True) is not None
    with pytest.raises(ValueError, match=r"^free_bits must be a number >= 0\. Received: free_bits=-1$"):
        build_vae(**{**TINY, "free_bits": -1})


def _mean_pairwise_distance(images):
    flat = np.asarray(images, "float64").reshape(len(images), -1)
    distances = np.sqrt(((flat[:, None] - flat[None]) ** 2).sum(-1))
    return distances[np.triu_indices(len(flat), 1)].mean()


def test_default_vae_samples_of_the_bundled_digits_differ():
    # posterior collapse makes every sample the same average digit; the default keeps codes informative
    from recipes.datasets import load_dataset
    from recipes.registry import get_spec

    defaults = get_spec("vae").defaults
    train = load_dataset("digits", labels=False, batch_size=defaults["batch_size"], seed=0).train
    real = np.concatenate(list(train.as_numpy_iterator()))
    spread = {}
    for name, free_bits in (("default", {}), ("plain ELBO", {"free_bits": 0.0})):
        keras.utils.set_random_seed(0)
        vae = build_vae(input_shape=(8, 8, 1), seed=0, learning_rate=defaults["learning_rate"], **free_bits)
        vae.fit(train, epochs=5, verbose=0)
        spread[name] = _mean_pairwise_distance(vae.sample(64, seed=0))
    reference = _mean_pairwise_distance(real[:64])  # ~3.0: real digits differ a lot
    assert spread["default"] > 0.35 * reference, (spread, reference)  # collapsed: 0.1-0.2
    assert spread["default"] > spread["plain ELBO"], spread
