"""Moved: one run is `recipes.run` (`train`, `prepare`), the recipe/data glue `recipes.recipe`, the
errors `recipes.errors`, the run directory `recipes.run_directory`, a finished run's use
`recipes.trained`. This name re-exports them for one release."""

from recipes.config import RESUME_SETTINGS  # noqa: F401
from recipes.errors import ConfigError, JobLostError, TrainingError, user_errors  # noqa: F401
from recipes.recipe import (  # noqa: F401
    build_model,
    builder_kwargs,
    check_compatible,
    evaluate_model,
    held_out,
    load_data,
    open_data,
)
from recipes.run import backend_for as check_backend  # noqa: F401
from recipes.run import other_backend, train  # noqa: F401
from recipes.run import prepare as _prepare_run
from recipes.run_directory import (  # noqa: F401
    RUNS_ROOT,
    check_config_file,
    completed_epochs,
    default_run_dir,
    find_unfinished,
    load_model_file,
    model_path,
    read_config,
    read_resumes,
    remove_stale_temporaries,
    run_state,
    write_json,
)
from recipes.run_directory import stored_config as open_run  # noqa: F401
from recipes.trained import evaluate, sample  # noqa: F401


def prepare(config: dict, *, log=None):
    """`recipes.run.prepare` as it was: `(plan, (train, val, test, info), model)`."""
    from recipes._log import forwarded_to

    with forwarded_to(log):
        run = _prepare_run(config)
    return run.plan, run.data, run.model
