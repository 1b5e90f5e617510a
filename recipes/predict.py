"""Moved to `recipes.trained` (`load_run`, `TrainedRun`, `predict_command`); this name stays for one release."""

from recipes.trained.loaded import TrainedRun, derive, load_run  # noqa: F401
from recipes.trained.prediction import (  # noqa: F401
    OUT_FORMATS,
    Predictions,
    check_out,
    check_top_k,
    predict_command,
    write_predictions,
)

Run = TrainedRun  # the old name of a trained run
