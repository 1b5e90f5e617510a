"""What the other callbacks watch: which metric, which direction, whether the losses are finite;
early stopping and stopping on NaN."""

from __future__ import annotations

import contextlib
import numbers
import signal
import threading

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
    if name.endswith(("loss", "error", "distance")) or name in ("mse", "mae", "mape", "msle"):
        return "min"
    if any(key in name for key in ("acc", "auc", "precision", "recall", "f1", "iou", "confidence")) or (
        name == "class_entropy"  # not a cross-entropy: more classes generated is better
    ):
        return "max"
    raise ValueError(
        f"mode='auto' cannot tell whether {monitor} should go down or up; pass mode='min' or "
        f"mode='max'. Received: monitor={monitor!r}"
    )


# What `monitor="auto"` watches, first found first: a GAN has no loss of its own, but with a
# judge it has the quality of its samples (recipes.callbacks.quality).
AUTO_MONITORS = ("val_loss", "loss", "val_frechet_distance")


def resolve_monitor(monitor: str, available) -> str | None:
    """The metric `"auto"` stands for among `available` names: the first of `AUTO_MONITORS`, else `None`."""
    if monitor != "auto":
        return monitor
    return next((m for m in AUTO_MONITORS if m in available), None)


def finite_losses(logs) -> bool:
    return all(
        np.isfinite(v)
        for k, v in (logs or {}).items()
        if (k == "loss" or k.endswith("_loss")) and isinstance(v, numbers.Real)
    )


class ResumableState:
    """A callback whose counters a resumed run continues: `RunBackup` saves
    `resume_state()` with each resume point and gives it back to `restore_state`."""

    RESUME_FIELDS: tuple[str, ...] = ()

    def resume_state(self) -> dict:
        state = {}
        for name in self.RESUME_FIELDS:
            value = getattr(self, name, None)
            state[name] = value.item() if isinstance(value, np.generic) else value
        return state

    def restore_state(self, state: dict) -> None:
        for name in self.RESUME_FIELDS:
            if name in state:
                setattr(self, name, state[name])


class _AutoMonitor:
    """Resolves `monitor="auto"` on the first epoch's logs (for Keras's monitoring callbacks)."""

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor == "auto":
            resolved = resolve_monitor("auto", logs or {})
            if resolved is None:
                raise ValueError(
                    f"monitor='auto' found none of {', '.join(AUTO_MONITORS)} in the logs {sorted(logs or {})}; "
                    f"pass one of them as monitor. Received: monitor='auto'"
                )
            self.monitor = resolved
        super().on_epoch_end(epoch, logs)


class EarlyStopping(ResumableState, _AutoMonitor, keras.callbacks.EarlyStopping):
    """`keras.callbacks.EarlyStopping` that accepts `monitor="auto"` (`val_loss`, else `loss`)
    and whose patience a resumed run continues (with `RunBackup`)."""

    RESUME_FIELDS = ("monitor", "wait", "best", "best_epoch", "stopped_epoch")


class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """`keras.callbacks.TerminateOnNaN` that watches every `*loss` in the logs (a GAN has `d_loss`, `g_loss`).

    Safe for Keras's asynchronous batch-end dispatch (`async_safe`): it only sets `stop_training`,
    which `fit()` reads after the step it is in. A callback that needs each step's logs at once
    makes Keras wait for every step's result on the main thread, and the next step waits for that:
    the JAX VAE's epoch took 1.7-2.5x as long (scripts/bench/jax_cpu.py).
    """

    async_safe = True

    def on_batch_end(self, batch, logs=None):
        for key, value in (logs or {}).items():
            if (key == "loss" or key.endswith("_loss")) and isinstance(value, numbers.Real) and not np.isfinite(value):
                super().on_batch_end(batch, {"loss": value})
                return


class InterruptBetweenSteps(keras.callbacks.Callback):
    """Ctrl-C (SIGINT) during `fit` stops training between two steps, not inside one.

    A KeyboardInterrupt raised in the middle of a TensorFlow op or an h5py write can
    leave native state half-changed (we saw `free(): invalid next size` aborts at exit).
    Inside `installed()` the first SIGINT is only noted; the callback raises
    KeyboardInterrupt when the next step (of training or of validation) or epoch begins,
    before the interrupted epoch is backed up, so the run resumes from its last completed
    epoch. A second Ctrl-C interrupts at once. It checks when steps begin, not end: Keras
    calls batch-begin hooks on the main thread before each step without waiting for the last
    one's results, so the callback leaves Keras's asynchronous batch-end dispatch on.
    """

    def __init__(self):
        super().__init__()
        self.requested = False

    def check(self):
        if self.requested:
            raise KeyboardInterrupt

    def on_train_batch_begin(self, batch, logs=None):
        self.check()

    def on_test_batch_begin(self, batch, logs=None):
        self.check()

    def on_epoch_begin(self, epoch, logs=None):
        self.check()

    @contextlib.contextmanager
    def installed(self):
        """Notes SIGINT instead of raising it, while the block runs (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return

        def note(signum, frame):
            self.requested = True
            signal.signal(signal.SIGINT, previous)  # a second Ctrl-C interrupts at once

        previous = signal.signal(signal.SIGINT, note)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
        self.check()  # a Ctrl-C during the last epoch's end: the run is left unfinished
