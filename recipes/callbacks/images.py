"""The picture callbacks: sample grids, reconstructions, latent traversals, the confusion
matrix and the curves, as TensorBoard images and PNGs (the drawing itself is `recipes.plots`).

Pictures of the model itself (`images/samples`, `images/latent_traversal`) go to the
`logs/train` run, pictures computed on validation data (`images/reconstructions`,
`images/confusion_matrix`) to `logs/validation`, at step = epoch number (from 1), through
the same writers as the TensorBoard callback (`tensorboard_writer`: tf.summary, or tensorboardX
without TensorFlow). Validation data is read through `recipes.datasets._batches`, whichever engine
built it."""

from __future__ import annotations

import math
import os
import time

import keras
import numpy as np

from recipes._checks import is_real
from recipes.callbacks.logs import tensorboard_writer
from recipes.datasets._batches import batches, is_pipeline
from recipes.plots import (
    confusion_matrix,
    confusion_matrix_figure,
    figure_to_array,
    latent_grid,
    latent_traversal_figure,
    latent_values,
    make_grid,
    plot_history,
    reconstructions_figure,
    save_image,
    to_unit_range,
    upscale,
)

_CLASSIFIER_LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy")


def take_examples(data, n: int | None = None):
    """`(x, y)` numpy arrays from validation data: the first `n` examples (all when `None`).

    `data` is a pipeline of `(x, y)` or `x` batches (a `tf.data.Dataset` or a
    `keras.utils.PyDataset`), an array `x`, or a tuple `(x, y)`; `y` is `None` when there
    are no labels.
    """
    if is_pipeline(data):
        xs, ys, count = [], [], 0
        for batch in batches(data):
            x, y = _x_y(batch)
            xs.append(x)
            ys.append(y)
            count += len(x)
            if n is not None and count >= n:
                break
        x = np.concatenate(xs)[:n]
        y = None if ys[0] is None else np.concatenate(ys)[:n]
        return x, y
    if isinstance(data, (tuple, list)):
        x, y = data[0], data[1] if len(data) > 1 else None
    else:
        x, y = data, None
    x = np.asarray(x)[:n]
    return x, None if y is None else np.asarray(y)[:n]


def _x_y(batch):
    """`(x, y)` of a batch `(x, y)`, `(x, y, sample_weight)`, `(x,)` or `x`; `y` is `None` without labels."""
    if isinstance(batch, tuple):
        return batch[0], batch[1] if len(batch) > 1 else None
    return batch, None


def _has_labels(data) -> bool:
    if is_pipeline(data):  # its first batch says
        first = next(batches(data, 1), None)
        return first is not None and _x_y(first)[1] is not None
    return isinstance(data, (tuple, list)) and len(data) > 1 and data[1] is not None


def is_classifier(model) -> bool:
    """True when the model was compiled with a classification cross-entropy."""
    loss = getattr(model, "loss", None)
    name = loss if isinstance(loss, str) else getattr(loss, "name", getattr(loss, "__name__", ""))
    return str(name).lower() in _CLASSIFIER_LOSSES


def _clock() -> float:
    """Seconds, for spacing the pictures (a function, so tests can set the time)."""
    return time.monotonic()


class ImageCallback(keras.callbacks.Callback):
    """Base of the picture callbacks: decides whether the model supports it, writes a picture.

    A picture of the model as training goes (subclasses with `picture(epoch)`) is drawn
    after the first epoch, after the last, and in between at the end of an epoch once
    `min_interval` seconds have passed since the last one: on a small data set, epochs of
    a second would otherwise spend a sixth of their time drawing (the VAE on the digits,
    `scripts/bench/callback_costs.py`), and TensorBoard still shows the picture's steps.

    Args:
        run_dir: the run directory.
        required: raise at the start of training when the model does not support
            this picture; otherwise the callback quietly does nothing. Defaults to `False`.
        min_interval: seconds between the pictures drawn during training; `0` draws
            every epoch. Defaults to `5.0`.
    """

    name = "image"
    needs = "a model"
    run = "train"  # the TensorBoard run under logs/: "train" or "validation"

    def __init__(self, run_dir, *, required: bool = False, min_interval: float = 5.0):
        super().__init__()
        self.run_dir = os.fspath(run_dir)
        self.required = required
        if not is_real(min_interval) or not min_interval >= 0:
            raise ValueError(f"min_interval must be a number of seconds >= 0. Received: min_interval={min_interval!r}")
        self.min_interval = float(min_interval)
        self.active = False
        self._drawn_at, self._pending = None, None

    def supports(self, model) -> bool:
        raise NotImplementedError

    def picture(self, epoch: int) -> None:
        """Draws and writes the picture of the model at `epoch` (counted from 1)."""
        raise NotImplementedError

    def on_train_begin(self, logs=None):
        self.active = self.supports(self.model)
        self._drawn_at, self._pending = None, None
        if self.required and not self.active:
            raise ValueError(
                f"{self.name}=True needs {self.needs}. "
                f"Received: model={self.model.name!r} ({type(self.model).__name__})"
            )

    def on_epoch_end(self, epoch, logs=None):
        if not self.active:
            return
        self._pending = epoch + 1
        last = epoch + 1 == (self.params or {}).get("epochs")
        if self._drawn_at is None or last or _clock() - self._drawn_at >= self.min_interval:
            self._draw()

    def on_train_end(self, logs=None):
        if self.active and self._pending:  # stopped early, between two pictures
            self._draw()

    def _draw(self):
        self.picture(self._pending)
        self._drawn_at, self._pending = _clock(), None

    @property
    def tag(self) -> str:
        return f"images/{self.name}"

    def write(self, image, epoch: int, per_epoch: bool = True, enlarge: bool = True):
        """Writes an `(H, W, C)` image in [0, 1] as the TensorBoard image `tag` at step
        `epoch` (counted from 1) and to `plots/<name>.png` (and `<name>_epoch_NNN.png`).
        `enlarge` repeats the pixels of small images in the PNGs."""
        if image.shape[-1] not in (1, 3, 4):
            raise ValueError(f"{self.name} images must have 1, 3 or 4 channels. Received: shape={image.shape}")
        writer = tensorboard_writer(os.path.join(self.run_dir, "logs", self.run))
        writer.image(self.tag, image[None], epoch)
        writer.flush()
        plots_dir = os.path.join(self.run_dir, "plots")
        big = upscale(image) if enlarge else image
        if per_epoch:
            save_image(big, os.path.join(plots_dir, f"{self.name}_epoch_{epoch:03d}.png"))
        save_image(big, os.path.join(plots_dir, f"{self.name}.png"))

    def write_figure(self, fig, epoch: int, per_epoch: bool = True):
        """Writes a matplotlib figure as `write` does, pixel for pixel."""
        self.write(figure_to_array(fig).astype("float32") / 255.0, epoch, per_epoch=per_epoch, enlarge=False)

    def _unit(self, images):
        images = keras.ops.convert_to_numpy(images)
        return to_unit_range(images, getattr(self.model, "value_range", (0.0, 1.0)))


class SampleGrid(ImageCallback):
    """As training goes (see `ImageCallback` for when), a grid of
    `model.generate(num_samples, seed=seed)`: the same latent vectors each time, so the
    grids show how the generator learns.

    Writes the TensorBoard image `images/samples` (train run) and
    `plots/samples_epoch_NNN.png`, `plots/samples.png`. Images are mapped from
    `model.value_range` to [0, 1].
    """

    name = "samples"
    needs = "a model with generate(n, seed) (DCGAN, VAE)"

    def __init__(
        self, run_dir, *, num_samples: int = 64, seed: int = 1234, required: bool = False, min_interval: float = 5.0
    ):
        super().__init__(run_dir, required=required, min_interval=min_interval)
        self.num_samples = num_samples
        self.seed = seed

    def supports(self, model):
        return callable(getattr(model, "generate", None))

    def picture(self, epoch):
        self.write(make_grid(self._unit(self.model.generate(self.num_samples, seed=self.seed))), epoch)


class Reconstructions(ImageCallback):
    """As training goes (see `ImageCallback` for when), a fixed batch of validation images
    beside their reconstructions `model.decode(model.encode(x))`: an "original" panel and a
    "reconstruction" panel, each image at the same place in both, `columns` images wide.
    TensorBoard image `images/reconstructions` (validation run).
    """

    name = "reconstructions"
    needs = "a model with encode(x) and decode(z) (VAE)"
    run = "validation"

    def __init__(
        self,
        run_dir,
        validation_data,
        *,
        num_images: int = 16,
        columns: int = 4,
        required: bool = False,
        min_interval: float = 5.0,
    ):
        super().__init__(run_dir, required=required, min_interval=min_interval)
        self.validation_data = validation_data
        self.num_images = num_images
        self.columns = columns
        self.images = None

    def supports(self, model):
        return callable(getattr(model, "encode", None)) and callable(getattr(model, "decode", None))

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.active and self.images is None:
            self.images = take_examples(self.validation_data, self.num_images)[0]

    def picture(self, epoch):
        original = self._unit(self.images)
        restored = self._unit(self.model.decode(self.model.encode(self.images)))
        self.write_figure(reconstructions_figure(original, restored, ncols=self.columns), epoch)


class LatentTraversal(ImageCallback):
    """As training goes (see `ImageCallback` for when), `model.decode` over a grid of
    latent vectors (`latent_grid`): for `latent_dim == 2` the whole latent plane at the
    normal quantiles of `linspace(0.05, 0.95, size)`; for `latent_dim > 2` the first two
    dimensions, the others held at 0, drawn with the axes named (`z[0]` down, `z[1]`
    across) and their first, middle and last values. TensorBoard image
    `images/latent_traversal` (train run).
    """

    name = "latent_traversal"
    needs = "a model with decode(z) and an integer latent_dim (VAE)"

    def __init__(self, run_dir, *, size: int = 9, required: bool = False, min_interval: float = 5.0):
        super().__init__(run_dir, required=required, min_interval=min_interval)
        self.size = size

    def supports(self, model):
        latent_dim = getattr(model, "latent_dim", None)
        return callable(getattr(model, "decode", None)) and isinstance(latent_dim, int) and latent_dim >= 1

    def picture(self, epoch):
        images = self._unit(self.model.decode(latent_grid(self.model.latent_dim, self.size)))
        self.write_figure(latent_traversal_figure(images, self.size, latent_values(self.size)), epoch)


class ConfusionMatrix(ImageCallback):
    """At the end of training, the confusion matrix of the model on `validation_data`.

    A one-unit (sigmoid) head is thresholded at 0.5 (two classes); a softmax head
    takes the arg-max. Writes `plots/confusion_matrix.png` and the TensorBoard
    image `images/confusion_matrix` (validation run) at the last epoch; the counts
    stay in `self.matrix`. The title names the split it was computed on.

    Args:
        run_dir: the run directory.
        validation_data: a dataset of `(x, y)` batches, or a tuple `(x, y)`.
        class_names: tick labels. Defaults to `None` (class indices).
        split: the name of the data in the title. Defaults to `"validation"`.
        required: raise when the model is not a classifier or the data has no labels.
            Defaults to `False`.
    """

    name = "confusion_matrix"
    needs = "a classifier (cross-entropy loss) and validation_data with labels"
    run = "validation"

    def __init__(
        self, run_dir, validation_data, *, class_names=None, split: str = "validation", required: bool = False
    ):
        super().__init__(run_dir, required=required)
        self.validation_data = validation_data
        self.class_names = class_names
        self.split = split
        self.matrix = None
        self._epoch = 0

    def supports(self, model):
        return is_classifier(model) and _has_labels(self.validation_data)

    def on_epoch_end(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_end(self, logs=None):
        if not self.active:
            return
        x, y = take_examples(self.validation_data)
        probabilities = np.asarray(self.model.predict(x, batch_size=256, verbose=0))
        if probabilities.ndim == 1 or probabilities.shape[-1] == 1:
            num_classes, predicted = 2, (probabilities.reshape(-1) > 0.5).astype("int64")
        else:
            num_classes, predicted = probabilities.shape[-1], probabilities.argmax(axis=-1)
        y = y.argmax(axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(-1)
        self.matrix = confusion_matrix(y, predicted, num_classes)
        fig = confusion_matrix_figure(self.matrix, self.class_names, split=self.split)
        self.write_figure(fig, self._epoch, per_epoch=False)


class TrainingCurves(keras.callbacks.Callback):
    """Draws `run_dir/plots/curves.png` (`plot_history`) as training goes.

    Draws at the end of an epoch when `min_interval` seconds have passed since
    training began or since the last drawing, and always at the end of training, so
    short epochs do not spend their time in matplotlib (a drawing took 0.3 s, two
    epochs of the MLP on the digits; TensorBoard shows the same curves live). Reads
    `history_file` when given (so a resumed run's curves are continuous; place this
    after the `CSVLogger`), else the logs of the current `fit`.

    Args:
        run_dir: the run directory.
        history_file: a `CSVLogger` file of this run. Defaults to `None`.
        min_interval: seconds between redraws during training. Defaults to `10.0`.
    """

    def __init__(self, run_dir, *, history_file=None, min_interval: float = 10.0):
        super().__init__()
        self.path = os.path.join(os.fspath(run_dir), "plots", "curves.png")
        self.history_file = history_file
        self.min_interval = min_interval
        self._history = {}
        self._drawn_at = None
        self._pending = False

    def on_train_begin(self, logs=None):
        self._history, self._drawn_at, self._pending = {}, _clock(), False

    def on_epoch_end(self, epoch, logs=None):
        logs = {"epoch": epoch + 1, **(logs or {})}
        seen = len(self._history.get("epoch", []))
        for key in {*self._history, *logs}:
            self._history.setdefault(key, [math.nan] * seen).append(float(logs.get(key, math.nan)))
        self._pending = True
        if _clock() - self._drawn_at >= self.min_interval:
            self.draw()

    def on_train_end(self, logs=None):
        if self._pending:
            self.draw()

    def draw(self):
        use_file = self.history_file and os.path.exists(self.history_file)
        plot_history(self.history_file if use_file else self._history, self.path)
        self._drawn_at, self._pending = _clock(), False
