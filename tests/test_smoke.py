"""`recipes train <each recipe> --epochs 1` on the bundled digits, under this process's backend.

.ci/run runs this module once per backend (`KERAS_BACKEND=jax pytest tests/test_smoke.py ...`):
the commands it starts inherit KERAS_BACKEND. Models are shrunk with `--set` so the three
backends fit in CI's time; the code paths are the command's own. (One whole run in the test
process, with the same checks: test_cli.py.)
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from recipes import config as config_lib
from recipes._optional import has_tensorflow

BACKEND = keras.backend.backend()
ENV = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
FILES = ["config.yaml", "history.csv", "best.keras", "last.keras", "metrics.json", "plots/curves.png"]
PICTURE = {"dcgan": "plots/samples.png", "vae": "plots/samples.png"}  # others: "plots/confusion_matrix.png"
METRICS = {"dcgan": {"d_loss", "g_loss"}, "vae": {"negative_elbo", "reconstruction_loss", "kl_loss"}}
SMALL = {
    "mlp": ["hidden_units=[32]"],
    "alexnet": ["filters=[8,8,8,8,8]", "fc_units=[16,16]"],
    "vgg16": ["filters=[4,8,8,16,16]", "fc_units=[16]"],
    "lstm": ["units=[8]"],
    "dcgan": ["base_filters=4", "latent_dim=8"],
    "vae": [],
}


def recipes(*args, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "recipes.cli", *map(str, args)], env=ENV, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.process
@pytest.mark.parametrize("name", sorted(SMALL))
def test_each_recipe_trains_one_epoch_from_the_command(name, tmp_path, tiny_run):
    run = tmp_path / name
    sets = [a for s in SMALL[name] for a in ("--set", s)]
    judge = ["--judge", tiny_run] if name in ("dcgan", "vae") else []  # conftest.py's, on this backend
    done = recipes("train", name, "--epochs", 1, "--run-dir", run, "--quiet", *sets, *judge)
    assert done.returncode == 0, done.stderr[-3000:]
    assert config_lib.load_yaml(run / "config.yaml")["backend"] == BACKEND
    for file in [*FILES, PICTURE.get(name, "plots/confusion_matrix.png")]:
        assert (run / file).is_file(), f"{file} missing in {sorted(run.rglob('*'))}"
    assert not (run / "backup").exists()
    assert [line.split(",", 1)[0] for line in (run / "history.csv").read_text().splitlines()[1:]] == ["1"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert METRICS.get(name, {"accuracy", "loss"}) <= set(metrics), metrics
    assert metrics.pop("split") == "test" and all(np.isfinite(v) for v in metrics.values()), metrics
    assert any((run / "logs" / "train").iterdir()), "no TensorBoard events"
    evaluated = recipes("evaluate", run)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    if name in ("dcgan", "vae"):
        sampled = recipes("sample", run, "--n", 16, "--out", tmp_path / "samples.png")
        assert sampled.returncode == 0, sampled.stderr[-3000:]
        assert (tmp_path / "samples.png").stat().st_size > 0


@pytest.mark.process
def test_the_lstm_trains_on_texts_and_predicts_raw_sentences_from_the_command(tmp_path, reviews_folder):
    """Texts through this backend: TextVectorization in the input pipeline, the run's vocabulary in
    evaluate and predict."""
    run = tmp_path / "text"
    done = recipes(
        "train", "lstm", "--dataset", reviews_folder, "--epochs", 2, "--run-dir", run, "--quiet",
        "--set", "units=[8]", "--set", "embedding_dim=8",
    )  # fmt: skip
    if not has_tensorflow():  # TextVectorization is TensorFlow's: one line naming the extra, no run
        assert done.returncode == 2, done.stderr[-3000:]
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert "needs TensorFlow, which is not installed: pip install 'keras-recipes[tensorflow]'" in done.stderr
        assert not run.exists()
        return
    assert done.returncode == 0, done.stderr[-3000:]
    assert config_lib.load_yaml(run / "config.yaml")["backend"] == BACKEND
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "test" and np.isfinite(metrics["loss"]), metrics
    evaluated = recipes("evaluate", run)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    again = json.loads(evaluated.stdout[evaluated.stdout.index("{") :])
    assert again["accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-6), (again, metrics)
    predicted = recipes(
        "predict", run, "a wonderful, brilliant film", "a dull and tedious film", "--out", tmp_path / "p.json"
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    rows = json.loads((tmp_path / "p.json").read_text())["predictions"]
    assert [row["input"] for row in rows] == ["a wonderful, brilliant film", "a dull and tedious film"]
    assert {row["predicted"] for row in rows} <= {"neg", "pos"}


def _weights(path):
    return [np.asarray(w) for w in keras.saving.load_model(path).weights]


@pytest.mark.process
def test_a_killed_run_resumes_exactly_as_an_uninterrupted_one(tmp_path):
    """The resumed epochs read the same data order and draw the same dropout masks: the
    history and the final weights equal those of a run that was never killed."""
    run = tmp_path / "run"
    args = ["train", "mlp", "--epochs", 4, "--batch-size", 4, "--set", "hidden_units=[64]", "--run-dir", run]
    proc = subprocess.Popen(
        [sys.executable, "-m", "recipes.cli", *map(str, args), "--quiet"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    meta = run / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if meta.exists() and json.loads(meta.read_text() or "{}").get("epoch", 0) >= 1:
            time.sleep(0.3)  # into the second epoch
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "metrics.json").exists()

    resumed = recipes(*args, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming {run}" in resumed.stdout
    epochs = [line.split(",", 1)[0] for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2", "3", "4"]
    assert config_lib.load_yaml(run / "config.yaml")["backend"] == BACKEND

    whole = tmp_path / "whole"
    done = recipes(*args[:-1], whole, "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run / "history.csv").read_text() == (whole / "history.csv").read_text()
    for resumed_weight, whole_weight in zip(_weights(run / "last.keras"), _weights(whole / "last.keras"), strict=True):
        np.testing.assert_array_equal(resumed_weight, whole_weight)
