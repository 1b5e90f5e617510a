"""Pictures of a run, pure drawing (numpy and matplotlib, no Keras state): image grids,
training curves, confusion matrices, latent grids. The callbacks that draw them each
epoch are in `recipes.callbacks.images`.

Figures are drawn with matplotlib's Agg canvas (never a display), so this works
on a headless machine; every file is written atomically.

```python
from recipes.plots import make_grid, plot_history
grid = make_grid(images)                      # (N, H, W, C) in [0, 1] -> one image
plot_history("runs/mlp/history.csv", "runs/mlp/plots/curves.png")
```
"""

from __future__ import annotations

import csv
import math
import os
import statistics

import numpy as np

from recipes._atomic import atomic_write


def to_unit_range(images, value_range=(0.0, 1.0)) -> np.ndarray:
    """Maps images from `value_range` to [0, 1] (float32, clipped)."""
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with low < high. Received: value_range={value_range!r}")
    images = np.asarray(images, dtype="float32")
    return np.clip((images - low) / (high - low), 0.0, 1.0)


def make_grid(images, ncols: int | None = None, padding: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tiles a batch of images into one image.

    Args:
        images: array `(N, H, W, C)` or `(N, H, W)` with values in [0, 1].
        ncols: images per row. Defaults to `ceil(sqrt(N))`.
        padding: pixels between images and around the border. Defaults to `1`.
        pad_value: value of the padding. Defaults to `1.0` (white).

    Returns:
        float32 array `(rows * (H + padding) + padding, ncols * (W + padding) + padding, C)`.
    """
    images = np.asarray(images, dtype="float32")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(
            f"images must be a non-empty batch (N, H, W, C) or (N, H, W). Received: images.shape={images.shape}"
        )
    n, h, w, c = images.shape
    ncols = min(n, ncols or math.ceil(math.sqrt(n)))
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + padding) + padding, ncols * (w + padding) + padding, c), pad_value, dtype="float32")
    for i, image in enumerate(images):
        top = padding + (i // ncols) * (h + padding)
        left = padding + (i % ncols) * (w + padding)
        grid[top : top + h, left : left + w] = image
    return grid


def upscale(image, min_size: int = 256, max_factor: int = 8) -> np.ndarray:
    """Repeats pixels (nearest neighbour) until the image is about `min_size` wide, so 8x8 digits stay visible."""
    factor = int(min(max_factor, max(1, math.ceil(min_size / image.shape[1]))))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def save_image(image, path):
    """Writes an `(H, W, C)` image in [0, 1] with 1, 3 or 4 channels as a PNG, pixel for pixel (atomically)."""
    import matplotlib.image

    image = np.asarray(image, dtype="float32")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        atomic_write(
            path, lambda tmp: matplotlib.image.imsave(tmp, image, cmap="gray", vmin=0.0, vmax=1.0, format="png")
        )
    else:
        atomic_write(path, lambda tmp: matplotlib.image.imsave(tmp, np.clip(image, 0.0, 1.0), format="png"))


def save_image_grid(images, path, value_range=(0.0, 1.0), ncols: int | None = None):
    """Writes a batch of images in `value_range` as one upscaled PNG grid (atomically)."""
    save_image(upscale(make_grid(to_unit_range(images, value_range), ncols)), path)


def figure_to_array(fig) -> np.ndarray:
    """Renders a matplotlib figure to an `(H, W, 4)` uint8 RGBA array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def save_figure(fig, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=fig.dpi))


# Training curves ------------------------------------------------------------


def read_history(path) -> dict[str, list[float]]:
    """Reads a Keras `CSVLogger` file into `{column: values}`; "NA" and blanks become NaN."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = list(rows[0].keys()) if rows else []
    history = {}
    for column in columns:
        values = []
        for row in rows:
            try:
                values.append(float(row[column]))
            except (TypeError, ValueError):
                values.append(float("nan"))
        history[column] = values
    return history


def plot_history(history, path):
    """Draws loss and each metric, train against validation, one panel each, to a PNG.

    Args:
        history: `{name: [value per epoch]}` (e.g. `model.fit(...).history`), or the
            path of a `history.csv` written by `CSVLogger`. Its `"epoch"` column
            (0-based, as Keras counts) places the points, else their order; the
            axis shows epoch + 1, as Keras prints "Epoch 1/...".
        path: the PNG to write (atomically).
    """
    from matplotlib.figure import Figure

    if isinstance(history, (str, os.PathLike)):
        history = read_history(history)
    history = {k: np.asarray(v, dtype="float64") for k, v in history.items()}
    epochs = history.pop("epoch", None)
    names = [k for k in history if not k.startswith("val_") and np.isfinite(history[k]).any()]
    names.sort(key=lambda k: (k != "loss", "learning_rate" in k, k))
    if not names:
        return
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    width, height = 4.5 * ncols, 3.2 * nrows
    fig = Figure(figsize=(width, height), dpi=100)
    # fixed margins in inches: tight_layout would cost most of the drawing time
    fig.subplots_adjust(
        left=0.6 / width, right=1 - 0.2 / width, bottom=0.5 / height, top=1 - 0.35 / height, wspace=0.3, hspace=0.6
    )
    for i, name in enumerate(names, start=1):
        ax = fig.add_subplot(nrows, ncols, i)
        train = history[name]
        x = (epochs if epochs is not None else np.arange(len(train))) + 1
        ax.plot(x, train, marker=".", label="train")
        val = history.get(f"val_{name}")
        if val is not None and np.isfinite(val).any():
            ax.plot(x, val, marker=".", linestyle="--", label="validation")
        if "learning_rate" in name and np.all(train[np.isfinite(train)] > 0):
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    save_figure(fig, path)


# Confusion matrix -----------------------------------------------------------


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts `(true, predicted)` pairs: an int64 `(num_classes, num_classes)` array, rows are true classes."""
    y_true = np.asarray(y_true, dtype="int64").ravel()
    y_pred = np.asarray(y_pred, dtype="int64").ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same length. Received: {y_true.shape[0]} and {y_pred.shape[0]}"
        )
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def confusion_matrix_figure_size(num_classes: int) -> float:
    """Side of the square confusion-matrix figure in inches (at 100 dpi): 4 to 12, growing with the classes."""
    return float(min(12.0, max(4.0, 0.5 * num_classes + 2.0)))


def confusion_matrix_figure(matrix, class_names=None):
    """A matplotlib Figure of `matrix`: colour is the row-normalised rate, text the count (up to 20 classes)."""
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    size = confusion_matrix_figure_size(k)
    fig = Figure(figsize=(size, size), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    str(int(matrix[i, j])),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black",
                )
    if k <= 30:
        labels = list(class_names) if class_names is not None else [str(i) for i in range(k)]
        ax.set_xticks(range(k), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(k), labels, fontsize=8)
    total = int(matrix.sum())
    accuracy = np.trace(matrix) / total if total else float("nan")
    ax.set_title(f"Confusion matrix (accuracy {accuracy:.3f}, n={total})", fontsize=9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return fig


# Callbacks -------------------------------------------------------------------


def latent_grid(latent_dim: int, size: int = 9) -> np.ndarray:
    """Latent vectors for a traversal: `(size * size, latent_dim)` float32.

    The first two dimensions take the standard normal quantiles of
    `linspace(0.05, 0.95, size)` (rows: dimension 0, decreasing downwards;
    columns: dimension 1, increasing to the right); the others stay at 0, the
    prior's mean. With `latent_dim == 1` it is a single row, `(size, 1)`.
    """
    quantiles = np.array([statistics.NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, size)], "float32")
    if latent_dim == 1:
        return quantiles[:, None]
    z = np.zeros((size, size, latent_dim), dtype="float32")
    z[..., 0] = quantiles[::-1, None]
    z[..., 1] = quantiles[None, :]
    return z.reshape(size * size, latent_dim)
