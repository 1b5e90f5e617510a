"""What the other callbacks watch: which metric, which direction, whether the losses are finite;
early stopping and stopping on NaN."""

from __future__ import annotations

import numbers

import keras
import numpy as np


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
    raise ValueError(
        f"mode='auto' cannot tell whether {monitor} should go down or up; pass mode='min' or "
        f"mode='max'. Received: monitor={monitor!r}"
    )


def resolve_monitor(monitor: str, available) -> str | None:
    """The metric `"auto"` stands for among `available` names: `val_loss`, else `loss`, else `None`."""
    if monitor != "auto":
        return monitor
    return next((m for m in ("val_loss", "loss") if m in available), None)


def finite_losses(logs) -> bool:
    return all(
        np.isfinite(v)
        for k, v in (logs or {}).items()
        if (k == "loss" or k.endswith("_loss")) and isinstance(v, numbers.Real)
    )


class _AutoMonitor:
    """Resolves `monitor="auto"` on the first epoch's logs (for Keras's monitoring callbacks)."""

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor == "auto":
            resolved = resolve_monitor("auto", logs or {})
            if resolved is None:
                raise ValueError(
                    f"monitor='auto' found neither val_loss nor loss in the logs {sorted(logs or {})}; "
                    f"pass one of them as monitor. Received: monitor='auto'"
                )
            self.monitor = resolved
        super().on_epoch_end(epoch, logs)


class EarlyStopping(_AutoMonitor, keras.callbacks.EarlyStopping):
    """`keras.callbacks.EarlyStopping` that accepts `monitor="auto"` (`val_loss`, else `loss`)."""


class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """`keras.callbacks.TerminateOnNaN` that watches every `*loss` in the logs (a GAN has `d_loss`, `g_loss`)."""

    def on_batch_end(self, batch, logs=None):
        for key, value in (logs or {}).items():
            if (key == "loss" or key.endswith("_loss")) and isinstance(value, numbers.Real) and not np.isfinite(value):
                super().on_batch_end(batch, {"loss": value})
                return
