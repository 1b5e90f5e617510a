"""TensorBoard's two writers, tf.summary and tensorboardX, write the same runs, tags and steps.

Fast and in-process. With TensorFlow installed both writers are compared; without it, tensorboardX
is checked against the History alone:

    KERAS_BACKEND=jax .venv-notf/bin/python -m pytest tests/test_tensorboard_writers.py -n 0 -p no:cacheprovider
"""

import io
import json
import os

import keras
import numpy as np
import pytest
from conftest import py_batches
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.graph import keras_util
from tensorboard.util import tensor_util

from recipes import build_mlp, build_vae
from recipes._optional import MissingDependency, has_tensorflow
from recipes.callbacks import TensorBoard, default_callbacks, summary_writer_choice
from recipes.callbacks.logs import WRITER_VARIABLE

WRITERS = ["tf.summary", "tensorboardX"] if has_tensorflow() else ["tensorboardX"]
both_writers = pytest.mark.skipif(not has_tensorflow(), reason="tf.summary needs TensorFlow")


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.random.default_rng(0).normal(0.0, 3.0, (3, 4))[y] + rng.normal(0.0, 1.0, (n, 4))
    return x.astype("float32"), y.astype("int32")


def train_mlp(run, epochs=2, callbacks=(), **kwargs):
    """The MLP on blobs with default_callbacks and a PyDataset as validation data; returns the History."""
    x, y = blobs(48, seed=0)
    val = py_batches(*blobs(24, seed=1))
    model = build_mlp(
        input_shape=(4,), num_classes=3, hidden_units=(8,), dropout=0.0, optimizer="adam", learning_rate=0.01
    )
    callbacks = [*default_callbacks(run, validation_data=val, **kwargs), *callbacks]
    return model.fit(x, y, batch_size=16, epochs=epochs, validation_data=val, verbose=0, callbacks=callbacks).history


def train_vae(run):
    images = np.random.default_rng(0).random((16, 16, 16, 1)).astype("float32")
    vae = build_vae(input_shape=(16, 16, 1), latent_dim=2, filters=(2, 4), hidden_units=(4,), seed=1)
    val = images[:8]
    return vae.fit(
        images, batch_size=8, epochs=2, verbose=0, callbacks=default_callbacks(run, validation_data=val)
    ).history


EVERYTHING = {kind: 0 for kind in ("scalars", "images", "histograms", "tensors")}  # 0: keep every event


def read_logs(logs):
    """What TensorBoard reads under `logs`, whichever writer wrote it, as
    `{kind: {(run, tag, step): value}}`: kinds `scalars` (floats), `images` ((height, width)),
    `histograms` (the count of values), `layer_graphs` (the model's config)."""
    found = {"scalars": {}, "images": {}, "histograms": {}, "layer_graphs": {}}
    for run in sorted(os.listdir(logs)):
        for kind, tag, step, value in summaries(os.path.join(logs, run)):
            # each fit() writes the layer graph (at step 0) again, as Keras does; nothing else is written twice
            assert kind == "layer_graphs" or (run, tag, step) not in found[kind], f"{run} {tag} step {step} twice"
            found[kind][run, tag, step] = value
    return found


def summaries(path):
    """Yields `(kind, tag, step, value)` for each summary of the TensorBoard run `path` (as `read_logs`)."""
    acc = event_accumulator.EventAccumulator(path, size_guidance=EVERYTHING)
    acc.Reload()
    tags = acc.Tags()
    # tensorboardX: the older summary forms
    for tag in tags["scalars"]:
        yield from (("scalars", tag, e.step, e.value) for e in acc.Scalars(tag))
    for tag in tags["images"]:
        yield from (("images", tag, e.step, (e.height, e.width)) for e in acc.Images(tag))
    for tag in tags["histograms"]:
        yield from (("histograms", tag, e.step, e.histogram_value.num) for e in acc.Histograms(tag))
    # tf.summary's TF2 summaries, and the layer graphs of both
    for tag in tags["tensors"]:
        plugin = acc.summary_metadata[tag].plugin_data.plugin_name
        for e in acc.Tensors(tag):
            if plugin == "scalars":
                yield "scalars", tag, e.step, float(tensor_util.make_ndarray(e.tensor_proto))
            elif plugin == "images":  # [width, height, png, ...]
                yield "images", tag, e.step, Image.open(io.BytesIO(e.tensor_proto.string_val[2])).size[::-1]
            elif plugin == "histograms":  # [[left, right, count], ...]
                yield "histograms", tag, e.step, tensor_util.make_ndarray(e.tensor_proto)[:, 2].sum()
            elif plugin == "graph_keras_model":
                yield "layer_graphs", tag, e.step, json.loads(e.tensor_proto.string_val[0])
            else:
                raise AssertionError(f"{path}: an unexpected {plugin} summary {tag}")


@pytest.fixture
def writer(request, monkeypatch):
    monkeypatch.setenv(WRITER_VARIABLE, request.param)
    return request.param


def scalars_of(history):
    """The epoch scalars Keras's TensorBoard writes for `history`: `{(run, tag, step): value}`."""
    expected = {}
    for key, values in history.items():
        run, name = ("validation", key[len("val_") :]) if key.startswith("val_") else ("train", key)
        expected.update({(run, f"epoch_{name}", step): value for step, value in enumerate(values, 1)})
    return expected


@pytest.mark.parametrize("writer", WRITERS, indirect=True)
def test_a_classifier_run_has_the_scalars_histograms_pictures_and_layer_graph_keras_writes(tmp_path, writer):
    run = tmp_path / "run"
    history = train_mlp(run, histogram_freq=1)
    found = read_logs(run / "logs")

    expected = scalars_of(history)
    assert {("train", "epoch_learning_rate", 1), ("validation", "epoch_accuracy", 2)} <= set(expected)
    assert set(found["scalars"]) == set(expected)
    for key, value in expected.items():
        assert found["scalars"][key] == pytest.approx(value, rel=1e-6), key
    # the confusion matrix at the last epoch, a picture of the validation data
    assert found["images"] == {("validation", "images/confusion_matrix", 2): (400, 400)}
    weights = {"dense1/kernel": 4 * 8, "dense1/bias": 8, "predictions/kernel": 8 * 3, "predictions/bias": 3}
    assert found["histograms"] == {
        ("train", f"{name}/histogram", step): count for name, count in weights.items() for step in (1, 2)
    }
    [(key, config)] = found["layer_graphs"].items()
    assert key == ("train", "keras", 0)
    graph = keras_util.keras_model_to_graph_def(config)  # what the Graphs tab draws
    assert {node.name for node in graph.node} >= {"mlp/dense1", "mlp/predictions"}
    # the run graph, what the Graphs tab opens on: the forward pass's ops, traced with tf.function
    # (tf.summary on the TensorFlow backend), else with tensorboardX the layers
    acc = event_accumulator.EventAccumulator(str(run / "logs" / "train"))
    acc.Reload()
    if writer == "tensorboardX":
        assert acc.Graph() == graph
    else:
        assert acc.Tags()["graph"] == (keras.backend.backend() == "tensorflow")


@pytest.mark.parametrize("writer", WRITERS, indirect=True)
def test_a_vae_run_has_its_pictures_in_both_runs_at_each_epoch(tmp_path, writer):
    history = train_vae(tmp_path / "vae")
    found = read_logs(tmp_path / "vae" / "logs")
    assert {key[:2] for key in found["scalars"]} == {key[:2] for key in scalars_of(history)}
    assert sorted(found["images"]) == [
        ("train", "images/latent_traversal", 1),
        ("train", "images/latent_traversal", 2),
        ("train", "images/samples", 1),
        ("train", "images/samples", 2),
        ("validation", "images/reconstructions", 1),
        ("validation", "images/reconstructions", 2),
    ]
    assert sorted(found["layer_graphs"]) == [("train", "decoder", 0), ("train", "encoder", 0)]


@both_writers
def test_both_writers_write_the_same_tags_at_the_same_steps(tmp_path, monkeypatch):
    found = {}
    for writer in ("tf.summary", "tensorboardX"):
        monkeypatch.setenv(WRITER_VARIABLE, writer)
        keras.utils.set_random_seed(0)
        train_mlp(tmp_path / writer / "mlp", histogram_freq=1)
        train_vae(tmp_path / writer / "vae")
        found[writer] = {
            name: {kind: dict(values) for kind, values in read_logs(tmp_path / writer / name / "logs").items()}
            for name in ("mlp", "vae")
        }
    tf_summary, tensorboardx = found["tf.summary"], found["tensorboardX"]
    for name in ("mlp", "vae"):
        for kind in ("scalars", "images", "histograms", "layer_graphs"):
            assert set(tensorboardx[name][kind]) == set(tf_summary[name][kind]), (name, kind)
        assert tensorboardx[name]["histograms"] == tf_summary[name]["histograms"]
        for key, config in tf_summary[name]["layer_graphs"].items():  # the same graph (the optimizer's name differs)
            graph = keras_util.keras_model_to_graph_def(tensorboardx[name]["layer_graphs"][key])
            assert graph == keras_util.keras_model_to_graph_def(config), key
        # the same pictures, in size (tensorboardX stores gray ones as RGB)
        assert tensorboardx[name]["images"] == tf_summary[name]["images"]
    # and the files: tf.summary one per directory, tensorboardX one per flush
    assert len(os.listdir(tmp_path / "tf.summary" / "mlp" / "logs" / "validation")) == 1
    assert len(os.listdir(tmp_path / "tensorboardX" / "mlp" / "logs" / "validation")) > 1


class Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("killed")


@pytest.mark.parametrize("writer", WRITERS, indirect=True)
def test_a_resumed_run_continues_the_steps(tmp_path, writer):
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="killed"):
        train_mlp(run, epochs=4, callbacks=[Interrupt()])
    history = train_mlp(run, epochs=4)  # resumes after epoch 2 from the backup
    assert len(history["loss"]) == 2
    found = read_logs(run / "logs")  # read_logs fails on a step written twice
    assert sorted(step for run_name, tag, step in found["scalars"] if tag == "epoch_loss") == [1, 1, 2, 2, 3, 3, 4, 4]
    for step, value in enumerate(history["val_loss"], 3):
        assert found["scalars"]["validation", "epoch_loss", step] == pytest.approx(value, rel=1e-6)
    assert ("validation", "images/confusion_matrix", 4) in found["images"]


@pytest.mark.parametrize("writer", WRITERS, indirect=True)
def test_batch_level_scalars_every_update_freq_steps(tmp_path, writer):
    x, y = blobs(48, seed=0)
    model = build_mlp(input_shape=(4,), num_classes=3, hidden_units=(8,), dropout=0.0, optimizer="adam")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[TensorBoard(tmp_path, update_freq=4)])
    found = read_logs(tmp_path)
    assert sorted(step for run, tag, step in found["scalars"] if tag == "batch_loss") == [4, 8, 12]


def test_the_writer_is_tf_summary_where_tensorflow_is_installed_else_tensorboardx(monkeypatch):
    monkeypatch.delenv(WRITER_VARIABLE, raising=False)
    if has_tensorflow():
        assert summary_writer_choice() == ("tf.summary", "TensorFlow is installed")
    else:
        assert summary_writer_choice() == ("tensorboardX", "TensorFlow is not installed")
    monkeypatch.setenv(WRITER_VARIABLE, "tensorboardX")
    assert summary_writer_choice() == ("tensorboardX", "RECIPES_TENSORBOARD_WRITER=tensorboardX")
    monkeypatch.setenv(WRITER_VARIABLE, "tf")
    with pytest.raises(ValueError, match=r"^RECIPES_TENSORBOARD_WRITER must be one of .* Received: .*='tf'$"):
        summary_writer_choice()
    monkeypatch.setenv(WRITER_VARIABLE, "tf.summary")
    if has_tensorflow():
        assert summary_writer_choice() == ("tf.summary", "RECIPES_TENSORBOARD_WRITER=tf.summary")
    else:
        with pytest.raises(MissingDependency, match=r"needs TensorFlow, which is not installed"):
            summary_writer_choice()


def test_profile_batch_needs_tf_summary(monkeypatch):
    monkeypatch.setenv(WRITER_VARIABLE, "tensorboardX")
    with pytest.raises(ValueError, match=r"^profile_batch needs .* tf\.summary .* Received: profile_batch=3$"):
        TensorBoard(profile_batch=3)
