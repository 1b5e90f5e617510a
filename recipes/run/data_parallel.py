"""Data-parallel fit: `fit()` under a `keras.distribution.DataParallel` over several devices, of one
process or of a job of several (see `recipes.job`): who computes what.

Every process trains the same global model on its shard of each global batch
(`keras.distribution.DataParallel`), and runs the callbacks that steer training
(data order, learning rate, early stopping, NaN, the resume point's restore) on it:
their decisions come from the logs, which are the same on every process.

Process 0 alone writes the run directory. It keeps a *twin*: the same recipe built
without a distribution, into which it copies the global model's variables (and its
optimizer's) after each epoch, from its own replica, without talking to the other
processes. The twin validates (every example once, whatever the last batch's size),
recalibrates batch norm and is what the file-writing callbacks see: TensorBoard,
history.csv, best/last.keras, plots, sample grids, the resume point. The validation
logs then go to every process (one broadcast), so all of them decide alike.
"""

from __future__ import annotations

import keras
import numpy as np

from recipes import job as job_lib
from recipes.callbacks import BatchNormCalibration, InterruptBetweenSteps, RunBackup, SampleQuality
from recipes.callbacks.learning_rate import optimizers
from recipes.errors import JobLostError, first_line
from recipes.job import no_distribution
from recipes.recipe import build_model
from recipes.run.finish import finalize
from recipes.run.reading import Reading

# Callbacks that steer training: every process runs them on the global model.
STEERING = (
    "EpochOrder",
    "CosineDecay",
    "TerminateOnNaN",
    "LearningRateLogger",
    "EarlyStopping",
    "ReduceLROnPlateau",
    "LearningRateScheduler",
    "SetLearningRate",
    "InterruptBetweenSteps",
    "KeepRandomState",
)


def _optimizers(model) -> list:
    return list(optimizers(model).values())


def _state(model) -> list:
    """Every variable training changes: the model's (seed states included) and its optimizers'."""
    return list(model.variables) + [v for o in _optimizers(model) for v in o.variables]


def local_value(variable) -> np.ndarray:
    """This process's copy of a replicated variable (no communication)."""
    value = variable.value
    if hasattr(value, "addressable_data"):
        value = value.addressable_data(0)
    return np.asarray(value)


class Twin:
    """The global model's copy on process 0's devices, refreshed by `sync()`."""

    def __init__(self, build, model):
        self.model_of_job = model
        with no_distribution():
            self.model = build()
            for optimizer in _optimizers(self.model):
                if not optimizer.built:
                    optimizer.build(self.model.trainable_variables)
        self._synced = None

    def sync(self, key=None) -> keras.Model:
        """Copies the global model's state into the twin (once per `key`); returns the twin."""
        if key is not None and key == self._synced:
            return self.model
        theirs, ours = _state(self.model_of_job), _state(self.model)
        if len(theirs) != len(ours):
            raise RuntimeError(f"The twin holds {len(ours)} variables, the trained model {len(theirs)}.")
        with no_distribution():
            for mine, source in zip(ours, theirs):
                mine.assign(local_value(source))
            for mine, source in zip(_optimizers(self.model), _optimizers(self.model_of_job)):
                mine.learning_rate = float(keras.ops.convert_to_numpy(source.learning_rate))
        self._synced = key
        return self.model


def share_logs(logs: dict | None, values: dict) -> dict:
    """Process 0's `values` (`{name: number}`) on every process, put into `logs`."""
    values = job_lib.share({k: float(v) for k, v in values.items()})
    if logs is not None:
        logs.update(values)
    return values


class ProcessZero(keras.callbacks.Callback):
    """Process 0's side of `fit()` in a job: the twin validates, then `callbacks` (the
    file-writing ones, in their order) run with the twin as their model.

    Args:
        callbacks: the callbacks that write the run directory (process 0 only).
        twin: a `Twin` (process 0), or `None` on the other processes.
        validation_data: the run's validation data, or `None`.
        calibration: a `BatchNormCalibration` to run on the twin before validating, or `None`.
        quality: a callback that adds generated-sample scores to the logs, or `None`.
    """

    def __init__(self, callbacks, twin, validation_data=None, calibration=None, quality=None):
        super().__init__()
        self.callbacks = list(callbacks)
        self.twin = twin
        self.validation_data = validation_data
        self.calibration = calibration
        self.quality = quality

    def _each(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def on_train_begin(self, logs=None):
        if self.twin is None:
            return
        twin = self.twin.sync("begin")
        for callback in self.callbacks + [c for c in (self.calibration, self.quality) if c is not None]:
            callback.set_model(twin)
            callback.set_params(self.params)
        with no_distribution():
            for callback in (self.calibration, self.quality):
                if callback is not None:
                    callback.on_train_begin(logs)
            self._each("on_train_begin", logs)

    def on_epoch_begin(self, epoch, logs=None):
        if self.twin is not None:
            with no_distribution():
                if self.calibration is not None:
                    self.calibration.on_epoch_begin(epoch, logs)
                self._each("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        values = {}
        if self.twin is not None:
            twin = self.twin.sync(epoch)
            with no_distribution():
                if self.calibration is not None:
                    self.calibration.on_test_begin()  # the statistics of these weights, then validate
                if self.validation_data is not None:
                    scores = twin.evaluate(self.validation_data, verbose=0, return_dict=True)
                    values.update({f"val_{k}": v for k, v in scores.items()})
                if self.quality is not None:
                    scored = dict(logs or {})
                    self.quality.on_epoch_end(epoch, scored)
                    values.update({k: v for k, v in scored.items() if k not in (logs or {})})
        share_logs(logs, values)
        if self.twin is not None:
            with no_distribution():
                self._each("on_epoch_end", epoch, logs)

    def on_train_end(self, logs=None):
        if self.twin is not None:
            self.twin.sync("end")
            with no_distribution():
                self._each("on_train_end", logs)


class BackupAcross(keras.callbacks.Callback):
    """`RunBackup` in a job: every process restores the resume point into the global
    model when training begins; process 0 writes it from the twin after each epoch."""

    def __init__(self, backup, twin):
        super().__init__()
        self.backup, self.twin = backup, twin

    def set_model(self, model):
        super().set_model(model)
        self.backup.set_model(model)

    def on_train_begin(self, logs=None):
        self.backup.on_train_begin(logs)  # all processes: the files process 0 wrote

    def on_epoch_end(self, epoch, logs=None):
        if self.twin is None:
            self.backup._current_epoch = epoch + 1
            return
        self.backup.set_model(self.twin.sync(epoch))
        with no_distribution():
            self.backup.on_epoch_end(epoch, logs)
        self.backup.set_model(self.model)

    def on_train_end(self, logs=None):
        if self.twin is not None:
            self.backup.on_train_end(logs)


def arrange(callbacks, twin, validation_data) -> list:
    """`default_callbacks(...)` rearranged for a job: steering callbacks on every process
    as they were, the file-writing ones behind `ProcessZero` (at the place of the first),
    the backup last. On processes other than 0 (`twin=None`) nothing writes."""
    steering_before, writers, steering_after, backup = [], [], [], None
    calibration = quality = None
    for callback in callbacks:
        name = type(callback).__name__
        if isinstance(callback, RunBackup):
            backup = callback
        elif isinstance(callback, BatchNormCalibration):
            calibration = callback
        elif isinstance(callback, SampleQuality):
            quality = callback
        elif name in STEERING:
            (steering_after if writers else steering_before).append(callback)
        else:
            writers.append(callback)
    arranged = [*steering_before, ProcessZero(writers, twin, validation_data, calibration, quality), *steering_after]
    if backup is not None:
        arranged.append(BackupAcross(backup, twin))
    return arranged


def lost_peer(error) -> str | None:
    """The first line of a collective's failure when another process went away, else `None`."""
    text = str(error).strip()
    markers = ("Gloo", "Connection reset", "Connection refused", "heartbeat", "coordination service", "UNAVAILABLE")
    if not any(m in text for m in markers):
        return None
    line = first_line(error)
    return line if len(line) <= 300 else line[:297] + "..."


def fit(run, callbacks) -> dict:
    """`recipes.run.fit.fit` under a `DataParallel` over several devices, of one process or of a job
    of several: every process trains, process 0 validates on its twin of the model (every example
    once, on one device) and writes the run directory; the final metrics are process 0's, shared
    with the others.

    Each process reads its own share of every global batch (`load_data(process_share=)`): the
    epoch's order is the same everywhere (seed and epoch), so the shares are disjoint and
    together the batch; the last, partial global batch of an epoch is left out.
    """
    job, model = run.job, run.model
    twin = Twin(lambda: build_model(run.config, run.data.info, run.plan), model) if job.writes else None
    interrupt, reading = InterruptBetweenSteps(), Reading(run)
    try:
        with interrupt.installed(), reading:
            history = model.fit(
                run.data.train,
                epochs=run.config["epochs"],
                verbose=run.verbose,
                shuffle=False,
                callbacks=arrange(callbacks, twin, run.data.val) + [interrupt, reading.position],
            )
    except Exception as e:  # jax's XlaRuntimeError or a ValueError from gloo: the peer is in the text
        reason = lost_peer(e)
        if reason is None:
            raise
        lost = job_lib.lost_processes()
        which = f"process {', '.join(map(str, lost))} of the job" if lost else "another process of the job"
        raise JobLostError(
            f"Process {job.process_id} of {job.num_processes} lost {which} ({reason}); run the same "
            f"commands again on every host to resume from the last completed epoch."
        ) from None
    return finalize(run, history, lambda: twin.sync("end"))
