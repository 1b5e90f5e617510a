"""The run's records: TensorBoard (scalars, learning rates, layer graphs) and history.csv.

Epochs are counted from 1 everywhere a run records them, as Keras prints "Epoch 1/10":
TensorBoard's epoch-level steps, history.csv's `epoch` column and the per-epoch PNGs.

TensorBoard's event files are written by `tf.summary` where TensorFlow is installed and by
tensorboardX where it is not (`summary_writer_choice`; `$RECIPES_TENSORBOARD_WRITER` overrides).
Both write the same runs (`logs/train`, `logs/validation`), tags and steps: the epoch scalars,
histograms, the pictures and the layer graphs. The differences:

- tf.summary writes TF2 tensor summaries; tensorboardX the older forms (a scalar's `simple_value`,
  PNG images, histogram buckets), which TensorBoard shows alike. tensorboardX stores a gray
  picture as RGB.
- The run graph (what the Graphs tab opens on) is the forward pass's op graph, traced with
  `tf.function`, with tf.summary on the TensorFlow backend (on the others there is none). Without
  TensorFlow no op graph can be traced: tensorboardX's run graph is the layer graph, one node a
  layer. (tensorboardX's `add_graph` traces a PyTorch module, but Keras's layers then fall into
  one `Functional` box of ungrouped ops, so it is not used.)
- tf.summary writes one event file per directory and process; tensorboardX one per flush (at
  the end of each epoch, after each picture), as its `flush()` leaves what its worker thread has
  yet to write and only `close()` waits for it.
- Batch-level tracing (`profile_batch`) needs tf.summary.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import time

import keras
import numpy as np
from tensorboard.plugins.graph import keras_util

from recipes._atomic import atomic_write
from recipes._optional import MissingDependency, installed, require_tensorflow
from recipes.callbacks.learning_rate import learning_rates

WRITERS = ("tf.summary", "tensorboardX")
WRITER_VARIABLE = "RECIPES_TENSORBOARD_WRITER"


def summary_writer_choice() -> tuple[str, str]:
    """The writer of TensorBoard's event files, and why: `"tf.summary"` or `"tensorboardX"`.

    `$RECIPES_TENSORBOARD_WRITER` names it when set; otherwise it is `tf.summary` where TensorFlow
    is installed (as it always was), else tensorboardX.

    Returns:
        `(writer, reason)`, e.g. `("tensorboardX", "TensorFlow is not installed")`.

    Raises:
        ValueError: when `$RECIPES_TENSORBOARD_WRITER` names another writer.
        MissingDependency: when the writer chosen is not installed.
    """
    named = os.environ.get(WRITER_VARIABLE)
    if named:
        if named not in WRITERS:
            raise ValueError(f"{WRITER_VARIABLE} must be one of {WRITERS}. Received: {WRITER_VARIABLE}={named!r}")
        choice = named, f"{WRITER_VARIABLE}={named}"
    elif installed("tensorflow"):
        choice = "tf.summary", "TensorFlow is installed"
    else:
        choice = "tensorboardX", "TensorFlow is not installed"
    if choice[0] == "tf.summary":
        require_tensorflow(f"The TensorBoard writer tf.summary ({choice[1]})")
    elif not installed("tensorboardX"):
        raise MissingDependency(
            f"The TensorBoard writer tensorboardX ({choice[1]}) is not installed: pip install 'tensorboardX>=2.6'"
        )
    return choice


def _uint8(images):
    """Images in [0, 1] as uint8, rounded and clipped as `tf.summary.image` does."""
    images = np.asarray(images)
    return images if images.dtype == np.uint8 else np.clip(images.astype("float32") * 255.5, 0, 255).astype("uint8")


class _TFSummaryWriter:
    """A `tf.summary` file writer: TF2 summaries, one event file."""

    name = "tf.summary"

    def __init__(self, log_dir):
        import tensorflow as tf

        self._tf = tf
        self._writer = tf.summary.create_file_writer(log_dir)

    def as_default(self, step=None):
        """The writer as `tf.summary`'s default (Keras's batch-level summaries write to it)."""
        return self._writer.as_default(step)

    def scalar(self, tag, value, step):
        with self._writer.as_default():
            self._tf.summary.scalar(tag, value, step=step)

    def histogram(self, tag, values, step):
        with self._writer.as_default():
            self._tf.summary.histogram(tag, values, step=step)

    def image(self, tag, images, step, max_outputs=1):
        with self._writer.as_default():
            self._tf.summary.image(tag, images, step=step, max_outputs=max_outputs)

    def layer_graph(self, tag, config, step=0):
        metadata = self._tf.compat.v1.SummaryMetadata()
        metadata.plugin_data.plugin_name = "graph_keras_model"
        metadata.plugin_data.content = b"1"
        with self._writer.as_default():
            self._tf.summary.write(tag, config, step=step, metadata=metadata)

    def op_graph(self, graph):
        """Writes the run graph, a `tf.Graph` or `GraphDef`."""
        with self._writer.as_default():
            self._tf.summary.graph(graph)

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()


_event_files = itertools.count()


class _TensorBoardXWriter:
    """A tensorboardX `SummaryWriter`: the older summary forms, a new event file after each flush.

    tensorboardX's `flush()` does not wait for the events its worker thread has yet to write;
    `close()` does, so a flush closes the `SummaryWriter` and the next event opens another.
    """

    name = "tensorboardX"

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self._writer = None

    def _open(self):
        if self._writer is None:
            from tensorboardX import SummaryWriter  # here: it imports PyTorch where installed (1.7 s)

            # the process and a count in the name: TensorBoard reads a directory's files in the
            # order of their names, and two opened in the same second would otherwise share one
            suffix = f".{os.getpid()}.{next(_event_files):06d}"
            self._writer = SummaryWriter(self.log_dir, filename_suffix=suffix)
        return self._writer

    def scalar(self, tag, value, step):
        self._open().add_scalar(tag, float(value), step)

    def histogram(self, tag, values, step):
        self._open().add_histogram(tag, np.asarray(values), step, bins="tensorflow")

    def image(self, tag, images, step, max_outputs=1):
        images = _uint8(images[:max_outputs])
        if len(images) == 1:
            self._open().add_image(tag, images[0], step, dataformats="HWC")
        else:  # one picture of them all, where tf.summary keeps each
            self._open().add_images(tag, images, step, dataformats="NHWC")

    def layer_graph(self, tag, config, step=0):
        # add_text would file it under the Text tab: the Graphs tab reads the graph_keras_model plugin
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboardX.proto.tensor_pb2 import TensorProto

        plugin = SummaryMetadata.PluginData(plugin_name="graph_keras_model", content=b"1")
        value = Summary.Value(
            tag=tag,
            metadata=SummaryMetadata(plugin_data=plugin),
            tensor=TensorProto(dtype="DT_STRING", string_val=[config.encode()]),
        )
        self._open().file_writer.add_summary(Summary(value=[value]), step)

    def op_graph(self, graph):
        """Writes the run graph, a `GraphDef`."""
        from tensorboardX.proto.event_pb2 import Event

        self._open().file_writer.add_event(Event(graph_def=graph.SerializeToString()))

    def flush(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    close = flush


_WRITER_CLASSES = {"tf.summary": _TFSummaryWriter, "tensorboardX": _TensorBoardXWriter}
_writers = {}


def tensorboard_writer(log_dir, writer: str | None = None):
    """The one TensorBoard writer of `log_dir` for the whole process.

    TensorBoard reads the event files of a run one after another, so two live writers
    in one directory hide each other's events: the TensorBoard callback and the image
    callbacks all write through this one. A directory removed since (a run started
    over) gets a new writer.

    The writer has `scalar(tag, value, step)`, `histogram(tag, values, step)`,
    `image(tag, images, step, max_outputs=1)` (`(N, H, W, C)` in [0, 1]),
    `layer_graph(tag, config_json, step=0)`, `op_graph(graph)` (the run graph), `flush()` and
    `close()`; its `name` says which it is.

    Args:
        log_dir: the directory of the TensorBoard run (`logs/train`, `logs/validation`).
        writer: `"tf.summary"` or `"tensorboardX"`. Defaults to `None`: the writer `log_dir`
            already has, else `summary_writer_choice()`'s.

    Raises:
        ValueError: for another `writer`.
    """
    if writer is not None and writer not in WRITERS:
        raise ValueError(f"writer must be one of {WRITERS}. Received: writer={writer!r}")
    log_dir = os.path.abspath(os.fspath(log_dir))
    current = _writers.get(log_dir)
    if current is not None and os.path.isdir(log_dir) and writer in (None, current.name):
        return current
    if current is not None:
        current.close()
    _writers[log_dir] = _WRITER_CLASSES[writer or summary_writer_choice()[0]](log_dir)
    return _writers[log_dir]


def flush_tensorboard_writer(log_dir):
    """Flushes the writer of `log_dir`, if this process has one."""
    writer = _writers.get(os.path.abspath(os.fspath(log_dir)))
    if writer is not None:
        writer.flush()


@atexit.register
def close_tensorboard_writers():
    """Closes every writer of this process (also done when it exits); the next event opens another."""
    while _writers:
        _writers.popitem()[1].close()


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


def _layer_config(model) -> dict:
    config = json.loads(model.to_json())
    _tensors_only(config)
    return config


def write_layer_graph(writer, tag, model, step=0):
    """Writes a functional model's layers, as `model.to_json()`, for TensorBoard's Graphs tab
    (the conceptual graph Keras writes as `keras`) with `writer`, a `tensorboard_writer`."""
    writer.layer_graph(tag, json.dumps(_layer_config(model)), step)


def layer_graph_def(models):
    """The layers of functional models as one `GraphDef`, a node a layer named `<model>/<layer>`:
    the conceptual graph TensorBoard draws from `write_layer_graph`'s config."""
    graphs = [keras_util.keras_model_to_graph_def(_layer_config(m)) for m in models]
    for graph in graphs[1:]:
        graphs[0].node.extend(graph.node)
    return graphs[0]


def _weight_images(weight):
    """A weight as Keras's TensorBoard draws it (`write_images`): `(N, H, W, 1)`, or `None` when it cannot."""
    w = np.squeeze(weight)
    if w.ndim == 1:  # a bias
        w = w.reshape(1, w.shape[0], 1, 1)
    elif w.ndim == 2:  # a dense kernel, the longer side across
        w = (w.T if w.shape[0] > w.shape[1] else w)[None, ..., None]
    elif w.ndim == 3:  # a convolution: each kernel a picture
        w = (np.transpose(w, (2, 0, 1)) if keras.backend.image_data_format() == "channels_last" else w)[..., None]
    return w if w.ndim == 4 and w.shape[-1] in (1, 3, 4) else None


class TensorBoard(keras.callbacks.TensorBoard):
    """`keras.callbacks.TensorBoard` with 1-based epochs, shared writers and a layer graph for every recipe,
    written by `tf.summary` or, without TensorFlow, by tensorboardX (`summary_writer_choice`).

    - Epoch-level scalars (and histograms) are written at step `epoch + 1`, the epoch
      number Keras prints.
    - Its writers are the process-wide `tensorboard_writer`s of `logs/train` and
      `logs/validation`, shared with the image callbacks, and are flushed at the end of
      each epoch and when training ends, not closed (the confusion matrix is written after).
    - The Graphs tab shows the conceptual layer graph: Keras writes it (tag `keras`)
      for Functional and Sequential models only; of a subclassed model (VAE, DCGAN)
      each functional sub-model is written under its own name (`encoder`, `decoder`,
      `generator`, `discriminator`).
    - Learning rates of multi-optimizer models (GANs) are logged as
      `epoch_d_learning_rate`, `epoch_g_learning_rate`.
    - With tf.summary on the TensorFlow backend, the forward-pass graph is written at the
      end of the first epoch that ends `graph_delay` seconds or more after training began, or
      when training ends: tracing it again took 0.26 s (the MLP) to 0.5 s, a tenth of a short
      run's time to its first validation, before any quality could be shown
      (`scripts/bench/time_to_accuracy.py`). Without TensorFlow no op graph can be traced:
      tensorboardX's run graph is then the layer graph (`layer_graph_def`), one node a layer.
    - With tensorboardX, batch-level scalars (`update_freq`) are written as Keras writes
      them; `profile_batch` needs tf.summary.

    Raises:
        ValueError: for `profile_batch` when the writer is tensorboardX.
    """

    graph_delay = 10.0  # seconds

    def __init__(self, *args, **kwargs):
        self.writer = summary_writer_choice()[0]  # the name of the writer: "tf.summary" or "tensorboardX"
        profile_batch = kwargs.get("profile_batch", args[6] if len(args) > 6 else 0)
        if profile_batch and self.writer != "tf.summary":
            raise ValueError(
                f"profile_batch needs the TensorBoard writer tf.summary (TensorFlow), not {self.writer}. "
                f"Received: profile_batch={profile_batch!r}"
            )
        super().__init__(*args, **kwargs)
        # written once an epoch, no profile: nothing a batch's end does needs its logs at once, so
        # Keras may dispatch batch ends asynchronously (see TerminateOnNaN)
        self.async_safe = self.update_freq == "epoch" and not self._should_trace

    @property
    def _train_writer(self):
        return tensorboard_writer(self._train_dir, self.writer)

    @property
    def _val_writer(self):
        return tensorboard_writer(self._val_dir, self.writer)

    def _close_writers(self):
        flush_tensorboard_writer(self._train_dir)
        flush_tensorboard_writer(self._val_dir)

    def _write_keras_model_summary(self):
        writer = self._train_writer
        if _functional(self.model):
            write_layer_graph(writer, "keras", self.model)
            return
        for layer in self.model.layers:
            if isinstance(layer, keras.Model) and _functional(layer):
                write_layer_graph(writer, layer.name, layer)

    def _write_keras_model_train_graph(self):
        # Not fit()'s step, whose op graph is rows of opaque `graph_N` boxes: the forward pass
        # of each functional (sub-)model in inference, its ops grouped by layer. It is also the
        # run's default graph, which the Graphs tab opens first (without one it opens on an error).
        models = (
            [self.model]
            if _functional(self.model)
            else [layer for layer in self.model.layers if isinstance(layer, keras.Model) and _functional(layer)]
        )
        if not models:
            return
        if self.writer != "tf.summary":  # no tf.function to trace with: the layers, one node each
            self._train_writer.op_graph(layer_graph_def(models))
            return
        if keras.backend.backend() != "tensorflow":  # traced with tf.function
            return
        import tensorflow as tf

        specs = [[tf.TensorSpec((None, *x.shape[1:]), x.dtype) for x in m.inputs] for m in models]

        def forward(*inputs):
            flat, outputs = iter(inputs), []
            for m, spec in zip(models, specs):
                args = [next(flat) for _ in spec]
                outputs.append(m(args[0] if len(args) == 1 else args, training=False))
            return outputs

        self._train_writer.op_graph(tf.function(forward).get_concrete_function(*[s for sp in specs for s in sp]).graph)

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
        self._close_writers()
        self._write_graph_if_due()

    def _collect_learning_rate(self, logs):
        logs.update(learning_rates(self.model))
        return logs

    # `_log_epoch_metrics` and `_log_weights` write what Keras's do (with tf.summary), through either writer

    def _log_epoch_metrics(self, epoch, logs):
        if not logs:
            return
        train = self._collect_learning_rate({k: v for k, v in logs.items() if not k.startswith("val_")})
        if self.write_steps_per_second:
            train["steps_per_second"] = self._compute_steps_per_second()
        validation = {k[len("val_") :]: v for k, v in logs.items() if k.startswith("val_")}
        for scalars, log_dir in ((train, self._train_dir), (validation, self._val_dir)):
            if scalars:  # no validation data: no validation run
                writer = tensorboard_writer(log_dir, self.writer)
                for name, value in scalars.items():
                    writer.scalar(f"epoch_{name}", value, epoch)

    def _log_weights(self, epoch):
        writer = self._train_writer
        for layer in self.model.layers:
            for weight in layer.weights:
                name = weight.path.replace(":", "_")
                values = keras.ops.convert_to_numpy(weight)
                writer.histogram(f"{name}/histogram", values, epoch)
                images = _weight_images(values) if self.write_images else None
                if images is not None:
                    writer.image(f"{name}/image", images, epoch, max_outputs=3)
        writer.flush()

    # Batch-level summaries: tf.summary's default writer is pushed for them (also for the model's
    # own tf.summary calls) as Keras does; tensorboardX has none, and writes Keras's `batch_*` scalars.

    def _push_writer(self, writer, step):
        if self.writer == "tf.summary":
            super()._push_writer(writer, step)

    def _pop_writer(self):
        if self.writer == "tf.summary":
            super()._pop_writer()

    def on_train_batch_end(self, batch, logs=None):
        if self.writer == "tf.summary":
            super().on_train_batch_end(batch, logs)
            return
        step = self._global_train_batch
        if self.update_freq == "epoch" or step % self.update_freq:
            return
        scalars = dict(logs) if isinstance(logs, dict) else {}
        if self.write_steps_per_second:
            scalars = {"steps_per_second": 1.0 / (time.time() - self._batch_start_time), **scalars}
        for name, value in scalars.items():
            self._train_writer.scalar(f"batch_{name}", value, step)


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
