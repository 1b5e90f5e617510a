"""The run's records: TensorBoard (scalars, learning rates, layer graphs) and history.csv.

Epochs are counted from 1 everywhere a run records them, as Keras prints "Epoch 1/10":
TensorBoard's epoch-level steps, history.csv's `epoch` column and the per-epoch PNGs.
"""

from __future__ import annotations

import json
import os
import time

import keras
import tensorflow as tf

from recipes._atomic import atomic_write
from recipes.callbacks.learning_rate import learning_rates

_writers = {}


def summary_writer(log_dir):
    """The one `tf.summary` writer of `log_dir` for the whole process.

    TensorBoard reads the event files of a run one after another, so two live writers
    in one directory hide each other's events: the TensorBoard callback and the image
    callbacks all write through this one. A directory removed since (a run started
    over) gets a new writer.
    """
    log_dir = os.path.abspath(os.fspath(log_dir))
    if log_dir not in _writers or not os.path.isdir(log_dir):
        _writers[log_dir] = tf.summary.create_file_writer(log_dir)
    return _writers[log_dir]


def flush_summary_writer(log_dir):
    """Flushes the writer of `log_dir`, if this process has one."""
    writer = _writers.get(os.path.abspath(os.fspath(log_dir)))
    if writer is not None:
        writer.flush()


def _functional(model) -> bool:
    return type(model).__name__ in ("Functional", "Sequential")


def _tensors_only(config):
    """Drops the constants from the call arguments in a model's config, in place: TensorBoard's
    graph plugin fails on any that is not a tensor (the `0` of the LSTM's `not_equal` mask)."""
    if isinstance(config, list):
        for item in config:
            _tensors_only(item)
    elif isinstance(config, dict):
        for node in config.get("inbound_nodes") or []:
            if isinstance(node, dict) and isinstance(node.get("args"), list):
                args = [
                    [a for a in arg if isinstance(a, dict)] if isinstance(arg, list) else arg for arg in node["args"]
                ]
                node["args"] = [arg for arg in args if isinstance(arg, (dict, list))]
        for value in config.values():
            _tensors_only(value)


def write_layer_graph(tag, model, step=0):
    """Writes a functional model's layers, as `model.to_json()`, for TensorBoard's Graphs tab
    (the conceptual graph Keras writes as `keras`) to the default summary writer."""
    config = json.loads(model.to_json())
    _tensors_only(config)
    metadata = tf.compat.v1.SummaryMetadata()
    metadata.plugin_data.plugin_name = "graph_keras_model"
    metadata.plugin_data.content = b"1"
    return tf.summary.write(tag, json.dumps(config), step=step, metadata=metadata)


class TensorBoard(keras.callbacks.TensorBoard):
    """`keras.callbacks.TensorBoard` with 1-based epochs, shared writers and a layer graph for every recipe.

    - Epoch-level scalars (and histograms) are written at step `epoch + 1`, the epoch
      number Keras prints.
    - Its writers are the process-wide `summary_writer`s of `logs/train` and
      `logs/validation`, shared with the image callbacks, and are flushed, not closed,
      when training ends (the confusion matrix is written after).
    - The Graphs tab shows the conceptual layer graph: Keras writes it (tag `keras`)
      for Functional and Sequential models only; of a subclassed model (VAE, DCGAN)
      each functional sub-model is written under its own name (`encoder`, `decoder`,
      `generator`, `discriminator`).
    - Learning rates of multi-optimizer models (GANs) are logged as
      `epoch_d_learning_rate`, `epoch_g_learning_rate`.
    - The forward-pass graph is written at the end of the first epoch that ends
      `graph_delay` seconds or more after training began, or when training ends: tracing
      it again took 0.26 s (the MLP) to 0.5 s, a tenth of a short run's time to its first
      validation, before any quality could be shown (`scripts/bench/time_to_accuracy.py`).
    """

    graph_delay = 10.0  # seconds

    @property
    def _train_writer(self):
        return summary_writer(self._train_dir)

    @property
    def _val_writer(self):
        return summary_writer(self._val_dir)

    def _close_writers(self):
        flush_summary_writer(self._train_dir)
        flush_summary_writer(self._val_dir)

    def _write_keras_model_summary(self):
        with self._train_writer.as_default():
            if _functional(self.model):
                write_layer_graph("keras", self.model)
                return
            for layer in self.model.layers:
                if isinstance(layer, keras.Model) and _functional(layer):
                    write_layer_graph(layer.name, layer)

    def _write_keras_model_train_graph(self):
        # Not fit()'s step, whose op graph is rows of opaque `graph_N` boxes: the forward pass
        # of each functional (sub-)model in inference, its ops grouped by layer. It is also the
        # run's default graph, which the Graphs tab opens first (without one it opens on an error).
        models = (
            [self.model]
            if _functional(self.model)
            else [layer for layer in self.model.layers if isinstance(layer, keras.Model) and _functional(layer)]
        )
        specs = [[tf.TensorSpec((None, *x.shape[1:]), x.dtype) for x in m.inputs] for m in models]
        if not models or keras.backend.backend() != "tensorflow":  # traced with tf.function
            return

        def forward(*inputs):
            flat, outputs = iter(inputs), []
            for m, spec in zip(models, specs):
                args = [next(flat) for _ in spec]
                outputs.append(m(args[0] if len(args) == 1 else args, training=False))
            return outputs

        graph = tf.function(forward).get_concrete_function(*[s for spec in specs for s in spec]).graph
        with self._train_writer.as_default():
            tf.summary.graph(graph)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # Keras writes the graph after the first batch; here it waits (see the class doc)
        self._graph_due, self._should_write_train_graph = self._should_write_train_graph, False
        self._began = time.monotonic()

    def _write_graph_if_due(self, now: bool = False):
        if getattr(self, "_graph_due", False) and (now or time.monotonic() - self._began >= self.graph_delay):
            self._graph_due = False
            self._write_keras_model_train_graph()

    def on_train_end(self, logs=None):
        self._write_graph_if_due(now=True)
        super().on_train_end(logs)

    def on_test_end(self, logs=None):
        # Keras also writes each validation metric as `evaluation_<name>_vs_iterations`: the
        # `epoch_<name>` of the validation run again, on another axis, as many cards again
        self._pop_writer()

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)
        self._write_graph_if_due()

    def _collect_learning_rate(self, logs):
        logs.update(learning_rates(self.model))
        return logs


class HistoryCSVLogger(keras.callbacks.CSVLogger):
    """`CSVLogger(append=True)` that keeps `history.csv` one row per epoch across resumes.

    The `epoch` column counts from 1, as Keras prints "Epoch 1/10". A `fit` that
    starts after `k` completed epochs (resumed by `BackupAndRestore`, or
    `initial_epoch=k`) first drops the rows of epochs `> k`: a crash after the
    row was written but before the backup leaves no duplicate, and a fresh run
    (`k = 0`) in an old directory starts a fresh history and header. A continued
    history keeps the columns of its header, so the file stays a valid CSV. A
    history written by an older version, counting from 0 (its first row is epoch
    0), is renumbered from 1 as it is continued.
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
        rows = [(line.split(self.sep, 1)[0], line) for line in lines[1:] if line.strip()]
        rows = [(int(float(field)), line[len(field) :]) for field, line in rows]  # (epoch, the rest of the row)
        offset = 1 if rows and rows[0][0] == 0 else 0  # counted from 0 by an older version
        kept = [f"{n + offset}{rest}" for n, rest in rows if n + offset <= epoch]

        def rewrite(tmp):
            with open(tmp, "w", newline="") as f:
                f.writelines([lines[0], *kept])

        atomic_write(self.filename, rewrite if kept else lambda tmp: None)
        self.csv_file = open(self.filename, "a", newline="")
        # continuing: keep the header's columns; starting over: a new header from this run's logs
        self.keys, self.append_header = (header[1:], False) if kept else (None, True)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)
