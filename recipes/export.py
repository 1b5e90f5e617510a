"""Moved to `recipes.trained.export`; this name stays for one release."""

from recipes.trained._runtimes import (  # noqa: F401
    BATCH,
    FORMATS,
    Exported,
    ExportError,
    as_float32,
    litert_interpreter,
    run_exported,
    with_preprocessing,
)
from recipes.trained.export import INSTALL, TOLERANCE, export_command, export_run  # noqa: F401
