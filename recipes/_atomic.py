"""Atomic file writes: a crash mid-write never leaves a half-written file in place."""

import os
import re
import tempfile

# The names of the temporary files `atomic_write` makes: `.<name>.<random>.tmp<ext>`.
TEMPORARY = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp(\.[\w.]+)?")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write):
    """Calls `write(tmp_path)` and moves the result onto `path` in one step.

    The temporary file lives in the same directory and keeps the extension of
    `path` (Keras picks the format from it), so `os.replace` is atomic: a crash
    while writing leaves the previous `path` whole and no temporary file behind.
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # keep compound extensions whole: Keras wants `.weights.h5`, not `.h5`
    ext = ".weights.h5" if name.endswith(".weights.h5") else os.path.splitext(name)[1]
    stem = name[: -len(ext)] if ext else name
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{stem}.", suffix=f".tmp{ext}")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno is not None and e.filename in (None, tmp):
            e.filename = path  # name the file the user knows, not the temporary one
        raise
    try:  # make the rename itself durable; not possible on every platform
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write_text(path, text: str) -> None:
    """Writes `text` to `path` atomically."""

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            f.write(text)

    atomic_write(path, write)
