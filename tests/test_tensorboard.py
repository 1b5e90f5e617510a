"""A real `tensorboard` server reads a run written by `default_callbacks` (loopback only)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from recipes import build_mlp
from recipes.callbacks import default_callbacks

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


@pytest.mark.slow
def test_tensorboard_serves_the_runs_scalars_images_and_graph(tmp_path, tensorboard_server):
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
        assert [step for _, step, _ in served] == [0, 1], (run_name, tag)
        np.testing.assert_allclose([value for _, _, value in served], values, rtol=1e-6, err_msg=tag)

    assert "confusion_matrix" in get(port, "/data/plugin/images/tags")["logs/images"]
    [entry] = get(port, "/data/plugin/images/images", run="logs/images", tag="confusion_matrix")
    assert entry["step"] == 1
    png = get(port, "/data/plugin/images/individualImage?" + entry["query"])
    assert tf.io.decode_png(png).shape == (400, 400, 4)

    graphs = get(port, "/data/plugin/graphs/info")["logs/train"]["tags"]
    assert graphs["train_step"]["op_graph"] and graphs["keras"]["conceptual_graph"]
