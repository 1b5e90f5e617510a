"""`fit()` of a prepared run: its callbacks, one process's fit (a data-parallel run goes to
`recipes.run.data_parallel`), and the resume from last.keras when the resume point is unreadable."""

from __future__ import annotations

import os
import pathlib

import keras

from recipes._log import logger
from recipes.callbacks import BackupError, InterruptBetweenSteps, SetLearningRate, default_callbacks, optimizers
from recipes.errors import TrainingError, first_line
from recipes.run import data_parallel
from recipes.run.finish import finalize
from recipes.run.reading import Reading


def callbacks(run, judge=None) -> list:
    """The callbacks of a run: `default_callbacks` with the run's settings, keeping the backup
    (removed once the metrics are written), and the rate a resume changes."""
    config = run.config
    scoring = {"judge": judge, "judge_images": run.judge.images.epoch_reference} if judge is not None else {}
    monitor = config["monitor"]
    if monitor.startswith("val_") and run.data.val is None:  # no validation split: the training figure
        monitor = monitor.removeprefix("val_")
    return default_callbacks(
        run.directory,
        validation_data=run.data.val,
        training_data=run.data.train,
        class_names=run.data.info.class_names,
        monitor=monitor,
        early_stopping_patience=config["early_stopping"],
        lr_schedule=config["lr_schedule"],
        keep_backup=True,
        **scoring,
    ) + ([SetLearningRate(run.changed["learning_rate"])] if "learning_rate" in run.changed else [])


def fit(run) -> dict:
    """Trains the prepared, claimed run to its last epoch and returns its test metrics (`finalize`)."""
    if run.plan.data_parallel:  # a job of several processes, or several devices of this one
        return data_parallel.fit(run, callbacks(run))
    judge = run.judge.ready(run.directory) if run.judge else None
    model, data = run.model, run.data
    settings = dict(validation_data=data.val, epochs=run.config["epochs"], verbose=run.verbose, shuffle=False)
    interrupt, reading = InterruptBetweenSteps(), Reading(run)
    try:
        with interrupt.installed(), reading:
            history = model.fit(data.train, callbacks=callbacks(run, judge) + [interrupt, reading.position], **settings)
    except BackupError as e:
        model, done = _model_from_last(run, e)
        logger.info(
            f"{e} Resuming from last.keras ({done} epochs completed) instead; the unreadable backup is kept "
            f"in {run.directory / 'backup.unreadable'}."
        )
        os.replace(run.directory / "backup", _free_name(run.directory / "backup.unreadable"))
        with interrupt.installed(), reading:
            history = model.fit(
                data.train,
                callbacks=callbacks(run, judge) + [interrupt, reading.position],
                initial_epoch=done,
                **settings,
            )
    return finalize(run, history, lambda: model, judge)


def _free_name(path: pathlib.Path) -> pathlib.Path:
    n, candidate = 1, path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _model_from_last(run, error):
    """When both resume points are unreadable: last.keras and the epochs it completed."""
    last = run.directory / "last.keras"
    if not last.exists():
        raise TrainingError(
            f"{error} There is no last.keras to resume from either: start a new run "
            f"(this one's files are left as they are)."
        )
    try:
        with run.plan.strategy.scope():
            restored = keras.models.load_model(last)
    except Exception as e:
        raise TrainingError(
            f"{error} {last} is unreadable too ({first_line(e)}): start a new run (this one's files are left as "
            f"they are)."
        ) from None
    restored.jit_compile, restored.steps_per_execution = run.model.jit_compile, run.model.steps_per_execution
    train = run.data.train
    steps = int(train.cardinality()) if hasattr(train, "cardinality") else len(train)  # tf.data, or a PyDataset
    iterations = int(next(iter(optimizers(restored).values())).iterations.numpy()) if optimizers(restored) else 0
    return restored, (iterations // steps if steps > 0 else 0)
