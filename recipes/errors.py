"""The errors the command answers in one line, and the one way to shorten an exception to a line.

`ConfigError` is what the user gave (settings, data, a run directory); `TrainingError` is a
run that started and could not finish; `JobLostError` a process of a job that went away.
Every module raises these from below, so none reaches up to where they are caught
(`recipes.cli.main`).
"""

from __future__ import annotations

import contextlib


class ConfigError(ValueError):
    """A configuration the user gave is invalid; the message is one line for the CLI."""


class TrainingError(RuntimeError):
    """Training started but could not finish (for example the loss became NaN)."""


class JobLostError(TrainingError):
    """Another process of a job went away. This process cannot leave its job cleanly (JAX's
    shutdown waits for every process), so the command ends it at once after saying so."""


def first_line(error: BaseException, *, default: str | None = None) -> str:
    """The first line of an exception's message; `default` (else the exception type's name) when empty."""
    text = str(error).strip()
    if text:
        return text.splitlines()[0]
    return default if default is not None else type(error).__name__


@contextlib.contextmanager
def user_errors():
    """Turns the loaders' and builders' `ValueError`/`TypeError`/`OSError` into `ConfigError`.

    Used around the steps that only fail on what the user gave, so the command can
    answer in one line; errors raised while training keep their traceback.
    """
    try:
        yield
    except ConfigError:
        raise
    except (ValueError, TypeError, OSError) as e:
        raise ConfigError(first_line(e, default=repr(e))) from None
