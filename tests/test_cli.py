"""End to end through the real `recipes` command, in subprocesses, on tiny data."""

import csv
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # every test here starts the command in subprocesses

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


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    """A 32x32 grayscale .npz in the Keras layout: small enough for VGG16 in seconds."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    y = rng.integers(0, 3, size=64).astype("uint8")
    x = (rng.random((64, 32, 32)) * 80 + y[:, None, None] * 80).astype("uint8")
    np.savez(path, x_train=x[:48], y_train=y[:48], x_test=x[48:], y_test=y[48:])
    return path


# Tiny settings per recipe: (dataset, extra arguments)
TINY = {
    "mlp": ("digits", ["--set", "hidden_units=[32]"]),
    "lstm": ("digits", ["--set", "units=[16]"]),
    "alexnet": ("tiny", []),
    "vgg16": ("tiny", []),
    "dcgan": ("digits", ["--set", "base_filters=8"]),
    "vae": ("digits", []),
}

CLASSIFIER_FILES = [
    "config.yaml",
    "history.csv",
    "best.keras",
    "last.keras",
    "metrics.json",
    "plots/curves.png",
    "plots/confusion_matrix.png",
]
GENERATIVE_FILES = [
    "config.yaml",
    "history.csv",
    "best.keras",
    "last.keras",
    "metrics.json",
    "plots/curves.png",
    "plots/samples.png",
]


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory, tiny_images):
    """Trains every recipe for two epochs through the command; returns name -> run dir."""
    root = tmp_path_factory.mktemp("runs")
    runs, procs = {}, {}
    for name, (dataset, extra) in TINY.items():  # side by side: the runs are independent
        dataset = tiny_images if dataset == "tiny" else dataset
        runs[name] = root / name
        args = [
            "train",
            name,
            "--dataset",
            dataset,
            "--epochs",
            2,
            "--batch-size",
            32,
            "--run-dir",
            runs[name],
            "--quiet",
            *extra,
        ]
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "recipes.cli", *map(str, args)],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    results = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return runs, results


def test_list_names_every_recipe_with_a_description():
    result = recipes("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["alexnet", "dcgan", "lstm", "mlp", "vae", "vgg16"]
    assert all(len(line.split()) > 3 for line in lines)


def test_info_prints_the_plan_with_cpu_extensions_and_reasons():
    from recipes.hardware import describe_cpu_extensions

    result = recipes("info", "vgg16")
    assert result.returncode == 0, result.stderr
    plan, *reasons, cache, job = result.stdout.strip().splitlines()
    assert job == "job: one process"
    assert cache.startswith("data cache: 2GiB of decoded images in memory when a data set fits")
    assert "--cache-budget SIZE" in cache and "--cache DIR" in cache
    assert plan.startswith("backend: tensorflow | devices: CPU:0 (") and f"; {describe_cpu_extensions()})" in plan
    assert "precision:" in plan
    assert [r.split()[0] for r in reasons] == ["strategy", "precision", "jit", "steps_per_execution", "determinism"]
    result = recipes("info", "resnet")
    assert result.returncode == 2 and result.stderr.startswith("recipes info: error: Unknown model 'resnet'.")


@pytest.mark.parametrize("name", sorted(TINY))
def test_train_writes_a_complete_run_directory(name, trained_runs):
    runs, procs = trained_runs
    result, run_dir = procs[name], runs[name]
    assert result.returncode == 0, result.stderr[-3000:]
    files = GENERATIVE_FILES if name in ("dcgan", "vae") else CLASSIFIER_FILES
    if name == "dcgan":  # a GAN has no loss to call one epoch "best": last.keras alone
        files = [f for f in files if f != "best.keras"]
    for file in files:
        assert (run_dir / file).is_file(), f"{file} missing in {sorted(run_dir.rglob('*'))}"
    assert list((run_dir / "logs").rglob("events.out.tfevents.*"))
    assert not (run_dir / "backup").exists()
    assert [int(r["epoch"]) for r in history_rows(run_dir)] == [1, 2]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    expected = {"dcgan": {"d_loss", "g_loss"}, "vae": {"negative_elbo", "reconstruction_loss", "kl_loss"}}
    assert expected.get(name, {"accuracy", "loss"}) <= set(metrics)
    assert metrics.pop("split") == "test"
    assert all(np.isfinite(v) for v in metrics.values())


def test_evaluate_reports_the_metrics_of_the_finished_run(trained_runs):
    runs, _ = trained_runs
    result = recipes("evaluate", runs["mlp"])
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    recorded = json.loads((runs["mlp"] / "metrics.json").read_text())
    assert measured["accuracy"] == pytest.approx(recorded["accuracy"])
    assert measured["loss"] == pytest.approx(recorded["loss"], rel=1e-5)


def test_sample_writes_a_grid_for_generative_runs_only(trained_runs, tmp_path):
    runs, _ = trained_runs
    out = tmp_path / "grid.png"
    result = recipes("sample", runs["dcgan"], "--n", 16, "--out", out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = recipes("sample", runs["mlp"], "--n", 16, "--out", tmp_path / "no.png")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"recipes sample: error: Run {str(runs['mlp'])!r} trained 'mlp', a classifier; sample needs a dcgan or vae run."
    ]
    assert not (tmp_path / "no.png").exists()


def test_seed_makes_a_cpu_run_repeat_exactly(tmp_path):
    args = ["train", "mlp", "--epochs", 2, "--set", "hidden_units=[32]", "--seed", 7, "--quiet"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "recipes.cli", *map(str, args), "--run-dir", str(tmp_path / run)],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run in "ab"
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    a, b = history_rows(tmp_path / "a"), history_rows(tmp_path / "b")
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    assert [r["val_accuracy"] for r in a] == [r["val_accuracy"] for r in b]


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


def test_nan_loss_stops_the_run_with_a_clear_message(tmp_path):
    result = recipes(
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


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    """Runs every BAD command side by side (each is a TensorFlow start-up, then one line)."""
    procs = []
    for i, (args, _) in enumerate(BAD):
        cwd = tmp_path_factory.mktemp(f"bad{i}")
        procs.append(
            (
                cwd,
                subprocess.Popen(
                    [sys.executable, "-m", "recipes.cli", *args, "--run-dir", str(cwd / "run")],
                    cwd=cwd,
                    env=ENV,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    results = []
    for cwd, proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        results.append((cwd, subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)))
    return results


@pytest.mark.parametrize("case", range(len(BAD)), ids=[" ".join(args) for args, _ in BAD])
def test_bad_input_is_one_line_and_leaves_no_run_directory(case, bad_runs):
    message = BAD[case][1]
    tmp_path, result = bad_runs[case]
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message), lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_image_model_on_table_data_fails_before_training(tmp_path):
    table = tmp_path / "table.csv"
    table.write_text("a,b,c,label\n" + "".join(f"{i},{i + 1},{i + 2},{i % 2}\n" for i in range(40)))
    result = recipes("train", "vgg16", "--dataset", table, "--run-dir", tmp_path / "run")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith("recipes train: error: Model 'vgg16' trains on images, but dataset ")
    assert not (tmp_path / "run").exists()


def test_unreadable_yaml_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1, 2\n")
    result = recipes("train", "mlp", "--config", bad, "--run-dir", tmp_path / "run")
    assert result.returncode == 2
    assert result.stderr.strip() == f"recipes train: error: Config file {str(bad)!r} is not valid YAML (line 2)."
