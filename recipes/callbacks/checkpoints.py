"""Checkpoints that a crash, a full disk or a NaN cannot spoil: best/last `.keras` files and the
resume point. Written by hand because Keras's own write in place (a kill mid-write leaves a
broken file) and its backup is deleted with everything else in its folder.

A resume is exact: the resume point holds, beside the weights and optimizers, the state
of every random-number generator of the model (dropout masks, a VAE's sampling, a GAN's
latent vectors; Keras's own files leave them out) and of the callbacks that count epochs
(early stopping, the plateau schedule), and `EpochOrder` makes the training data read
each epoch in the order an uninterrupted run would."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import warnings

import keras
import numpy as np

from recipes import plots
from recipes._atomic import atomic_write, atomic_write_text
from recipes._checks import check_choice
from recipes.callbacks.monitoring import ResumableState, finite_losses, resolve_mode, resolve_monitor


def _seed_states(model) -> list:
    """The state variables of the model's `SeedGenerator`s: its variables that are not weights."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def random_state(model) -> dict:
    """The random-number state training draws from: each `SeedGenerator` of `model` and its
    layers (dropout, sampling...), in the model's order, and on PyTorch the global generators
    (Keras's torch dropout draws from them when the layer has no seed of its own). Keras's
    `.keras` and `.weights.h5` files leave these out, so a rebuilt model draws anew."""
    state = {
        "seed_generators": [
            {"path": v.path, "value": np.asarray(keras.ops.convert_to_numpy(v)).tolist()} for v in _seed_states(model)
        ]
    }
    if keras.backend.backend() == "torch":
        import torch

        state["torch"] = base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["torch_cuda"] = [
                base64.b64encode(s.numpy().tobytes()).decode() for s in torch.cuda.get_rng_state_all()
            ]
    return state


def restore_random_state(model, state: dict) -> None:
    """Sets the random-number state of `model` (and PyTorch's) to `state`, from `random_state`.

    Raises:
        ValueError: when `state` is not one of this model's: another count or shape of generators.
    """
    variables = _seed_states(model)
    generators = state["seed_generators"]
    shapes = [tuple(np.shape(s["value"])) for s in generators]
    if shapes != [tuple(v.shape) for v in variables]:
        raise ValueError(
            f"the saved random state holds {len(generators)} generator(s) of shapes {shapes}, but the model has "
            f"{len(variables)} of shapes {[tuple(v.shape) for v in variables]}"
        )
    for variable, s in zip(variables, generators):
        variable.assign(np.asarray(s["value"], dtype=variable.dtype))
    if keras.backend.backend() == "torch" and "torch" in state:
        import torch

        def as_tensor(text):
            return torch.from_numpy(np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy())

        torch.set_rng_state(as_tensor(state["torch"]))
        if "torch_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([as_tensor(s) for s in state["torch_cuda"]])


class KeepRandomState(keras.callbacks.Callback):
    """What runs between training epochs leaves the model's random-number state as it found it.

    Validation (the VAE evaluates with a sampled code) and the callbacks that run the model
    (reconstructions encode with the sampling layer) would otherwise move its training
    stream, so training would depend on whether and how often they run, and a job of
    several processes (where they run on a copy of the model) would train otherwise than
    one process. `keep_random_state()` returns the two ends: the first callback notes the
    state when an epoch's training ends and before each validation; the second, placed
    after everything else but the backup, puts it back.
    """

    def __init__(self, shared: dict, restores: bool):
        super().__init__()
        self.shared, self.restores = shared, restores

    def on_train_begin(self, logs=None):
        self.shared.clear()

    def on_test_begin(self, logs=None):
        if not self.restores and self.model is not None:
            self.shared["test"] = random_state(self.model)

    def on_test_end(self, logs=None):
        if not self.restores and "test" in self.shared:
            restore_random_state(self.model, self.shared.pop("test"))

    def on_epoch_end(self, epoch, logs=None):
        if self.restores:
            if "epoch" in self.shared:
                restore_random_state(self.model, self.shared.pop("epoch"))
        else:
            self.shared["epoch"] = random_state(self.model)


def keep_random_state() -> tuple[KeepRandomState, KeepRandomState]:
    """`KeepRandomState`'s two ends: put the first before every callback, the second last but the backup."""
    shared = {}
    return KeepRandomState(shared, restores=False), KeepRandomState(shared, restores=True)


class EpochOrder(keras.callbacks.Callback):
    """Makes each epoch read the training data in its own order, the one an uninterrupted
    run reads in that epoch, also after a resume (`recipes.datasets.set_epoch`).

    `tf.data`'s reshuffling starts again from the first order in a new process; the
    pipelines of `load_dataset` take each epoch's order from the seed and the epoch
    alone, and this callback tells them the epoch. It does nothing for other data.

    Args:
        data: the training data given to `fit()`.
    """

    def __init__(self, data):
        super().__init__()
        self.data = data

    def on_epoch_begin(self, epoch, logs=None):
        from recipes.datasets import set_epoch

        set_epoch(self.data, epoch)


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
        history_file: a `history.csv` of this run: when a resumed `fit` starts after
            `k > 0` completed epochs, the best value of its rows for epochs `1..k`
            (counted from 1, as the file does) is the one to beat,
            instead of the first resumed epoch overwriting an older, better model.
            Defaults to `None`.
        copy_of: another `AtomicModelCheckpoint` called before this one (`best.keras`
            for `last.keras`): in an epoch it saved, its file is copied instead of
            serialising the same model a second time. Defaults to `None`.
    """

    def __init__(self, filepath, *, monitor="auto", mode="auto", save_best_only=False, history_file=None, copy_of=None):
        super().__init__()
        self.filepath = os.fspath(filepath)
        if not self.filepath.endswith(".keras"):
            raise ValueError(f"filepath must end in .keras. Received: filepath={self.filepath!r}")
        if copy_of is not None and not isinstance(copy_of, AtomicModelCheckpoint):
            raise TypeError(f"copy_of must be an AtomicModelCheckpoint. Received: copy_of={copy_of!r}")
        self.copy_of = copy_of
        self.saved_epoch = None  # the last epoch written (0-based)
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
        self.saved_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if not (self._first_epoch and self.save_best_only):
            return
        self._first_epoch = False
        if epoch > 0 and self.history_file and os.path.exists(self.history_file) and os.path.exists(self.filepath):
            history = plots.read_history(self.history_file)
            earlier = np.asarray(history.get("epoch", [])) <= epoch  # 1-based: epochs 1..k are done
            finite = [k for k, v in history.items() if np.isfinite(np.asarray(v)[earlier]).any()]
            monitor = resolve_monitor(self.monitor, finite)
            if monitor in finite:
                values = np.asarray(history[monitor])[earlier]
                values = values[np.isfinite(values)]
                self.best = float(values.min() if self.mode == "min" else values.max())

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not finite_losses(logs):
            warnings.warn(f"Epoch {epoch + 1}: a loss is NaN or inf; {self.filepath} is not overwritten.", stacklevel=2)
            return
        if self.save_best_only:
            monitor = resolve_monitor(self.monitor, logs)
            current = logs.get(monitor)
            if current is None:
                if not self._warned:
                    self._warned = True
                    warnings.warn(
                        f"{os.path.basename(self.filepath)} is not written: monitor={self.monitor!r} "
                        f"found nothing to compare in the logs {sorted(logs)}.",
                        stacklevel=2,
                    )
                return
            if not self._better(float(current), self.best):
                return
            self.best = float(current)
        source = self.copy_of
        if source is not None and source.saved_epoch == epoch and os.path.exists(source.filepath):
            atomic_write(self.filepath, lambda tmp: shutil.copyfile(source.filepath, tmp))
        else:
            atomic_write(self.filepath, lambda tmp: self.model.save(tmp, overwrite=True))
        self.saved_epoch = epoch


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
    - Each point also holds the model's random-number state (`random_state`) and the
      state of `callbacks` that count epochs (early stopping, the plateau schedule:
      `ResumableState`), so the resumed epochs draw and decide as an uninterrupted run.
    - At the end (unless `delete_at_end=False`, or the run stopped on a NaN loss, when
      the backup is the way back) it removes only the files it wrote, and the folder
      if it is then empty (`remove`).
    """

    def __init__(self, backup_dir, delete_at_end=True, callbacks=()):
        super().__init__(backup_dir, double_checkpoint=True)
        self.delete_at_end = delete_at_end
        self.callbacks = [c for c in callbacks if isinstance(c, ResumableState)]
        self._stopped_on_nan = False

    @property
    def files(self):
        return (
            self._weights_path,
            self._training_metadata_path,
            self._prev_weights_path,
            self._prev_training_metadata_path,
        )

    def on_train_begin(self, logs=None):
        points = (
            (self._weights_path, self._training_metadata_path),
            (self._prev_weights_path, self._prev_training_metadata_path),
        )
        errors = []
        for weights, metadata in points:
            if not os.path.exists(weights):
                continue
            try:
                self._restore(weights, metadata)
            except Exception as e:  # h5py, OSError, JSON: any of them means this point is unusable
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                errors.append(f"{os.path.basename(weights)} ({reason})")
                continue
            if errors:
                warnings.warn(
                    f"The latest resume point in {self.backup_dir} is unreadable ({errors[0]}); "
                    f"resumed from the previous one.",
                    stacklevel=2,
                )
            return
        if errors:
            raise BackupError(f"Every resume point in {self.backup_dir} is unreadable: {'; '.join(errors)}.")

    def _restore(self, weights, metadata):
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        with open(metadata) as f:
            meta = json.load(f)
        epoch = int(meta["epoch"])
        if weights.endswith(".weights.h5"):
            self.model.load_weights(weights)
        else:  # Keras reads weights only from a file named *.weights.h5
            copy = os.path.join(self.backup_dir, ".previous.weights.h5")
            shutil.copyfile(weights, copy)
            try:
                self.model.load_weights(copy)
            finally:
                os.remove(copy)
        if "random_state" in meta:  # points written before 2026-11 have none: a fresh draw, as then
            restore_random_state(self.model, meta["random_state"])
        states = meta.get("callbacks", {})
        for key, callback in self._keyed_callbacks().items():
            if key in states:
                callback.restore_state(states[key])
        self.model._initial_epoch = epoch

    def _keyed_callbacks(self) -> dict:
        return {f"{type(c).__name__}:{i}": c for i, c in enumerate(self.callbacks)}

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        self._stopped_on_nan = not finite_losses(logs)
        if self.save_freq == "epoch" and not self._stopped_on_nan:
            self._save_model()

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        for current, previous in (
            (self._weights_path, self._prev_weights_path),
            (self._training_metadata_path, self._prev_training_metadata_path),
        ):
            if os.path.exists(current):
                atomic_write(previous, lambda tmp, src=current: shutil.copyfile(src, tmp))
        atomic_write(self._weights_path, lambda tmp: self.model.save_weights(tmp, overwrite=True))
        meta = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            "random_state": random_state(self.model),
            "callbacks": {key: c.resume_state() for key, c in self._keyed_callbacks().items()},
        }
        atomic_write_text(self._training_metadata_path, json.dumps(meta))

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
