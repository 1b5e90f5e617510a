"""Reads data sets into numpy arrays and checks them: `.npz` and arrays in memory (the named data
sets are in `_named.py`, CSV/TSV, JSON Lines and text folders in `_text.py`), and class labels given
as integers or as names.

Every reader returns an `Arrays` record. Bad files fail here with a `ValueError` that
names the file, the problem and the value found, before any tf.data pipeline exists.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from recipes.datasets._npz import _load_npz


@dataclasses.dataclass
class Arrays:
    """A data set in memory, before it becomes tf.data pipelines.

    `kind` is "image" (x: (N, H, W, C), values 0..raw_max), "sequence" (x: int tokens
    (N, T) when `vocab_size` is set, else float (N, T, F)), "table" (x: (N, F)) or "text"
    (x: (N,) object array of `str`). `y_*` are int32 labels, or `None` for a file without labels.
    `text_from`, `label_from`: where a file's texts and labels were found (a column or key, for
    the log); `unused`: what the file holds that is not read (columns, keys, folders).
    """

    name: str
    source: str
    kind: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    raw_max: float | None = None
    vocab_size: int | None = None
    text_from: str | None = None
    label_from: str | None = None
    unused: tuple = ()

    @property
    def num_classes(self):
        return None if self.class_names is None else len(self.class_names)


# ----------------------------------------------------------------------------- files


def read_npz(
    path, *, name=None, class_names=None, raw_max=None, image_shape=None, vocab_size=None, labels=True
) -> Arrays:
    """Reads an .npz in the Keras layout: `x_train`, `y_train`, and optionally `x_test`,
    `y_test` and `class_names`. `y_*` may be left out when `labels=False`."""
    data = _load_npz(path)
    return read_mapping(
        data,
        source=path,
        name=name or pathlib.Path(path).stem,
        class_names=class_names,
        raw_max=raw_max,
        image_shape=image_shape,
        vocab_size=vocab_size,
        labels=labels,
    )


def read_arrays(data, *, vocab_size=None, labels=True) -> Arrays:
    """Arrays in memory, as `keras.datasets` returns them: `(x, y)`, `((x_train, y_train),
    (x_test, y_test))`, `x` alone (with `labels=False`), or a dict in the .npz layout."""
    if isinstance(data, dict):
        mapping = dict(data)
    elif isinstance(data, np.ndarray):
        mapping = {"x_train": data}
    elif (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(part, (tuple, list)) and len(part) == 2 for part in data)
    ):
        (x_train, y_train), (x_test, y_test) = data
        mapping = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        mapping = dict(x_train=data[0], y_train=data[1])
    else:
        raise TypeError(
            "Arrays must be x, (x, y), ((x_train, y_train), (x_test, y_test)) or a dict "
            f"with x_train, y_train, x_test, y_test. Received: {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
        )
    converted = {}
    for key, value in mapping.items():
        if value is None:
            continue
        try:
            converted[key] = np.asarray(value)
        except (ValueError, TypeError) as e:
            raise ValueError(f"arrays: {key} is not an array ({e}).") from None
    return read_mapping(converted, source="arrays", name="arrays", vocab_size=vocab_size, labels=labels)


def read_mapping(
    data, *, source, name, class_names=None, raw_max=None, image_shape=None, vocab_size=None, labels=True
) -> Arrays:
    """Checks a dict of arrays in the Keras layout (see `read_npz`) and returns it as `Arrays`."""
    path = source
    has_y = "y_train" in data
    missing = [k for k in ("x_train",) if k not in data]
    if labels and not has_y:
        missing.append("y_train")
    if has_y and "x_test" in data and "y_test" not in data:
        missing.append("y_test")
    if "y_test" in data and "x_test" not in data:
        missing.append("x_test")
    if missing:
        raise ValueError(
            f"{path} is missing the key(s) {', '.join(missing)}; the Keras layout is "
            f"x_train, y_train and optionally x_test, y_test. Found: {', '.join(sorted(data))}"
        )
    if class_names is None and "class_names" in data:
        class_names = tuple(str(c) for c in np.asarray(data["class_names"]).ravel())
        if not class_names:
            raise ValueError(
                f"{path}: class_names is empty; it must name every class, label i "
                f"at index i. Received: shape {np.shape(data['class_names'])}"
            )
    x = data["x_train"]
    if x.dtype.kind in "US" and x.ndim == 1:  # texts, one a row
        return _text_mapping(data, path, name, class_names, labels)
    if x.dtype.kind not in "uif":
        raise ValueError(f"{path}: x_train must hold numbers. Received: dtype {x.dtype}")
    if vocab_size is not None or x.ndim == 2:
        kind = "sequence" if vocab_size is not None else "table"
    else:
        kind = "image"
    return _checked(
        path,
        name,
        kind,
        data["x_train"],
        data.get("y_train"),
        data.get("x_test"),
        data.get("y_test"),
        class_names=class_names,
        raw_max=raw_max,
        image_shape=image_shape,
        vocab_size=vocab_size,
    )


def check_labels(path, ys, class_names):
    """`(ys, class_names)`: the labels of each split (`{"train": y, "test": y}`, `None` for none) as
    int32 indices into the class names.

    Names (strings, as `.npz` arrays of `str` hold them) become sorted class names, or index into
    `class_names` when it is given; integers are classes 0..K-1 with every class present, or index
    into `class_names`."""
    if any(y is not None and y.dtype.kind in "US" for y in ys.values()):
        return _named_labels(path, ys, class_names)
    for split, y in ys.items():
        if y is None:
            continue
        with np.errstate(invalid="ignore"):  # NaN and inf are not integers either
            integers = y.dtype.kind in "ui" or y.dtype.kind == "f" and bool(np.all(np.mod(y, 1) == 0))
        if not integers:
            raise ValueError(
                f"{path}: y_{split} must hold integer labels or names. Received: dtype {y.dtype}, "
                f"first values {y[:5].tolist()}"
            )
    labelled = [y for y in ys.values() if y is not None]
    if not labelled:
        return ys, class_names
    low, high = min(y.min() for y in labelled), max(y.max() for y in labelled)
    received = f"Received: labels from {_number(low)} to {_number(high)}"
    if class_names is None:
        if low < 0:
            top = _number(high) if high > 0 else "K-1"
            raise ValueError(f"{path}: labels must be in 0..{top}. {received}")
        # inferred classes are 0..max: a stray label (100000 among 0..9) must not make
        # a 100,001-class model, so every class needs a training example
        present = np.unique(ys["train"] if ys.get("train") is not None else np.concatenate(labelled))
        high = int(high)
        missing = _missing_classes(present, high)
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
            what = f"classes {shown}" if len(missing) > 1 else f"class {shown}"
            raise ValueError(
                f"{path}: labels must be 0..K-1 with every class present; {what} "
                f"({_number(high + 1 - len(present))} of {_number(high + 1)}) "
                f"{'have' if len(missing) > 1 else 'has'} no training example. {received}"
            )
        class_names = tuple(str(i) for i in range(high + 1))
    if low < 0 or high >= len(class_names):
        raise ValueError(f"{path}: labels must be in 0..{len(class_names) - 1}. {received}")
    return {k: None if y is None else y.astype(np.int32) for k, y in ys.items()}, class_names


def _named_labels(path, ys, class_names):
    """Labels given as names (`str` arrays): sorted into class names, or looked up in `class_names`."""
    names = {k: None if y is None else np.char.strip(y.astype(str)) for k, y in ys.items()}
    for split, y in names.items():
        if y is not None and y.dtype.kind not in "US":
            raise ValueError(f"{path}: y_{split} must hold names as y_train does. Received: dtype {ys[split].dtype}")
        if y is not None and (y == "").any():
            raise ValueError(f"{path}: y_{split}[{int(np.flatnonzero(y == '')[0])}] is an empty label.")
    if class_names is None:
        class_names = tuple(sorted(set(names["train"].tolist() if names.get("train") is not None else [])))
    index = {name: i for i, name in enumerate(class_names)}
    out = {}
    for split, y in names.items():
        if y is None:
            out[split] = None
            continue
        unknown = [n for n in dict.fromkeys(y.tolist()) if n not in index]
        if unknown:
            first = int(np.flatnonzero(y == unknown[0])[0])
            raise ValueError(
                f"{path}: y_{split}[{first}] is {unknown[0]!r}, not a class of the training labels "
                f"({', '.join(class_names[:10])}{', ...' if len(class_names) > 10 else ''})."
            )
        out[split] = np.array([index[n] for n in y.tolist()], np.int32)
    return out, class_names


def _text_mapping(data, path, name, class_names, labels) -> Arrays:
    """An .npz of texts: `x_*` 1-D arrays of `str`, one example each."""
    texts = {}
    for key in ("x_train", "x_test"):
        x = data.get(key)
        if x is None:
            continue
        if x.dtype.kind not in "US" or x.ndim != 1:
            raise ValueError(
                f"{path}: {key} must hold texts (a 1-D array of str) as x_train does. Received: "
                f"dtype {x.dtype}, shape {x.shape}"
            )
        x = x.astype(str)
        empty = np.flatnonzero(np.char.strip(x) == "")
        if len(empty):
            raise ValueError(f"{path}: {key}[{int(empty[0])}] is an empty text.")
        texts[key] = x.astype(object)
    ys = {}
    for split in ("train", "test"):
        y = data.get(f"y_{split}") if labels else None
        if y is not None and len(y) != len(texts.get(f"x_{split}", ())):
            raise ValueError(
                f"{path}: x_{split} and y_{split} must have the same length. Received: "
                f"{len(texts.get(f'x_{split}', ()))} and {len(y)}"
            )
        ys[split] = None if y is None else np.asarray(y)
    ys, class_names = check_labels(path, ys, class_names)
    return Arrays(
        name=name,
        source=str(path),
        kind="text",
        x_train=texts["x_train"],
        y_train=ys["train"],
        x_test=texts.get("x_test"),
        y_test=ys["test"],
        class_names=class_names,
        text_from="x_train",
        label_from="y_train" if ys["train"] is not None else None,
    )


def _number(value):
    """A label for a message: 100000, not 100000.0 or a 300-digit integer."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"


def _missing_classes(present, high, limit=11):
    """Up to `limit` of the classes 0..high that are not in the sorted labels `present`."""
    missing, have = [], set(present.tolist())
    label = 0
    while len(missing) < limit and label <= high:
        if label not in have:
            missing.append(label)
        label += 1
    return missing


def numeric_table(path, rows, width: int) -> np.ndarray:
    """`rows` (`[(line number, cells)]` of a CSV file) as a float64 table, or `ValueError`
    naming the line of the first row of another width or the first cell that is no number."""
    for line, row in rows:
        if len(row) != width:
            raise ValueError(f"{path}, line {line}: expected {width} columns. Received: {len(row)}")
        for cell in row:
            if not is_number(cell):
                raise ValueError(f"{path}, line {line}: every cell must be a number. Received: {cell!r}")
    return np.array([row for _, row in rows], dtype=np.float64)


def is_number(text) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def _canonical(value) -> str:
    """A label as a class name: integers as `str(int)` (so "1.0" in one file is "1" in another)."""
    if is_number(value) and float(value).is_integer() and abs(float(value)) < 1e15:
        return str(int(float(value)))
    return str(value).strip()


def labels_to_ids(path, values, *, where, column, class_names=None, one_class=False):
    """`(labels int32, class names)` of a file's label cells (`values`, strings or numbers; `where[i]`
    is the line of `values[i]`).

    Integers are classes 0..K-1, each with a training example (as arrays' labels are); any other
    labels are names, sorted, label i the i-th. With `class_names` (a test file's labels, read by
    the training file's classes), each label must be one of them.
    """
    if class_names is not None:
        index = {name: i for i, name in enumerate(class_names)}
        ids = np.empty(len(values), np.int32)
        for i, value in enumerate(values):
            name = _canonical(value)
            if name not in index:
                raise ValueError(
                    f"{path}, line {where[i]}: the label {name!r} ({column}) is not a class of the training data "
                    f"({', '.join(class_names[:10])}{', ...' if len(class_names) > 10 else ''})."
                )
            ids[i] = index[name]
        return ids, tuple(class_names)
    if values and all(is_number(v) for v in values):
        y = np.array([float(v) for v in values])
        fractional = np.flatnonzero(np.mod(y, 1) != 0)
        if len(fractional):
            i = int(fractional[0])
            raise ValueError(
                f"{path}, line {where[i]}: labels ({column}) must be integers or names. Received: {values[i]!r}"
            )
        ys, names = check_labels(path, {"train": y}, None)
        return ys["train"], names
    names = tuple(sorted({_canonical(v) for v in values}))
    if len(names) == 1 and not one_class:
        raise ValueError(
            f"{path}: the labels ({column}) hold one class, {names[0]!r}; a classifier needs at least 2 (or read "
            f"the data with labels=False)."
        )
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[_canonical(v)] for v in values], np.int32), names


# ---------------------------------------------------------------------------- checks


def _checked(
    path,
    name,
    kind,
    x_train,
    y_train,
    x_test=None,
    y_test=None,
    *,
    class_names=None,
    raw_max=None,
    image_shape=None,
    vocab_size=None,
) -> Arrays:
    """Validates the arrays of `path` and returns them as an `Arrays` (labels int32,
    gray images with a channel axis, images checked non-negative)."""
    xs = {"x_train": x_train, "x_test": x_test}
    for key, x in xs.items():
        if x is None:
            continue
        if x.dtype.kind not in "uif":
            raise ValueError(f"{path}: {key} must hold numbers. Received: dtype {x.dtype}")
        if x.ndim == 0 or len(x) == 0:
            raise ValueError(
                f"{path}: {key} is {'a single number' if x.ndim == 0 else 'empty'}; it must hold "
                f"examples along its first axis. Received: shape {x.shape}"
            )
        # checked in float32, the type training sees: 1e40 in a float64 array becomes inf there
        with np.errstate(over="ignore"):
            finite = np.isfinite(x if x.dtype.itemsize <= 4 else x.astype(np.float32)) if x.dtype.kind == "f" else None
        if finite is not None and not finite.all():
            first = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise ValueError(
                f"{path}: {key} holds NaN or inf values in float32 ({int(np.sum(~finite))} in all; "
                f"the first at index {first}). Received: {x[first]}"
            )
        if kind == "image":
            if x.ndim == 3:
                xs[key] = x = x[..., None]
            if x.ndim != 4 or x.shape[-1] not in (1, 3):
                raise ValueError(
                    f"{path}: {key} must hold images (N, H, W), (N, H, W, 1) or (N, H, W, 3). Received: shape {x.shape}"
                )
            if image_shape is not None and x.shape[1:] != image_shape:
                raise ValueError(
                    f"{path}: {key} must have shape (N, {', '.join(map(str, image_shape))}). Received: shape {x.shape}"
                )
        elif x.ndim != 2:
            raise ValueError(f"{path}: {key} must be 2-D (examples, features). Received: shape {x.shape}")
    x_train, x_test = xs["x_train"], xs["x_test"]
    if x_test is not None and x_test.shape[1:] != x_train.shape[1:]:
        raise ValueError(
            f"{path}: x_test examples must have the shape of x_train's, "
            f"{x_train.shape[1:]}. Received: shape {x_test.shape}"
        )

    ys = {}
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if y is None:
            ys[split] = None
            continue
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"{path}: y_{split} must be 1-D integer labels or names. Received: shape {y.shape}")
        if x is not None and len(y) != len(x):
            raise ValueError(
                f"{path}: x_{split} and y_{split} must have the same length. Received: {len(x)} and {len(y)}"
            )
        ys[split] = y
    ys, class_names = check_labels(path, ys, class_names)

    if kind == "image":
        lows = [float(x.min()) for x in (x_train, x_test) if x is not None]
        if min(lows) < 0:
            raise ValueError(f"{path}: image values must be >= 0. Received: minimum {min(lows)}")
        if raw_max is None:  # scale from the data's own maximum (1.0 for floats already in [0, 1])
            raw_max = max(float(x.max()) for x in (x_train, x_test) if x is not None)
            if x_train.dtype.kind == "f" and raw_max <= 1.0 or raw_max == 0:
                raw_max = 1.0
    if kind == "sequence" and vocab_size is not None:
        for key, x in (("x_train", x_train), ("x_test", x_test)):
            if x is None:
                continue
            if x.dtype.kind == "f" and not np.all(np.mod(x, 1) == 0) or x.min() < 0 or x.max() >= vocab_size:
                raise ValueError(
                    f"{path}: {key} must hold integer tokens in 0..{vocab_size - 1} "
                    f"(vocab_size={vocab_size}). Received: values from {x.min()} to {x.max()}"
                )
        x_train = x_train.astype(np.int32)
        x_test = None if x_test is None else x_test.astype(np.int32)
    return Arrays(
        name=name,
        source=str(path),
        kind=kind,
        x_train=x_train,
        y_train=ys["train"],
        x_test=x_test,
        y_test=ys["test"],
        class_names=class_names,
        raw_max=raw_max,
        vocab_size=vocab_size,
    )
