"""Moved: `evaluate` and `sample` to `recipes.trained`, a run directory's files to
`recipes.run_directory`, `held_out` and `evaluate_model` to `recipes.recipe`; this name stays
for one release."""

from recipes.recipe import evaluate_model, held_out  # noqa: F401
from recipes.run_directory import load_model_file, model_path, write_json  # noqa: F401
from recipes.run_directory import stored_config as open_run  # noqa: F401
from recipes.trained.evaluation import evaluate, sample  # noqa: F401
