"""What is installed, and the one-line refusal when a feature needs what is not.

TensorFlow is an extra (`keras-recipes[tensorflow]`), not a dependency: JAX and PyTorch installs
train every recipe without it (the data engine is then Keras's `PyDataset`, TensorBoard's events
are written by tensorboardX). This module imports nothing of recipes and no Keras; it looks for
packages without importing them, so asking costs no start-up.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import pathlib

# the extra of setup.cfg that brings each backend
EXTRAS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
_INSTALL = "pip install 'keras-recipes[{extra}]'"


# every export format is written from a SavedModel (ONNX, LiteRT and OpenVINO are converted from it)
EXPORT_NEEDS_TENSORFLOW = (
    "Export writes through TensorFlow (a SavedModel, then ONNX, LiteRT or OpenVINO from it), which is not "
    "installed: pip install 'keras-recipes[export]' (or [tensorflow])"
)


class MissingDependency(ImportError):
    """A feature needs a package that is not installed; the message (one line) names the extra."""


@functools.cache
def installed(module: str) -> bool:
    """`module` (a top-level package) can be imported, found without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def has_tensorflow() -> bool:
    return installed("tensorflow")


def backends_installed() -> tuple[str, ...]:
    """The Keras backends whose package is installed, in recipes' order of preference."""
    return tuple(name for name in ("tensorflow", "jax", "torch") if installed(name))


def require_tensorflow(feature: str) -> None:
    """Raises `MissingDependency` (one line naming `feature` and the extra) when TensorFlow is absent."""
    if not has_tensorflow():
        raise MissingDependency(
            f"{feature} needs TensorFlow, which is not installed: {_INSTALL.format(extra='tensorflow')}"
        )


def backend_missing(name: str, source: str) -> MissingDependency:
    """The error for the backend `name`, asked for by `source` (`--backend`, ...), that is not installed."""
    others = backends_installed()
    return MissingDependency(
        f"The Keras backend {name!r} ({source}) is not installed: {_INSTALL.format(extra=EXTRAS[name])}"
        + (f", or use one that is: {', '.join(others)}" if others else "")
    )


def _configured_backend() -> str | None:
    """The backend Keras would read without KERAS_BACKEND: `$KERAS_HOME/keras.json`'s, if any."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        config = json.loads(pathlib.Path(home, "keras.json").read_text())
    except (OSError, ValueError):
        return None
    backend = config.get("backend") if isinstance(config, dict) else None
    return backend if isinstance(backend, str) else None


def choose_backend() -> str:
    """Sets `KERAS_BACKEND` before Keras is imported when Keras would otherwise pick an absent one.

    Keras's default is TensorFlow; in an install of `keras-recipes[jax]` or `[torch]` alone that
    import fails. Where neither `KERAS_BACKEND` nor `keras.json` names an installed backend, the
    first installed of TensorFlow, JAX and PyTorch is set. `KERAS_BACKEND` naming one that is not
    installed, or no backend at all, raises `MissingDependency` in one line naming the extra.

    Returns:
        The backend Keras will use.
    """
    named = os.environ.get("KERAS_BACKEND")
    if named:
        if named in EXTRAS and not installed(named):
            raise backend_missing(named, "KERAS_BACKEND")
        return named
    # keras.json: Keras writes one naming TensorFlow the first time it starts, so an absent backend
    # there is passed over, not refused
    configured = _configured_backend()
    if configured and (configured not in EXTRAS or installed(configured)):
        return configured
    found = backends_installed()
    if not found:
        raise MissingDependency(
            "No Keras backend is installed: pip install 'keras-recipes[tensorflow]' (or [jax], or [torch])"
        )
    os.environ["KERAS_BACKEND"] = found[0]
    return found[0]
