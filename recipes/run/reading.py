"""A failed read of the data during `fit()`, turned into one line that names the file or the shard pack."""

from __future__ import annotations

import re
import sys

import keras

from recipes.datasets._images import UnreadableImage
from recipes.errors import TrainingError


class _Position(keras.callbacks.Callback):
    """Where training is: the epoch, the step, and whether it is validating."""

    epoch, step, validating = 0, 0, False

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.step = epoch, 0

    def on_train_batch_begin(self, batch, logs=None):
        self.step = batch

    def on_test_begin(self, logs=None):
        self.validating = True

    def on_test_end(self, logs=None):
        self.validating = False


class Reading:
    """Turns a failed read of a streamed image file during `fit()` into a `TrainingError`
    naming the file: the tf.data pipeline's own error (raised from TensorFlow's iterator, on any
    backend) names none; the PyDataset engine's (`UnreadableImage`) does, and is told where
    training stopped. `position` is the callback that keeps where training was."""

    def __init__(self, run):
        self.train, self.val, self.run_dir = run.data.train, run.data.val, run.directory
        self.position = _Position()

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        where = self.position
        if isinstance(error, UnreadableImage):
            raise TrainingError(f"{error} {self._stopped(where)}") from None
        if error is None or not _is_data_error(error):
            return False
        data = self.val if where.validating else self.train
        stream, shards = getattr(data, "files", None), getattr(data, "shards_root", None)
        if stream is None and shards is not None:  # a record that is not what its shard was packed with
            detail = re.search(r"(corrupted|truncated) record at \d+|Invalid JPEG data[\w ]*", error.message)
            raise TrainingError(
                f"A shard of {shards} cannot be read{f' ({detail[0]})' if detail else ''}; "
                f"`recipes pack --verify --out {shards}` names it: pack the images again. Training stopped in "
                f"epoch {where.epoch + 1}; the epochs before it are kept."
            ) from None
        if stream is None:
            return False
        found = stream.unreadable(where.epoch, where.step) if not where.validating else stream.unreadable(0, 0)
        if found is None:
            return False
        raise TrainingError(f"{found} {self._stopped(where)}") from None

    def _stopped(self, where) -> str:
        return (
            f"Training stopped in epoch {where.epoch + 1}; the epochs before it are kept: resume with "
            f"`recipes train --resume {self.run_dir}`."
        )


def _is_data_error(error) -> bool:
    tf = sys.modules.get("tensorflow")  # only TensorFlow's pipelines raise these, on any backend
    return tf is not None and isinstance(error, tf.errors.OpError)
