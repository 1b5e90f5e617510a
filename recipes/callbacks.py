"""The callbacks every recipe trains with: TensorBoard, checkpoints, resume, plots.

```python
from recipes.callbacks import default_callbacks
model.fit(train, validation_data=val, epochs=20,
          callbacks=default_callbacks("runs/vgg16", validation_data=val, epochs=20))
```

A run directory then holds:

    logs/train, logs/validation   TensorBoard scalars (epoch_*), the Keras model and
                                  the traced train step (Graphs tab)
    logs/images                   image summaries: samples, reconstructions,
                                  latent_traversal, confusion_matrix
    best.keras, last.keras        best model by `monitor`, model after the last epoch
    history.csv                   one row per epoch; a resumed run continues it
    plots/curves.png              loss and metrics, train against validation
    plots/<images>.png            the latest picture, and <images>_epoch_NNN.png per epoch
    backup/                       BackupAndRestore state; removed when fit() completes

Kill a run and call `fit` again with the same `run_dir` and the same model
recipe: it resumes after the last finished epoch.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import shutil
import warnings

import keras
import numpy as np
import tensorflow as tf

from recipes import plots
from recipes._atomic import atomic_write, atomic_write_text
from recipes._checks import SCHEDULES, check_choice, check_int

SWITCH = ("auto", True, False)


def default_callbacks(
    run_dir,
    *,
    validation_data=None,
    monitor: str = "auto",
    mode: str = "auto",
    early_stopping_patience: int | None = None,
    lr_schedule=None,
    epochs: int | None = None,
    samples="auto",
    reconstructions="auto",
    latent_traversal="auto",
    confusion_matrix="auto",
    class_names=None,
    num_samples: int = 64,
    sample_seed: int = 1234,
    histogram_freq: int = 0,
    backup: bool = True,
    keep_backup: bool = False,
) -> list:
    """Returns the callbacks a good run needs, in the order they must run.

    Order matters: the learning rate is put into the logs before TensorBoard and
    `history.csv` see them; `history.csv` is written before the curves are drawn
    from it; schedules change the learning rate after it was logged; the backup
    is taken last, once the epoch is fully recorded.

    Args:
        run_dir: directory of the run, created if needed (layout in the module doc).
        validation_data: the data given to `fit(validation_data=...)`, if any: a
            `tf.data.Dataset` of `(x, y)` or `x`, an array `x` or a tuple `(x, y)`.
            Needed for the confusion matrix (with labels) and reconstructions.
            Defaults to `None`.
        monitor: quantity for `best.keras`, early stopping and `"plateau"`.
            `"auto"` is `val_loss` when the logs have it, else `loss`; when neither
            exists (a GAN logs `d_loss`/`g_loss`) no `best.keras` is written.
            Defaults to `"auto"`.
        mode: `"min"`, `"max"` or `"auto"` (from the name: `*loss` is minimised,
            `*acc*`, `*auc*`, `*precision*`, `*recall*` maximised). Defaults to `"auto"`.
        early_stopping_patience: stop after this many epochs without improvement;
            `None` never stops early. With `monitor="auto"` on a model that logs
            neither `val_loss` nor `loss`, early stopping and `"plateau"` raise a
            `ValueError` at the end of the first epoch. Defaults to `None`.
        lr_schedule: `None`, `"plateau"` (halve the rate after 3 epochs without
            improvement), `"cosine"` (cosine decay from the compiled rate towards 0
            over `epochs`, every optimizer of the model), or a callable
            `(epoch, lr) -> lr` for `keras.callbacks.LearningRateScheduler`.
            `"plateau"` and a callable act on `model.optimizer` only. Defaults to `None`.
        epochs: total epochs of the run; required by `"cosine"`. Defaults to `None`.
        samples: sample grid from `model.generate`: `"auto"` (when the model has
            `generate`), `True` (required) or `False`. Defaults to `"auto"`.
        reconstructions: originals against `model.decode(model.encode(x))` for a
            fixed batch of `validation_data`. Defaults to `"auto"`.
        latent_traversal: decoded grid over the first two latent dimensions.
            Defaults to `"auto"` (when the model has `decode` and `latent_dim`).
        confusion_matrix: at the end of training on `validation_data`. Defaults to
            `"auto"` (when validation data is given and the model's loss is a
            classification cross-entropy).
        class_names: axis labels of the confusion matrix. Defaults to `None` (indices).
        num_samples: images in the sample grid. Defaults to `64`.
        sample_seed: seed of the fixed latent vectors, so grids animate across
            epochs. Defaults to `1234`.
        histogram_freq: weight histograms every this many epochs (0: never).
            Defaults to `0`.
        backup: add `RunBackup` (resume after a crash). Defaults to `True`.
        keep_backup: keep the backup when `fit` ends, for a caller that removes it
            once the run's results are safely written (`recipes train` does).
            Defaults to `False`.

    Returns:
        A list of `keras.callbacks.Callback`.

    Raises:
        ValueError, TypeError: for an invalid argument; the message names it.
    """
    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(f"run_dir must be a path. Received: run_dir={run_dir!r}")
    run_dir = os.fspath(run_dir)
    if monitor != "auto" and (not isinstance(monitor, str) or not monitor):
        raise TypeError(f"monitor must be 'auto' or a metric name. Received: monitor={monitor!r}")
    mode = resolve_mode(monitor, check_choice("mode", mode, ("auto", "min", "max")))
    if early_stopping_patience is not None:
        early_stopping_patience = check_int("early_stopping_patience", early_stopping_patience, minimum=0)
    if lr_schedule is not None and not callable(lr_schedule) and lr_schedule not in SCHEDULES:
        raise ValueError(f"lr_schedule must be None, 'plateau', 'cosine' or a callable (epoch, lr) -> lr. "
                         f"Received: lr_schedule={lr_schedule!r}")
    if lr_schedule == "cosine" or epochs is not None:
        if lr_schedule == "cosine" and epochs is None:
            raise ValueError("lr_schedule='cosine' needs the total number of epochs. Received: epochs=None")
        epochs = check_int("epochs", epochs)
    for name, value in (("samples", samples), ("reconstructions", reconstructions),
                        ("latent_traversal", latent_traversal), ("confusion_matrix", confusion_matrix)):
        if not isinstance(value, bool) and value != "auto":
            raise ValueError(f"{name} must be one of {SWITCH}. Received: {name}={value!r}")
    if validation_data is not None and not isinstance(validation_data, (np.ndarray, tuple, list, tf.data.Dataset)):
        raise TypeError(f"validation_data must be a tf.data.Dataset, an array or a tuple (x, y). "
                        f"Received: validation_data={type(validation_data).__name__}")
    for name, value in (("reconstructions", reconstructions), ("confusion_matrix", confusion_matrix)):
        if value is True and validation_data is None:
            raise ValueError(f"{name}=True needs validation_data. Received: validation_data=None")
    if class_names is not None and (isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names)):
        raise TypeError(f"class_names must be a list of strings. Received: class_names={class_names!r}")
    num_samples = check_int("num_samples", num_samples)
    sample_seed = check_int("sample_seed", sample_seed, minimum=0)
    histogram_freq = check_int("histogram_freq", histogram_freq, minimum=0)

    history_file = os.path.join(run_dir, "history.csv")
    callbacks = []
    if lr_schedule == "cosine":  # first: it reads the compiled rate before the backup restores a decayed one
        callbacks.append(CosineDecay(epochs))
    callbacks += [
        TerminateOnNaN(),
        LearningRateLogger(),
        TensorBoard(os.path.join(run_dir, "logs"), histogram_freq=histogram_freq),
        HistoryCSVLogger(history_file),
        AtomicModelCheckpoint(os.path.join(run_dir, "best.keras"), monitor=monitor, mode=mode,
                              save_best_only=True, history_file=history_file),
        AtomicModelCheckpoint(os.path.join(run_dir, "last.keras")),
        plots.TrainingCurves(run_dir, history_file=history_file),
    ]
    if samples is not False:
        callbacks.append(plots.SampleGrid(run_dir, num_samples=num_samples, seed=sample_seed, required=samples is True))
    if reconstructions is not False and validation_data is not None:
        callbacks.append(plots.Reconstructions(run_dir, validation_data, required=reconstructions is True))
    if latent_traversal is not False:
        callbacks.append(plots.LatentTraversal(run_dir, required=latent_traversal is True))
    if confusion_matrix is not False and validation_data is not None:
        callbacks.append(plots.ConfusionMatrix(run_dir, validation_data, class_names=class_names,
                                            required=confusion_matrix is True))
    if early_stopping_patience is not None:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=early_stopping_patience))
    if lr_schedule == "plateau":
        callbacks.append(ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.5, patience=3))
    elif callable(lr_schedule):
        callbacks.append(keras.callbacks.LearningRateScheduler(lr_schedule))
    if backup:
        callbacks.append(RunBackup(os.path.join(run_dir, "backup"), delete_at_end=not keep_backup))
    return callbacks


# Monitor and learning-rate helpers -------------------------------------------

def resolve_mode(monitor: str, mode: str = "auto") -> str:
    """`"min"` or `"max"` for `monitor`, from its name when `mode="auto"`.

    Raises:
        ValueError: when the direction cannot be told from the name.
    """
    if mode != "auto" or monitor == "auto":
        return "min" if mode == "auto" else mode
    name = monitor.removeprefix("val_")
    if name.endswith("loss") or name.endswith("error") or name in ("mse", "mae", "mape", "msle"):
        return "min"
    if any(key in name for key in ("acc", "auc", "precision", "recall", "f1", "iou")):
        return "max"
    raise ValueError(f"mode='auto' cannot tell whether {monitor} should go down or up; pass mode='min' or "
                     f"mode='max'. Received: monitor={monitor!r}")


def resolve_monitor(monitor: str, available) -> str | None:
    """The metric `"auto"` stands for among `available` names: `val_loss`, else `loss`, else `None`."""
    if monitor != "auto":
        return monitor
    return next((m for m in ("val_loss", "loss") if m in available), None)


def optimizers(model) -> dict:
    """`{log name: optimizer}`: `learning_rate` for `model.optimizer`, or `d_learning_rate`,
    `g_learning_rate`... for models that keep their own `d_optimizer`, `g_optimizer` (GANs)."""
    own = {f"{name[:-len('optimizer')]}learning_rate": value for name, value in sorted(vars(model).items())
           if name.endswith("_optimizer") and isinstance(value, keras.optimizers.Optimizer)}
    if own:
        return own
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    return {"learning_rate": optimizer} if isinstance(optimizer, keras.optimizers.Optimizer) else {}


def learning_rates(model) -> dict[str, float]:
    return {name: float(keras.ops.convert_to_numpy(opt.learning_rate)) for name, opt in optimizers(model).items()}


def _finite_losses(logs) -> bool:
    return all(np.isfinite(v) for k, v in (logs or {}).items()
               if (k == "loss" or k.endswith("_loss")) and isinstance(v, numbers.Real))


# Callbacks -------------------------------------------------------------------

class LearningRateLogger(keras.callbacks.Callback):
    """Puts the rate each optimizer used this epoch into the logs (so `history.csv` has it).

    Place it before `CSVLogger`/`TensorBoard` and before schedules that change the rate at epoch end.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(learning_rates(self.model))


class TensorBoard(keras.callbacks.TensorBoard):
    """`keras.callbacks.TensorBoard` that also writes the traced train step to the Graphs tab.

    Keras 3 writes the conceptual `keras` graph of Functional/Sequential models but
    not the op graph (its check for a `tf.function` misses on TF >= 2.16), so the
    first batch of each `fit` is traced with `tf.summary.trace_on` and exported as
    the `train_step` tag. Learning rates of multi-optimizer models (GANs) are logged
    as `epoch_d_learning_rate`, `epoch_g_learning_rate`.
    """

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._trace_graph = self.write_graph

    def on_train_batch_begin(self, batch, logs=None):
        super().on_train_batch_begin(batch, logs)
        if self._trace_graph:
            tf.summary.trace_on(graph=True, profiler=False)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self._trace_graph:
            self._trace_graph = False
            with self._train_writer.as_default():
                tf.summary.trace_export("train_step", step=0)
            self._train_writer.flush()

    def _collect_learning_rate(self, logs):
        logs.update(learning_rates(self.model))
        return logs


class HistoryCSVLogger(keras.callbacks.CSVLogger):
    """`CSVLogger(append=True)` that keeps `history.csv` one row per epoch across resumes.

    A `fit` that starts at epoch `k` (resumed by `BackupAndRestore`, or
    `initial_epoch=k`) first drops the rows of epochs `>= k`: a crash after the
    row was written but before the backup leaves no duplicate, and a fresh run
    (`k = 0`) in an old directory starts a fresh history and header. A continued
    history keeps the columns of its header, so the file stays a valid CSV.
    """

    def __init__(self, filename, separator=","):
        super().__init__(filename, separator=separator, append=True)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        if not self._first_epoch:
            return
        self._first_epoch = False
        if not os.path.exists(self.filename) or os.path.getsize(self.filename) == 0:
            return
        self.csv_file.close()
        with open(self.filename, newline="") as f:
            lines = f.read().splitlines(keepends=True)
        header = lines[0].rstrip("\r\n").split(self.sep)
        kept = [line for line in lines[1:] if line.strip() and int(float(line.split(self.sep, 1)[0])) < epoch]

        def rewrite(tmp):
            with open(tmp, "w", newline="") as f:
                f.writelines([lines[0], *kept])

        atomic_write(self.filename, rewrite if kept else lambda tmp: None)
        self.csv_file = open(self.filename, "a", newline="")
        # continuing: keep the header's columns; starting over: a new header from this run's logs
        self.keys, self.append_header = (header[1:], False) if kept else (None, True)


class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Saves the model to a `.keras` file each epoch, atomically.

    The model is written to a temporary file beside `filepath` and moved into
    place with `os.replace`, so a crash mid-write never corrupts the only copy.
    Epochs whose losses are NaN/inf are not saved.

    Args:
        filepath: the `.keras` file.
        monitor: quantity to compare when `save_best_only`; `"auto"` is `val_loss`
            when logged, else `loss`. Defaults to `"auto"`.
        mode: `"auto"`, `"min"` or `"max"`. Defaults to `"auto"`.
        save_best_only: save only when `monitor` improves. Defaults to `False`.
        history_file: a `history.csv` of this run: when a resumed `fit` starts at
            epoch `k > 0`, the best value of its rows `< k` is the one to beat,
            instead of the first resumed epoch overwriting an older, better model.
            Defaults to `None`.
    """

    def __init__(self, filepath, *, monitor="auto", mode="auto", save_best_only=False, history_file=None):
        super().__init__()
        self.filepath = os.fspath(filepath)
        if not self.filepath.endswith(".keras"):
            raise ValueError(f"filepath must end in .keras. Received: filepath={self.filepath!r}")
        self.monitor = monitor
        self.mode = resolve_mode(monitor, check_choice("mode", mode, ("auto", "min", "max")))
        self.save_best_only = save_best_only
        self.history_file = history_file
        self.best = None
        self._warned = False

    def _better(self, value, reference):
        return reference is None or (value < reference if self.mode == "min" else value > reference)

    def on_train_begin(self, logs=None):
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        if not (self._first_epoch and self.save_best_only):
            return
        self._first_epoch = False
        if epoch > 0 and self.history_file and os.path.exists(self.history_file) \
                and os.path.exists(self.filepath):
            history = plots.read_history(self.history_file)
            earlier = np.asarray(history.get("epoch", [])) < epoch
            finite = [k for k, v in history.items() if np.isfinite(np.asarray(v)[earlier]).any()]
            monitor = resolve_monitor(self.monitor, finite)
            if monitor in finite:
                values = np.asarray(history[monitor])[earlier]
                values = values[np.isfinite(values)]
                self.best = float(values.min() if self.mode == "min" else values.max())

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not _finite_losses(logs):
            warnings.warn(f"Epoch {epoch + 1}: a loss is NaN or inf; {self.filepath} is not overwritten.",
                          stacklevel=2)
            return
        if self.save_best_only:
            monitor = resolve_monitor(self.monitor, logs)
            current = logs.get(monitor)
            if current is None:
                if not self._warned:
                    self._warned = True
                    warnings.warn(f"{os.path.basename(self.filepath)} is not written: monitor={self.monitor!r} "
                                  f"found nothing to compare in the logs {sorted(logs)}.", stacklevel=2)
                return
            if not self._better(float(current), self.best):
                return
            self.best = float(current)
        atomic_write(self.filepath, lambda tmp: self.model.save(tmp, overwrite=True))


class _AutoMonitor:
    """Resolves `monitor="auto"` on the first epoch's logs (for Keras's monitoring callbacks)."""

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor == "auto":
            resolved = resolve_monitor("auto", logs or {})
            if resolved is None:
                raise ValueError(f"monitor='auto' found neither val_loss nor loss in the logs {sorted(logs or {})}; "
                                 f"pass one of them as monitor. Received: monitor='auto'")
            self.monitor = resolved
        super().on_epoch_end(epoch, logs)


class EarlyStopping(_AutoMonitor, keras.callbacks.EarlyStopping):
    """`keras.callbacks.EarlyStopping` that accepts `monitor="auto"` (`val_loss`, else `loss`)."""


class ReduceLROnPlateau(_AutoMonitor, keras.callbacks.ReduceLROnPlateau):
    """`keras.callbacks.ReduceLROnPlateau` that accepts `monitor="auto"` (`val_loss`, else `loss`)."""


class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """`keras.callbacks.TerminateOnNaN` that watches every `*loss` in the logs (a GAN has `d_loss`, `g_loss`)."""

    def on_batch_end(self, batch, logs=None):
        for key, value in (logs or {}).items():
            if (key == "loss" or key.endswith("_loss")) and isinstance(value, numbers.Real) \
                    and not np.isfinite(value):
                super().on_batch_end(batch, {"loss": value})
                return


class CosineDecay(keras.callbacks.Callback):
    """Sets the learning rate of epoch `e` to `base * (1 + cos(pi * e / epochs)) / 2`.

    `base` is the rate the optimizer has when training first begins. Put it before
    `BackupAndRestore`, which restores the optimizer's (decayed) rate on resume.
    """

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = check_int("epochs", epochs)
        self.base = None

    def on_train_begin(self, logs=None):
        if self.base is None:
            self.base = learning_rates(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        factor = 0.5 * (1.0 + math.cos(math.pi * min(epoch, self.epochs) / self.epochs))
        for name, optimizer in optimizers(self.model).items():
            optimizer.learning_rate = self.base[name] * factor


class SetLearningRate(keras.callbacks.Callback):
    """Sets every optimizer's learning rate when training begins. Put it after the
    backup, which restores the old rate: this is how a resume changes the rate."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = float(rate)

    def on_train_begin(self, logs=None):
        for optimizer in optimizers(self.model).values():
            optimizer.learning_rate = self.rate


class BackupError(RuntimeError):
    """Every resume point in a backup folder is unreadable."""


class RunBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` (two resume points) that a crash or a NaN cannot spoil.

    - Every file is written atomically (a temporary file, then a rename), so a kill
      mid-write leaves the previous resume point whole.
    - An epoch whose losses are NaN or inf is not backed up: a resume goes back to
      the last good epoch.
    - On restore, an unreadable latest point falls back to the previous one; when
      both are unreadable, `BackupError` names them (Keras would crash in h5py).
    - At the end (unless `delete_at_end=False`, or the run stopped on a NaN loss, when
      the backup is the way back) it removes only the files it wrote, and the folder
      if it is then empty (`remove`).
    """

    def __init__(self, backup_dir, delete_at_end=True):
        super().__init__(backup_dir, double_checkpoint=True)
        self.delete_at_end = delete_at_end
        self._stopped_on_nan = False

    @property
    def files(self):
        return (self._weights_path, self._training_metadata_path,
                self._prev_weights_path, self._prev_training_metadata_path)

    def on_train_begin(self, logs=None):
        points = ((self._weights_path, self._training_metadata_path),
                  (self._prev_weights_path, self._prev_training_metadata_path))
        errors = []
        for weights, metadata in points:
            if not os.path.exists(weights):
                continue
            try:
                self._restore(weights, metadata)
            except Exception as e:  # h5py, OSError, JSON: any of them means this point is unusable
                errors.append(f"{os.path.basename(weights)} ({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})")
                continue
            if errors:
                warnings.warn(f"The latest resume point in {self.backup_dir} is unreadable ({errors[0]}); "
                              f"resumed from the previous one.", stacklevel=2)
            return
        if errors:
            raise BackupError(f"Every resume point in {self.backup_dir} is unreadable: {'; '.join(errors)}.")

    def _restore(self, weights, metadata):
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        with open(metadata) as f:
            epoch = int(json.load(f)["epoch"])
        if weights.endswith(".weights.h5"):
            self.model.load_weights(weights)
        else:  # Keras reads weights only from a file named *.weights.h5
            copy = os.path.join(self.backup_dir, ".previous.weights.h5")
            shutil.copyfile(weights, copy)
            try:
                self.model.load_weights(copy)
            finally:
                os.remove(copy)
        self.model._initial_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        self._stopped_on_nan = not _finite_losses(logs)
        if self.save_freq == "epoch" and not self._stopped_on_nan:
            self._save_model()

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        for current, previous in ((self._weights_path, self._prev_weights_path),
                                  (self._training_metadata_path, self._prev_training_metadata_path)):
            if os.path.exists(current):
                atomic_write(previous, lambda tmp, src=current: shutil.copyfile(src, tmp))
        atomic_write(self._weights_path, lambda tmp: self.model.save_weights(tmp, overwrite=True))
        atomic_write_text(self._training_metadata_path,
                          json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))

    def on_train_end(self, logs=None):
        if self.delete_at_end and not self._stopped_on_nan:
            self.remove()

    def remove(self):
        """Deletes the backup files and, if nothing else is in it, the folder."""
        for path in self.files:
            if os.path.exists(path):
                os.remove(path)
        with contextlib.suppress(OSError):  # not empty: something else lives there; leave it
            os.rmdir(self.backup_dir)
