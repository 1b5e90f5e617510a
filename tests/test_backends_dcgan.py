"""The DCGAN trains, saves, loads and resumes on TensorFlow, JAX and PyTorch (each in its own process)."""

import keras
import numpy as np
import pytest
from _backend import backend_params, run_in_backend

from recipes import build_dcgan

pytestmark = pytest.mark.process  # every test here starts Python under another backend

SETUP = """
from recipes import build_dcgan


def tiny(**kwargs):
    return build_dcgan(input_shape=(16, 16, 1), latent_dim=4, base_filters=4, kernel_size=3, seed=1, **kwargs)


def values(variables):
    return [keras.ops.convert_to_numpy(v) for v in variables]


def bn_statistics(gan):
    return values(gan.generator.non_trainable_variables + gan.discriminator.non_trainable_variables)


def optimizer_state(gan):
    return values(gan.d_optimizer.variables + gan.g_optimizer.variables)


def max_change(before, after):
    return [float(np.abs(a - b).max()) for a, b in zip(before, after)]


images = np.random.default_rng(0).uniform(-1, 1, (32, 16, 16, 1)).astype("float32")  # 4 batches of 8
"""


@pytest.mark.parametrize("backend", backend_params())
def test_fit_save_load_evaluate(backend, tmp_path):
    out = run_in_backend(
        backend,
        SETUP
        + f"""
gan = tiny()
generator, discriminator = values(gan.generator.trainable_variables), values(gan.discriminator.trainable_variables)
statistics, seed_state, untrained = bn_statistics(gan), values([gan.seed_generator.state]), gan.generate(4, seed=7)
history = gan.fit(images, epochs=2, batch_size=8, shuffle=False, verbose=0)
report(
    history=history.history,
    iterations=[int(gan.d_optimizer.iterations), int(gan.g_optimizer.iterations)],
    generator_change=max_change(generator, values(gan.generator.trainable_variables)),
    discriminator_change=max_change(discriminator, values(gan.discriminator.trainable_variables)),
    statistics_change=max_change(statistics, bn_statistics(gan)),
    seed_state_change=max_change(seed_state, values([gan.seed_generator.state])),
    samples_change=float(np.abs(gan.generate(4, seed=7) - untrained).max()),
    unseeded_draws_differ=not np.allclose(gan.generate(4), gan.generate(4)),
)
gan.save({str(tmp_path / "gan.keras")!r})
restored = keras.saving.load_model({str(tmp_path / "gan.keras")!r})
report(
    restored_type=type(restored).__name__,
    same_samples=bool(np.array_equal(gan.generate(4, seed=7), restored.generate(4, seed=7))),
    optimizer_sizes=[len(restored.d_optimizer.variables), len(restored.g_optimizer.variables)],
    trainable_sizes=[len(gan.discriminator.trainable_variables), len(gan.generator.trainable_variables)],
    optimizer_change=max_change(optimizer_state(gan), optimizer_state(restored)),
    weights_change=max_change(values(gan.weights), values(restored.weights)),
    distinct_optimizers=restored.d_optimizer is not restored.g_optimizer,
)
results = restored.evaluate(images, batch_size=8, verbose=0, return_dict=True)
evaluated = [int(restored.d_optimizer.iterations), int(restored.g_optimizer.iterations)]
restored.fit(images, epochs=1, batch_size=8, verbose=0)
report(
    evaluate=results,
    iterations_after_evaluate=evaluated,
    iterations_after_more_training=[int(restored.d_optimizer.iterations), int(restored.g_optimizer.iterations)],
)
""",
    )
    history = out["history"]
    assert sorted(history) == ["d_acc_fake", "d_acc_real", "d_loss", "g_loss"]
    assert all(np.all(np.isfinite(v)) and len(v) == 2 for v in history.values())
    assert out["iterations"] == [8, 8]  # one discriminator and one generator update per batch
    assert min(out["generator_change"]) > 0 and min(out["discriminator_change"]) > 0  # every weight moves
    assert min(out["statistics_change"]) > 0  # every batch-norm mean and variance, in both halves
    assert max(out["seed_state_change"]) > 0 and out["unseeded_draws_differ"]
    assert out["samples_change"] > 0
    assert out["restored_type"] == "DCGAN" and out["same_samples"] and out["distinct_optimizers"]
    assert out["trainable_sizes"] == [7, 8]
    assert out["optimizer_sizes"] == [2 + 2 * 7, 2 + 2 * 8]  # iterations, learning rate, Adam's two moments each
    assert max(out["optimizer_change"]) == 0 and max(out["weights_change"]) == 0
    assert sorted(out["evaluate"]) == ["d_acc_fake", "d_acc_real", "d_loss", "g_loss"]
    assert all(np.isfinite(v) for v in out["evaluate"].values())
    assert out["iterations_after_evaluate"] == [8, 8]  # evaluation does not train
    assert out["iterations_after_more_training"] == [12, 12]


@pytest.mark.parametrize("backend", backend_params())
def test_backup_and_restore_resumes_both_optimizers(backend, tmp_path):
    out = run_in_backend(
        backend,
        SETUP
        + f"""
class Record(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.state = {{}}

    def on_train_begin(self, logs=None):
        self.state["begin"] = (optimizer_state(self.model), values(self.model.weights))

    def on_epoch_end(self, epoch, logs=None):
        self.state[epoch] = (optimizer_state(self.model), values(self.model.weights))


class Kill(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("killed")


import shutil

backup = {str(tmp_path / "backup")!r}
first, second, third = Record(), Record(), Record()
gan = tiny()
try:
    gan.fit(images, epochs=3, batch_size=8, shuffle=False, verbose=0,
            callbacks=[keras.callbacks.BackupAndRestore(backup), first, Kill()])
except RuntimeError:
    pass
shutil.copytree(backup, backup + "_copy")
runs = []
for directory, record in ((backup, second), (backup + "_copy", third)):  # two resumes from one backup end the same
    resumed = tiny()
    history = resumed.fit(images, epochs=3, batch_size=8, shuffle=False, verbose=0,
                          callbacks=[keras.callbacks.BackupAndRestore(directory), record])
    runs.append(len(history.history["d_loss"]))
report(
    epochs_run=runs,
    iterations=[int(resumed.d_optimizer.iterations), int(resumed.g_optimizer.iterations)],
    restored_optimizer_change=max_change(first.state[0][0], second.state["begin"][0]),
    restored_weights_change=max_change(first.state[0][1], second.state["begin"][1]),
    resumes_differ=max(max_change(second.state[2][1], third.state[2][1])),
)
""",
    )
    assert out["epochs_run"] == [2, 2] and out["iterations"] == [12, 12]
    assert max(out["restored_optimizer_change"]) == 0 and max(out["restored_weights_change"]) == 0
    assert out["resumes_differ"] == 0


@pytest.mark.parametrize("backend", [p for p in backend_params() if p.values[0] != "tensorflow"])
def test_mixed_float16_scales_both_losses(backend, tmp_path):
    # test_dcgan.py covers TensorFlow in process.
    out = run_in_backend(
        backend,
        SETUP
        + f"""
keras.mixed_precision.set_global_policy("mixed_float16")
gan = tiny()
history = gan.fit(images, epochs=1, batch_size=8, verbose=0)
gan.save({str(tmp_path / "gan.keras")!r})
restored = keras.saving.load_model({str(tmp_path / "gan.keras")!r})
report(
    wrapped=[type(o).__name__ for o in (gan.d_optimizer, gan.g_optimizer, restored.d_optimizer, restored.g_optimizer)],
    history=history.history,
    iterations=[int(gan.d_optimizer.iterations), int(gan.g_optimizer.iterations)],
    optimizer_change=max_change(optimizer_state(gan), optimizer_state(restored)),
    sample_dtype=str(gan.generate(2, seed=0).dtype),
)
""",
    )
    assert out["wrapped"] == ["LossScaleOptimizer"] * 4
    assert all(np.all(np.isfinite(v)) for v in out["history"].values())
    assert out["iterations"] == [4, 4] and max(out["optimizer_change"]) == 0
    assert out["sample_dtype"] == "float32"


@pytest.mark.parametrize("backend", [p for p in backend_params() if p.values[0] != "tensorflow"])
def test_tensorflow_files_load_and_train_on_other_backends(backend, tmp_path):
    gan = build_dcgan(input_shape=(16, 16, 1), latent_dim=4, base_filters=4, kernel_size=3, seed=1)
    x = np.random.default_rng(0).uniform(-1, 1, (16, 16, 16, 1)).astype("float32")
    gan.fit(x, epochs=1, batch_size=8, verbose=0)
    gan.save(tmp_path / "gan.keras")
    latent = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    np.save(tmp_path / "latent.npy", latent)
    out = run_in_backend(
        backend,
        SETUP
        + f"""
gan = keras.saving.load_model({str(tmp_path / "gan.keras")!r})
report(
    images=gan.generator.predict(np.load({str(tmp_path / "latent.npy")!r}), verbose=0),
    optimizer_state=optimizer_state(gan),
)
gan.fit(images, epochs=1, batch_size=8, verbose=0)
report(iterations=[int(gan.d_optimizer.iterations), int(gan.g_optimizer.iterations)])
""",
    )
    np.testing.assert_allclose(out["images"], gan.generator.predict(latent, verbose=0), atol=1e-5)
    for a, b in zip(out["optimizer_state"], gan.d_optimizer.variables + gan.g_optimizer.variables):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(b))
    assert out["iterations"] == [6, 6]


@pytest.mark.parametrize("backend", [p for p in backend_params() if p.values[0] == "torch"])
def test_pytorch_needs_one_step_per_execution(backend):
    out = run_in_backend(
        backend,
        SETUP
        + """
gan = tiny(compile=False)
gan.compile(steps_per_execution=2)
try:
    gan.fit(images, epochs=1, batch_size=8, verbose=0)
except ValueError as error:
    report(error=str(error))
""",
    )
    assert "`steps_per_execution` must be 1 with the PyTorch backend" in out["error"]
