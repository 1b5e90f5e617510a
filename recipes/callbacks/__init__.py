"""The callbacks every recipe trains with: TensorBoard, checkpoints, resume, plots.

```python
from recipes.callbacks import default_callbacks
model.fit(train, validation_data=val, epochs=20,
          callbacks=default_callbacks("runs/vgg16", validation_data=val))
```

A run directory then holds:

    logs/train                    TensorBoard: scalars (epoch_*), the layer graph (Graphs
                                  tab: `keras`, or `encoder`/`decoder`, `generator`/
                                  `discriminator`), images/samples, images/latent_traversal
    logs/validation               scalars of the validation data, images/reconstructions,
                                  images/confusion_matrix (after the last epoch)
    best.keras, last.keras        best model by `monitor`, model after the last epoch
    history.csv                   one row per epoch; a resumed run continues it
    plots/curves.png              loss and metrics, train against validation
    plots/<images>.png            the latest picture, and <images>_epoch_NNN.png per epoch
    backup/                       the resume point (`RunBackup`): weights and optimizers, and
                                  the epoch, random-number and callback state they belong
                                  to, tied by one token; removed when fit() completes

Epochs count from 1, as Keras prints "Epoch 1/10": TensorBoard's step, history.csv's
`epoch` column and `<images>_epoch_001.png` all say 1 for the first epoch.

The event files under `logs/` are written by `tf.summary`, or by tensorboardX where TensorFlow
is not installed (`summary_writer_choice`, `$RECIPES_TENSORBOARD_WRITER`): the same runs, tags
and steps, but no forward-pass op graph (the `logs` module says what differs).

Kill a run and call `fit` again with the same `run_dir` and the same model
recipe: it resumes after the last finished epoch.

Each idea lives in a module of its own: `monitoring` (which metric, NaN, early stopping),
`learning_rate` (rates and schedules), `logs` (TensorBoard, history.csv), `checkpoints`
(best/last files, the resume point) and `images` (sample grids, reconstructions, the
confusion matrix and the curves). Everything is importable from `recipes.callbacks`.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from recipes._checks import SCHEDULES, check_choice, check_int
from recipes.callbacks.batch_norm import BatchNormCalibration, recalibrate_batch_norm
from recipes.callbacks.checkpoints import (
    AtomicModelCheckpoint,
    BackupError,
    EpochOrder,
    KeepRandomState,
    RunBackup,
    keep_random_state,
    random_state,
    restore_random_state,
)
from recipes.callbacks.images import (
    ConfusionMatrix,
    ImageCallback,
    LatentTraversal,
    Reconstructions,
    SampleGrid,
    TrainingCurves,
)
from recipes.callbacks.learning_rate import (
    CosineDecay,
    LearningRateLogger,
    ReduceLROnPlateau,
    SetLearningRate,
    learning_rates,
    optimizers,
)
from recipes.callbacks.logs import HistoryCSVLogger, TensorBoard, summary_writer_choice, tensorboard_writer
from recipes.callbacks.monitoring import (
    EarlyStopping,
    InterruptBetweenSteps,
    TerminateOnNaN,
    finite_losses,
    resolve_mode,
    resolve_monitor,
)
from recipes.callbacks.quality import SampleQuality
from recipes.datasets._batches import is_pipeline

__all__ = [
    "AtomicModelCheckpoint",
    "BatchNormCalibration",
    "BackupError",
    "ConfusionMatrix",
    "CosineDecay",
    "EarlyStopping",
    "EpochOrder",
    "HistoryCSVLogger",
    "ImageCallback",
    "InterruptBetweenSteps",
    "KeepRandomState",
    "LatentTraversal",
    "LearningRateLogger",
    "Reconstructions",
    "ReduceLROnPlateau",
    "RunBackup",
    "SampleGrid",
    "SampleQuality",
    "SetLearningRate",
    "TensorBoard",
    "TerminateOnNaN",
    "TrainingCurves",
    "default_callbacks",
    "finite_losses",
    "keep_random_state",
    "learning_rates",
    "optimizers",
    "recalibrate_batch_norm",
    "resolve_mode",
    "random_state",
    "resolve_monitor",
    "restore_random_state",
    "summary_writer_choice",
    "tensorboard_writer",
]

SWITCH = ("auto", True, False)


def default_callbacks(
    run_dir,
    *,
    validation_data=None,
    training_data=None,
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
    judge=None,
    judge_images=None,
) -> list:
    """Returns the callbacks a good run needs, in the order they must run.

    Order matters: the learning rate is put into the logs before TensorBoard and
    `history.csv` see them; `history.csv` is written before the curves are drawn
    from it; schedules change the learning rate after it was logged; the backup
    is taken last, once the epoch is fully recorded.

    Args:
        run_dir: directory of the run, created if needed (layout in the module doc).
        validation_data: the data given to `fit(validation_data=...)`, if any: a
            pipeline of `(x, y)` or `x` batches (a `tf.data.Dataset` or a
            `keras.utils.PyDataset`), an array `x` or a tuple `(x, y)`.
            Needed for the confusion matrix (with labels) and reconstructions.
            Defaults to `None`.
        training_data: the data given to `fit()`. With it, `EpochOrder` makes a
            resumed run read each epoch's data in the uninterrupted run's order,
            and a model with batch normalisation gets `BatchNormCalibration`: its statistics are
            re-estimated for the current weights before each validation, so
            validation and checkpoints do not lag behind training on small data
            sets. Defaults to `None`.
        monitor: quantity for `best.keras`, early stopping and `"plateau"`.
            `"auto"` is `val_loss` when the logs have it, else `loss`, else
            `val_frechet_distance` (a GAN with a `judge`: it logs `d_loss`/`g_loss`);
            when none exists no `best.keras` is written. Defaults to `"auto"`.
        mode: `"min"`, `"max"` or `"auto"` (from the name: `*loss` is minimised,
            `*acc*`, `*auc*`, `*precision*`, `*recall*` maximised). Defaults to `"auto"`.
        early_stopping_patience: stop after this many epochs without improvement;
            `None` never stops early. With `monitor="auto"` on a model that logs
            neither `val_loss` nor `loss`, early stopping and `"plateau"` raise a
            `ValueError` at the end of the first epoch. Defaults to `None`.
        lr_schedule: `None`, `"plateau"` (halve the rate after 3 epochs without
            improvement), `"cosine"` (cosine decay from the compiled rate towards 0
            over the epochs given to `fit()`, every optimizer of the model), or a callable
            `(epoch, lr) -> lr` for `keras.callbacks.LearningRateScheduler`.
            `"plateau"` and a callable act on `model.optimizer` only. Defaults to `None`.
        epochs: deprecated and ignored: the callbacks read the number of epochs from
            `fit()` (`self.params["epochs"]`). Still accepted (and checked, when given)
            so existing callers keep working. Defaults to `None`.
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
        judge: a `recipes.judge.Judge`: each epoch `SampleQuality` scores 500
            samples against `judge_images` (`val_frechet_distance`, ...). Defaults to `None`.
        judge_images: real images in the generator's form; required with `judge`.
            Defaults to `None`.

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
        raise ValueError(
            f"lr_schedule must be None, 'plateau', 'cosine' or a callable (epoch, lr) -> lr. "
            f"Received: lr_schedule={lr_schedule!r}"
        )
    if epochs is not None:  # deprecated and unused (fit() tells the callbacks), but a bad value is still a mistake
        check_int("epochs", epochs)
    for name, value in (
        ("samples", samples),
        ("reconstructions", reconstructions),
        ("latent_traversal", latent_traversal),
        ("confusion_matrix", confusion_matrix),
    ):
        if not isinstance(value, bool) and value != "auto":
            raise ValueError(f"{name} must be one of {SWITCH}. Received: {name}={value!r}")
    if validation_data is not None and not (
        isinstance(validation_data, (np.ndarray, tuple, list)) or is_pipeline(validation_data)
    ):
        raise TypeError(
            f"validation_data must be a tf.data.Dataset, a keras.utils.PyDataset, an array or a tuple (x, y). "
            f"Received: validation_data={type(validation_data).__name__}"
        )
    for name, value in (("reconstructions", reconstructions), ("confusion_matrix", confusion_matrix)):
        if value is True and validation_data is None:
            raise ValueError(f"{name}=True needs validation_data. Received: validation_data=None")
    if class_names is not None and (isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names)):
        raise TypeError(f"class_names must be a list of strings. Received: class_names={class_names!r}")
    num_samples = check_int("num_samples", num_samples)
    sample_seed = check_int("sample_seed", sample_seed, minimum=0)
    histogram_freq = check_int("histogram_freq", histogram_freq, minimum=0)
    if judge is not None and judge_images is None:
        raise ValueError("judge needs the real images to compare samples with. Received: judge_images=None")

    history_file = os.path.join(run_dir, "history.csv")
    noted, put_back = keep_random_state()
    callbacks = [noted]
    if training_data is not None:  # before anything validates or saves the model
        callbacks += [EpochOrder(training_data), BatchNormCalibration(training_data)]
    if lr_schedule == "cosine":  # first: it reads the compiled rate before the backup restores a decayed one
        callbacks.append(CosineDecay())  # over fit()'s epochs
    best = AtomicModelCheckpoint(
        os.path.join(run_dir, "best.keras"), monitor=monitor, mode=mode, save_best_only=True, history_file=history_file
    )
    callbacks += [
        TerminateOnNaN(),
        LearningRateLogger(),
        *([SampleQuality(judge, judge_images)] if judge is not None else []),
        TensorBoard(os.path.join(run_dir, "logs"), histogram_freq=histogram_freq),
        HistoryCSVLogger(history_file),
        best,
        AtomicModelCheckpoint(os.path.join(run_dir, "last.keras"), copy_of=best),  # best's bytes when it saved
        TrainingCurves(run_dir, history_file=history_file),
    ]
    if samples is not False:
        callbacks.append(SampleGrid(run_dir, num_samples=num_samples, seed=sample_seed, required=samples is True))
    if reconstructions is not False and validation_data is not None:
        callbacks.append(Reconstructions(run_dir, validation_data, required=reconstructions is True))
    if latent_traversal is not False:
        callbacks.append(LatentTraversal(run_dir, required=latent_traversal is True))
    if confusion_matrix is not False and validation_data is not None:
        callbacks.append(
            ConfusionMatrix(run_dir, validation_data, class_names=class_names, required=confusion_matrix is True)
        )
    if early_stopping_patience is not None:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=early_stopping_patience))
    if lr_schedule == "plateau":
        callbacks.append(ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.5, patience=3))
    elif callable(lr_schedule):
        callbacks.append(keras.callbacks.LearningRateScheduler(lr_schedule))
    callbacks.append(put_back)
    if backup:
        callbacks.append(RunBackup(os.path.join(run_dir, "backup"), delete_at_end=not keep_backup, callbacks=callbacks))
    return callbacks
