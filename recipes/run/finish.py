"""The end of a run, for one process and for a job alike: the NaN check, the model measured (best,
else last), the samples judged, metrics.json, the resume point removed."""

from __future__ import annotations

import contextlib
import os
import pathlib

import numpy as np

from recipes import job as job_lib
from recipes.callbacks import RunBackup
from recipes.errors import TrainingError
from recipes.judge import quality_of
from recipes.recipe import evaluate_model, held_out
from recipes.run_directory import completed_epochs, load_model_file, model_path, write_json


def finalize(run, history, last_model, judge=None) -> dict:
    """The run's test metrics, written to metrics.json by process 0 and shared with the job.

    Args:
        run: the `Run`.
        history: what `fit()` returned.
        last_model: called for the model in memory when the run directory has neither
            best.keras nor last.keras.
        judge: the run's `Judge` (generative runs): the samples' quality joins the metrics.

    Raises:
        TrainingError: when a loss became NaN (on every process of a job).
    """
    losses = [v for k, vs in history.history.items() if "loss" in k for v in vs]
    if any(not np.isfinite(v) for v in losses):
        raise TrainingError(_nan_message(run.config, run.directory, history))
    metrics = None
    if run.job.writes:
        split, held = held_out(run.data.test, run.data.val, run.data.train)
        # a data-parallel run measures process 0's model on its own devices
        with job_lib.no_distribution() if run.plan.data_parallel else contextlib.nullcontext():
            final = model_path(run.directory, last_model())
            final = load_model_file(final) if isinstance(final, os.PathLike) else final
            metrics = evaluate_model(final, held, verbose=0)
            if judge is not None:
                metrics.update(quality_of(final, judge, run.judge.images))
        metrics["split"] = split
        write_json(run.directory / "metrics.json", metrics)
        remove_backup(run.directory)
    return job_lib.share(metrics)


def remove_backup(run_dir) -> None:
    RunBackup(os.fspath(pathlib.Path(run_dir) / "backup")).remove()


def _nan_message(config, run_dir, history) -> str:
    epoch = history.epoch[-1] + 1 if history.epoch else 1  # Keras's absolute index: right after a resume too
    lr = config["learning_rate"]
    lower = f" --learning-rate {lr / 10:g}" if lr else " --learning-rate <lower>"
    done = completed_epochs(run_dir)
    if (run_dir / "best.keras").exists() or done:
        kept = (
            f"The last good checkpoint is {run_dir / 'best.keras'}"
            if (run_dir / "best.keras").exists()
            else f"The resume point holds epoch {done}"
        )
        return (
            f"The loss became NaN in epoch {epoch}; training stopped. {kept}; continue from the last "
            f"good epoch with a lower learning rate: recipes train --resume {run_dir}{lower}"
        )
    return (
        f"The loss became NaN in epoch {epoch}, before any epoch completed; nothing was saved. "
        f"Try a lower learning rate: recipes train --resume {run_dir}{lower}"
    )
