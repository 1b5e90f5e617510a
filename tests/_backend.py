"""Runs test code under another Keras backend, in a fresh Python process.

Keras fixes its backend at import, and the test session imports it with TensorFlow
(see conftest.py), so a test for JAX or PyTorch runs its code in a subprocess:

    out = run_in_backend("jax", '''
        model = build_mlp(...)
        report(loss=float(model.evaluate(x, y, verbose=0)))
    ''')
    assert out["loss"] < 1

The code runs with `keras`, `np` (numpy), `json` and `report(**values)` defined;
`report` sends JSON-serialisable values (numpy arrays and scalars included) back as
the returned dict. Each call to `report` adds to it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BACKENDS = ("tensorflow", "jax", "torch")
_MARKER = "@@backend-report@@ "
_PRELUDE = f"""\
import json
import keras
import numpy as np


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"report() takes JSON values or numpy arrays. Received: {{value!r}}")


def report(**values):
    print({_MARKER!r} + json.dumps(values, default=_plain), flush=True)


"""


def backend_params():
    """`BACKENDS` as pytest params, each skipped when its package is not installed."""
    return [
        pytest.param(name, marks=pytest.mark.skipif(not available(name), reason=f"{name} is not installed"))
        for name in BACKENDS
    ]


def available(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None


def run_in_backend(backend: str, code: str, *, timeout: float = 600, env: dict | None = None) -> dict:
    """Runs `code` with `KERAS_BACKEND=backend` in a new process; returns what it `report`ed.

    Raises:
        AssertionError: when the process fails or times out, with the end of its output.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}. Received: backend={backend!r}")
    environ = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")])),
        **(env or {}),
    }
    program = _PRELUDE + textwrap.dedent(code)
    try:
        done = subprocess.run(
            [sys.executable, "-c", program], env=environ, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f"{backend}: no result after {timeout} s\n{error.stderr or ''}"[-4000:]) from None
    if done.returncode != 0:
        raise AssertionError(f"{backend}: exit status {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-6000:]}")
    result = {}
    for line in done.stdout.splitlines():
        if line.startswith(_MARKER):
            result.update(json.loads(line[len(_MARKER) :]))
    return result
