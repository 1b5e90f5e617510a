"""A real `tensorboard` server reads a run written by `default_callbacks` (loopback only), whichever
writer wrote it: tf.summary, or tensorboardX (without TensorFlow, or `RECIPES_TENSORBOARD_WRITER`)."""

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import keras
import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.graph import keras_util

from recipes import build_dcgan, build_mlp, build_vae, get_model, list_models
from recipes._optional import has_tensorflow
from recipes.callbacks import TensorBoard, default_callbacks, summary_writer_choice
from recipes.callbacks.logs import WRITER_VARIABLE

WRITERS = ["tf.summary", "tensorboardX"] if has_tensorflow() else ["tensorboardX"]


def run_graph() -> str | None:
    """The run graph written: `"ops"` (the forward pass traced, with tf.summary on the TensorFlow
    backend), `"layers"` (tensorboardX, a node a layer) or `None` (tf.summary on another backend)."""
    if summary_writer_choice()[0] == "tensorboardX":
        return "layers"
    return "ops" if keras.backend.backend() == "tensorflow" else None


# no proxy: the server is on 127.0.0.1 and nothing else may be contacted
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.random.default_rng(0).normal(0.0, 3.0, (3, 4))[y] + rng.normal(0.0, 1.0, (n, 4))
    return x.astype("float32"), y.astype("int32")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, route, **params):
    url = f"http://127.0.0.1:{port}{route}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with _opener.open(url, timeout=10) as response:
        body = response.read()
    return body if response.headers.get_content_type() != "application/json" else json.loads(body)


@pytest.fixture
def tensorboard_server(tmp_path):
    """Starts `tensorboard --logdir <dir>` on a free loopback port; yields `start(logdir) -> port`."""
    procs = []

    def start(logdir):
        port = free_port()
        log = open(tmp_path / "tensorboard.log", "wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tensorboard.main",
                "--logdir",
                str(logdir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        procs.append((proc, log))
        return port, proc

    yield start
    for proc, log in procs:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


def wait_for(port, proc, ready, timeout=120.0):
    """Polls the scalars index until `ready(index)`; fails with the server's log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"tensorboard exited with {proc.returncode}")
        try:
            index = get(port, "/data/plugin/scalars/tags")
            if ready(index):
                return index
        except OSError:
            pass  # not listening yet
        time.sleep(0.5)
    pytest.fail(f"tensorboard did not serve the run within {timeout} s")


@pytest.mark.process
@pytest.mark.parametrize("writer", WRITERS)
def test_tensorboard_serves_the_runs_scalars_images_and_graph(tmp_path, tensorboard_server, monkeypatch, writer):
    monkeypatch.setenv(WRITER_VARIABLE, writer)
    run = tmp_path / "run"
    x, y = blobs(48, seed=0)
    val = blobs(24, seed=1)
    model = build_mlp(
        input_shape=(4,), num_classes=3, hidden_units=(8,), dropout=0.0, optimizer="adam", learning_rate=0.01
    )
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        validation_data=val,
        verbose=0,
        callbacks=default_callbacks(run, validation_data=val),
    ).history

    port, proc = tensorboard_server(run)
    index = wait_for(port, proc, lambda index: "epoch_loss" in index.get("logs/validation", {}))
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(index["logs/train"])

    expected = {
        ("logs/train", "epoch_loss"): history["loss"],
        ("logs/train", "epoch_accuracy"): history["accuracy"],
        ("logs/train", "epoch_learning_rate"): history["learning_rate"],
        ("logs/validation", "epoch_loss"): history["val_loss"],
        ("logs/validation", "epoch_accuracy"): history["val_accuracy"],
    }
    for (run_name, tag), values in expected.items():
        served = get(port, "/data/plugin/scalars/scalars", run=run_name, tag=tag)  # [[wall_time, step, value]]
        assert [step for _, step, _ in served] == [1, 2], (run_name, tag)  # epochs as Keras prints them
        np.testing.assert_allclose([value for _, _, value in served], values, rtol=1e-6, err_msg=tag)

    # the confusion matrix is a picture of the validation data: in that run, no run of images alone
    assert {run: sorted(tags) for run, tags in get(port, "/data/plugin/images/tags").items()} == {
        "logs/validation": ["images/confusion_matrix"]
    }
    [entry] = get(port, "/data/plugin/images/images", run="logs/validation", tag="images/confusion_matrix")
    assert entry["step"] == 2
    png = get(port, "/data/plugin/images/individualImage?" + entry["query"])
    assert np.asarray(Image.open(io.BytesIO(png))).shape == (400, 400, 4)
    assert sorted(get(port, "/data/runs")) == ["logs/train", "logs/validation"]

    # no second copy of the validation scalars against iterations
    assert not [tag for tags in index.values() for tag in tags if tag.startswith("evaluation_")]

    # the Graphs tab: Keras's layer graph, and as the run's default graph the forward pass
    # grouped by layer (not the train step's opaque graph_N boxes)
    graphs = get(port, "/data/plugin/graphs/info")
    assert list(graphs) == ["logs/train"] and list(graphs["logs/train"]["tags"]) == ["keras"]
    assert graphs["logs/train"]["tags"]["keras"]["conceptual_graph"]
    graph = get(port, "/data/plugin/graphs/graph", run="logs/train", tag="keras", conceptual="true").decode()
    assert 'name: "mlp/predictions"' in graph
    assert graphs["logs/train"]["run_graph"] == (run_graph() is not None)
    if run_graph() is None:
        return
    ops = get(port, "/data/plugin/graphs/graph", run="logs/train").decode()
    if run_graph() == "layers":
        assert 'name: "mlp/dense1"' in ops and 'name: "mlp/predictions"' in ops
        return
    assert re.search(r'name: "mlp(_\d)?/dense1(_\d)?/', ops) and re.search(r'name: "mlp(_\d)?/predictions(_\d)?/', ops)
    assert "train_function" not in ops and "graph_1" not in ops


@pytest.mark.process
@pytest.mark.parametrize("writer", WRITERS)
def test_tensorboard_shows_the_layer_graphs_and_pictures_of_the_vae_and_dcgan(
    tmp_path, tensorboard_server, monkeypatch, writer
):
    monkeypatch.setenv(WRITER_VARIABLE, writer)
    if run_graph() is None:
        pytest.skip("tf.summary writes a run graph on the TensorFlow backend only")
    images = np.random.default_rng(0).random((16, 16, 16, 1)).astype("float32")
    vae = build_vae(input_shape=(16, 16, 1), latent_dim=2, filters=(2, 4), hidden_units=(4,), seed=1)
    val = images[:8]
    vae.fit(
        images, batch_size=8, epochs=1, verbose=0, callbacks=default_callbacks(tmp_path / "vae", validation_data=val)
    )
    gan = build_dcgan(input_shape=(16, 16, 1), latent_dim=4, base_filters=2, kernel_size=3, seed=1)
    with pytest.warns(UserWarning, match=r"best\.keras is not written"):
        gan.fit(images * 2 - 1, batch_size=8, epochs=1, verbose=0, callbacks=default_callbacks(tmp_path / "gan"))

    port, proc = tensorboard_server(tmp_path)
    wait_for(port, proc, lambda index: "epoch_g_loss" in index.get("gan/logs/train", {}))
    graphs = get(port, "/data/plugin/graphs/info")
    expected = {
        "vae/logs/train": {"encoder": "z_mean", "decoder": "reconstruction"},
        "gan/logs/train": {"generator": "output_convT", "discriminator": "block1_conv"},
    }
    assert sorted(graphs) == sorted(expected)
    for run_name, layers in expected.items():
        assert sorted(graphs[run_name]["tags"]) == sorted(layers), run_name
        assert graphs[run_name]["run_graph"], run_name  # what the Graphs tab opens first
        ops = get(port, "/data/plugin/graphs/graph", run=run_name).decode()
        assert all(re.search(rf'name: "{tag}(_\d)?/', ops) for tag in layers), run_name
        for tag, layer in layers.items():
            assert graphs[run_name]["tags"][tag]["conceptual_graph"] and not graphs[run_name]["tags"][tag]["op_graph"]
            graph = get(port, "/data/plugin/graphs/graph", run=run_name, tag=tag, conceptual="true").decode()
            assert f'name: "{tag}/{layer}"' in graph, (run_name, tag)

    assert {run: sorted(tags) for run, tags in get(port, "/data/plugin/images/tags").items()} == {
        "vae/logs/train": ["images/latent_traversal", "images/samples"],
        "vae/logs/validation": ["images/reconstructions"],
        "gan/logs/train": ["images/samples"],
    }


TINY_INPUTS = {
    "alexnet": (64, 64, 3),
    "dcgan": (16, 16, 1),
    "lstm": (8,),
    "mlp": (8,),
    "vae": (16, 16, 1),
    "vgg16": (32, 32, 3),
}
# VGG16's own head (4096-unit dense layers, 1,000 classes) takes ~40 s to build here; the small preset
# has the same 13 convolutions and block names
TINY_ARGS = {"vgg16": {"preset": "small", "num_classes": 10}}
LAYER_GRAPHS = {"dcgan": ("generator", "discriminator"), "vae": ("encoder", "decoder")}


@pytest.mark.parametrize("name", list_models())
def test_every_recipe_has_a_layer_graph_the_graphs_plugin_can_draw(tmp_path, name):
    model = get_model(name, input_shape=TINY_INPUTS[name], compile=False, **TINY_ARGS.get(name, {}))
    callback = TensorBoard(tmp_path)
    callback.set_model(model)  # Keras writes the graph here, before training
    callback._close_writers()
    acc = event_accumulator.EventAccumulator(str(tmp_path / "train"), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    tags = LAYER_GRAPHS.get(name, ("keras",))
    assert acc.Tags()["tensors"] == list(tags)
    for tag in tags:
        assert acc.summary_metadata[tag].plugin_data.plugin_name == "graph_keras_model"
        config = json.loads(acc.Tensors(tag)[0].tensor_proto.string_val[0])
        graph = keras_util.keras_model_to_graph_def(config)  # what /data/plugin/graphs/graph?conceptual=true serves
        layers = [node.name.split("/", 1)[1] for node in graph.node]
        assert len(layers) >= 4 and set(layers) <= {layer["name"] for layer in config["config"]["layers"]}, tag
