"""Predictions from a trained classifier run, on raw inputs, with the run's own preprocessing.

`recipes predict RUN inputs... [--top-k K] [--out preds.csv|preds.json]` prints a table
or writes CSV/JSON (see `write_predictions`).

The inputs are image files, folders of images, `.npz` and `.csv` files; for a run trained on
texts, `.csv`/`.tsv`/`.jsonl` files (one text a record, named `<file>:<line>`), `.txt` files,
folders of `.txt` files and texts themselves:
`recipes predict runs/lstm-reviews-... "what a wonderful film" reviews_new.csv`. An argument
that does not exist and looks like a file name (`reviews_new.csv`, `data/new`) fails as a
missing file, never classified as a sentence (see `recipes.preprocessing.read_inputs`).
"""

from __future__ import annotations

import pathlib

from recipes._atomic import atomic_write_text
from recipes._checks import is_int
from recipes.errors import ConfigError, first_line
from recipes.registry import get_spec
from recipes.run_directory import stored_config
from recipes.trained.loaded import Predictions, TrainedRun, load_run  # noqa: F401  (Predictions: recipes predict's result)

OUT_FORMATS = (".csv", ".json")


def check_out(out) -> pathlib.Path | None:
    """Checks `--out` before anything runs: a .csv or .json file in an existing folder."""
    if out is None:
        return None
    out = pathlib.Path(out)
    if out.suffix.lower() not in OUT_FORMATS:
        raise ConfigError(f"--out must name a .csv or .json file. Received: out={str(out)!r}")
    if out.is_dir():
        raise ConfigError(f"--out is a folder; name a .csv or .json file. Received: out={str(out)!r}")
    if not out.parent.is_dir():
        raise ConfigError(
            f"--out must be in an existing folder; {str(out.parent)!r} does not exist. Received: out={str(out)!r}"
        )
    return out


def check_top_k(k) -> int:
    if not is_int(k) or k < 1:
        raise ConfigError(f"--top-k must be a positive integer. Received: top_k={k!r}")
    return int(k)


def write_predictions(predictions: Predictions, out, k: int = 1) -> pathlib.Path:
    """Writes CSV or JSON (by `out`'s suffix) atomically: a failure leaves no partial file."""
    out = pathlib.Path(out)
    text = predictions.to_json(k) if out.suffix.lower() == ".json" else predictions.to_csv(k)
    atomic_write_text(out, text)
    return out


def predict_command(run_dir, inputs, *, top_k: int = 1, out=None, batch_size: int = 256, progress=None):
    """What `recipes predict` does: checks every argument, predicts, prints the table or writes the file."""
    top_k = check_top_k(top_k)
    out = check_out(out)
    if not is_int(batch_size) or batch_size < 1:
        raise ConfigError(f"--batch-size must be a positive integer. Received: batch_size={batch_size!r}")
    config = stored_config(run_dir)
    if get_spec(config["model"]).task != "classification":
        TrainedRun(pathlib.Path(run_dir), None, None, config, None).check_classifier()
    run = load_run(run_dir)
    try:
        result = run.predict_files(list(inputs), batch_size=batch_size, progress=progress)
    except ValueError as e:
        raise ConfigError(first_line(e)) from None
    if out is None:
        print(result.table(top_k))
        return result
    write_predictions(result, out, top_k)
    print(f"{len(result.names)} predictions written to {out}")
    return result
