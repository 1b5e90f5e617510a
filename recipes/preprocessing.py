"""What a run's model takes, recorded from its training data, and raw inputs made into it.

A model trained by `recipes train` never saw raw data: images were resized, converted to
its channels and scaled to its value range, read as rows for the LSTM; token reviews
were padded. `Preprocessing` is that record, kept in the run directory as
`preprocessing.json` (`record`), and `transform` applies it to new raw inputs with the
package's own transform (`datasets._pipelines._image_transform`), so a prediction sees
exactly what training saw.

Readers for new inputs (`read_inputs`, from `recipes._inputs`): image files (.png, .jpg,
.jpeg, .bmp, .gif, 8-bit, any size), folders of them (searched recursively, in sorted order),
`.npz` files (`x_test`, else `x`; in the units of the run's data, 0..`raw_max`) and `.csv`
files of features (one example a row; a `label` column, or a last column beyond the run's
features, is ignored).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from recipes._atomic import atomic_write_text
from recipes._inputs import IMAGE_FORMATS, IMAGE_RAW_MAX, Inputs, read_inputs, terminal_progress
from recipes._optional import has_tensorflow
from recipes.errors import first_line
from recipes.registry import get_spec

# The public names, in the order of the reference (the readers of raw inputs live in recipes._inputs).
__all__ = [
    "FILE",
    "VOCABULARY",
    "IMAGE_FORMATS",
    "IMAGE_RAW_MAX",
    "Preprocessing",
    "record_for",
    "record",
    "read",
    "Inputs",
    "read_inputs",
    "terminal_progress",
]

FILE = "preprocessing.json"
VOCABULARY = "vocabulary.txt"  # a text run's words, one a line (id 2 first)


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
            front to `sequence_length` (texts: at the end); for a table, its number of steps.
        dataset: the training data set's name, for messages.
        vocabulary: texts (`kind="text"`): the words of ids 2, 3, ... (kept in the run
            directory as `vocabulary.txt`, one a line, not in `preprocessing.json`).
        standardize, split: texts: what `TextVectorization` did before the lookup.
        text_from: texts: where training found them (a column or key), for messages.
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
    vocabulary: tuple | None = dataclasses.field(default=None, repr=False)
    standardize: str | None = None
    split: str | None = None
    text_from: str | None = None

    @classmethod
    def from_info(cls, info, model_name: str | None = None) -> "Preprocessing":
        """The record of a `datasets.DatasetInfo` (what `load_dataset` returned to training)."""
        shape = tuple(int(d) for d in info.input_shape)
        classes = tuple(info.class_names) if info.class_names is not None else None
        if model_name is not None:
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
        if info.kind == "text":
            from recipes.datasets._vocabulary import SPLIT, STANDARDIZE

            return cls(
                kind="text",
                input_shape=shape,
                class_names=classes,
                vocab_size=info.vocab_size,
                sequence_length=info.sequence_length,
                dataset=info.name,
                vocabulary=tuple(info.vocabulary.tokens),
                standardize=STANDARDIZE,
                split=SPLIT,
                text_from=info.text_from,
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
        """The JSON record (the vocabulary is kept apart, in `vocabulary.txt`)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "vocabulary"}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    def text_vocabulary(self):
        """Texts: the `datasets.Vocabulary` training read them with (for `load_dataset(vocabulary=)`)."""
        from recipes.datasets import Vocabulary

        return Vocabulary(tuple(self.vocabulary), int(self.sequence_length))

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
                feature rows `(N, F)`; token ids `(N, T)`; texts, a list of `str`.
            raw_max: the raw value mapped to the top of `value_range`. Defaults to `None`:
                the run's (`self.raw_max`).

        Raises:
            ValueError: for inputs of another shape, non-finite values or values out of
                range; the message names the shape or value received.
        """
        if self.kind == "text":
            return self._texts(x)
        x = np.asarray(x)
        if self.kind == "image":
            return self._images(x, self.raw_max if raw_max is None else raw_max)
        if self.kind == "tokens":
            return self._tokens(x)
        return self._table(x)

    def _images(self, x, raw_max):
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
        options = dict(
            image_size=None if tuple(x.shape[1:3]) == tuple(self.image_size) else tuple(self.image_size),
            channels=self.channels,
            as_sequence=self.as_sequence,
        )
        if not has_tensorflow():  # the same transform in numpy (the PyDataset engine's): equal to float rounding
            from recipes.datasets._images import image_transform

            return image_transform(raw_max, self.value_range, x.shape[-1], **options)(x)
        import tensorflow as tf

        from recipes.datasets._pipelines import _image_transform

        return _image_transform(raw_max, self.value_range, x.shape[-1], **options)(tf.constant(x)).numpy()

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

    def _texts(self, x):
        from recipes.datasets._vocabulary import vectorize

        texts = [x] if isinstance(x, str) else list(np.asarray(x, dtype=object).reshape(-1))
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise ValueError(f"Expected texts (str) for this run ({self.dataset}). Received: {type(bad).__name__}")
        return vectorize(texts, self.text_vocabulary())

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
        if self.kind == "text":
            from recipes.datasets._vocabulary import describe

            return describe(self.text_vocabulary())
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
    if pre.kind == "text":  # first: a record never names a vocabulary that is not there
        atomic_write_text(pathlib.Path(run_dir) / VOCABULARY, "".join(f"{word}\n" for word in pre.vocabulary))
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
        pre = Preprocessing.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"{path} is unreadable ({first_line(e)[:200]}); remove it to re-derive it.") from None
    if pre.kind != "text":
        return pre
    words = pathlib.Path(run_dir) / VOCABULARY
    try:
        vocabulary = tuple(words.read_text(encoding="utf-8").split("\n")[:-1])
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{words} is unreadable ({first_line(e)[:200]}); the run's texts cannot be read.") from None
    if len(vocabulary) + 2 != pre.vocab_size:
        raise ValueError(
            f"{words} holds {len(vocabulary)} words; the run's model takes {pre.vocab_size - 2} (and ids 0 and 1)."
        )
    return dataclasses.replace(pre, vocabulary=vocabulary)
