"""Argument checks shared by every layer of the package, and the one list of each setting's choices.

It imports nothing of recipes (and no Keras), so `datasets`, `callbacks`, `hardware`,
`config` and the models can all use it without importing each other. Every check
raises `ValueError`/`TypeError` whose message names the argument and the value received.
"""

from __future__ import annotations

import numbers
import re

# The valid choices of each setting, in one place (config, hardware and callbacks read them).
BACKENDS = ("tensorflow", "jax", "torch")  # the Keras backends recipes trains on
STRATEGIES = ("auto", "default", "none", "mirrored", "onedevice")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
SCHEDULES = ("plateau", "cosine")


def is_int(value) -> bool:
    """An integer, and not a bool (which Python counts as one)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A real number, and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value, minimum: int = 1) -> int:
    """Returns `value` as an int, or raises if it is not an integer >= `minimum`."""
    if not is_int(value):
        raise TypeError(f"{name} must be an integer. Received: {name}={value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}. Received: {name}={value!r}")
    return int(value)


def check_int_tuple(name: str, value, minimum: int = 1) -> tuple[int, ...]:
    """Returns a non-empty sequence of integers >= `minimum` as a tuple (an int counts as one)."""
    if is_int(value):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not value:
        raise TypeError(f"{name} must be an integer or a non-empty list of integers. Received: {name}={value!r}")
    for v in value:
        if not is_int(v) or v < minimum:
            raise ValueError(f"{name} must contain integers >= {minimum}. Received: {name}={value!r}")
    return tuple(int(v) for v in value)


def check_rate(name: str, value) -> float:
    """Returns a dropout-like rate in [0, 1) as a float."""
    if not is_real(value):
        raise TypeError(f"{name} must be a number in [0, 1). Received: {name}={value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1). Received: {name}={value!r}")
    return float(value)


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}. Received: {name}={value!r}")
    return value


def check_shape(name: str, value, rank: int, min_size: int | None = None, allow_none: bool = False) -> tuple:
    """Validates a static input shape (no batch axis) of the given rank.

    Args:
        name: argument name used in messages.
        value: the shape the user gave.
        rank: the number of axes it must have.
        min_size: if given, the minimum of every axis but the last (spatial axes of images).
        allow_none: accept `None` for an axis of variable length (sequence timesteps).
    """
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a tuple of {rank} integers. Received: {name}={value!r}")
    if len(value) != rank:
        raise ValueError(f"{name} must have {rank} dimensions. Received: {name}={tuple(value)!r}")
    for v in value:
        if v is None and allow_none:
            continue
        if not is_int(v) or v < 1:
            raise ValueError(f"{name} must contain positive integers. Received: {name}={tuple(value)!r}")
    if min_size is not None and min(value[:-1]) < min_size:
        spatial = "x".join([str(min_size)] * (rank - 1))
        raise ValueError(f"Input size must be at least {spatial}. Received: {name}={tuple(value)!r}")
    return tuple(None if v is None else int(v) for v in value)


_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2, "mib": 1024**2}
_UNITS.update({"g": 1024**3, "gb": 1000**3, "gib": 1024**3, "t": 1024**4, "tb": 1000**4, "tib": 1024**4})


def parse_bytes(name: str, value) -> int:
    """A size in bytes from an int (`0`, `2147483648`) or a string (`"2GiB"`, `"512 MB"`, `"0"`)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a size such as 2GiB, 512MiB or 0. Received: {name}={value!r}")
    if is_int(value) and value >= 0:
        return int(value)
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
    if match is None or match[2].lower() not in _UNITS:
        raise ValueError(f"{name} must be a size such as 2GiB, 512MiB or 0. Received: {name}={value!r}")
    return int(float(match[1]) * _UNITS[match[2].lower()])


def format_bytes(n: int) -> str:
    """`2147483648` -> `"2 GiB"`."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}".replace(".0 ", " ")
    return f"{n} B"
