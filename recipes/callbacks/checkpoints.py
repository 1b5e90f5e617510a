"""Checkpoints that a crash, a full disk or a NaN cannot spoil: best/last `.keras` files and the
resume point. Written by hand because Keras's own write in place (a kill mid-write leaves a
broken file) and its backup is deleted with everything else in its folder.

A resume is exact: the resume point holds, beside the weights and optimizers, the state
of every random-number generator of the model (dropout masks, a VAE's sampling, a GAN's
latent vectors; Keras's own files leave them out) and of the callbacks that count epochs
(early stopping, the plateau schedule), and `EpochOrder` makes the training data read
each epoch in the order an uninterrupted run would."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
import warnings

import keras
import numpy as np

from recipes import plots
from recipes._atomic import atomic_write, atomic_write_text
from recipes._checks import check_choice
from recipes.callbacks.monitoring import ResumableState, finite_losses, resolve_mode, resolve_monitor
from recipes.callbacks.random_state import (  # noqa: F401  (EpochOrder and keep_random_state: their old home)
    EpochOrder,
    KeepRandomState,
    keep_random_state,
    random_state,
    restore_random_state,
)
from recipes.errors import first_line


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
    """No resume point in a backup folder is usable: each is unreadable or incomplete."""


# The attribute of a resume point's weights file that holds the point's token; its metadata holds the same.
TOKEN_ATTRIBUTE = "recipes_resume_token"


def weights_token(path) -> str | None:
    """The token of a resume point's weights file (`None` for one written before tokens existed).

    Raises:
        OSError (or h5py's errors): when the file is not a readable HDF5 file.
    """
    import h5py

    with h5py.File(path, "r") as f:
        token = f.attrs.get(TOKEN_ATTRIBUTE)
    if isinstance(token, bytes):
        token = token.decode()
    return None if token is None else str(token)


def _replace(source, target) -> None:
    """Renames `source` onto `target` and makes the rename durable (where the platform can)."""
    os.replace(source, target)
    with contextlib.suppress(OSError):
        fd = os.open(os.path.dirname(os.path.abspath(target)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class RunBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` (two resume points) that a crash or a NaN cannot spoil.

    A resume point is one unit: the weights and optimizers (`latest.weights.h5`) and the
    metadata (`training_metadata.json`: the epoch, the random-number state, the state of
    the callbacks that count epochs), tied by a token that both hold (an attribute of the
    weights file, `"token"` in the metadata). The previous point is `*.bkp` beside them.

    - A save keeps the previous point until the new one is complete: it copies the
      current metadata to `training_metadata.json.bkp`, renames the current weights to
      `latest.weights.h5.bkp`, then writes the new weights and, last, the new metadata,
      each atomically (a temporary file, then a rename). A kill at any moment leaves a
      complete point, and `training_metadata.json` names the epoch of the newest one
      (what `recipes.rundir.completed_epochs` reads).
    - On restore, each metadata file, newest epoch first, is paired with the weights file
      that holds its token (either name: a save cut short leaves the pair under two
      names). Weights without their metadata (a kill between the two writes) are never
      used; a point whose parts disagree, or that cannot be read, is passed over for the
      previous one. When every point is unusable, `BackupError` names them (Keras would
      crash in h5py, or resume weights an epoch ahead of the epoch they claim).
    - Points written before tokens existed (metadata without `"token"`) still resume:
      their metadata pairs with the weights file of its own name that has no token either.
    - An epoch whose losses are NaN or inf is not backed up: a resume goes back to
      the last good epoch.
    - Each point also holds the model's random-number state (`random_state`) and the
      state of `callbacks` that count epochs (early stopping, the plateau schedule:
      `ResumableState`), so the resumed epochs draw and decide as an uninterrupted run.
    - At the end (unless `delete_at_end=False`, or the run stopped on a NaN loss, when
      the backup is the way back) it removes only the files it wrote, and the folder
      if it is then empty (`remove`).
    """

    def __init__(self, backup_dir, delete_at_end=True, callbacks=()):
        super().__init__(backup_dir, double_checkpoint=True)
        self.async_safe = self.save_freq == "epoch"  # its batch ends do nothing (see TerminateOnNaN)
        self.delete_at_end = delete_at_end
        self.callbacks = [c for c in callbacks if isinstance(c, ResumableState)]
        self._stopped_on_nan = False
        self._kept = None  # (metadata, weights) of the newest complete point, which a save must keep

    @property
    def files(self):
        return (
            self._weights_path,
            self._training_metadata_path,
            self._prev_weights_path,
            self._prev_training_metadata_path,
        )

    def points(self):
        """The complete resume points in the folder, newest first, and what is wrong with the rest.

        Returns:
            `(points, problems)`: `points` a list of `(metadata path, weights path, metadata)`
            whose parts hold the same token, not yet loaded; `problems` a list of `(epoch or
            None, text)` for the metadata files that are unreadable or whose weights are
            missing, unreadable or of another point.
        """
        slots = (
            (self._training_metadata_path, self._weights_path),
            (self._prev_training_metadata_path, self._prev_weights_path),
        )
        tokens, unreadable = {}, {}
        for _, weights in slots:
            if os.path.exists(weights):
                try:
                    tokens[weights] = weights_token(weights)
                except Exception as e:  # h5py's own errors as well as OSError
                    unreadable[weights] = first_line(e)
        metas, problems = [], []
        for metadata, own in slots:
            if not os.path.exists(metadata):
                continue
            try:
                with open(metadata) as f:
                    meta = json.load(f)
                epoch = int(meta["epoch"])
            except Exception as e:  # OSError, JSON, a missing or odd epoch
                problems.append((None, f"{os.path.basename(metadata)} ({first_line(e)})"))
                continue
            metas.append((epoch, metadata, own, meta))
        metas.sort(key=lambda m: m[0], reverse=True)  # stable: the current slot first among equals
        points, used = [], set()
        for epoch, metadata, own, meta in metas:
            token = meta.get("token")
            # a point written before tokens pairs by name, as it was written; a token finds its weights by itself
            options = [own] if token is None else [own] + [w for _, w in slots if w != own]
            match = next((w for w in options if w in tokens and tokens[w] == token), None)
            if match is None:
                problems.append((epoch, self._mismatch(metadata, own, token, options, tokens, unreadable)))
            elif match not in used:  # the same point under both metadata names: once
                used.add(match)
                points.append((metadata, match, meta))
        if not metas and not problems and (tokens or unreadable):
            names = ", ".join(os.path.basename(w) for w in (*tokens, *unreadable))
            problems.append((None, f"{names} (no metadata: the backup of its epoch was cut short)"))
        return points, problems

    @staticmethod
    def _mismatch(metadata, own, token, options, tokens, unreadable) -> str:
        name = os.path.basename(metadata)
        broken = [w for w in options if w in unreadable]
        if broken:
            return "; ".join(f"{os.path.basename(w)} ({unreadable[w]})" for w in broken)
        if token is None:
            if own not in tokens:
                return f"{name} (its weights file {os.path.basename(own)} is missing)"
            return f"{name} ({os.path.basename(own)} belongs to a later point)"
        return f"{name} (no weights file holds its token: the parts of this point disagree)"

    def on_train_begin(self, logs=None):
        self._kept = None
        points, problems = self.points()
        for metadata, weights, meta in points:
            try:
                self._restore(weights, meta)
            except Exception as e:  # h5py, OSError, another model's shapes: this point is unusable
                problems.append((int(meta["epoch"]), f"{os.path.basename(weights)} ({first_line(e)})"))
                continue
            self._kept = (metadata, weights)
            epoch = int(meta["epoch"])
            lost = list(dict.fromkeys(text for at, text in problems if at is None or at > epoch))
            if lost:
                warnings.warn(
                    f"The latest resume point in {self.backup_dir} is unreadable or incomplete: "
                    f"{'; '.join(lost)}; resumed from the previous one (epoch {epoch}).",
                    stacklevel=2,
                )
            return
        if problems:
            raise BackupError(
                f"Every resume point in {self.backup_dir} is unreadable or incomplete: "
                f"{'; '.join(dict.fromkeys(text for _, text in problems))}."
            )

    def _restore(self, weights, meta):
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        epoch = int(meta["epoch"])
        if weights.endswith(".weights.h5"):
            self.model.load_weights(weights)
        else:  # Keras reads weights only from a file named *.weights.h5: a link (or copy) of that name
            fd, alias = tempfile.mkstemp(dir=self.backup_dir, prefix=".previous.", suffix=".tmp.weights.h5")
            os.close(fd)
            os.remove(alias)
            try:
                try:
                    os.link(weights, alias)
                except OSError:
                    shutil.copyfile(weights, alias)
                self.model.load_weights(alias)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(alias)
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
        kept = self._kept
        if kept is None or not all(os.path.exists(p) for p in kept):
            points, _ = self.points()
            kept = points[0][:2] if points else None
        if kept is not None:  # make the kept point the previous one, by name, before anything new is written
            metadata, weights = kept
            if metadata != self._prev_training_metadata_path:
                atomic_write(self._prev_training_metadata_path, lambda tmp: shutil.copyfile(metadata, tmp))
            if weights != self._prev_weights_path:
                _replace(weights, self._prev_weights_path)  # its token goes with it
        token = uuid.uuid4().hex

        def write_weights(tmp):
            import h5py

            self.model.save_weights(tmp, overwrite=True)
            with h5py.File(tmp, "r+") as f:
                f.attrs[TOKEN_ATTRIBUTE] = token

        atomic_write(self._weights_path, write_weights)
        meta = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            "token": token,
            "random_state": random_state(self.model),
            "callbacks": {key: c.resume_state() for key, c in self._keyed_callbacks().items()},
        }
        atomic_write_text(self._training_metadata_path, json.dumps(meta))  # last: this completes the point
        self._kept = (self._training_metadata_path, self._weights_path)

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
