"""End to end through the `recipes` command on tiny data: in this process (`recipes.cli.main`), and
in a subprocess where a process is the point (a kill)."""

import csv
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from recipes import config as config_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}


def recipes(*args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "recipes.cli", *map(str, args)],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def history_rows(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


CLASSIFIER_FILES = [
    "config.yaml",
    "history.csv",
    "best.keras",
    "last.keras",
    "metrics.json",
    "preprocessing.json",
    "plots/curves.png",
    "plots/confusion_matrix.png",
]


def test_a_whole_tiny_run_in_this_process(recipes_main, tmp_path):
    """`recipes train` end to end, in this process: every file of a finished run, the history of
    each epoch, the test metrics, and models that load (each recipe through a real command, on
    each backend: test_smoke.py)."""
    run_dir = tmp_path / "run"
    done = recipes_main("train", "mlp", "--epochs", 2, "--set", "hidden_units=[32]", "--run-dir", run_dir, "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    for file in CLASSIFIER_FILES:
        assert (run_dir / file).is_file(), f"{file} missing in {sorted(run_dir.rglob('*'))}"
    assert list((run_dir / "logs").rglob("events.out.tfevents.*"))
    assert not (run_dir / "backup").exists() and not list(run_dir.rglob("*.tmp*"))
    config = config_lib.load_yaml(run_dir / "config.yaml")
    assert (config["model"], config["epochs"], config["model_args"]) == ("mlp", 2, {"hidden_units": [32]})
    assert config["backend"] == "tensorflow" and config["batch_size"] == 64  # auto, recorded
    rows = history_rows(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"Test metrics: {json.dumps(metrics)}" in done.stdout and f"Run directory: {run_dir}" in done.stdout
    assert metrics.pop("split") == "test" and {"accuracy", "loss"} <= set(metrics)
    assert all(np.isfinite(v) for v in metrics.values())
    # both models load, and predict alike when they hold the same epoch: best.keras holds the epoch
    # of the lowest validation loss (a later one only when lower), last.keras the last epoch
    shape = json.loads((run_dir / "preprocessing.json").read_text())["input_shape"]
    x = np.random.default_rng(0).random((16, *shape), dtype=np.float32)
    best, last = (keras.saving.load_model(run_dir / f).predict(x, verbose=0) for f in ("best.keras", "last.keras"))
    np.testing.assert_array_equal(best, keras.saving.load_model(run_dir / "best.keras").predict(x, verbose=0))
    if float(rows[1]["val_loss"]) < float(rows[0]["val_loss"]):
        np.testing.assert_array_equal(best, last)
    else:
        assert not np.array_equal(best, last)


def test_list_names_every_recipe_with_a_description(recipes_main):
    result = recipes_main("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["alexnet", "dcgan", "lstm", "mlp", "vae", "vgg16"]
    assert all(len(line.split()) > 3 for line in lines)


def test_info_prints_the_plan_with_cpu_extensions_and_reasons(recipes_main):
    from recipes.hardware import describe_cpu_extensions

    result = recipes_main("info", "vgg16")
    assert result.returncode == 0, result.stderr
    plan, *reasons, cache, job, backends, engine, writer = result.stdout.strip().splitlines()
    assert job == "job: one process"
    assert backends == "backends installed: tensorflow, jax, torch"
    assert engine == "data engine: tf.data (the TensorFlow backend: tf.data, measured faster there)"
    assert writer == "TensorBoard writer: tf.summary (TensorFlow is installed)"
    assert cache.startswith("data cache: 2GiB of decoded images in memory when a data set fits")
    assert "--cache-budget SIZE" in cache and "--cache DIR" in cache
    assert plan.startswith("backend: tensorflow | devices: CPU:0 (") and f"; {describe_cpu_extensions()})" in plan
    assert "precision:" in plan
    assert [r.split()[0] for r in reasons] == ["strategy", "precision", "jit", "steps_per_execution", "determinism"]
    result = recipes_main("info", "resnet")
    assert result.returncode == 2 and result.stderr.startswith("recipes info: error: Unknown model 'resnet'.")


def test_evaluate_reports_the_metrics_of_the_finished_run(recipes_main, tiny_run):
    result = recipes_main("evaluate", tiny_run)
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    recorded = json.loads((tiny_run / "metrics.json").read_text())
    assert measured["accuracy"] == pytest.approx(recorded["accuracy"])
    assert measured["loss"] == pytest.approx(recorded["loss"], rel=1e-5)


def test_sample_writes_a_grid_for_generative_runs_only(recipes_main, tiny_run, tiny_dcgan_run, tmp_path):
    out = tmp_path / "grid.png"
    result = recipes_main("sample", tiny_dcgan_run, "--n", 16, "--out", out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = recipes_main("sample", tiny_run, "--n", 16, "--out", tmp_path / "no.png")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"recipes sample: error: Run {str(tiny_run)!r} trained 'mlp', a classifier; sample needs a dcgan or vae run."
    ]
    assert not (tmp_path / "no.png").exists()


def test_seed_makes_a_cpu_run_repeat_exactly(recipes_main, tmp_path):
    """Two runs of one command (the same in two processes: test_smoke.py's killed run)."""
    args = ["train", "mlp", "--epochs", 2, "--set", "hidden_units=[32]", "--seed", 7, "--quiet"]
    for run in "ab":
        done = recipes_main(*args, "--run-dir", tmp_path / run)
        assert done.returncode == 0, done.stderr[-3000:]
    a, b = history_rows(tmp_path / "a"), history_rows(tmp_path / "b")
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    assert [r["val_accuracy"] for r in a] == [r["val_accuracy"] for r in b]


@pytest.mark.process
def test_kill_mid_epoch_then_rerun_resumes_to_the_same_epoch_count(tmp_path):
    """SIGKILL once two epochs are done; the same command continues from the backup."""
    run_dir = tmp_path / "run"
    # Many small batches make each epoch last long enough to be killed inside it.
    args = [
        "train",
        "mlp",
        "--epochs",
        5,
        "--batch-size",
        2,
        "--set",
        "hidden_units=[64]",
        "--run-dir",
        run_dir,
        "--quiet",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "recipes.cli", *map(str, args)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    meta = run_dir / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if meta.exists() and json.loads(meta.read_text() or "{}").get("epoch", 0) >= 2:
            time.sleep(0.3)  # into the third epoch
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "metrics.json").exists()
    killed_at = json.loads(meta.read_text())["epoch"]
    assert killed_at >= 2

    result = recipes(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resuming {run_dir}" in result.stdout
    assert [int(r["epoch"]) for r in history_rows(run_dir)] == [1, 2, 3, 4, 5]
    assert (run_dir / "metrics.json").exists() and not (run_dir / "backup").exists()


def test_nan_loss_stops_the_run_with_a_clear_message(recipes_main, tmp_path):
    result = recipes_main(
        "train",
        "mlp",
        "--epochs",
        3,
        "--learning-rate",
        1e12,
        "--set",
        "optimizer=sgd",
        "--run-dir",
        tmp_path / "nan",
        "--quiet",
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("recipes train: error: The loss became NaN")
    assert not (tmp_path / "nan" / "metrics.json").exists()


BAD = [
    (
        ["train", "resnet"],
        "recipes train: error: Unknown model 'resnet'. Valid names: alexnet, dcgan, lstm, mlp, vae, vgg16",
    ),
    (["train", "mlp", "--epochs", "0"], "recipes train: error: epochs must be a positive integer. Received: epochs=0"),
    (
        ["train", "mlp", "--batch-size", "big"],
        "recipes train: error: argument --batch-size: expected a positive integer or auto. Received: 'big' "
        "(see `recipes train --help`)",
    ),
    (
        ["train", "mlp", "--batch-size", "0"],
        "recipes train: error: batch_size must be a positive integer or 'auto'. Received: batch_size=0",
    ),
    (
        ["train", "mlp", "--epochs", "abc"],
        "recipes train: error: argument --epochs: invalid int value: 'abc' (see `recipes train --help`)",
    ),
    (
        ["train", "mlp", "--set", "colour=red"],
        "recipes train: error: Unknown setting 'colour' (from --set) for model 'mlp'.",
    ),
    (["train", "mlp", "--set", "dropout=-1"], "recipes train: error: dropout must be in [0, 1). Received: dropout=-1"),
    (["train", "mlp", "--config", "missing.yaml"], "recipes train: error: Cannot read config file 'missing.yaml'"),
    (["train", "mlp", "--dataset", "nosuchdata"], "recipes train: error: "),
    (["train", "mlp", "--precision", "float8"], "recipes train: error: precision must be one of"),
]


@pytest.mark.parametrize("case", range(len(BAD)), ids=[" ".join(args) for args, _ in BAD])
def test_bad_input_is_one_line_and_leaves_no_run_directory(case, recipes_main, tmp_path, monkeypatch):
    args, message = BAD[case]
    monkeypatch.chdir(tmp_path)  # where a default runs/ would be made
    result = recipes_main(*args, "--run-dir", tmp_path / "run")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message), lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_image_model_on_table_data_fails_before_training(recipes_main, tmp_path):
    table = tmp_path / "table.csv"
    table.write_text("a,b,c,label\n" + "".join(f"{i},{i + 1},{i + 2},{i % 2}\n" for i in range(40)))
    result = recipes_main("train", "vgg16", "--dataset", table, "--run-dir", tmp_path / "run")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith("recipes train: error: Model 'vgg16' trains on images, but dataset ")
    assert not (tmp_path / "run").exists()


def test_unreadable_yaml_config(recipes_main, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1, 2\n")
    result = recipes_main("train", "mlp", "--config", bad, "--run-dir", tmp_path / "run")
    assert result.returncode == 2
    assert result.stderr.strip() == f"recipes train: error: Config file {str(bad)!r} is not valid YAML (line 2)."
