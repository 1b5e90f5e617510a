"""Reads data sets into numpy arrays and checks them: named data sets, `.npz` and `.csv`.

Every reader returns an `Arrays` record. Bad files fail here with a `ValueError` that
names the file, the problem and the value found, before any tf.data pipeline exists.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import lzma
import os
import pathlib
import pickle
import site
import struct
import sys
import sysconfig
import tarfile
import zipfile
import zlib

import keras
import numpy as np

from recipes.datasets import _remote

DIGITS = "digits.npz"
# The raw value that maps to the top of `value_range`, per named image data set.
RAW_MAX = {"digits": 16.0, "mnist": 255.0, "fashion_mnist": 255.0, "cifar10": 255.0, "cifar100": 255.0}
IMDB_START, IMDB_OOV, IMDB_INDEX_FROM = 1, 2, 3  # the keras.datasets.imdb conventions

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclasses.dataclass
class Arrays:
    """A data set in memory, before it becomes tf.data pipelines.

    `kind` is "image" (x: (N, H, W, C), values 0..raw_max), "sequence" (x: int tokens
    (N, T) when `vocab_size` is set, else float (N, T, F)) or "table" (x: (N, F)).
    `y_*` are int32 labels, or `None` for a file without labels.
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

    @property
    def num_classes(self):
        return None if self.class_names is None else len(self.class_names)


# ---------------------------------------------------------------------------- named


def bundled_path(fname: str = DIGITS) -> pathlib.Path:
    """Finds a file shipped in `data/`: `$RECIPES_DATA_DIR`, the source checkout, then
    the `share/recipes/data` folders a (non-editable, or `--user`) install writes."""
    folders = [pathlib.Path(os.environ["RECIPES_DATA_DIR"])] if os.environ.get("RECIPES_DATA_DIR") else []
    folders.append(pathlib.Path(__file__).resolve().parents[2] / "data")
    for prefix in (sys.prefix, sysconfig.get_path("data"), site.USER_BASE):
        if prefix:
            folders.append(pathlib.Path(prefix) / "share" / "recipes" / "data")
    folders = list(dict.fromkeys(folders))
    for folder in folders:
        if (folder / fname).is_file():
            return folder / fname
    raise FileNotFoundError(
        f"The bundled data file {fname} was not found. Looked in: {', '.join(map(str, folders))}. "
        f"Reinstall recipes, or set RECIPES_DATA_DIR to a folder holding {fname} "
        f"(the source repository has it in data/).")


def read_named(name, *, cache_dir, vocab_size, sequence_length) -> Arrays:
    if name == "digits":
        path = bundled_path()
        return read_npz(path, name="digits", class_names=tuple(map(str, range(10))),
                        raw_max=RAW_MAX["digits"], image_shape=(8, 8, 1))
    if name in ("cifar10", "cifar100"):
        # the archive, checked; else a folder Keras extracted (never checked, by Keras either)
        archive = _remote.REMOTE_FILES[name][0]
        extracted = None if _remote.find(archive, cache_dir) else _cifar_extracted(name, cache_dir)
        return _read_cifar(name, extracted or _remote.fetch(name, archive, cache_dir))
    files = [_remote.fetch(name, remote, cache_dir) for remote in _remote.REMOTE_FILES[name]]
    if name == "mnist":
        return read_npz(files[0], name=name, class_names=tuple(map(str, range(10))),
                        raw_max=RAW_MAX[name], image_shape=(28, 28, 1))
    if name == "fashion_mnist":
        return _read_fashion(files)
    return _read_imdb(files[0], vocab_size=vocab_size, sequence_length=sequence_length)


def _read_fashion(files):
    arrays = {}
    for key, path in zip(("y_train", "x_train", "y_test", "x_test"), files):
        images = key.startswith("x")
        try:
            with gzip.open(path, "rb") as f:
                raw = f.read()
        except (OSError, EOFError) as e:
            raise ValueError(f"Could not read {path}: not a valid gzip file ({e}).") from None
        magic, header = (2051, 16) if images else (2049, 8)
        if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
            raise ValueError(f"{path} is not an IDX {'image' if images else 'label'} file "
                             f"(expected magic number {magic}).")
        data = np.frombuffer(raw, np.uint8, offset=header)
        arrays[key] = data.reshape(-1, 28, 28, 1) if images else data
    return _checked(path.parent, "fashion_mnist", "image", **arrays, class_names=FASHION_CLASSES,
                    raw_max=RAW_MAX["fashion_mnist"], image_shape=(28, 28, 1))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays (and plain containers) only, so a tampered file cannot run code."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
                ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(f, path):
    try:
        return _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except Exception as e:
        raise ValueError(f"Could not read {path}: {e}.") from None


_CIFAR = {  # name -> (top folder, training batches, test batch, meta file, label key, names key)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
                "batches.meta", b"labels", b"label_names"),
    "cifar100": ("cifar-100-python", ["train"], "test", "meta", b"fine_labels", b"fine_label_names"),
}


def _cifar_extracted(name, cache_dir):
    """A folder of CIFAR batches extracted by tf.keras / Keras < 3.6 (`<top>/`) or by
    later Keras (`<top>-target/<top>/`), or `None`."""
    top, train, test, meta, *_ = _CIFAR[name]
    for folder in (_remote.datasets_dir(cache_dir) / top,
                   _remote.datasets_dir(cache_dir) / f"{top}-target" / top):
        if all((folder / m).is_file() for m in (*train, test, meta)):
            return folder
    return None


def _read_cifar(name, source):
    """Reads the CIFAR python pickles from the .tar.gz archive or an extracted folder."""
    top, train_parts, test_part, meta_part, label_key, names_key = _CIFAR[name]
    members = (*train_parts, test_part, meta_part)
    try:
        if source.is_dir():
            blobs = {m: (source / m).read_bytes() for m in members}
        else:
            with tarfile.open(source, "r:gz") as tar:
                blobs = {m: tar.extractfile(f"{top}/{m}").read() for m in members}
    except (tarfile.TarError, KeyError, OSError, EOFError) as e:
        raise ValueError(f"Could not read {source}: not a complete CIFAR archive ({e}).") from None
    pickles = {m: _unpickle(io.BytesIO(blob), f"{source}:{m}") for m, blob in blobs.items()}
    train, test, meta = [pickles[m] for m in train_parts], pickles[test_part], pickles[meta_part]

    def xy(batches):
        try:
            x = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32)
            y = np.concatenate([np.asarray(b[label_key]) for b in batches])
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(f"{source} does not hold CIFAR batches ({e}).") from None
        return x.transpose(0, 2, 3, 1), y

    names = meta.get(names_key) if isinstance(meta, dict) else None
    class_names = CIFAR10_CLASSES if name == "cifar10" or not names else \
        tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    (x_train, y_train), (x_test, y_test) = xy(train), xy([test])
    return _checked(source, name, "image", x_train, y_train, x_test, y_test,
                    class_names=class_names, raw_max=RAW_MAX[name], image_shape=(32, 32, 3))


# What zipfile, zlib, lzma and np.lib.format raise for a damaged archive or member: a
# CRC mismatch, a broken deflate stream, a cut file, an unsupported compression method
# (NotImplementedError), an encrypted member (RuntimeError), a name that is not UTF-8 ...
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, struct.error, KeyError,
               NotImplementedError, RuntimeError, OverflowError, MemoryError, OSError, ValueError, TypeError)


def _reason(e):
    """An exception's message on one line, cut to a readable length."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _load_npz(path, *, objects=False):
    """The arrays of an .npz, all read now: `np.load` reads members lazily, so a damaged
    member would fail later, with zlib's or zipfile's own error. Object arrays (which
    need pickle) are refused, or with `objects=True` (imdb.npz holds lists) unpickled
    with `_NumpyOnlyUnpickler`."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise ValueError(f"Could not read {path}: {_reason(e)}.") from None
    try:
        archive = zipfile.ZipFile(path)
    except _ZIP_ERRORS as e:
        hint = "; it holds one .npy array: save with np.savez" if magic == b"\x93NUMPY" else ""
        raise ValueError(f"Could not read {path}: not a valid .npz (zip) file{hint} ({_reason(e)}).") from None
    out = {}
    with archive:
        for member in archive.infolist():
            key = member.filename.removesuffix(".npy")
            try:
                with archive.open(member) as f:
                    shape, fortran, dtype = _npy_header(f)
                    if not dtype.hasobject:
                        out[key] = _npy_data(f, member.file_size - f.tell(), shape, fortran, dtype)
                        continue
            except _ZIP_ERRORS as e:
                raise ValueError(f"Could not read {path}: the file is corrupted ({member.filename!r}: "
                                 f"{_reason(e)}).") from None
            if not objects:
                raise ValueError(f"{path}: {key} is an object array, refused for safety (reading it would "
                                 f"unpickle, which can run any code); save arrays of numbers or strings. "
                                 f"Received: dtype {dtype}")
            with archive.open(member) as f:
                _npy_header(f)
                out[key] = _unpickle(f, path)
    return out


def _npy_header(f):
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read(f)


def _npy_data(f, available, shape, fortran, dtype):
    """Reads the array after a .npy header into memory, then to the end of the member,
    where zipfile checks the CRC."""
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size != available:
        raise ValueError(f"its header describes {size} bytes of data, the member holds {available}")
    array = np.empty(shape[::-1] if fortran else shape, dtype)
    if size and f.readinto(memoryview(array.reshape(-1).view(np.uint8))) != size or f.read(1):
        raise ValueError("the data is cut short or too long")
    return array.T if fortran else array


def _read_imdb(path, *, vocab_size, sequence_length):
    try:
        f = _load_npz(path, objects=True)
        raw = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as e:
        raise ValueError(f"Could not read {path}: not a valid imdb.npz (no array {e}).") from None

    def tokens(reviews):
        # Keras's layout: 1 starts a review, 2 is out of vocabulary, word i is i + 3.
        out = []
        for review in reviews:
            t = np.asarray(review, dtype=np.int64) + IMDB_INDEX_FROM
            t[t >= vocab_size] = IMDB_OOV
            out.append(np.concatenate([[IMDB_START], t]))
        return keras.utils.pad_sequences(out, maxlen=sequence_length, dtype="int32",
                                         padding="pre", truncating="pre")

    return _checked(path, "imdb", "sequence", tokens(raw["x_train"]), raw["y_train"],
                    tokens(raw["x_test"]), raw["y_test"], class_names=("negative", "positive"),
                    vocab_size=vocab_size)


# ----------------------------------------------------------------------------- files


def read_npz(path, *, name=None, class_names=None, raw_max=None, image_shape=None,
             vocab_size=None, labels=True) -> Arrays:
    """Reads an .npz in the Keras layout: `x_train`, `y_train`, and optionally `x_test`,
    `y_test` and `class_names`. `y_*` may be left out when `labels=False`."""
    data = _load_npz(path)
    return read_mapping(data, source=path, name=name or pathlib.Path(path).stem, class_names=class_names,
                        raw_max=raw_max, image_shape=image_shape, vocab_size=vocab_size, labels=labels)


def read_arrays(data, *, vocab_size=None, labels=True) -> Arrays:
    """Arrays in memory, as `keras.datasets` returns them: `(x, y)`, `((x_train, y_train),
    (x_test, y_test))`, `x` alone (with `labels=False`), or a dict in the .npz layout."""
    if isinstance(data, dict):
        mapping = dict(data)
    elif isinstance(data, np.ndarray):
        mapping = {"x_train": data}
    elif (isinstance(data, (tuple, list)) and len(data) == 2
          and all(isinstance(part, (tuple, list)) and len(part) == 2 for part in data)):
        (x_train, y_train), (x_test, y_test) = data
        mapping = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        mapping = dict(x_train=data[0], y_train=data[1])
    else:
        raise TypeError("Arrays must be x, (x, y), ((x_train, y_train), (x_test, y_test)) or a dict "
                        f"with x_train, y_train, x_test, y_test. Received: {type(data).__name__}"
                        + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else ""))
    converted = {}
    for key, value in mapping.items():
        if value is None:
            continue
        try:
            converted[key] = np.asarray(value)
        except (ValueError, TypeError) as e:
            raise ValueError(f"arrays: {key} is not an array ({e}).") from None
    return read_mapping(converted, source="arrays", name="arrays", vocab_size=vocab_size, labels=labels)


def read_mapping(data, *, source, name, class_names=None, raw_max=None, image_shape=None,
                 vocab_size=None, labels=True) -> Arrays:
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
        raise ValueError(f"{path} is missing the key(s) {', '.join(missing)}; the Keras layout is "
                         f"x_train, y_train and optionally x_test, y_test. Found: {', '.join(sorted(data))}")
    if class_names is None and "class_names" in data:
        class_names = tuple(str(c) for c in np.asarray(data["class_names"]).ravel())
        if not class_names:
            raise ValueError(f"{path}: class_names is empty; it must name every class, label i "
                             f"at index i. Received: shape {np.shape(data['class_names'])}")
    x = data["x_train"]
    if x.dtype.kind not in "uif":
        raise ValueError(f"{path}: x_train must hold numbers. Received: dtype {x.dtype}")
    if vocab_size is not None or x.ndim == 2:
        kind = "sequence" if vocab_size is not None else "table"
    else:
        kind = "image"
    return _checked(path, name, kind, data["x_train"], data.get("y_train"),
                    data.get("x_test"), data.get("y_test"), class_names=class_names,
                    raw_max=raw_max, image_shape=image_shape, vocab_size=vocab_size)


def read_csv(path) -> Arrays:
    """Reads a CSV of numbers: one example a row, the column named `label` (else the last
    column) holds integer labels, the other columns are the features. A first row that is
    not all numbers is a header."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # Excel writes a BOM
            rows = [(i, row) for i, row in enumerate(csv.reader(f), start=1)
                    if any(cell.strip() for cell in row)]
    except UnicodeDecodeError as e:
        raise ValueError(f"Could not read {path}: it is not UTF-8 text. Received: byte "
                         f"{e.object[e.start:e.start + 1].hex()} at offset {e.start}") from None
    except (OSError, csv.Error) as e:
        raise ValueError(f"Could not read {path}: {_reason(e)}.") from None
    header = None
    if rows and not all(_is_number(c) for c in rows[0][1]):
        header = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{path} has no data rows.")
    width = len(header or rows[0][1])
    if width < 2:
        raise ValueError(f"{path} needs at least 2 columns (features and a label). Received: {width} column")
    for line, row in rows:
        if len(row) != width:
            raise ValueError(f"{path}, line {line}: expected {width} columns. Received: {len(row)}")
        for cell in row:
            if not _is_number(cell):
                raise ValueError(f"{path}, line {line}: every cell must be a number. Received: {cell!r}")
    table = np.array([row for _, row in rows], dtype=np.float64)
    label = header.index("label") if header and "label" in header else width - 1
    y = table[:, label]
    with np.errstate(over="ignore"):
        x = np.delete(table, label, axis=1).astype(np.float32)
    bad = np.argwhere(~np.isfinite(x))  # in float32: 1e40 overflows to inf
    if len(bad):
        (line, _), column = rows[bad[0][0]], bad[0][1] + (bad[0][1] >= label)
        name = f"column {header[column]!r}" if header else f"column {column + 1}"
        raise ValueError(f"{path}, line {line}, {name}: features must be finite numbers. "
                         f"Received: {rows[bad[0][0]][1][column].strip()!r} ({len(bad)} non-finite cells in all)")
    return _checked(path, pathlib.Path(path).stem, "table", x, y)


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


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------------------- checks


def _checked(path, name, kind, x_train, y_train, x_test=None, y_test=None, *, class_names=None,
             raw_max=None, image_shape=None, vocab_size=None) -> Arrays:
    """Validates the arrays of `path` and returns them as an `Arrays` (labels int32,
    gray images with a channel axis, images checked non-negative)."""
    xs = {"x_train": x_train, "x_test": x_test}
    for key, x in xs.items():
        if x is None:
            continue
        if x.dtype.kind not in "uif":
            raise ValueError(f"{path}: {key} must hold numbers. Received: dtype {x.dtype}")
        if x.ndim == 0 or len(x) == 0:
            raise ValueError(f"{path}: {key} is {'a single number' if x.ndim == 0 else 'empty'}; it must hold "
                             f"examples along its first axis. Received: shape {x.shape}")
        # checked in float32, the type training sees: 1e40 in a float64 array becomes inf there
        with np.errstate(over="ignore"):
            finite = np.isfinite(x if x.dtype.itemsize <= 4 else x.astype(np.float32)) if x.dtype.kind == "f" else None
        if finite is not None and not finite.all():
            first = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise ValueError(f"{path}: {key} holds NaN or inf values in float32 ({int(np.sum(~finite))} in all; "
                             f"the first at index {first}). Received: {x[first]}")
        if kind == "image":
            if x.ndim == 3:
                xs[key] = x = x[..., None]
            if x.ndim != 4 or x.shape[-1] not in (1, 3):
                raise ValueError(f"{path}: {key} must hold images (N, H, W), (N, H, W, 1) or "
                                 f"(N, H, W, 3). Received: shape {x.shape}")
            if image_shape is not None and x.shape[1:] != image_shape:
                raise ValueError(f"{path}: {key} must have shape (N, {', '.join(map(str, image_shape))}). "
                                 f"Received: shape {x.shape}")
        elif x.ndim != 2:
            raise ValueError(f"{path}: {key} must be 2-D (examples, features). Received: shape {x.shape}")
    x_train, x_test = xs["x_train"], xs["x_test"]
    if x_test is not None and x_test.shape[1:] != x_train.shape[1:]:
        raise ValueError(f"{path}: x_test examples must have the shape of x_train's, "
                         f"{x_train.shape[1:]}. Received: shape {x_test.shape}")

    ys = {}
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if y is None:
            ys[split] = None
            continue
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"{path}: y_{split} must be 1-D integer labels. Received: shape {y.shape}")
        if x is not None and len(y) != len(x):
            raise ValueError(f"{path}: x_{split} and y_{split} must have the same length. "
                             f"Received: {len(x)} and {len(y)}")
        with np.errstate(invalid="ignore"):  # NaN and inf are not integers either
            integers = y.dtype.kind in "ui" or y.dtype.kind == "f" and bool(np.all(np.mod(y, 1) == 0))
        if not integers:
            raise ValueError(f"{path}: y_{split} must hold integer labels. Received: dtype {y.dtype}, "
                             f"first values {y[:5].tolist()}")
        ys[split] = y
    labelled = [y for y in ys.values() if y is not None]
    if labelled:
        low, high = min(y.min() for y in labelled), max(y.max() for y in labelled)
        received = f"Received: labels from {_number(low)} to {_number(high)}"
        if class_names is None:
            if low < 0:
                top = _number(high) if high > 0 else "K-1"
                raise ValueError(f"{path}: labels must be in 0..{top}. {received}")
            # inferred classes are 0..max: a stray label (100000 among 0..9) must not make
            # a 100,001-class model, so every class needs a training example
            present = np.unique(ys["train"] if ys["train"] is not None else np.concatenate(labelled))
            high = int(high)
            missing = _missing_classes(present, high)
            if missing:
                shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
                what = f"classes {shown}" if len(missing) > 1 else f"class {shown}"
                raise ValueError(f"{path}: labels must be 0..K-1 with every class present; {what} "
                                 f"({_number(high + 1 - len(present))} of {_number(high + 1)}) "
                                 f"{'have' if len(missing) > 1 else 'has'} no training example. {received}")
            class_names = tuple(str(i) for i in range(high + 1))
        if low < 0 or high >= len(class_names):
            raise ValueError(f"{path}: labels must be in 0..{len(class_names) - 1}. {received}")
        ys = {k: None if y is None else y.astype(np.int32) for k, y in ys.items()}

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
                raise ValueError(f"{path}: {key} must hold integer tokens in 0..{vocab_size - 1} "
                                 f"(vocab_size={vocab_size}). Received: values from {x.min()} to {x.max()}")
        x_train = x_train.astype(np.int32)
        x_test = None if x_test is None else x_test.astype(np.int32)
    return Arrays(name=name, source=str(path), kind=kind, x_train=x_train, y_train=ys["train"],
                  x_test=x_test, y_test=ys["test"], class_names=class_names, raw_max=raw_max,
                  vocab_size=vocab_size)
