"""Learning rates: finding every optimizer of a model, logging their rates, and the schedules."""

from __future__ import annotations

import math

import keras

from recipes._checks import check_int
from recipes.callbacks.monitoring import ResumableState, _AutoMonitor


def optimizers(model) -> dict:
    """`{log name: optimizer}`: `learning_rate` for `model.optimizer`, or `d_learning_rate`,
    `g_learning_rate`... for models that keep their own `d_optimizer`, `g_optimizer` (GANs)."""
    own = {
        f"{name[: -len('optimizer')]}learning_rate": value
        for name, value in sorted(vars(model).items())
        if name.endswith("_optimizer") and isinstance(value, keras.optimizers.Optimizer)
    }
    if own:
        return own
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    return {"learning_rate": optimizer} if isinstance(optimizer, keras.optimizers.Optimizer) else {}


def learning_rates(model) -> dict[str, float]:
    return {name: float(keras.ops.convert_to_numpy(opt.learning_rate)) for name, opt in optimizers(model).items()}


class LearningRateLogger(keras.callbacks.Callback):
    """Puts the rate each optimizer used this epoch into the logs (so `history.csv` has it).

    Place it before `CSVLogger`/`TensorBoard` and before schedules that change the rate at epoch end.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(learning_rates(self.model))


class ReduceLROnPlateau(ResumableState, _AutoMonitor, keras.callbacks.ReduceLROnPlateau):
    """`keras.callbacks.ReduceLROnPlateau` that accepts `monitor="auto"` (`val_loss`, else `loss`)
    and whose patience a resumed run continues (with `RunBackup`)."""

    RESUME_FIELDS = ("monitor", "wait", "best", "cooldown_counter")


class CosineDecay(keras.callbacks.Callback):
    """Sets the learning rate of epoch `e` to `base * (1 + cos(pi * e / epochs)) / 2`.

    `base` is the rate the optimizer has when training first begins; `epochs` is the
    number of epochs `fit()` was given (Keras's `self.params["epochs"]`, the total: a
    resume with `initial_epoch` keeps the curve of the whole run). Put it before
    `BackupAndRestore`, which restores the optimizer's (decayed) rate on resume.

    Args:
        epochs: decay over this many epochs instead, and hold the rate at 0 after them.
            Rarely needed: leave it out and the schedule follows `fit(epochs=...)`.
            Defaults to `None`.
    """

    def __init__(self, epochs: int | None = None):
        super().__init__()
        self.epochs = None if epochs is None else check_int("epochs", epochs)
        self.base = None
        self._epochs = self.epochs

    def on_train_begin(self, logs=None):
        if self.base is None:
            self.base = learning_rates(self.model)
        self._epochs = self.epochs if self.epochs is not None else (self.params or {}).get("epochs")
        if not isinstance(self._epochs, int) or self._epochs < 1:
            raise ValueError(
                f"CosineDecay needs the number of epochs: fit() gave none (params={self.params!r}); "
                f"pass CosineDecay(epochs=...). Received: epochs={self.epochs!r}"
            )

    def on_epoch_begin(self, epoch, logs=None):
        factor = 0.5 * (1.0 + math.cos(math.pi * min(epoch, self._epochs) / self._epochs))
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
