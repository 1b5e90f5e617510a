import csv
import glob
import json
import math
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import py_batches
from tensorboard.backend.event_processing import event_accumulator

from recipes import build_mlp, plots
from recipes.callbacks import AtomicModelCheckpoint, default_callbacks, learning_rates, resolve_mode
from recipes.callbacks import images as image_callbacks

# Tiny models and data ----------------------------------------------------------


def blobs(n=48, num_classes=3, dim=4, seed=0):
    """Gaussian blobs: a classification problem a tiny MLP learns in a few steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n)
    centers = rng.normal(0.0, 3.0, (num_classes, dim))
    return (centers[y] + rng.normal(0.0, 1.0, (n, dim))).astype("float32"), y.astype("int32")


def classifier(num_classes=3):
    return build_mlp(
        input_shape=(4,), num_classes=num_classes, hidden_units=(8,), dropout=0.0, optimizer="adam", learning_rate=0.01
    )


@keras.saving.register_keras_serializable(package="test_callbacks")
class TinyVAE(keras.Model):
    """The generative contract (generate, value_range, latent_dim, encode, decode) on an autoencoder."""

    def __init__(self, image_shape=(4, 4, 1), latent_dim=2, **kwargs):
        super().__init__(**kwargs)
        self.image_shape, self.latent_dim, self.value_range = tuple(image_shape), latent_dim, (0.0, 1.0)
        self.encoder = keras.Sequential(
            [keras.Input(self.image_shape), keras.layers.Flatten(), keras.layers.Dense(latent_dim)], name="encoder"
        )
        self.decoder = keras.Sequential(
            [
                keras.Input((latent_dim,)),
                keras.layers.Dense(int(np.prod(image_shape)), activation="sigmoid"),
                keras.layers.Reshape(self.image_shape),
            ],
            name="decoder",
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self(np.zeros((1, *self.image_shape), "float32"))  # built before fit, as BackupAndRestore needs

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, x):
        return self.decoder(self.encoder(x))

    def train_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(keras.ops.square(self(x) - x))
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def encode(self, x):
        return keras.ops.convert_to_numpy(self.encoder(x))

    def decode(self, z):
        return keras.ops.convert_to_numpy(self.decoder(z))

    def generate(self, n, seed=None):
        z = keras.random.normal((n, self.latent_dim), seed=seed)
        return self.decode(z)

    def get_config(self):
        return {**super().get_config(), "image_shape": self.image_shape, "latent_dim": self.latent_dim}


@keras.saving.register_keras_serializable(package="test_callbacks")
class TinyGAN(keras.Model):
    """The DCGAN side of the contract: generate in (-1, 1), d_loss/g_loss, own d/g optimizers, no `loss`."""

    def __init__(self, image_shape=(4, 4, 1), latent_dim=3, **kwargs):
        super().__init__(**kwargs)
        self.image_shape, self.latent_dim, self.value_range = tuple(image_shape), latent_dim, (-1.0, 1.0)
        self.loss_offset = 0.0  # NaN makes both losses NaN whatever the CPU's kernels do
        self.generator = keras.Sequential(
            [
                keras.Input((latent_dim,)),
                keras.layers.Dense(int(np.prod(image_shape)), activation="tanh"),
                keras.layers.Reshape(self.image_shape),
            ],
            name="generator",
        )
        self.discriminator = keras.Sequential(
            [keras.Input(self.image_shape), keras.layers.Flatten(), keras.layers.Dense(1)], name="discriminator"
        )
        self.d_tracker = keras.metrics.Mean(name="d_loss")
        self.g_tracker = keras.metrics.Mean(name="g_loss")
        self.seed_generator = keras.random.SeedGenerator(0)
        self(np.zeros((1, latent_dim), "float32"))

    def compile(self, d_optimizer, g_optimizer):
        super().compile()
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    @property
    def metrics(self):
        return [self.d_tracker, self.g_tracker]

    def call(self, z):
        return self.discriminator(self.generator(z))

    def train_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        z = keras.random.normal((keras.ops.shape(x)[0], self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            d_loss = keras.ops.mean(keras.ops.square(self.discriminator(x) - 1.0)) + keras.ops.mean(
                keras.ops.square(self.discriminator(self.generator(z)))
            )
        weights = self.discriminator.trainable_weights
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, weights), weights))
        with tf.GradientTape() as tape:
            g_loss = keras.ops.mean(keras.ops.square(self.discriminator(self.generator(z)) - 1.0))
        weights = self.generator.trainable_weights
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, weights), weights))
        d_loss, g_loss = d_loss + self.loss_offset, g_loss + self.loss_offset
        self.d_tracker.update_state(d_loss)
        self.g_tracker.update_state(g_loss)
        return {"d_loss": self.d_tracker.result(), "g_loss": self.g_tracker.result()}

    def generate(self, n, seed=None):
        return keras.ops.convert_to_numpy(self.generator(keras.random.normal((n, self.latent_dim), seed=seed)))

    def get_config(self):
        return {**super().get_config(), "image_shape": self.image_shape, "latent_dim": self.latent_dim}


def images(n=32, seed=0):
    return np.random.default_rng(seed).random((n, 4, 4, 1)).astype("float32")


# Reading the run directory back -------------------------------------------------


def accumulator(path):
    acc = event_accumulator.EventAccumulator(path, size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return acc


def scalars(path, tag):
    """{step: value} of a TF2 scalar summary (written as a tensor, not a legacy Scalar)."""
    return {e.step: float(tf.make_ndarray(e.tensor_proto)) for e in accumulator(path).Tensors(tag)}


def image_events(path, tag):
    """[(step, decoded image)] of a TF2 image summary: a string tensor [width, height, png...]."""
    events = accumulator(path).Tensors(tag)
    return [(e.step, tf.io.decode_png(e.tensor_proto.string_val[2]).numpy()) for e in events]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def temp_files(run_dir):
    return glob.glob(os.path.join(run_dir, "**", ".*.tmp*"), recursive=True)


class Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("killed")


# A full classifier run --------------------------------------------------------


def test_classifier_run_writes_every_file_and_the_tensorboard_scalars(tmp_path):
    run = str(tmp_path / "run")
    x, y = blobs()
    xv, yv = blobs(n=24, seed=1)
    model = classifier()
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=3,
        validation_data=(xv, yv),
        verbose=0,
        callbacks=default_callbacks(run, validation_data=(xv, yv)),
    )

    for name in ("best.keras", "last.keras", "history.csv", "plots/curves.png", "plots/confusion_matrix.png"):
        assert os.path.isfile(os.path.join(run, name)), name
    assert not os.path.exists(os.path.join(run, "backup"))  # removed once fit completes
    assert temp_files(run) == []

    h = history.history
    assert h["learning_rate"] == pytest.approx([0.01] * 3)
    for run_name, prefix in (("train", ""), ("validation", "val_")):
        for metric in ("loss", "accuracy"):
            logged = scalars(os.path.join(run, "logs", run_name), f"epoch_{metric}")
            assert list(logged) == [1, 2, 3]  # the epochs as Keras prints them
            np.testing.assert_allclose(list(logged.values()), h[prefix + metric], rtol=1e-6)
    assert list(scalars(os.path.join(run, "logs", "train"), "epoch_learning_rate").values()) == pytest.approx(
        [0.01] * 3
    )

    rows = read_csv(os.path.join(run, "history.csv"))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    np.testing.assert_allclose([float(r["val_loss"]) for r in rows], h["val_loss"], rtol=1e-6)

    # the Keras layer graph (Graphs tab), no op graph of the train step; no run of images alone
    train = accumulator(os.path.join(run, "logs", "train"))
    assert train.summary_metadata["keras"].plugin_data.plugin_name == "graph_keras_model"
    assert [t for t in train.Tags()["tensors"] if not t.startswith("epoch_")] == ["keras"]
    assert sorted(os.listdir(os.path.join(run, "logs"))) == ["train", "validation"]
    assert len(os.listdir(os.path.join(run, "logs", "validation"))) == 1  # one writer: the images follow the scalars

    # best.keras is the epoch with the lowest val_loss
    best = keras.saving.load_model(os.path.join(run, "best.keras"))
    assert best.evaluate(xv, yv, verbose=0)[0] == pytest.approx(min(h["val_loss"]), rel=1e-5)
    last = keras.saving.load_model(os.path.join(run, "last.keras"))
    np.testing.assert_allclose(last.predict(xv, verbose=0), model.predict(xv, verbose=0), atol=1e-6)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_confusion_matrix_counts_the_validation_predictions(tmp_path, num_classes):
    run = str(tmp_path / "run")
    x, y = blobs(num_classes=num_classes)
    val = tf.data.Dataset.from_tensor_slices(blobs(n=30, num_classes=num_classes, seed=1)).batch(8)
    model = classifier(num_classes)
    callbacks = default_callbacks(run, validation_data=val, class_names=[f"c{i}" for i in range(num_classes)])
    model.fit(x, y, epochs=2, verbose=0, callbacks=callbacks)

    matrix = next(c for c in callbacks if isinstance(c, image_callbacks.ConfusionMatrix)).matrix
    xv, yv = image_callbacks.take_examples(val)
    p = model.predict(xv, verbose=0)
    predicted = (p[:, 0] > 0.5).astype(int) if num_classes == 2 else p.argmax(-1)
    assert matrix.shape == (num_classes, num_classes)
    assert matrix.sum() == 30
    np.testing.assert_array_equal(np.diag(matrix), [np.sum((yv == k) & (predicted == k)) for k in range(num_classes)])

    png = plt_image(os.path.join(run, "plots", "confusion_matrix.png"))
    side = int(plots.confusion_matrix_figure_size(num_classes) * 100)
    assert png.shape[:2] == (side, side) == (400, 400)
    [(step, image)] = image_events(os.path.join(run, "logs", "validation"), "images/confusion_matrix")
    assert step == 2 and image.shape == (side, side, 4)  # after the last epoch, epoch 2
    np.testing.assert_allclose(image / 255.0, png, atol=1 / 255)
    assert "images/confusion_matrix" not in accumulator(os.path.join(run, "logs", "train")).Tags()["tensors"]


def plt_image(path):
    import matplotlib.image

    return matplotlib.image.imread(path)


def test_confusion_matrix_figure_grows_with_the_classes():
    assert [plots.confusion_matrix_figure_size(k) for k in (2, 10, 20, 100)] == [4.0, 4.5, 7.0, 8.0]


def texts(fig):
    return [t.get_text() for t in fig.findobj(lambda artist: hasattr(artist, "get_text")) if t.get_text()]


def test_confusion_matrix_title_names_the_split_and_every_count_fits_its_cell():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    matrix = np.full((20, 20), 7) + np.diag(np.full(20, 9993))  # four-digit counts on the diagonal
    fig = plots.confusion_matrix_figure(matrix, split="validation")
    assert "validation split\naccuracy 0.987 (n=202660)" in texts(fig)  # 200000 right of 202660
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    cell = ax.get_window_extent(renderer).width / 20
    counts = [t for t in ax.texts]
    assert len(counts) == 400
    assert max(t.get_window_extent(renderer).width for t in counts) < cell
    assert not any("split" in t for t in texts(plots.confusion_matrix_figure(matrix)))


# Generative models ---------------------------------------------------------------


@pytest.mark.parametrize("latent_dim", [1, 2])
def test_vae_run_writes_samples_reconstructions_and_traversal_each_epoch(tmp_path, latent_dim):
    run = str(tmp_path / "run")
    model = TinyVAE(latent_dim=latent_dim)
    model.compile(keras.optimizers.Adam(0.01))
    val = images(10, seed=1)
    train = tf.data.Dataset.from_tensor_slices(images()).batch(8)  # images alone, no labels
    model.fit(train, epochs=2, verbose=0, callbacks=default_callbacks(run, validation_data=val, num_samples=9))

    # pictures of the model in the train run, pictures of validation data in the validation run
    train, validation = (os.path.join(run, "logs", name) for name in ("train", "validation"))
    assert sorted(os.listdir(os.path.join(run, "logs"))) == ["train", "validation"]
    for log, name in ((train, "samples"), (validation, "reconstructions"), (train, "latent_traversal")):
        events = image_events(log, f"images/{name}")
        assert [step for step, _ in events] == [1, 2], name
        for epoch in (1, 2):
            assert os.path.isfile(os.path.join(run, "plots", f"{name}_epoch_{epoch:03d}.png"))
        assert os.path.isfile(os.path.join(run, "plots", f"{name}.png"))
    assert "images/reconstructions" not in accumulator(train).Tags()["tensors"]
    # the Graphs tab: the layer graph of each functional sub-model, as `keras` would be for a Functional model
    acc = accumulator(train)
    for name in ("encoder", "decoder"):
        assert acc.summary_metadata[name].plugin_data.plugin_name == "graph_keras_model"
        assert json.loads(acc.Tensors(name)[0].tensor_proto.string_val[0])["config"]["name"] == name

    # the last sample grid is exactly the fixed-seed samples of the trained model
    expected = plots.make_grid(plots.to_unit_range(model.generate(9, seed=1234)))
    (_, first), (_, last) = image_events(train, "images/samples")
    np.testing.assert_allclose(last[..., 0] / 255.0, expected[..., 0], atol=1 / 255)
    assert not np.array_equal(first, last)  # the model changed between epochs
    png = plt_image(os.path.join(run, "plots", "samples.png"))
    assert png.shape[:2] == (16 * 8, 16 * 8)  # the 16-px grid, upscaled for the PNG by the 8x cap
    # reconstructions: a labelled figure, the same pixels in TensorBoard and the PNG
    _, recon = image_events(validation, "images/reconstructions")[-1]
    np.testing.assert_allclose(
        recon / 255.0, plt_image(os.path.join(run, "plots", "reconstructions.png")), atol=1 / 255
    )
    # the traversal: a figure with its axes named, the same pixels in TensorBoard and the PNG
    _, traversal = image_events(train, "images/latent_traversal")[-1]
    np.testing.assert_allclose(
        traversal / 255.0, plt_image(os.path.join(run, "plots", "latent_traversal.png")), atol=1 / 255
    )
    rows = 9 if latent_dim >= 2 else 1  # one latent dimension traverses a single row
    fig = plots.latent_traversal_figure(np.zeros((rows * 9, 4, 4, 1)), 9, plots.latent_values(9))
    [ax] = fig.axes
    assert ax.get_xlabel() == "z[1]" and [t.get_text() for t in ax.get_xticklabels()] == ["-1.6", "0.0", "1.6"]
    assert ax.get_ylabel() == ("z[0]" if rows == 9 else "")
    assert traversal.shape[:2] == plots.figure_to_array(fig).shape[:2]

    rows = read_csv(os.path.join(run, "history.csv"))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and float(rows[0]["learning_rate"]) == pytest.approx(0.01)
    assert os.path.isfile(os.path.join(run, "best.keras"))  # monitor "auto" -> loss


def test_reconstructions_are_labelled_original_and_reconstruction():
    original = images(10)
    fig = plots.reconstructions_figure(original, 1.0 - original, ncols=4)
    assert [ax.get_title() for ax in fig.axes] == ["original", "reconstruction"]
    for ax, expected in zip(fig.axes, (original, 1.0 - original)):
        np.testing.assert_allclose(ax.images[0].get_array(), plots.make_grid(expected, ncols=4)[..., 0])


def test_image_callbacks_write_without_a_tensorboard_callback(tmp_path):
    run = str(tmp_path / "run")
    model = TinyVAE()
    model.compile(keras.optimizers.Adam(0.01))
    val = images(8, seed=1)
    callbacks = [image_callbacks.SampleGrid(run, num_samples=4), image_callbacks.Reconstructions(run, val)]
    model.fit(images(), batch_size=8, epochs=2, verbose=0, callbacks=callbacks)
    assert [step for step, _ in image_events(os.path.join(run, "logs", "train"), "images/samples")] == [1, 2]
    validation = os.path.join(run, "logs", "validation")
    assert [step for step, _ in image_events(validation, "images/reconstructions")] == [1, 2]


def test_the_callbacks_read_a_py_dataset_as_they_read_a_tf_data_pipeline(tmp_path):
    from recipes.callbacks import batch_norm

    x, y = blobs(n=30)
    for labelled, plain in ((py_batches(x, y), (x, y)), (py_batches(x), x)):
        for n in (None, 12):
            got, expected = image_callbacks.take_examples(labelled, n), image_callbacks.take_examples(plain, n)
            np.testing.assert_array_equal(got[0], expected[0])
            assert (got[1] is None) == (expected[1] is None)
            if got[1] is not None:
                np.testing.assert_array_equal(got[1], expected[1])
        assert image_callbacks._has_labels(labelled) == image_callbacks._has_labels(plain)
    assert [len(b) for b in batch_norm._takes_examples(py_batches(x, y), 20, 2**20)] == [8, 8, 8]

    # the confusion matrix of a PyDataset's validation data, and a VAE's reconstructions of one
    run = str(tmp_path / "run")
    val = py_batches(*blobs(n=30, seed=1))
    callbacks = default_callbacks(run, validation_data=val)
    classifier().fit(x, y, epochs=1, verbose=0, validation_data=val, callbacks=callbacks)
    assert next(c for c in callbacks if isinstance(c, image_callbacks.ConfusionMatrix)).matrix.sum() == 30
    model = TinyVAE()
    model.compile(keras.optimizers.Adam(0.01))
    reconstructions = image_callbacks.Reconstructions(str(tmp_path / "vae"), py_batches(images(10)), num_images=4)
    model.fit(images(), batch_size=8, epochs=1, verbose=0, callbacks=[reconstructions])
    np.testing.assert_array_equal(reconstructions.images, images(10)[:4])


def test_pictures_are_drawn_first_last_and_every_min_interval_seconds(tmp_path, monkeypatch):
    clock = iter(range(0, 1000, 2))  # each reading of the clock is 2 s after the one before
    monkeypatch.setattr(image_callbacks, "_clock", lambda: next(clock))
    run = str(tmp_path / "run")
    model = TinyVAE()
    model.compile(keras.optimizers.Adam(0.01))
    grid = image_callbacks.SampleGrid(run, num_samples=4, min_interval=5.0)
    model.fit(images(), batch_size=8, epochs=7, verbose=0, callbacks=[grid])
    # drawn at epoch 1 (clock 0), then whenever 5 s have passed: the clock reads 2, 4, 6 at epochs 2-4
    assert [step for step, _ in image_events(os.path.join(run, "logs", "train"), "images/samples")] == [1, 4, 7]
    assert sorted(os.listdir(os.path.join(run, "plots"))) == [
        "samples.png",
        "samples_epoch_001.png",
        "samples_epoch_004.png",
        "samples_epoch_007.png",
    ]

    every = str(tmp_path / "every")
    model.fit(
        images(), batch_size=8, epochs=3, verbose=0, callbacks=[image_callbacks.SampleGrid(every, min_interval=0)]
    )
    assert [step for step, _ in image_events(os.path.join(every, "logs", "train"), "images/samples")] == [1, 2, 3]

    stopped = str(tmp_path / "stopped")  # stopped early between two pictures: the last epoch is drawn at the end
    stop = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch == 2))
    far = image_callbacks.SampleGrid(stopped, min_interval=1e9)
    model.fit(images(), batch_size=8, epochs=10, verbose=0, callbacks=[far, stop])
    assert [step for step, _ in image_events(os.path.join(stopped, "logs", "train"), "images/samples")] == [1, 3]

    with pytest.raises(
        ValueError, match=r"^min_interval must be a number of seconds >= 0\. Received: min_interval=-1$"
    ):
        image_callbacks.SampleGrid(run, min_interval=-1)


def test_gan_run_writes_samples_and_logs_both_learning_rates(tmp_path):
    run = str(tmp_path / "run")
    model = TinyGAN()
    model.compile(keras.optimizers.Adam(2e-4), keras.optimizers.Adam(1e-3))
    with pytest.warns(UserWarning, match=r"best\.keras is not written"):
        model.fit(images() * 2 - 1, batch_size=8, epochs=2, verbose=0, callbacks=default_callbacks(run))

    assert learning_rates(model) == pytest.approx({"d_learning_rate": 2e-4, "g_learning_rate": 1e-3})
    train = os.path.join(run, "logs", "train")
    events = image_events(train, "images/samples")
    assert [step for step, _ in events] == [1, 2] and events[0][1].shape == (8 * 5 + 1, 8 * 5 + 1, 1)
    expected = plots.make_grid(plots.to_unit_range(model.generate(64, seed=1234), (-1.0, 1.0)))
    np.testing.assert_allclose(events[-1][1][..., 0] / 255.0, expected[..., 0], atol=1 / 255)
    acc = accumulator(train)
    assert [t for t in acc.Tags()["tensors"] if not t.startswith("epoch_")] == [
        "generator",
        "discriminator",
        "images/samples",
    ]
    assert {acc.summary_metadata[t].plugin_data.plugin_name for t in ("generator", "discriminator")} == {
        "graph_keras_model"
    }
    assert os.listdir(os.path.join(run, "logs")) == ["train"]

    assert list(scalars(train, "epoch_g_learning_rate").values()) == pytest.approx([1e-3, 1e-3])
    assert "epoch_learning_rate" not in accumulator(train).Tags()["tensors"]  # the unused default optimizer
    assert not os.path.exists(os.path.join(run, "best.keras"))
    assert os.path.isfile(os.path.join(run, "last.keras"))
    assert {"d_loss", "g_loss", "d_learning_rate", "g_learning_rate"} <= set(
        read_csv(os.path.join(run, "history.csv"))[0]
    )


def test_required_pictures_fail_early_on_a_model_without_them(tmp_path):
    x, y = blobs()
    with pytest.raises(
        ValueError,
        match=r"samples=True needs a model with generate\(n, seed\) \(DCGAN, VAE\)\. "
        r"Received: model='mlp' \(Functional\)",
    ):
        classifier().fit(x, y, epochs=1, verbose=0, callbacks=default_callbacks(str(tmp_path), samples=True))


def test_make_grid_places_images_in_rows_with_padding():
    batch = np.stack([np.full((2, 3, 1), v, "float32") for v in (0.1, 0.2, 0.3, 0.4, 0.5)])
    grid = plots.make_grid(batch, padding=1, pad_value=1.0)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1, 1)  # ceil(sqrt(5)) = 3 columns, 2 rows
    assert grid[1, 1, 0] == pytest.approx(0.1) and grid[1, 5, 0] == pytest.approx(0.2)
    assert grid[4, 1, 0] == pytest.approx(0.4) and grid[4, 9, 0] == 1.0  # the missing 6th is padding
    assert plots.make_grid(batch[..., 0], ncols=5).shape == (4, 21, 1)
    np.testing.assert_allclose(plots.to_unit_range([-1.0, 0.0, 1.0, 3.0], (-1.0, 1.0)), [0.0, 0.5, 1.0, 1.0])
    with pytest.raises(
        ValueError,
        match=r"images must be a non-empty batch \(N, H, W, C\) or \(N, H, W\)\. "
        r"Received: images\.shape=\(3, 3\)",
    ):
        plots.make_grid(np.zeros((3, 3)))


def test_latent_grid_traverses_the_first_two_dimensions():
    z = plots.latent_grid(2, size=5)
    assert z.shape == (25, 2)
    np.testing.assert_allclose(z[12], [0.0, 0.0], atol=1e-6)  # the centre is the prior's mean
    assert z[0, 0] == pytest.approx(1.6448536, rel=1e-5) and z[0, 1] == pytest.approx(-1.6448536, rel=1e-5)
    z = plots.latent_grid(5, size=3)
    assert z.shape == (9, 5) and not z[:, 2:].any()
    assert plots.latent_grid(1, size=4).shape == (4, 1)


# Checkpoints, resume, NaN -------------------------------------------------------


def test_checkpoint_crash_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = str(tmp_path / "last.keras")
    x, y = blobs()
    model = classifier()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[AtomicModelCheckpoint(path)])
    saved = model.predict(x, verbose=0)

    def broken_save(filepath, overwrite=True):
        with open(filepath, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[AtomicModelCheckpoint(path)])
    assert os.listdir(tmp_path) == ["last.keras"]  # no temporary file left
    np.testing.assert_allclose(keras.saving.load_model(path).predict(x, verbose=0), saved, atol=1e-6)


def test_last_checkpoint_copies_best_in_the_epochs_best_saved_and_saves_once(tmp_path, monkeypatch):
    x, y = blobs()
    model = classifier()
    scores, weights = [1.0, 2.0, 0.0], {}  # mode max: best saves after epochs 1 and 2, not 3

    class Score(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = scores[epoch]
            weights[epoch] = [w.copy() for w in self.model.get_weights()]

    saves = []
    save = model.save
    monkeypatch.setattr(model, "save", lambda path, **kw: (saves.append(path), save(path, **kw)))
    best = AtomicModelCheckpoint(str(tmp_path / "best.keras"), monitor="score", mode="max", save_best_only=True)
    copies = []
    copyfile = shutil.copyfile
    monkeypatch.setattr(shutil, "copyfile", lambda src, dst: (copies.append(src), copyfile(src, dst)))
    last = AtomicModelCheckpoint(str(tmp_path / "last.keras"), copy_of=best)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[Score(), best, last])

    assert len(saves) == 3  # epoch 1 and 2: best.keras alone; epoch 3: last.keras
    assert copies == [best.filepath, best.filepath]
    for path, epoch in ((best.filepath, 1), (last.filepath, 2)):
        loaded = keras.saving.load_model(path).get_weights()
        for a, b in zip(loaded, weights[epoch]):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match=r"copy_of must be an AtomicModelCheckpoint\. Received: copy_of='best'"):
        AtomicModelCheckpoint(str(tmp_path / "last.keras"), copy_of="best")


def test_resumed_run_continues_from_the_backup_with_one_history(tmp_path):
    run = str(tmp_path / "run")
    x, y = blobs()
    xv, yv = blobs(n=24, seed=1)

    first = classifier()
    with pytest.raises(RuntimeError, match="killed"):
        first.fit(
            x,
            y,
            epochs=4,
            validation_data=(xv, yv),
            verbose=0,
            callbacks=default_callbacks(run, validation_data=(xv, yv)) + [Interrupt(at_epoch=2)],
        )
    assert os.path.isdir(os.path.join(run, "backup"))
    weights_at_crash = first.get_weights()
    with open(os.path.join(run, "history.csv"), "a") as f:  # as if killed after logging epoch 3, before its backup
        f.write("3,0.5,0.01,9.0,0.5,9.0\n")

    class Sabotage(keras.callbacks.Callback):
        """Checks the restored weights, then ruins them so the resumed epochs are worse than the old best."""

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                for restored, saved in zip(self.model.get_weights(), weights_at_crash):
                    np.testing.assert_allclose(restored, saved)
                self.model.set_weights([w * 50.0 for w in self.model.get_weights()])

    keras.utils.set_random_seed(1)
    second = classifier()
    history = second.fit(
        x,
        y,
        epochs=4,
        validation_data=(xv, yv),
        verbose=0,
        callbacks=[Sabotage()] + default_callbacks(run, validation_data=(xv, yv)),
    )
    assert history.epoch == [2, 3]

    rows = read_csv(os.path.join(run, "history.csv"))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    np.testing.assert_allclose([float(r["val_loss"]) for r in rows[2:]], history.history["val_loss"], rtol=1e-6)
    steps = scalars(os.path.join(run, "logs", "validation"), "epoch_loss")
    assert sorted(steps) == [1, 2, 3, 4]
    assert not os.path.exists(os.path.join(run, "backup"))

    val_losses = [float(r["val_loss"]) for r in rows]
    assert min(val_losses[2:]) > min(val_losses[:2])  # the sabotage worked
    best = keras.saving.load_model(os.path.join(run, "best.keras"))
    assert best.evaluate(xv, yv, verbose=0)[0] == pytest.approx(min(val_losses[:2]), rel=1e-5)
    assert os.path.isfile(os.path.join(run, "plots", "curves.png"))


def test_early_stopping_and_the_plateau_schedule_keep_counting_across_a_resume(tmp_path):
    """Patience is not reset by a kill: a resumed run stops and lowers the rate at the epochs
    an uninterrupted one does."""
    x, y = blobs()

    def fit(run, extra=()):
        keras.utils.set_random_seed(0)
        model = classifier()
        model.optimizer.learning_rate = 1e-9  # nothing improves: patience runs out
        callbacks = default_callbacks(run, early_stopping_patience=4, lr_schedule="plateau", monitor="loss")
        history = model.fit(x, y, epochs=12, verbose=0, callbacks=callbacks + list(extra))
        return history, callbacks

    whole, _ = fit(str(tmp_path / "whole"))
    assert len(whole.epoch) < 12  # it did stop early

    run = str(tmp_path / "run")
    with pytest.raises(RuntimeError, match="killed"):
        fit(run, [Interrupt(at_epoch=3)])
    meta = json.loads(open(os.path.join(run, "backup", "training_metadata.json")).read())
    assert {k.split(":")[0] for k in meta["callbacks"]} == {"EarlyStopping", "ReduceLROnPlateau"}
    assert meta["callbacks"]["EarlyStopping:0"]["wait"] > 0
    resumed, callbacks = fit(run)
    assert resumed.epoch[0] == 3 and resumed.epoch[-1] == whole.epoch[-1]
    np.testing.assert_allclose(resumed.history["learning_rate"], whole.history["learning_rate"][3:])


def test_validation_and_image_callbacks_leave_the_training_random_stream_alone(tmp_path):
    """The VAE samples its code when it validates and when reconstructions encode: with
    or without them, training draws the same numbers and ends with the same weights."""
    from recipes import build_vae

    x = np.random.default_rng(0).random((32, 8, 8, 1), dtype=np.float32)

    def weights(run, **kwargs):
        keras.utils.set_random_seed(0)
        model = build_vae(input_shape=(8, 8, 1), latent_dim=2, filters=(4, 8), hidden_units=(8,))
        callbacks = default_callbacks(run, samples=False, latent_traversal=False, backup=False, **kwargs)
        model.fit(
            x,
            epochs=3,
            batch_size=8,
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
            **({"validation_data": (x[:8],)} if "validation_data" in kwargs else {}),
        )
        return [np.asarray(w) for w in model.weights]

    plain = weights(str(tmp_path / "a"))
    watched = weights(str(tmp_path / "b"), validation_data=x[:8], reconstructions=True)
    assert os.path.exists(os.path.join(tmp_path, "b", "plots", "reconstructions.png"))
    for a, b in zip(plain, watched, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fresh_run_in_an_old_directory_starts_a_fresh_history(tmp_path):
    run = str(tmp_path / "run")
    x, y = blobs()
    classifier().fit(x, y, epochs=2, verbose=0, callbacks=default_callbacks(run))
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["sparse_categorical_accuracy"])
    model.fit(x, y, epochs=1, verbose=0, callbacks=default_callbacks(run))
    rows = read_csv(os.path.join(run, "history.csv"))
    assert [int(r["epoch"]) for r in rows] == [1] and "sparse_categorical_accuracy" in rows[0]


def test_a_history_counted_from_0_by_an_older_version_resumes_counted_from_1(tmp_path):
    run = str(tmp_path / "run")
    x, y = blobs()
    xv, yv = blobs(n=24, seed=1)
    with pytest.raises(RuntimeError, match="killed"):
        classifier().fit(
            x,
            y,
            epochs=4,
            validation_data=(xv, yv),
            verbose=0,
            callbacks=default_callbacks(run, validation_data=(xv, yv)) + [Interrupt(at_epoch=2)],
        )
    path = os.path.join(run, "history.csv")
    with open(path) as f:
        header, *lines = f.read().splitlines()
    old = [line.split(",", 1)[1] for line in lines]
    assert len(old) == 2
    # as an older version wrote it: epochs 0 and 1, and epoch 2 logged by a run killed before its backup
    legacy = [header, *(f"{n},{rest}" for n, rest in enumerate(old)), f"2,{old[-1]}"]
    with open(path, "w") as f:
        f.write("\n".join(legacy) + "\n")
    assert plots.read_history(path)["epoch"] == [1, 2, 3]  # every reader counts from 1

    history = classifier().fit(
        x, y, epochs=4, validation_data=(xv, yv), verbose=0, callbacks=default_callbacks(run, validation_data=(xv, yv))
    )
    rows = read_csv(path)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    with open(path) as f:
        assert [line.split(",", 1)[1] for line in f.read().splitlines()[1:3]] == old  # the old rows, unchanged
    np.testing.assert_allclose([float(r["val_loss"]) for r in rows[2:]], history.history["val_loss"], rtol=1e-6)


def nan_loss(y_true, y_pred):
    """Cross-entropy times NaN: a NaN loss from plain arithmetic. NaN *inputs* are no way to get
    one: on CPUs with AVX-512, oneDNN fuses Dense with its ReLU and turns NaN into finite values."""
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred) * float("nan")


@pytest.mark.parametrize("kind", ["classifier", "gan"])
def test_nan_loss_stops_training_and_keeps_last_checkpoint_clean(tmp_path, kind):
    run = str(tmp_path / "run")
    if kind == "classifier":
        model = classifier()
        model.compile(optimizer="adam", loss=nan_loss)
        x, y = blobs()
        data = dict(x=x, y=y)
    else:
        model = TinyGAN()
        model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
        model.loss_offset = float("nan")
        data = dict(x=images())
    batches = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))
    with pytest.warns(UserWarning, match=r"a loss is NaN or inf; .*last\.keras is not overwritten"):
        history = model.fit(**data, batch_size=8, epochs=3, verbose=0, callbacks=default_callbacks(run) + [counter])
    assert batches == [0] and history.epoch == [0]
    assert not os.path.exists(os.path.join(run, "last.keras"))


# Schedules, early stopping, curves ------------------------------------------------


def test_cosine_schedule_sets_and_logs_each_epochs_rate(tmp_path):
    run = str(tmp_path / "run")
    x, y = blobs()
    history = classifier().fit(
        x, y, batch_size=16, epochs=4, verbose=0, callbacks=default_callbacks(run, lr_schedule="cosine", epochs=4)
    )
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert history.history["learning_rate"] == pytest.approx(expected, rel=1e-5)
    logged = scalars(os.path.join(run, "logs", "train"), "epoch_learning_rate")
    assert list(logged.values()) == pytest.approx(expected, rel=1e-5)
    assert [float(r["learning_rate"]) for r in read_csv(os.path.join(run, "history.csv"))] == pytest.approx(
        expected, rel=1e-5
    )


def test_cosine_schedule_reads_the_epochs_fit_was_given(tmp_path):
    """`epochs=` of `default_callbacks` is deprecated and ignored: the schedule follows `fit(epochs=...)`."""
    x, y = blobs()
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * e / 3)) for e in range(3)]
    for run, kwargs in (("a", {}), ("b", {"epochs": 10})):
        history = classifier().fit(
            x,
            y,
            batch_size=16,
            epochs=3,
            verbose=0,
            callbacks=default_callbacks(str(tmp_path / run), lr_schedule="cosine", **kwargs),
        )
        assert history.history["learning_rate"] == pytest.approx(expected, rel=1e-5)


def test_callable_schedule_and_plateau_use_keras_callbacks(tmp_path):
    x, y = blobs()
    history = classifier().fit(
        x,
        y,
        epochs=3,
        verbose=0,
        callbacks=default_callbacks(str(tmp_path / "a"), lr_schedule=lambda epoch, lr: 0.1 / (epoch + 1)),
    )
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    callbacks = default_callbacks(str(tmp_path / "b"), lr_schedule="plateau")
    plateau = [c for c in callbacks if isinstance(c, keras.callbacks.ReduceLROnPlateau)]
    assert len(plateau) == 1 and plateau[0].factor == 0.5 and plateau[0].patience == 3
    assert isinstance(callbacks[-1], keras.callbacks.BackupAndRestore)  # the backup comes after every change


def test_early_stopping_stops_when_loss_stops_improving(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.SGD(learning_rate=0.0), "sparse_categorical_crossentropy")
    x, y = blobs()
    history = model.fit(
        x, y, epochs=10, verbose=0, callbacks=default_callbacks(str(tmp_path), early_stopping_patience=1)
    )
    assert history.epoch == [0, 1]


def test_plot_history_draws_one_panel_per_metric(tmp_path):
    path = str(tmp_path / "curves.png")
    plots.plot_history(
        {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8], "learning_rate": [0.1, 0.01]}, path
    )
    assert plt_image(path).shape[:2] == (320, 1350)  # 3 panels of 4.5 x 3.2 inches at 100 dpi


def test_curves_count_epochs_from_1_with_whole_ticks_and_a_constant_rate_mid_panel():
    fig = plots.history_figure({"loss": [1.0, 0.7, 0.5], "learning_rate": [1e-3] * 3})
    loss, rate = fig.axes
    assert list(loss.lines[0].get_xdata()) == [1, 2, 3]
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(t == int(t) for t in ticks)
    assert rate.get_yscale() == "linear"
    low, high = rate.get_ylim()
    assert low < 1e-3 < high and abs((1e-3 - low) - (high - 1e-3)) < 1e-9  # in the middle, not on an edge

    decaying = plots.history_figure({"loss": [1.0, 0.5], "learning_rate": [1e-2, 1e-4]})
    assert decaying.axes[1].get_yscale() == "log"
    halved = plots.history_figure({"loss": [1.0, 0.5], "learning_rate": [1e-3, 5e-4]})
    assert halved.axes[1].get_yscale() == "linear"
    assert plots.history_figure({"loss": [math.nan]}) is None


def test_curves_draw_validation_only_columns_in_panels_of_their_own():
    fig = plots.history_figure({"d_loss": [1.0, 0.9], "val_frechet_distance": [50.0, 20.0], "val_d_loss": [1.2, 1.1]})
    assert [ax.get_title() for ax in fig.axes] == ["d_loss", "val_frechet_distance"]
    assert [line.get_label() for line in fig.axes[0].lines] == ["train", "validation"]
    assert [line.get_label() for line in fig.axes[1].lines] == ["validation"]
    assert list(fig.axes[1].lines[0].get_ydata()) == [50.0, 20.0]


@pytest.mark.parametrize(
    "monitor, mode, expected",
    [
        ("auto", "auto", "min"),
        ("val_loss", "auto", "min"),
        ("d_loss", "auto", "min"),
        ("val_accuracy", "auto", "max"),
        ("auc", "auto", "max"),
        ("val_loss", "max", "max"),
    ],
)
def test_mode_follows_the_monitored_name(monitor, mode, expected):
    assert resolve_mode(monitor, mode) == expected


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(run_dir=3), TypeError, r"run_dir must be a path\. Received: run_dir=3"),
        (dict(mode="down"), ValueError, r"mode must be one of \('auto', 'min', 'max'\)\. Received: mode='down'"),
        (
            dict(monitor="val_kappa"),
            ValueError,
            r"mode='auto' cannot tell whether val_kappa should go down or up; pass mode='min' or mode='max'\. "
            r"Received: monitor='val_kappa'",
        ),
        (dict(monitor=""), TypeError, r"monitor must be 'auto' or a metric name\. Received: monitor=''"),
        (
            dict(early_stopping_patience=-1),
            ValueError,
            r"early_stopping_patience must be >= 0\. Received: early_stopping_patience=-1",
        ),
        (
            dict(lr_schedule="cos"),
            ValueError,
            r"lr_schedule must be None, 'plateau', 'cosine' or a callable \(epoch, lr\) -> lr\. "
            r"Received: lr_schedule='cos'",
        ),
        (dict(lr_schedule="cosine", epochs=0), ValueError, r"epochs must be >= 1\. Received: epochs=0"),
        (dict(samples="yes"), ValueError, r"samples must be one of \('auto', True, False\)\. Received: samples='yes'"),
        (
            dict(confusion_matrix=True),
            ValueError,
            r"confusion_matrix=True needs validation_data\. Received: validation_data=None",
        ),
        (
            dict(reconstructions=True),
            ValueError,
            r"reconstructions=True needs validation_data\. Received: validation_data=None",
        ),
        (
            dict(validation_data={"x": 1}),
            TypeError,
            r"validation_data must be a tf\.data\.Dataset, a keras\.utils\.PyDataset, an array or a tuple \(x, y\)\. "
            r"Received: validation_data=dict",
        ),
        (dict(class_names="abc"), TypeError, r"class_names must be a list of strings\. Received: class_names='abc'"),
        (dict(num_samples=0), ValueError, r"num_samples must be >= 1\. Received: num_samples=0"),
        (dict(sample_seed=1.5), TypeError, r"sample_seed must be an integer\. Received: sample_seed=1\.5"),
        (dict(histogram_freq=-2), ValueError, r"histogram_freq must be >= 0\. Received: histogram_freq=-2"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(tmp_path, kwargs, error, message):
    kwargs.setdefault("run_dir", str(tmp_path))
    with pytest.raises(error, match=message):
        default_callbacks(**kwargs)


def test_checkpoint_rejects_a_path_keras_cannot_save_to(tmp_path):
    with pytest.raises(ValueError, match=r"filepath must end in \.keras\. Received: filepath='.*model\.h5'"):
        AtomicModelCheckpoint(str(tmp_path / "model.h5"))


def test_atomic_writes_get_the_usual_file_mode_not_mkstemps_0600(tmp_path):
    import os

    from recipes._atomic import atomic_write_text

    mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "metrics.json", "{}\n")
    finally:
        os.umask(mask)
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "metrics.json").read_text() == "{}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_ctrl_c_stops_between_steps_and_restores_the_handler():
    import signal

    from recipes.callbacks import InterruptBetweenSteps

    x, y = blobs(64)
    model = classifier()
    batches = []

    def on_batch_end(batch, logs):
        batches.append(batch)
        if batch == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, in the middle of fit
            batches.append("noted, not raised here")

    interrupt = InterruptBetweenSteps()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with interrupt.installed():
            model.fit(
                x,
                y,
                batch_size=8,
                epochs=2,
                verbose=0,
                callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=on_batch_end), interrupt],
            )
    # noted where it arrived, raised at the next step boundary
    assert batches == [0, 1, 2, "noted, not raised here"]
    assert signal.getsignal(signal.SIGINT) is before
