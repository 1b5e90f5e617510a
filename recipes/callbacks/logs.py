"""The run's records: TensorBoard (scalars, learning rates, the traced graph) and history.csv."""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from recipes._atomic import atomic_write
from recipes.callbacks.learning_rate import learning_rates


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
