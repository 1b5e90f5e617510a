"""What a run's model takes, recorded from its training data, and raw inputs made into it.

A model trained by `recipes train` never saw raw data: images were resized, converted to
its channels and scaled to its value range, read as rows for the LSTM; token reviews
were padded. `Preprocessing` is that record, kept in the run directory as
`preprocessing.json` (`record`), and `transform` applies it to new raw inputs with the
package's own transform (`datasets._pipelines._image_transform`), so a prediction sees
exactly what training saw.

Readers for new inputs (`read_inputs`): image files (.png, .jpg, .jpeg, .bmp, .gif, 8-bit,
any size), folders of them (searched recursively, in sorted order), `.npz` files (`x_test`,
else `x`; in the units of the run's data, 0..`raw_max`) and `.csv` files of features (one
example a row; a `label` column, or a last column beyond the run's features, is ignored).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

import numpy as np

from recipes._atomic import atomic_write_text

FILE = "preprocessing.json"
IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # as datasets._pipelines.IMAGE_FORMATS
IMAGE_RAW_MAX = 255.0  # image files are decoded to 8 bits


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How a run's training data reached its model.

    Attributes:
        kind: `"image"` (images, as rows when `as_sequence`), `"table"` (feature vectors,
            reshaped to `(sequence_length, F // sequence_length)` when set), `"tokens"`
            (token ids).
        input_shape: the model's input shape, no batch axis.
        class_names: names of the classes, index = label; `None` for a generative run.
        value_range: `(low, high)` images are scaled to; `None` unless images.
        raw_max: the raw value of the training data mapped to `high` (16 for the digits,
            255 for 8-bit images); arrays given to `transform` are in these units.
        channels: image channels the model takes (1 or 3).
        image_size: `(height, width)` the model takes.
        as_sequence: images are read as sequences of rows `(H, W * C)` (the LSTM).
        vocab_size, sequence_length: token ids in `[0, vocab_size)`, padded or cut at the
            front to `sequence_length`; for a table, its number of steps.
        dataset: the training data set's name, for messages.
    """

    kind: str
    input_shape: tuple
    class_names: tuple | None = None
    value_range: tuple | None = None
    raw_max: float | None = None
    channels: int | None = None
    image_size: tuple | None = None
    as_sequence: bool = False
    vocab_size: int | None = None
    sequence_length: int | None = None
    dataset: str = ""

    @classmethod
    def from_info(cls, info, model_name: str | None = None) -> "Preprocessing":
        """The record of a `datasets.DatasetInfo` (what `load_dataset` returned to training)."""
        shape = tuple(int(d) for d in info.input_shape)
        classes = tuple(info.class_names) if info.class_names is not None else None
        if model_name is not None:
            from recipes.registry import get_spec

            if not get_spec(model_name).uses_labels:
                classes = None
        if info.value_range is not None:  # images, possibly read as rows
            as_sequence = info.kind == "sequence"  # (H, W * C): see `record_for` for C
            return cls(
                kind="image",
                input_shape=shape,
                class_names=classes,
                value_range=tuple(float(v) for v in info.value_range),
                raw_max=float(info.raw_max),
                channels=None,  # set by the caller that knows the raw channels (see `record_for`)
                image_size=shape[:2],
                as_sequence=as_sequence,
                dataset=info.name,
            )
        kind = "tokens" if info.vocab_size else "table"
        return cls(
            kind=kind,
            input_shape=shape,
            class_names=classes,
            vocab_size=info.vocab_size,
            sequence_length=info.sequence_length if kind == "tokens" or len(shape) == 2 else None,
            dataset=info.name,
        )

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields}
        return cls(**values)

    # ------------------------------------------------------------------ transform

    def transform(self, x, raw_max=None) -> np.ndarray:
        """Raw inputs -> what the model takes (float32; int32 token ids).

        Args:
            x: a batch of raw inputs: images `(N, H, W)` or `(N, H, W, C)` of any size and
                channels (1, 2, 3 or 4: alpha is dropped) with values in `[0, raw_max]`;
                feature rows `(N, F)`; token ids `(N, T)`.
            raw_max: the raw value mapped to the top of `value_range`. Defaults to `None`:
                the run's (`self.raw_max`).

        Raises:
            ValueError: for inputs of another shape, non-finite values or values out of
                range; the message names the shape or value received.
        """
        x = np.asarray(x)
        if self.kind == "image":
            return self._images(x, self.raw_max if raw_max is None else raw_max)
        if self.kind == "tokens":
            return self._tokens(x)
        return self._table(x)

    def _images(self, x, raw_max):
        import tensorflow as tf

        from recipes.datasets._pipelines import _image_transform

        if x.dtype.kind in "biuf":
            _check_finite(x)  # before the channel axis is added: the index is the caller's
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.shape[-1] not in (1, 2, 3, 4) or 0 in x.shape[1:]:
            raise ValueError(
                f"Expected images (N, H, W) or (N, H, W, C) with 1-4 channels for this {self._what()}. "
                f"Received: shape {tuple(x.shape)}"
            )
        if x.dtype.kind not in "biuf":
            raise ValueError(f"Images must hold numbers. Received: dtype {x.dtype}")
        low, high = float(np.min(x)) if x.size else 0.0, float(np.max(x)) if x.size else 0.0
        if low < 0 or high > raw_max:
            raise ValueError(
                f"Image values must be in [0, {raw_max:g}], the raw range of the run's data ({self.dataset}). "
                f"Received: values in [{low:g}, {high:g}]"
            )
        x = x[..., :1] if x.shape[-1] == 2 else x[..., :3] if x.shape[-1] == 4 else x  # drop alpha
        fn = _image_transform(
            raw_max,
            self.value_range,
            x.shape[-1],
            image_size=None if tuple(x.shape[1:3]) == tuple(self.image_size) else tuple(self.image_size),
            channels=self.channels,
            as_sequence=self.as_sequence,
        )
        return fn(tf.constant(x)).numpy()

    def _tokens(self, x):
        import keras

        if x.ndim != 2 or x.dtype.kind not in "biu" and not (x.dtype.kind == "f" and np.all(np.mod(x, 1) == 0)):
            raise ValueError(
                f"Expected token ids, integers (N, T), for this run ({self.dataset}). "
                f"Received: shape {tuple(x.shape)}, dtype {x.dtype}"
            )
        if x.size and (x.min() < 0 or x.max() >= self.vocab_size):
            raise ValueError(
                f"Token ids must be in [0, {self.vocab_size}) for this run ({self.dataset}). "
                f"Received: ids in [{x.min():g}, {x.max():g}]"
            )
        return keras.utils.pad_sequences(
            x.astype(np.int64), maxlen=self.sequence_length, dtype="int32", padding="pre", truncating="pre"
        )

    def _table(self, x):
        features = int(np.prod(self.input_shape))
        if x.ndim != 2 or x.shape[1] != features:
            raise ValueError(
                f"Expected feature rows (N, {features}) for this run ({self.dataset}). Received: shape {tuple(x.shape)}"
            )
        if x.dtype.kind not in "biuf":
            raise ValueError(f"Features must be numbers. Received: dtype {x.dtype}")
        x = x.astype(np.float32)
        _check_finite(x)
        return x.reshape((len(x), *self.input_shape))

    def _what(self) -> str:
        size = "x".join(map(str, self.image_size or ()))
        return f"run's {size}x{self.channels} images ({self.dataset})"

    def describe(self) -> str:
        """One line: what raw input the run takes and what is done to it."""
        if self.kind == "image":
            low, high = self.value_range
            rows = ", read as rows" if self.as_sequence else ""
            h, w = self.image_size
            return (
                f"images resized to {h}x{w}, {self.channels} channel{'s' * (self.channels > 1)}, "
                f"0..{self.raw_max:g} (8-bit files: 0..255) scaled to [{low:g}, {high:g}]{rows}"
            )
        if self.kind == "tokens":
            return f"token ids below {self.vocab_size}, padded or cut at the front to {self.sequence_length}"
        return f"{int(np.prod(self.input_shape))} features a row" + (
            f", as {self.input_shape[0]} steps" if len(self.input_shape) == 2 else ""
        )


def _check_finite(x):
    if x.dtype.kind == "f":
        bad = np.argwhere(~np.isfinite(x.astype(np.float32)))
        if len(bad):
            raise ValueError(
                f"Inputs must be finite numbers. Received: {float(x[tuple(bad[0])])!r} at index "
                f"{tuple(int(i) for i in bad[0])}"
            )


# ------------------------------------------------------------------ record and read


def record_for(info, model_name: str, raw_channels: int | None = None) -> Preprocessing:
    """The `Preprocessing` of a run that trained `model_name` on data described by `info`.

    `raw_channels`: for images read as rows, the channels of one image (the rows' width
    is `W * C`); for other images the channels are in `info.input_shape`.
    """
    pre = Preprocessing.from_info(info, model_name)
    if pre.kind != "image":
        return pre
    shape = tuple(info.input_shape)
    if pre.as_sequence:
        channels = raw_channels or 1
        return dataclasses.replace(pre, channels=channels, image_size=(shape[0], shape[1] // channels))
    return dataclasses.replace(pre, channels=shape[-1], image_size=shape[:2])


def record(run_dir, info, model_name: str, raw_channels: int | None = None) -> Preprocessing:
    """Writes the run's `preprocessing.json` (atomically) and returns the record.

    Training calls this once the data is loaded, so `load_run` needs no data set."""
    pre = record_for(info, model_name, raw_channels)
    atomic_write_text(pathlib.Path(run_dir) / FILE, json.dumps(pre.to_dict(), indent=2) + "\n")
    return pre


def read(run_dir) -> Preprocessing | None:
    """The run's recorded `Preprocessing`, or `None` if the run has no record (older runs).

    Raises:
        ValueError: when the record exists but cannot be read.
    """
    path = pathlib.Path(run_dir) / FILE
    if not path.exists():
        return None
    try:
        return Preprocessing.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"{path} is unreadable ({str(e).splitlines()[0][:200]}); remove it to re-derive it.") from None


# ------------------------------------------------------------------------- inputs


@dataclasses.dataclass
class Inputs:
    """Raw inputs read from files: `names[i]` labels the example `x[i]` in the output."""

    names: list
    x: np.ndarray


def read_inputs(paths, pre: Preprocessing, *, progress=None) -> Inputs:
    """Reads every input path and makes it into the model's input with `pre`.

    Args:
        paths: image files, folders of images, `.npz` or `.csv` files (a list; at least one).
        pre: the run's `Preprocessing`.
        progress: a callable `(done, total, where)` told after each image of a folder.

    Raises:
        ValueError: one line naming the path and what is wrong with it.
    """
    if isinstance(paths, (str, pathlib.Path)):
        paths = [paths]
    if not paths:
        raise ValueError("inputs must name at least one file or folder. Received: inputs=[]")
    names, parts = [], []
    for raw in paths:
        path = pathlib.Path(raw).expanduser()
        if not path.exists():
            raise ValueError(f"Input {str(raw)!r} does not exist. Received: inputs={str(raw)!r}")
        suffix = path.suffix.lower()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_FORMATS)
            if not files:
                raise ValueError(
                    f"Input folder {str(raw)!r} holds no images ({', '.join(IMAGE_FORMATS)}). "
                    f"Received: inputs={str(raw)!r}"
                )
            _needs_images(pre, raw)
            for i, f in enumerate(files, start=1):
                names.append(str(f))
                parts.append(_image_file(f, pre))
                if progress is not None:
                    progress(i, len(files), str(raw))
        elif suffix in IMAGE_FORMATS:
            _needs_images(pre, raw)
            names.append(str(path) if str(raw) == str(path) else str(raw))
            parts.append(_image_file(path, pre))
        elif suffix == ".npz":
            x = _npz(path)
            names += [f"{raw}[{i}]" for i in range(len(x))]
            parts.append(_named(pre.transform, x, raw))
        elif suffix == ".csv":
            x = _csv(path, pre)
            names += [f"{raw}:{row}" for row in x[1]]
            parts.append(_named(pre.transform, x[0], raw))
        else:
            raise ValueError(
                f"Cannot read input {str(raw)!r}: expected an image ({', '.join(IMAGE_FORMATS)}), a folder of "
                f"images, a .npz or a .csv. Received: suffix {path.suffix!r}"
            )
    return Inputs(names, np.concatenate(parts) if parts else np.zeros((0, *pre.input_shape), np.float32))


def _named(fn, x, source):
    try:
        return fn(x)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def _needs_images(pre, raw):
    if pre.kind != "image":
        raise ValueError(
            f"The run trained on {'token ids' if pre.kind == 'tokens' else 'feature rows'} ({pre.dataset}), "
            f"not images: give a .npz or .csv. Received: inputs={str(raw)!r}"
        )


def _image_file(path, pre) -> np.ndarray:
    """One image file -> the model's input `(1, ...)`, decoded as the training folders are."""
    from recipes.datasets._pipelines import _decode

    colour_only = path.suffix.lower() in (".gif", ".bmp") and pre.channels == 1
    # decoded to the run's channels as image_dataset_from_directory does; GIF/BMP decode
    # in colour only, so they are converted to grey by the transform
    image = _decode(path, 3 if colour_only else pre.channels).numpy()
    return _named(lambda x: pre.transform(x, raw_max=IMAGE_RAW_MAX), image[None], str(path))


def _npz(path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            key = "x_test" if "x_test" in keys else "x" if "x" in keys else None
            if key is None:
                raise ValueError(
                    f"{path} has no x_test or x array to predict on. Found: {', '.join(keys) or 'no arrays'}"
                )
            return data[key]
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"Could not read {path} as .npz: {str(e).splitlines()[0][:200]}") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"Could not read {path} as .npz: {e}") from None


def _csv(path, pre):
    """Feature rows of a CSV: a header row is skipped, a `label` column (or a last column
    beyond the run's features) dropped. Returns `(x, line numbers)`."""
    import csv

    if pre.kind != "table":
        raise ValueError(
            f"The run trained on {'images' if pre.kind == 'image' else 'token ids'} ({pre.dataset}); a .csv holds "
            f"feature rows. Received: inputs={str(path)!r}"
        )
    features = int(np.prod(pre.input_shape))
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(i, row) for i, row in enumerate(csv.reader(f), start=1) if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"Could not read {path}: {e}") from None
    if not rows:
        raise ValueError(f"{path} has no rows.")
    header = None
    if not all(_is_number(c) for c in rows[0][1]):
        header, rows = [c.strip() for c in rows[0][1]], rows[1:]
    if not rows:
        raise ValueError(f"{path} has no data rows.")
    width = len(header or rows[0][1])
    drop = header.index("label") if header and "label" in header else width - 1 if width == features + 1 else None
    if width - (drop is not None) != features:
        raise ValueError(
            f"{path} has {width} columns; the run takes {features} features a row (and an optional label "
            f"column). Received: {width} columns"
        )
    from recipes.datasets._readers import numeric_table

    table = numeric_table(path, rows, width)
    if drop is not None:
        table = np.delete(table, drop, axis=1)
    return table, [line for line, _ in rows]


def _is_number(text) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def terminal_progress(stream=sys.stderr):
    """A `progress` callable for `read_inputs` drawing a bar on a terminal (nothing elsewhere)."""

    def show(done, total, where):
        if not stream.isatty():
            return
        width = 30
        filled = width * done // total
        stream.write(f"\rreading {where} [{'=' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show
