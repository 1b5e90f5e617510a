"""Property tests of the file readers (.npz, .csv, image folders) on malformed input.

Whatever the bytes, `load_dataset` returns a data set one can draw a batch from, or
raises one ValueError, TypeError or OSError whose message is a single line; never
another exception type (zlib.error, InvalidArgumentError during an epoch, ...).
Derandomized, so CI sees the same inputs on every run; `-s` prints how many were tried.
"""

import collections
import io
import pathlib
import tempfile

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from recipes.datasets import load_dataset

TRIED = collections.Counter()  # (reader, outcome) -> inputs
SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,  # the same inputs on every run
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
ALLOWED = (ValueError, TypeError, OSError, FileNotFoundError)


def _outcome(reader, source, **kwargs):
    """Loads `source`; on success draws a batch and checks it, on failure checks the error."""
    try:
        train, _, _, info = load_dataset(source, batch_size=4, **kwargs)
    except Exception as e:  # noqa: BLE001 - the type is what is tested
        assert type(e) in ALLOWED, f"{type(e).__name__} escaped: {e}"
        assert str(e) and "\n" not in str(e), f"not one line: {str(e)!r}"
        TRIED[reader, "refused"] += 1
        return
    batch = next(iter(train))
    x, y = batch if kwargs.get("labels", True) else (batch, None)
    x = x.numpy()
    assert len(x) and x.shape[1:] == info.input_shape
    if x.dtype.kind == "f":
        assert np.isfinite(x).all()
    if info.value_range is not None:
        assert info.value_range[0] <= x.min() and x.max() <= info.value_range[1]
    if y is not None:
        assert info.num_classes >= 2 and 0 <= y.numpy().min() and y.numpy().max() < info.num_classes
    TRIED[reader, "loaded"] += 1


# ------------------------------------------------------------------------ bytes


@st.composite
def damage(draw, data):
    """Leaves `data` as it is, or truncates it, flips bytes in it, or replaces it."""
    how = draw(st.sampled_from(["none", "none", "truncate", "flip", "random", "empty", "text"]))
    if how == "truncate" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "flip" and data:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(out) - 1))
            out[at] ^= draw(st.integers(1, 255))
        return bytes(out)
    if how == "random":
        return draw(st.binary(max_size=300))
    if how == "empty":
        return b""
    if how == "text":
        return draw(st.text(max_size=50)).encode("utf-8", "replace")
    return data


# ------------------------------------------------------------------------- .npz

SPECIALS = [np.nan, np.inf, -np.inf, -1.0, 0.5, 1e40, 1e300, 100000.0, 255.0, 2.0**40]
DTYPES = ["uint8", "int16", "int64", "uint64", "float16", "float32", "float64", "bool", "complex64", "U3", "object"]


def _with_dtype(values, dtype):
    if dtype == "object":  # ragged lists of numbers, as in imdb.npz
        values = np.atleast_1d(values)
        out = np.empty(len(values), dtype=object)
        for i, row in enumerate(values):
            out[i] = np.ravel(row).tolist()[: i + 1]
        return out
    if dtype == "U3":
        return values.astype(str).astype("U3")
    with np.errstate(all="ignore"):
        return values.astype(dtype)


@st.composite
def npz_bytes(draw):
    """A valid .npz (images, a table or tokens) with, mostly, a few things wrong in it."""
    n, k = draw(st.integers(1, 12)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    shape = draw(st.sampled_from([(6, 5), (4, 4, 1), (3, 4, 3), (7,)]))
    arrays = {
        "x_train": rng.integers(0, 256, (n, *shape)).astype(draw(st.sampled_from(["uint8", "float32"]))),
        "y_train": np.arange(n) % k,
    }
    if draw(st.booleans()):
        m = draw(st.integers(1, 5))
        arrays.update(x_test=rng.integers(0, 256, (m, *shape)).astype(arrays["x_train"].dtype), y_test=np.arange(m) % k)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        key = draw(st.sampled_from(["x_train", "y_train", "x_test", "y_test", "class_names", "x"]))
        what = draw(st.sampled_from(["drop", "dtype", "shape", "special", "length", "replace"]))
        value = arrays.get(key, rng.integers(0, 3, n))
        if what == "drop":
            arrays.pop(key, None)
        elif what == "dtype":
            arrays[key] = _with_dtype(np.asarray(value, dtype=np.float64), draw(st.sampled_from(DTYPES)))
        elif what == "shape":
            arrays[key] = rng.integers(0, 4, draw(st.lists(st.integers(0, 5), max_size=5).map(tuple)))
        elif what == "special" and np.size(value) and np.asarray(value).dtype.kind in "uif":
            value = np.asarray(value, dtype=np.float64)
            value.flat[draw(st.integers(0, value.size - 1))] = draw(st.sampled_from(SPECIALS))
            with np.errstate(all="ignore"):
                arrays[key] = value.astype(draw(st.sampled_from(["float64", "float32", "int64", "uint8"])))
        elif what == "length":
            arrays[key] = np.asarray(value)[: draw(st.integers(0, len(np.atleast_1d(value))))]
        elif what == "replace" and key == "class_names":
            arrays[key] = np.array(draw(st.lists(st.text(max_size=3), max_size=5)))
    buffer = io.BytesIO()
    (np.savez_compressed if draw(st.booleans()) else np.savez)(buffer, **arrays)
    data = buffer.getvalue()
    return draw(damage(data)) if draw(st.integers(0, 3)) == 0 else data


OPTIONS = [
    {"validation_split": 0},
    {"validation_split": 0},
    {},
    {"validation_split": 0.5, "return_test": "auto"},
    {"validation_split": 0, "return_test": True},
    {"validation_split": 0, "channels": 3},
    {"validation_split": 0, "image_size": (3, 3)},
    {"validation_split": 0, "sequence_length": 2},
    {"validation_split": 0, "as_sequence": True},
    {"validation_split": 0, "vocab_size": 300},
]


@settings(max_examples=200, **SETTINGS)
@given(data=npz_bytes(), labels=st.booleans(), options=st.sampled_from(OPTIONS))
def test_npz_files_load_or_fail_in_one_line(data, labels, options):
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "data.npz"
        path.write_bytes(data)
        _outcome("npz", path, labels=labels, **options)


# -------------------------------------------------------------------------- CSV

CELLS = st.one_of(
    st.integers(-3, 5).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "",
            " 1 ",
            "nan",
            "inf",
            "1e40",
            "x",
            "label",
            "100000",
            "0.5",
            "1e300",
            "-0",
            "1_000",
            "0x10",
            '"1"',
            '"',
            "é",
            "1,2",
            "\x00",
        ]
    ),
)


@st.composite
def csv_bytes(draw):
    """A valid CSV (a header or none, the label last or in a `label` column) with, mostly,
    a few cells, rows or bytes wrong in it."""
    width, n, k = draw(st.integers(2, 4)), draw(st.integers(1, 10)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    label = draw(st.integers(0, width - 1)) if draw(st.booleans()) else width - 1
    rows = [[str(i % k) if j == label else f"{rng.normal():.3f}" for j in range(width)] for i in range(n)]
    if draw(st.booleans()):
        rows.insert(0, ["label" if j == label else f"f{j}" for j in range(width)])
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        row = draw(st.integers(0, len(rows) - 1))
        what = draw(st.sampled_from(["cell", "cell", "ragged", "drop", "blank"]))
        if what == "cell":
            rows[row][draw(st.integers(0, len(rows[row]) - 1))] = draw(CELLS)
        elif what == "ragged":
            rows[row] = rows[row][: draw(st.integers(0, width - 1))] or rows[row] + ["1"]
        elif what == "drop" and len(rows) > 1:
            rows.pop(row)
        elif what == "blank":
            rows[row] = [""]
    text = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"])).join(",".join(r) for r in rows)
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"])), "replace")
    if draw(st.integers(0, 5)) == 0:  # bytes that are not UTF-8
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff\xfe", b"\x80", b"\xc3"])) + data[at:]
    return draw(damage(data)) if draw(st.integers(0, 4)) == 0 else data


@settings(max_examples=200, **SETTINGS)
@given(data=csv_bytes(), labels=st.booleans(), options=st.sampled_from(OPTIONS[:5] + OPTIONS[7:8]))
def test_csv_files_load_or_fail_in_one_line(data, labels, options):
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "data.csv"
        path.write_bytes(data)
        _outcome("csv", path, labels=labels, **options)


# ---------------------------------------------------------------- image folders


def _encode(pixels, fmt):
    if fmt == "png" or fmt == "jpg" and pixels.shape[-1] == 4:
        return tf.io.encode_png(pixels).numpy()
    if fmt == "jpg":
        return tf.io.encode_jpeg(pixels).numpy()
    out = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels[..., :3]).save(out, fmt.upper())
    return out.getvalue()


@st.composite
def image_file(draw):
    """A small PNG, JPEG, GIF or BMP; one in four damaged; now and then a misleading name."""
    fmt = draw(st.sampled_from(["png", "png", "jpg", "gif", "bmp"]))
    h, w, c = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.sampled_from([1, 3, 4]))
    pixels = np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, 256, (h, w, c), dtype=np.uint8)
    data = _encode(pixels, fmt)
    if draw(st.integers(0, 3)) == 0:
        data = draw(damage(data))
    suffix = draw(st.sampled_from([f".{fmt}"] * 6 + [".PNG", ".jpeg", ".txt"]))  # a .txt is not read
    return suffix, data


@settings(max_examples=80, **SETTINGS)
@given(
    classes=st.lists(st.lists(image_file(), min_size=0, max_size=5), min_size=0, max_size=3),
    loose=st.lists(image_file(), max_size=1),
    labels=st.booleans(),
    options=st.sampled_from(
        [
            {"validation_split": 0},
            {"validation_split": 0},
            {},
            {"validation_split": 0.5},
            {"validation_split": 0, "channels": 1},
            {"validation_split": 0, "image_size": (3, 4), "channels": 3},
            {"validation_split": 0, "as_sequence": True},
        ]
    ),
)
def test_image_folders_load_or_fail_in_one_line(classes, loose, labels, options):
    with tempfile.TemporaryDirectory() as folder:
        root = pathlib.Path(folder) / "imgs"
        root.mkdir()
        for i, files in enumerate(classes):
            (root / f"c{i}").mkdir()
            for j, (suffix, data) in enumerate(files):
                (root / f"c{i}" / f"{j}{suffix}").write_bytes(data)
        for j, (suffix, data) in enumerate(loose):  # a file beside the class folders
            (root / f"loose{j}{suffix}").write_bytes(data)
        _outcome("image folder", root, labels=labels, **options)


# ------------------------------------------------------------------------ report


def test_report_inputs_tried():
    """Prints (with -s) how many inputs the tests above tried, per reader and outcome."""
    total = sum(TRIED.values())
    print(
        f"\nhypothesis inputs tried: {total}: "
        + ", ".join(f"{reader} {outcome} {n}" for (reader, outcome), n in sorted(TRIED.items()))
    )
    # each reader whose tests ran in this process (pytest-xdist spreads them) both loaded and refused something
    tried = [reader for reader in ("npz", "csv", "image folder") if TRIED[reader, "loaded"] + TRIED[reader, "refused"]]
    assert all(TRIED[reader, outcome] for reader in tried for outcome in ("loaded", "refused")), TRIED
