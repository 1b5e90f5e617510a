"""The run directory: one per run, recognisable, held by one process, never foreign; and the
files a run keeps in it (config.yaml, the model files, metrics.json).

A run directory is either new (absent or empty) or one that `recipes` made: the
marker file `.recipes-run` is the first thing written into it. Anything else is
refused before a file is touched. While a process trains in a run directory it
holds an exclusive OS lock (`fcntl.flock` on `.lock`): the OS releases it when the
process ends, however it ends, so a lock is never stale. A second process that
wants the directory is refused with the holder's PID and host.

```python
with run_directory.claim("runs/vgg1") as held:   # raises RunDirError if foreign or in use
    ...                                          # train; held.path is the pathlib.Path
```
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import pathlib
import socket

from recipes import config as config_lib
from recipes._atomic import TEMPORARY as ATOMIC_TEMPORARY
from recipes._atomic import atomic_write_text
from recipes.errors import ConfigError, first_line

RUNS_ROOT = pathlib.Path("runs")

MARKER = ".recipes-run"
LOCK = ".lock"
# What recipes may leave in a directory before its marker exists: the lock, and the
# temporary file of the marker while another process is writing it.
_OURS_BEFORE_MARKER = (LOCK,)


class RunDirError(ValueError):
    """The run directory cannot be used: foreign files, in use, a file, not writable."""


def _listing(path: pathlib.Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def check_usable(path) -> str:
    """`"new"` (absent or empty) or `"run"` (made by recipes); raises `RunDirError` otherwise.

    Touches nothing: a refusal leaves every file of the user as it was.
    """
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"Run directory {str(path)!r} is a file, not a folder; choose another --run-dir.")
    if not path.exists():
        return "new"
    try:
        names = _listing(path)
    except OSError as e:
        raise RunDirError(f"Cannot read run directory {str(path)!r}: {e.strerror or e}.") from None
    if MARKER in names or _made_before_markers(path):
        return "run"
    foreign = [n for n in names if n not in _OURS_BEFORE_MARKER and not ATOMIC_TEMPORARY.fullmatch(n)]
    if foreign:
        shown = ", ".join(n + ("/" if (path / n).is_dir() else "") for n in foreign[:5])
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        raise RunDirError(
            f"Run directory {str(path)!r} holds files recipes did not write ({shown}{more}); "
            f"choose a new or empty folder for --run-dir."
        )
    return "new"


def _made_before_markers(path: pathlib.Path) -> bool:
    """A run written by a recipes version without markers: its config.yaml has recipes' keys."""
    import yaml

    try:
        config = yaml.safe_load((path / "config.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return False
    return isinstance(config, dict) and {"model", "dataset", "model_args", "steps_per_execution"} <= set(config)


def holder(path) -> str:
    """Who holds the lock of the run directory `path`, as written by the holder: `"pid 12 on host"`."""
    try:
        info = json.loads((pathlib.Path(path) / LOCK).read_text() or "{}")
        return f"pid {info['pid']} on {info['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def is_live(path) -> bool:
    """Whether a process holds the lock of the run directory `path` now."""
    import fcntl

    lock = pathlib.Path(path) / LOCK
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


class Claim:
    """A run directory held by this process; see `claim`."""

    def __init__(self, path: pathlib.Path, fd: int):
        self.path, self._fd = path, fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


@contextlib.contextmanager
def claim(path):
    """Creates (if absent) and locks the run directory `path` for this process.

    Writes the marker first when the directory is new, so a crash at any later
    point leaves a directory that `recipes` recognises as its own.

    Raises:
        RunDirError: the directory holds foreign files, is a file, cannot be
            created or written, or another process holds it (its PID and host
            are named).
    """

    path = pathlib.Path(path)
    check_usable(path)
    try:
        path.mkdir(parents=True, exist_ok=True)  # another process may make it at the same time
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise RunDirError(f"Cannot create run directory {str(path)!r}: {e.strerror or e}.") from None
    try:
        _lock_exclusive(fd)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise RunDirError(
                f"Run directory {str(path)!r} is in use by another training "
                f"({holder(path)}); wait for it to end or choose another --run-dir."
            ) from None
        raise RunDirError(f"Cannot lock run directory {str(path)!r}: {e.strerror or e}.") from None
    run = Claim(path, fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
        check_usable(path)  # the state may have changed while we waited for the lock
        if not (path / MARKER).exists():
            stamp = datetime.datetime.now().isoformat(timespec="seconds")
            atomic_write_text(path / MARKER, json.dumps({"created": stamp, "by": "recipes"}) + "\n")
    except OSError as e:
        run.release()
        raise RunDirError(f"Cannot write in run directory {str(path)!r}: {e.strerror or e}.") from None
    except BaseException:
        run.release()
        raise
    try:
        yield run
    finally:
        run.release()


def _lock_exclusive(fd, attempts: int = 20, pause: float = 0.05) -> None:
    """`flock(LOCK_EX)` without blocking, retried for about a second: `is_live` probes take
    the lock shared for a moment, and must not make a starting run look taken."""
    import fcntl
    import time

    for attempt in range(attempts):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) or attempt == attempts - 1:
                raise
            time.sleep(pause)


def unique_dir(root, stem: str) -> pathlib.Path:
    """A new directory `root/stem`, or `root/stem-2`, `-3`, ...: made here, so no other process gets it."""
    root = pathlib.Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"Cannot create the runs folder {str(root)!r}: {e.strerror or e}.") from None
    for n in range(1, 10_000):
        candidate = root / (stem if n == 1 else f"{stem}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
        except OSError as e:
            raise RunDirError(f"Cannot create run directory {str(candidate)!r}: {e.strerror or e}.") from None
    raise RunDirError(f"Too many runs named {stem!r} in {str(root)!r}.")


# ------------------------------------------------------------ the state of a run


def run_stem(config: dict) -> str:
    dataset = pathlib.Path(config["dataset"]).stem or "data"
    return f"{config['model']}-{dataset}"


def default_run_dir(config: dict, root=RUNS_ROOT) -> pathlib.Path:
    """A new, empty directory `root/<model>-<dataset>-<time>[-N]`, made now: no two runs share it."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return unique_dir(root, f"{run_stem(config)}-{stamp}")


def run_state(run_dir) -> str:
    """`"new"`, `"unfinished"` (resumable) or `"finished"`."""
    run_dir = pathlib.Path(run_dir)
    if (run_dir / "metrics.json").exists():
        return "finished"
    if (run_dir / "config.yaml").exists():
        return "unfinished"
    return "new"


def find_unfinished(config: dict, root=RUNS_ROOT):
    """The newest unfinished run under `root` with exactly this configuration that no
    process is training now, or `None`."""
    candidates = sorted(pathlib.Path(root).glob(f"{run_stem(config)}-*"), reverse=True)
    for run_dir in candidates:
        if (run_dir / MARKER).exists() and run_state(run_dir) == "unfinished" and not is_live(run_dir):
            try:
                stored = read_config(run_dir)
                if stored["backend"] is None:  # written before the backend was recorded
                    stored["backend"] = config.get("backend")
                if stored == comparable(config):
                    return run_dir
            except ConfigError:
                continue
    return None


def read_config(run_dir) -> dict:
    """The run's settings from its config.yaml (without the record of resumes)."""
    data = config_lib.load_yaml(pathlib.Path(run_dir) / "config.yaml")
    # a run written before `judge`, `backend`, the cache, the text settings or `monitor` existed had none
    defaults = {
        "judge": None,
        "backend": None,
        "cache_budget": config_lib.DEFAULTS["cache_budget"],
        "cache": None,
        "text_column": None,
        "label_column": None,
        "monitor": "auto",
    }
    return {**defaults, **{k: v for k, v in data.items() if k != "resumes"}}


def read_resumes(run_dir) -> list:
    return list(config_lib.load_yaml(pathlib.Path(run_dir) / "config.yaml").get("resumes") or [])


def comparable(config):
    """The configuration as it reads back from config.yaml."""
    import yaml

    return config_lib.read_yaml(yaml.safe_dump({k: config[k] for k in config_lib.DEFAULTS}, sort_keys=False))


def completed_epochs(run_dir) -> int:
    """Epochs the run's resume point holds (0 when there is none)."""
    meta = pathlib.Path(run_dir) / "backup" / "training_metadata.json"
    try:
        return int(json.loads(meta.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def remove_stale_temporaries(run_dir) -> None:
    """Deletes the temporary files of atomic writes that a killed process left behind.

    Only under the run's lock, and only names that `_atomic.atomic_write` makes."""
    run_dir = pathlib.Path(run_dir)
    for folder in (run_dir, run_dir / "backup", run_dir / "plots"):
        if folder.is_dir():
            for path in folder.iterdir():
                if ATOMIC_TEMPORARY.fullmatch(path.name) and path.is_file():
                    path.unlink()


def check_config_file(run_dir) -> None:
    """Refuses a run whose config.yaml cannot be read, saying what the user can do."""
    try:
        stored = read_config(run_dir)
        if stored.get("model") is None:
            raise ConfigError("it names no model")
    except ConfigError as e:
        raise ConfigError(
            f"{pathlib.Path(run_dir) / 'config.yaml'} is damaged ({str(e).rstrip('.')}); "
            f"the run cannot be resumed: start a new run, or restore the file."
        ) from None


# ------------------------------------------------------------- a finished run's files


def stored_config(run_dir) -> dict:
    """A run directory's configuration, resolved as `recipes train` resolves one (every key set).

    Raises:
        ConfigError: when `run_dir` is no run directory, or its config.yaml cannot be used.
    """
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory (no config.yaml).")
    check_config_file(run_dir)
    config = read_config(run_dir)
    try:
        return config_lib.resolve(config.get("model"), file=config)
    except ConfigError as e:
        raise ConfigError(f"{run_dir / 'config.yaml'}: {e}") from None


def model_path(run_dir, fallback=None):
    """The run's best model file, else its last one; `fallback` (a model) if neither exists."""
    for name in ("best.keras", "last.keras"):
        path = pathlib.Path(run_dir) / name
        if path.exists():
            return path
    if fallback is not None:
        return fallback
    raise ConfigError(f"Run directory {str(run_dir)!r} has no best.keras or last.keras.")


def load_model_file(path):
    """`keras.models.load_model`, with a damaged file reported in one line that names it."""
    import keras

    path = pathlib.Path(path)
    try:
        return keras.models.load_model(path)
    except Exception as e:  # zipfile, h5py, JSON, Keras's own "File not found" for a bad zip
        others = [n for n in ("best.keras", "last.keras") if n != path.name and (path.parent / n).exists()]
        hint = f"; {path.parent / others[0]} may still be whole" if others else ""
        raise ConfigError(
            f"{path} is corrupt or incomplete and cannot be loaded ({first_line(e)[:200]}){hint}."
        ) from None


def write_json(path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
