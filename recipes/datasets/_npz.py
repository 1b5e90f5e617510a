"""Reads `.npz` files safely: every member eagerly (so a damaged archive fails here, in one
line, not later inside numpy), and object arrays only through an unpickler that builds
numpy arrays and nothing else (a tampered file cannot run code)."""

from __future__ import annotations

import lzma
import pickle
import struct
import zipfile
import zlib

import numpy as np


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays (and plain containers) only, so a tampered file cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(f, path):
    try:
        return _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except Exception as e:
        raise ValueError(f"Could not read {path}: {e}.") from None


_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    struct.error,
    KeyError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    MemoryError,
    OSError,
    ValueError,
    TypeError,
)


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
                raise ValueError(
                    f"Could not read {path}: the file is corrupted ({member.filename!r}: {_reason(e)})."
                ) from None
            if not objects:
                raise ValueError(
                    f"{path}: {key} is an object array, refused for safety (reading it would "
                    f"unpickle, which can run any code); save arrays of numbers or strings. "
                    f"Received: dtype {dtype}"
                )
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
