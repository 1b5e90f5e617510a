"""Atomic file writes: a crash mid-write never leaves a half-written file in place."""

import os
import tempfile


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
    stem, ext = os.path.splitext(name)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{stem}.", suffix=f".tmp{ext}")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
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
