"""Run directories a user can trust: foreign folders, two trainings, stuck runs, kills, one-line errors.

Written as a user meets them: the `recipes` command (in this process, `recipes.cli.main`; in
subprocesses where a process is the point: two trainings, locks, kills), on files the tests
make, asserting the exit status, the one line on stderr, and that the user's files are
byte-for-byte unchanged.
"""

import contextlib
import csv
import hashlib
import os
import pathlib
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from recipes import config as config_lib
from recipes import rundir, training
from recipes.registry import get_spec

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
FAST = ["--set", "hidden_units=[16]", "--quiet"]
TINY = ["--set", "hidden_units=[32]", "--quiet"]  # the settings of conftest.py's tiny_run


def command(*args, cwd=None, timeout=300):
    return [sys.executable, "-m", "recipes.cli", *map(str, args)]


def one_error_line(result, code=2):
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def snapshot(folder):
    """Every file under `folder` (hidden ones too) -> sha256 of its bytes; the run's lock file,
    which names its latest holder, is left out."""
    folder = pathlib.Path(folder)
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != rundir.LOCK
    }


def epochs_of(run_dir):
    with open(pathlib.Path(run_dir) / "history.csv", newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@contextlib.contextmanager
def mounted_tmpfs(path, options):
    """A tmpfs at `path` (root only); skips the test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


# ------------------------------------------------------------ folders that are not runs


def test_a_folder_that_is_not_a_run_is_refused_and_left_untouched(recipes_main, tmp_path):
    d = tmp_path / "d"
    (d / "backup").mkdir(parents=True)
    (d / "history.csv").write_text("my,own\n1,2\n")
    (d / "backup" / "important.txt").write_text("days of work")
    before = snapshot(d)
    line = one_error_line(recipes_main("train", "mlp", "--epochs", 1, "--run-dir", d, *FAST))
    assert line == (
        f"recipes train: error: Run directory '{d}' holds files recipes did not write "
        f"(backup/, history.csv); choose a new or empty folder for --run-dir."
    )
    assert snapshot(d) == before and sorted(os.listdir(d)) == ["backup", "history.csv"]


def test_run_dir_that_is_a_file_or_cannot_be_made(recipes_main, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    line = one_error_line(recipes_main("train", "mlp", "--epochs", 1, "--run-dir", f, *FAST))
    assert line == f"recipes train: error: Run directory '{f}' is a file, not a folder; choose another --run-dir."
    assert f.read_text() == "keep me"
    inside = f / "run"
    line = one_error_line(recipes_main("train", "mlp", "--epochs", 1, "--run-dir", inside, *FAST))
    assert line.startswith(f"recipes train: error: Cannot create run directory '{inside}': ")


def test_read_only_location_is_one_line(recipes_main, tmp_path):
    with mounted_tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        line = one_error_line(recipes_main("train", "mlp", "--epochs", 1, "--run-dir", ro / "run", *FAST))
        assert line == f"recipes train: error: Cannot create run directory '{ro / 'run'}': Read-only file system."


# ------------------------------------------------------------------ two trainings


@pytest.mark.process
def test_two_trainings_started_together_one_is_refused(tmp_path):
    """The issue's `$C & $C & wait`: one trains, the other is refused in one line."""
    run = tmp_path / "runs" / "same"
    args = command(
        "train", "vae", "--epochs", 3, "--batch-size", 16, "--image-size", 28, 28, "--run-dir", run, "--quiet"
    )
    procs = [
        subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2).strip().splitlines()
    # refused while the other trains, or (if it started that much later) because the run is finished
    assert len(refused) == 1 and refused[0].startswith(f"recipes train: error: Run directory '{run}' "), refused
    assert "is in use by another training (pid " in refused[0] or "holds a finished run" in refused[0], refused
    assert epochs_of(run) == [1, 2, 3]


@pytest.mark.process
def test_a_second_training_while_one_runs_is_refused_with_the_holders_pid(recipes_main, tmp_path):
    run = tmp_path / "run"
    args = command("train", "mlp", "--epochs", 400, "--run-dir", run, *FAST)
    first = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ((run / "history.csv").exists() and rundir.is_live(run)):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.05)
        second = recipes_main("train", "mlp", "--epochs", 400, "--run-dir", run, *FAST)
        line = one_error_line(second)
        assert line == (
            f"recipes train: error: Run directory '{run}' is in use by another training "
            f"(pid {first.pid} on {socket.gethostname()}); wait for it to end or choose another --run-dir."
        )
        assert first.poll() is None  # the live run goes on
        resumed = recipes_main("train", "--resume", run)
        assert one_error_line(resumed).endswith(
            "is in use by another training "
            f"(pid {first.pid} on {socket.gethostname()}); wait for it to end "
            "or choose another --run-dir."
        )
    finally:
        first.kill()
        first.wait()
    done = epochs_of(run)
    assert done == list(range(1, len(done) + 1))  # one writer: continuous history


def test_automatic_resume_never_picks_a_live_run_and_default_names_never_collide(tmp_path):
    config = config_lib.resolve("mlp", flags={"epochs": 2})
    root = tmp_path / "runs"
    names = {training.default_run_dir(config, root=root) for _ in range(5)}  # all in the same second
    assert len(names) == 5 and all(p.is_dir() for p in names)
    unfinished = sorted(names)[-1]
    with rundir.claim(unfinished):
        config_lib.dump(config, unfinished / "config.yaml")
        assert training.find_unfinished(config, root=root) is None  # live: never resumed by another process
        assert rundir.is_live(unfinished)
    assert not rundir.is_live(unfinished)
    assert training.find_unfinished(config, root=root) == unfinished


@pytest.mark.process
def test_a_killed_holder_releases_its_directory(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import sys, time
from recipes import rundir
with rundir.claim({str(run)!r}):
    print("held", flush=True)
    time.sleep(60)
""",
        ],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(rundir.RunDirError, match=rf"is in use by another training \(pid {holder.pid} on "):
        with rundir.claim(run):
            pass
    holder.kill()
    holder.wait()
    with rundir.claim(run) as claimed:  # no stale lock: the OS released it with the process
        assert claimed.path == run


# ------------------------------------------------------------------ stuck runs


def test_nan_run_says_what_to_do_and_resume_applies_the_new_learning_rate(recipes_main, tmp_path):
    run = tmp_path / "nan"
    result = recipes_main(
        "train", "mlp", "--epochs", 3, "--learning-rate", 1e12, "--set", "optimizer=sgd", "--run-dir", run, *FAST
    )
    line = one_error_line(result, code=1)
    assert line == (
        f"recipes train: error: The loss became NaN in epoch 1, before any epoch completed; "
        f"nothing was saved. Try a lower learning rate: recipes train --resume {run} "
        f"--learning-rate 1e+11"
    )
    assert not (run / "best.keras").exists()
    result = recipes_main("train", "--resume", run, "--learning-rate", "3e-2", "--quiet")
    assert result.returncode == 0, result.stderr
    assert f"Resuming {run} at epoch 1 with learning_rate=0.03" in result.stdout
    stored = config_lib.load_yaml(run / "config.yaml")
    assert stored["learning_rate"] == 0.03 and stored["resumes"] == [{"epoch": 0, "learning_rate": 0.03}]
    with open(run / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx([0.03] * 3)
    assert (run / "metrics.json").exists() and not (run / "backup").exists()


def test_resume_refuses_flags_it_cannot_apply_and_changes_nothing(recipes_main, interrupted_run):
    before = snapshot(interrupted_run)
    line = one_error_line(recipes_main("train", "--resume", interrupted_run, "--batch-size", 8, "--set", "dropout=0.1"))
    assert line == (
        "recipes train: error: --resume continues a run as it was set up; --batch-size, --set "
        "cannot change (only --epochs, --learning-rate, --early-stopping, --cache-budget and --cache can): start a "
        "new run instead."
    )
    line = one_error_line(recipes_main("train", "--resume", interrupted_run, "--epochs", 1))
    assert line == (
        f"recipes train: error: Run '{interrupted_run}' has completed 2 epochs already; --epochs "
        f"must be at least that. Received: epochs=1"
    )
    assert snapshot(interrupted_run) == before


@pytest.fixture
def interrupted_run(tmp_path, tiny_run):
    """A run killed after its second epoch: two epochs in history and backup, not finished
    (conftest.py's tiny_run, `train mlp --epochs 2` with TINY, copied)."""
    run = tmp_path / "interrupted"
    shutil.copytree(tiny_run, run)
    # make it unfinished again, as a kill after the last epoch's backup would leave it
    (run / "metrics.json").unlink()
    backup = run / "backup"
    backup.mkdir()
    model = training.load_model_file(run / "last.keras")
    model.save_weights(backup / "latest.weights.h5")
    (backup / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    return run


def test_auto_batch_size_is_recorded_and_the_same_command_resumes(recipes_main, interrupted_run):
    assert get_spec("mlp").defaults["batch_size"] == "auto"
    assert config_lib.load_yaml(interrupted_run / "config.yaml")["batch_size"] == 64  # of 1,294 digits
    result = recipes_main("train", "mlp", "--epochs", 2, "--run-dir", interrupted_run, *TINY)
    assert result.returncode == 0, result.stderr
    assert "Batch size: 64 (auto: 1294 training examples)" in result.stdout
    assert f"Resuming {interrupted_run}" in result.stdout and (interrupted_run / "metrics.json").exists()


def test_empty_config_left_by_an_old_crash_is_started_afresh(recipes_main, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / rundir.MARKER).write_text("{}")
    (run / "config.yaml").write_text("")
    result = recipes_main("train", "mlp", "--epochs", 1, "--run-dir", run, *FAST)
    assert result.returncode == 0, result.stderr
    assert config_lib.load_yaml(run / "config.yaml")["model"] == "mlp" and epochs_of(run) == [1]


def test_damaged_config_of_a_run_with_checkpoints_says_what_to_do(recipes_main, interrupted_run):
    (interrupted_run / "config.yaml").write_text("model: [unclosed\n")
    before = snapshot(interrupted_run)
    line = one_error_line(recipes_main("train", "--resume", interrupted_run))
    assert line.startswith(f"recipes train: error: {interrupted_run / 'config.yaml'}")
    line = one_error_line(recipes_main("train", "mlp", "--run-dir", interrupted_run, *FAST))
    assert line == (
        f"recipes train: error: {interrupted_run / 'config.yaml'} is damaged (Config file "
        f"'{interrupted_run / 'config.yaml'}' is not valid YAML (line 2)); the run cannot be resumed: "
        f"start a new run, or restore the file."
    )
    assert snapshot(interrupted_run) == before


def test_config_yaml_is_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    config = config_lib.resolve("mlp")
    config_lib.dump(config, path)
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("recipes._atomic.os.fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        config_lib.dump({**config, "epochs": 99}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["config.yaml"]


def test_full_disk_while_checkpointing_is_one_line_and_the_run_resumes(tmp_path, monkeypatch):
    import keras

    run = tmp_path / "run"
    config = config_lib.resolve("mlp", flags={"epochs": 3}, sets={"hidden_units": [16]})
    real_save = keras.Model.save
    calls = []

    def save(self, filepath, *args, **kwargs):
        calls.append(filepath)
        if len(calls) > 2:  # best.keras and last.keras of the first epoch fit, then the disk is full
            raise OSError(28, "No space left on device", str(filepath))
        return real_save(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", save)
    with pytest.raises(training.TrainingError) as e:
        training.train(config, run, verbose=0, log=lambda *_: None)
    assert str(e.value).startswith("No space left on the device while writing ")
    assert str(e.value).endswith("; free some space and run the same command again to resume.")
    assert "\n" not in str(e.value)
    monkeypatch.setattr(keras.Model, "save", real_save)
    run_dir, metrics = training.train(config, run, verbose=0, log=lambda *_: None)
    assert epochs_of(run) == [1, 2, 3] and "accuracy" in metrics
    assert not [p for p in run.rglob(".*.tmp*")]


def test_both_backup_files_corrupt_resume_from_last_keras(recipes_main, interrupted_run):
    for name in ("latest.weights.h5", "latest.weights.h5.bkp"):
        (interrupted_run / "backup" / name).write_bytes(b"\x89HDF\r\n\x1a\n broken")
    (interrupted_run / "backup" / "training_metadata.json.bkp").write_text('{"epoch": 1, "batch": 0}')
    result = recipes_main("train", "--resume", interrupted_run, "--epochs", 4, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "is unreadable" in result.stdout and "Resuming from last.keras (2 epochs completed)" in result.stdout
    assert epochs_of(interrupted_run) == [1, 2, 3, 4]
    assert (interrupted_run / "backup.unreadable" / "latest.weights.h5").exists()


# ------------------------------------------------------------- evaluate and sample


def test_truncated_model_file_is_named_as_corrupt(recipes_main, interrupted_run):
    best = interrupted_run / "best.keras"
    best.write_bytes(best.read_bytes()[:5000])
    line = one_error_line(recipes_main("evaluate", interrupted_run))
    assert line.startswith(f"recipes evaluate: error: {best} is corrupt or incomplete and cannot be loaded (")
    assert line.endswith(f"; {interrupted_run / 'last.keras'} may still be whole.")


def test_sample_out_must_be_a_png_in_an_existing_folder(recipes_main, tmp_path, tiny_dcgan_run):
    run = tiny_dcgan_run
    jpg = tmp_path / "grid.jpg"
    line = one_error_line(recipes_main("sample", run, "--out", jpg))
    assert line == (
        f"recipes sample: error: --out must name a .png file: sample writes PNG images. Received: out='{jpg}'"
    )
    missing = tmp_path / "no" / "such" / "grid.png"
    line = one_error_line(recipes_main("sample", run, "--out", missing))
    assert line.startswith("recipes sample: error: --out must be in an existing folder; ")
    assert not jpg.exists() and not (tmp_path / "no").exists()
    out = tmp_path / "grid.PNG"
    assert recipes_main("sample", run, "--out", out, "--n", 4).returncode == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------- input refused before training


def test_generative_recipe_on_a_table_is_refused_before_training(recipes_main, tmp_path):
    data = tmp_path / "table.csv"
    data.write_text("a,b,label\n" + "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(40)))
    line = one_error_line(recipes_main("train", "vae", "--dataset", data, "--run-dir", tmp_path / "r", "--quiet"))
    assert line == (
        "recipes train: error: Model 'vae' trains on images, but dataset 'table' holds tables of "
        "features of shape (2,)."
    )
    assert not (tmp_path / "r").exists()


def test_scientific_notation_in_flags_set_and_config_files(recipes_main, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("learning_rate: 1e-3\nepochs: 1\n")
    resolved = config_lib.resolve("mlp", file=config_lib.load_yaml(cfg), sets=config_lib.parse_sets(["dropout=2.5E-1"]))
    assert resolved["learning_rate"] == 0.001 and resolved["model_args"]["dropout"] == 0.25
    run = tmp_path / "run"
    result = recipes_main("train", "mlp", "--config", cfg, "--set", "learning_rate=3e-4", "--run-dir", run, *FAST)
    assert result.returncode == 0, result.stderr
    assert config_lib.load_yaml(run / "config.yaml")["learning_rate"] == 0.0003


def test_train_help_shows_recipes_and_their_defaults(recipes_main):
    result = recipes_main("train", "--help")
    assert result.returncode == 0
    assert "recipe name: one of those below" in " ".join(result.stdout.split())
    assert "  alexnet  epochs=30, batch_size=128" in result.stdout and "  lstm     epochs=20" in result.stdout
    assert "  vgg16    epochs=30, batch_size=128, preset=small" in result.stdout
    assert "  dcgan    epochs=50, batch_size=64, validation_split=0.0" in result.stdout


# ------------------------------------------------------------------- kills


@pytest.mark.process
def test_kills_at_random_points_leave_a_run_that_finishes_correctly(tmp_path):
    """SIGKILL and SIGINT at random moments; each rerun of the same command resumes."""
    run = tmp_path / "run"
    epochs = 30
    args = command("train", "mlp", "--epochs", epochs, "--run-dir", run, *FAST)
    rng = random.Random(1234)
    kills = []
    for sig in [signal.SIGKILL, signal.SIGINT] * 3:
        if (run / "metrics.json").exists():
            break
        rows = len(epochs_of(run)) if (run / "history.csv").exists() else 0
        target = rows + rng.randint(1, 4)  # a few epochs into this process, then a random moment
        proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while proc.poll() is None and not ((run / "history.csv").exists() and len(epochs_of(run)) >= target):
            time.sleep(0.02)
        delay = rng.uniform(0.0, 0.5)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(sig)
            kills.append(f"{sig.name} {delay:.2f}s after epoch {target}")
        code = proc.wait(timeout=300)
        err = proc.stderr.read()
        if sig == signal.SIGINT and code != 0:
            assert code == 130 and err.strip().splitlines()[-1] == "recipes train: interrupted", err[-2000:]
        if (run / "history.csv").exists():
            done = epochs_of(run)
            assert done == list(range(1, len(done) + 1)), done  # continuous from epoch 1, no repeats
        for model_file in (run / "best.keras", run / "last.keras"):
            if model_file.exists():
                training.load_model_file(model_file)  # every checkpoint loads
    if not (run / "metrics.json").exists():
        result = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    assert epochs_of(run) == list(range(1, epochs + 1))
    assert (run / "metrics.json").exists() and not (run / "backup").exists()
    assert not [p.name for p in run.rglob("*") if rundir_temporary(p.name)]
    print(f"kills survived: {len(kills)}: {kills}")
    assert len(kills) >= 3, kills


def rundir_temporary(name):
    from recipes._atomic import TEMPORARY

    return bool(TEMPORARY.fullmatch(name))


def test_a_run_made_before_markers_is_still_recognised(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    config_lib.dump(config_lib.resolve("mlp", flags={"epochs": 1}), run / "config.yaml")
    (run / "history.csv").write_text("")
    assert rundir.check_usable(run) == "run"
    (run / "config.yaml").write_text("model: mine\n")  # a user's own file of that name is not enough
    with pytest.raises(rundir.RunDirError, match="holds files recipes did not write"):
        rundir.check_usable(run)


@pytest.mark.parametrize(
    "model, data, message",
    [
        (
            "mlp",
            "tokens",
            "Model 'mlp' trains on images or tables of features or real-valued sequences, but dataset "
            "'t' holds token ids of shape (5,).",
        ),
        (
            "lstm",
            "table",
            "Model 'lstm' trains on texts or token ids or real-valued sequences or images (read row by row), but "
            "dataset 't' holds tables of features of shape (5,).",
        ),
        ("dcgan", "table", "Model 'dcgan' trains on images, but dataset 't' holds tables of features of shape (5,)."),
    ],
)
def test_recipe_and_data_form_mismatch_is_refused_from_the_registry(model, data, message):
    from recipes.datasets import DatasetInfo

    info = DatasetInfo(
        name="t",
        kind="sequence" if data == "tokens" else "table",
        input_shape=(5,),
        num_classes=2,
        class_names=("a", "b"),
        value_range=None,
        num_train=4,
        num_val=0,
        num_test=0,
        vocab_size=9 if data == "tokens" else None,
    )
    with pytest.raises(config_lib.ConfigError, match="^" + re.escape(message) + "$"):
        training.check_compatible(model, info)


def test_a_run_being_created_by_another_process_is_not_foreign(tmp_path):
    """Between its lock and its marker, another process's new run holds only recipes' own files."""
    run = tmp_path / "run"
    run.mkdir()
    (run / rundir.LOCK).write_text("")
    (run / ".recipes-run.k2j9x0ab.tmp").write_text("")  # the marker, mid-write
    assert rundir.check_usable(run) == "new"
    (run / "notes.txt").write_text("mine")
    with pytest.raises(rundir.RunDirError, match=r"holds files recipes did not write \(notes\.txt\)"):
        rundir.check_usable(run)


def test_a_brief_liveness_probe_does_not_make_a_starting_run_look_taken(tmp_path):
    import fcntl
    import threading

    run = tmp_path / "run"
    run.mkdir()
    probe = os.open(run / rundir.LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(probe, fcntl.LOCK_SH)  # what is_live() does for a moment from another process
    threading.Timer(0.3, os.close, [probe]).start()
    with rundir.claim(run) as claimed:  # waits the probe out instead of refusing
        assert claimed.path == run
    assert (run / rundir.MARKER).exists()
