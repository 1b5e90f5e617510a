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
    """Reads a Keras `CSVLogger` file into `{column: values}`; "NA" and blanks become NaN.

    Epochs count from 1 (as Keras prints "Epoch 1/10"): an `epoch` column that starts
    at 0 (Keras's own `CSVLogger`, or this package before it counted from 1) is shifted by one.
    """
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
    if history.get("epoch") and history["epoch"][0] == 0:
        history["epoch"] = [epoch + 1 for epoch in history["epoch"]]
    return history


def plot_history(history, path):
    """Draws `history_figure(history)` to a PNG (atomically); nothing when it has nothing to draw."""
    fig = history_figure(history)
    if fig is not None:
        save_figure(fig, path)


def history_figure(history):
    """Loss and each metric, train against validation, one panel each.

    Args:
        history: `{name: [value per epoch]}` (e.g. `model.fit(...).history`), or the
            path of a `history.csv` (`read_history`). Its `"epoch"` column, counted
            from 1, places the points; without one they are epochs 1, 2, ...

    Returns:
        A matplotlib `Figure`, or `None` when no column has a finite value. Epochs
        have integer ticks; a learning rate that spans a factor of 10 or more is drawn
        on a log axis, and a constant one as a line across the middle of its panel.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if isinstance(history, (str, os.PathLike)):
        history = read_history(history)
    history = {k: np.asarray(v, dtype="float64") for k, v in history.items()}
    epochs = history.pop("epoch", None)
    # train columns, and validation-only ones (a generative run's val_frechet_distance)
    names = [k for k in history if (not k.startswith("val_") or k[4:] not in history) and np.isfinite(history[k]).any()]
    names.sort(key=lambda k: (k != "loss", "learning_rate" in k, k))
    if not names:
        return None
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    width, height = 4.5 * ncols, 3.2 * nrows
    fig = Figure(figsize=(width, height), dpi=100)
    # fixed margins in inches: tight_layout would cost most of the drawing time
    fig.subplots_adjust(
        left=0.7 / width, right=1 - 0.2 / width, bottom=0.5 / height, top=1 - 0.35 / height, wspace=0.3, hspace=0.6
    )
    for i, name in enumerate(names, start=1):
        ax = fig.add_subplot(nrows, ncols, i)
        train = history[name]
        x = epochs if epochs is not None else np.arange(1, len(train) + 1)
        ax.plot(x, train, marker=".", label="validation" if name.startswith("val_") else "train")
        val = history.get(f"val_{name}")
        if val is not None and np.isfinite(val).any():
            ax.plot(x, val, marker=".", linestyle="--", label="validation")
        values = np.concatenate([train, val if val is not None else []])
        values = values[np.isfinite(values)]
        low, high = values.min(), values.max()
        if "learning_rate" in name and low > 0 and high >= 10 * low:
            ax.set_yscale("log")
        elif low == high:  # a constant: in the middle of the panel, not on its edge
            half = abs(low) if low else 1.0
            ax.set_ylim(low - half, low + half)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


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
    """Side of the square confusion-matrix figure in inches (at 100 dpi): 4 to 8, growing with the classes.

    Small on purpose: TensorBoard shows an image about 200 px wide on its default card,
    and text stays readable there only when it is large relative to the image.
    """
    return float(min(8.0, max(4.0, 0.25 * num_classes + 2.0)))


def confusion_matrix_figure(matrix, class_names=None, split: str | None = None):
    """A matplotlib Figure of `matrix`: colour is the row-normalised rate, text the count.

    Counts are written in the cells up to 20 classes, in a font that fits the widest
    count in a cell; tick labels up to 30 classes. The title names `split` (e.g.
    `"validation split", then "accuracy 0.931 (n=144)"`). Fonts scale with the figure, so the
    title and axis labels read the same at TensorBoard's card size for any number of classes.
    """
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    size = confusion_matrix_figure_size(k)
    points = size * 72  # the figure's side in points
    big = points / 16  # title and axis labels: about 1/22 of the side
    fig = Figure(figsize=(size, size), dpi=100)
    y_labels = [name[:10] for name in class_names] if class_names is not None else [str(i) for i in range(k)]
    tick = min(big * 0.85, 0.55 * points * 0.75 / k)  # a tick label well inside its row
    # the columns keep 4 letters of a name ("airp", "auto") when whole names would overlap
    fits = max(map(len, y_labels)) * tick * 0.6 <= 0.8 * points * 0.75 / k
    x_labels = y_labels if fits else [name[:4] for name in y_labels]
    rotate = not fits and 4 * tick * 0.6 > 0.8 * points * 0.75 / k
    if k > 30:
        y_labels = x_labels = []
    # margins in points: tick labels and axis labels; the title takes two lines
    left = 1.6 * big + max(map(len, y_labels), default=0) * tick * 0.6 + 8
    bottom = 1.6 * big + (max(map(len, x_labels), default=0) * tick * 0.6 if rotate else tick) + 8
    top = 2.6 * big + 8
    fig.subplots_adjust(left=left / points, bottom=bottom / points, right=1 - 10 / points, top=1 - top / points)
    ax = fig.add_subplot(1, 1, 1)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    if k <= 20:
        cell = (1 - (left + 10) / points) * points / k  # width of a cell in points
        digits = max(len(str(int(matrix.max()))), 1)
        count = min(big, 0.8 * cell / (0.62 * digits), 0.7 * (1 - (top + bottom) / points) * points / k)
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    str(int(matrix[i, j])),
                    ha="center",
                    va="center",
                    fontsize=count,
                    color="white" if rates[i, j] > 0.5 else "black",
                )
    ax.set_xticks(range(k) if x_labels else [], x_labels, rotation=90 if rotate else 0, fontsize=tick)
    ax.set_yticks(range(k) if y_labels else [], y_labels, fontsize=tick)
    ax.tick_params(length=0)
    total = int(matrix.sum())
    accuracy = np.trace(matrix) / total if total else float("nan")
    title = f"{split} split\n" if split else ""
    title += f"accuracy {accuracy:.3f} (n={total})"
    longest = max(map(len, title.splitlines()))
    fig.suptitle(title, fontsize=min(big, 0.95 * points / (0.6 * longest)), y=1 - 4 / points, va="top")
    ax.set_xlabel("predicted", fontsize=big)
    ax.set_ylabel("true", fontsize=big)
    return fig


def reconstructions_figure(original, reconstructed, ncols: int = 4):
    """Originals beside their reconstructions: two titled panels, each image at the same place in both.

    Args:
        original: `(N, H, W, C)` or `(N, H, W)` images in [0, 1].
        reconstructed: the same shape, in [0, 1].
        ncols: images per row in each panel. Defaults to `4`.

    Returns:
        A matplotlib `Figure`, about 100 dpi, whose pixels show the images at a whole multiple of their size.
    """
    from matplotlib.figure import Figure

    grids = [make_grid(images, ncols=ncols) for images in (original, reconstructed)]
    h, w = grids[0].shape[:2]
    scale = math.ceil(160 / w)  # each panel at least 160 px wide, in whole pixels per image pixel
    panel_w, panel_h, gap = w * scale, h * scale, 16
    width = 2 * panel_w + 3 * gap
    font = width / 20  # title height in pixels: readable when TensorBoard shows the image 200 px wide
    height = panel_h + 1.6 * font + gap
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    for i, (grid, name) in enumerate(zip(grids, ("original", "reconstruction"))):
        ax = fig.add_axes(((gap + i * (panel_w + gap)) / width, gap / height, panel_w / width, panel_h / height))
        cmap = "gray" if grid.shape[-1] == 1 else None
        ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(name, fontsize=font * 0.72, pad=0.3 * font)
    return fig


def latent_traversal_figure(images, size: int, values):
    """A latent traversal (`latent_grid` decoded) with its axes named: rows are `z[0]`, columns `z[1]`.

    Args:
        images: `(size * size, H, W, C)` (or `(size, H, W, C)` for one latent dimension) in [0, 1],
            in the order of `latent_grid`.
        size: images per row.
        values: the `size` values each dimension takes, increasing (`latent_grid`'s quantiles).

    Returns:
        A matplotlib `Figure`, about 100 dpi, with the first, middle and last values as ticks.
    """
    from matplotlib.figure import Figure

    grid = make_grid(images, ncols=size)
    h, w = grid.shape[:2]
    scale = math.ceil(240 / w)
    panel_w, panel_h = w * scale, h * scale
    font = panel_w / 16
    left, bottom, top = 3.8 * font, 2.4 * font, 0.5 * font
    width, height = panel_w + left + 0.5 * font, panel_h + bottom + top
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes((left / width, bottom / height, panel_w / width, panel_h / height))
    cmap = "gray" if grid.shape[-1] == 1 else None
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    cell_w, cell_h = (w - 1) / size, (h - 1) / math.ceil(len(images) / size)
    picks = sorted({0, size // 2, size - 1})
    label = [f"{round(float(v), 1) + 0.0:.1f}" for v in values]  # + 0.0: no "-0.0"
    ax.set_xticks([0.5 + (i + 0.5) * cell_w for i in picks], [label[i] for i in picks])
    ax.set_xlabel("z[1]", fontsize=font * 0.8, labelpad=1)
    if len(images) > size:  # rows: z[0], decreasing downwards
        ax.set_yticks([0.5 + (i + 0.5) * cell_h for i in picks], [label[size - 1 - i] for i in picks])
        ax.set_ylabel("z[0]", fontsize=font * 0.8, labelpad=1)
    else:
        ax.set_yticks([])
    ax.tick_params(labelsize=font * 0.6, length=2, pad=1)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return fig


# Callbacks -------------------------------------------------------------------


def latent_values(size: int = 9) -> np.ndarray:
    """The values each traversed latent dimension takes: standard normal quantiles of `linspace(0.05, 0.95, size)`."""
    return np.array([statistics.NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, size)], "float32")


def latent_grid(latent_dim: int, size: int = 9) -> np.ndarray:
    """Latent vectors for a traversal: `(size * size, latent_dim)` float32.

    The first two dimensions take the standard normal quantiles of
    `linspace(0.05, 0.95, size)` (rows: dimension 0, decreasing downwards;
    columns: dimension 1, increasing to the right); the others stay at 0, the
    prior's mean. With `latent_dim == 1` it is a single row, `(size, 1)`.
    """
    quantiles = latent_values(size)
    if latent_dim == 1:
        return quantiles[:, None]
    z = np.zeros((size, size, latent_dim), dtype="float32")
    z[..., 0] = quantiles[::-1, None]
    z[..., 1] = quantiles[None, :]
    return z.reshape(size * size, latent_dim)
