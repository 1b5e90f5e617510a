"""The `recipes` logger: what a run says, on stdout (warnings on stderr), from process 0 alone.

Modules say things with `logger.info(...)` rather than passing a `log=` function down their
calls. A job's other processes stay silent through `ProcessZeroOnly`, the filter
`recipes.job.join` installs (as Lightning's `rank_zero_info` and timm's logging do).
Applications that configure logging themselves can replace the handler: it is the
logger's only one, and the logger does not propagate to the root logger while it has it.
"""

from __future__ import annotations

import contextlib
import logging
import sys

logger = logging.getLogger("recipes")


class _Console(logging.Handler):
    """Writes each message alone on a line, to the `sys.stdout`/`sys.stderr` of the moment
    (so pytest's capture and redirections see it): warnings and above to stderr."""

    def emit(self, record):
        try:
            stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


class ProcessZeroOnly(logging.Filter):
    """Lets records through on process 0 of a job only."""

    def __init__(self, process_id: int):
        super().__init__()
        self.process_id = process_id

    def filter(self, record) -> bool:
        return self.process_id == 0


def speak_from(process_id: int) -> None:
    """Installs `ProcessZeroOnly(process_id)` on the logger, replacing any before it."""
    for old in [f for f in logger.filters if isinstance(f, ProcessZeroOnly)]:
        logger.removeFilter(old)
    logger.addFilter(ProcessZeroOnly(process_id))


@contextlib.contextmanager
def forwarded_to(log):
    """While inside, every message of the logger also goes to `log(message)` (the old `log=`
    arguments of the public functions), instead of the console."""
    if log is None:
        yield
        return

    class _Call(logging.Handler):
        def emit(self, record):
            log(record.getMessage())

    handler, console = _Call(), [h for h in logger.handlers if isinstance(h, _Console)]
    for h in console:
        logger.removeHandler(h)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        for h in console:
            logger.addHandler(h)


if not logger.handlers:
    _handler = _Console()
    _handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
