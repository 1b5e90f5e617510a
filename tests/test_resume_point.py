"""A resume point is one unit: weights, optimizers and the metadata that says which epoch they
are (`RunBackup`). A kill between writing its parts never resumes weights an epoch ahead of
the epoch they claim: the resume falls back to the previous complete point."""

import json
import os
import signal
import subprocess
import sys
import warnings

import h5py
import keras
import numpy as np
import pytest

from recipes.callbacks import BackupError, RunBackup
from recipes.callbacks import checkpoints as checkpoints_module
from recipes.run_directory import completed_epochs

EPOCHS = 4
rng = np.random.default_rng(0)
X = rng.normal(size=(48, 4)).astype("float32")
Y = (X[:, 0] > 0).astype("int32") + (X[:, 1] > 0).astype("int32")


def tiny_model():
    """Dropout draws from a seed generator: a resume is only exact if its state comes back too."""
    keras.utils.set_random_seed(0)  # a new process with the run's seed
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return model


class Record(keras.callbacks.Callback):
    """The weights at the end of each epoch (counted from 1), and the epoch being backed up."""

    def __init__(self):
        super().__init__()
        self.weights, self.epoch = {}, None

    def on_epoch_end(self, epoch, logs=None):
        self.epoch = epoch + 1
        self.weights[epoch + 1] = [np.array(w) for w in self.model.get_weights()]


def fit(backup_dir, record=None, epochs=EPOCHS):
    model = tiny_model()
    callbacks = [record or Record(), RunBackup(os.fspath(backup_dir), delete_at_end=False)]
    model.fit(X, Y, batch_size=8, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)
    return model


def restored(backup_dir):
    """A fresh model and the epoch the backup restores into it (as `fit` would begin)."""
    model = tiny_model()
    backup = RunBackup(os.fspath(backup_dir))
    backup.set_model(model)
    backup.on_train_begin()
    return model, getattr(model, "_initial_epoch", None)


def assert_weights_equal(actual, expected):
    for a, b in zip(actual, expected, strict=True):
        np.testing.assert_array_equal(a, b)


class Crash(Exception):
    """Stands for a kill: nothing after it runs."""


def crash_after(monkeypatch, record, epoch, step):
    """Makes the save of `epoch` stop right after its `step`-th file operation."""
    done = []

    def wrap(real):
        def operation(*args, **kwargs):
            result = real(*args, **kwargs)
            if record.epoch == epoch:
                done.append(args[0])
                if len(done) == step:
                    raise Crash(f"after {step} operation(s) of the save of epoch {epoch}")
            return result

        return operation

    for name in ("atomic_write", "atomic_write_text", "_replace"):
        monkeypatch.setattr(checkpoints_module, name, wrap(getattr(checkpoints_module, name)))
    return done


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    record = Record()
    model = fit(tmp_path_factory.mktemp("whole") / "backup", record)
    return record.weights, [np.array(w) for w in model.get_weights()]


# The save of an epoch after the first: (1) copy the metadata to *.bkp, (2) rename the weights
# to *.bkp, (3) write the new weights, (4) write the new metadata. A kill after step 3 is the
# window of the issue: weights of epoch 3 beside metadata that says 2.
@pytest.mark.parametrize("step, epoch", [(1, 2), (2, 2), (3, 2), (4, 3)])
def test_a_save_cut_short_at_any_step_resumes_from_a_complete_point(tmp_path, monkeypatch, uninterrupted, step, epoch):
    run = tmp_path / "run"
    record = Record()
    done = crash_after(monkeypatch, record, epoch=3, step=step)
    with pytest.raises(Crash):
        fit(run / "backup", record)
    monkeypatch.undo()
    assert len(done) == step
    assert completed_epochs(run) == epoch  # what `recipes train` reports agrees with what resumes

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a kill mid-save loses nothing complete: nothing to warn about
        model, initial_epoch = restored(run / "backup")
    assert initial_epoch == epoch
    assert_weights_equal(model.get_weights(), record.weights[epoch])

    whole_epochs, whole_final = uninterrupted
    assert_weights_equal(record.weights[3], whole_epochs[3])
    resumed = fit(run / "backup")  # and the run ends as if never killed
    assert_weights_equal(resumed.get_weights(), whole_final)


def test_a_point_whose_parts_disagree_is_never_used(tmp_path):
    backup = tmp_path / "backup"
    record = Record()
    fit(backup, record, epochs=3)
    meta = json.loads((backup / "training_metadata.json").read_text())
    assert meta["epoch"] == 3 and checkpoints_module.weights_token(backup / "latest.weights.h5") == meta["token"]

    with h5py.File(backup / "latest.weights.h5", "r+") as f:  # the latest weights are of another point
        f.attrs[checkpoints_module.TOKEN_ATTRIBUTE] = "another point"
    disagree = r"training_metadata\.json \(no weights file holds its token: the parts of this point disagree\)"
    with pytest.warns(UserWarning, match=disagree + r"; resumed from the previous one \(epoch 2\)"):
        model, initial_epoch = restored(backup)
    assert initial_epoch == 2
    assert_weights_equal(model.get_weights(), record.weights[2])

    with h5py.File(backup / "latest.weights.h5.bkp", "r+") as f:
        f.attrs[checkpoints_module.TOKEN_ATTRIBUTE] = "yet another point"
    with pytest.raises(BackupError, match=r"Every resume point in .* is unreadable or incomplete: "):
        restored(backup)


def test_weights_without_their_metadata_are_never_used(tmp_path):
    """Killed between the two writes of the first epoch: there is no complete point, and
    `BackupError` says so (`recipes train` then resumes from last.keras)."""
    backup = tmp_path / "backup"
    fit(backup, epochs=1)
    (backup / "training_metadata.json").unlink()
    cut_short = r"latest\.weights\.h5 \(no metadata: the backup of its epoch was cut short\)"
    with pytest.raises(BackupError, match=r"Every resume point in .* is unreadable or incomplete: " + cut_short):
        restored(backup)


def test_a_corrupt_latest_point_falls_back_to_the_previous_one(tmp_path):
    backup = tmp_path / "backup"
    record = Record()
    fit(backup, record, epochs=3)
    (backup / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n broken")
    with pytest.warns(UserWarning, match=r"latest\.weights\.h5 \(.*\); resumed from the previous one \(epoch 2\)"):
        model, initial_epoch = restored(backup)
    assert initial_epoch == 2
    assert_weights_equal(model.get_weights(), record.weights[2])


def test_a_backup_written_before_tokens_still_resumes_and_moves_on_safely(tmp_path, monkeypatch):
    """A backup of the format before tokens (a metadata file of its own, weights by name) resumes;
    the first new save, cut short between its weights and its metadata, keeps the old point."""
    backup = tmp_path / "backup"
    record = Record()
    model = fit(backup, record, epochs=2)
    for name in os.listdir(backup):
        os.remove(backup / name)
    model.save_weights(backup / "latest.weights.h5")  # as the previous version wrote them: no token
    (backup / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    restored_model, initial_epoch = restored(backup)
    assert initial_epoch == 2
    assert_weights_equal(restored_model.get_weights(), record.weights[2])

    resumed = Record()
    crash_after(monkeypatch, resumed, epoch=3, step=3)  # epoch 3's weights written, its metadata not
    with pytest.raises(Crash):
        fit(backup, resumed)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored_model, initial_epoch = restored(backup)
    assert initial_epoch == 2 and completed_epochs(tmp_path) == 2
    assert_weights_equal(restored_model.get_weights(), record.weights[2])


# ------------------------------------------------------------------ a real kill, in the window

SMALL_MLP = ["--batch-size", 4, "--set", "hidden_units=[64]"]
ENV = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "TF_CPP_MIN_LOG_LEVEL": "3"}

# `recipes train`, SIGKILLed by itself at the one moment of the issue: epoch 2's weights are in
# backup/latest.weights.h5, its metadata is not yet written.
KILLED_BETWEEN_THE_WRITES = """
import json, os, signal, sys
from recipes.callbacks import checkpoints
write_text = checkpoints.atomic_write_text
def killed_before_the_metadata(path, text):
    if os.path.basename(path) == "training_metadata.json" and json.loads(text)["epoch"] == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return write_text(path, text)
checkpoints.atomic_write_text = killed_before_the_metadata
from recipes.cli import main
sys.exit(main(sys.argv[1:]))
"""


def recipes(*args, code=None, timeout=900):
    start = ["-c", code] if code else ["-m", "recipes.cli"]
    return subprocess.run(
        [sys.executable, *start, *map(str, args)], env=ENV, capture_output=True, text=True, timeout=timeout
    )


def _weights(path):
    return [np.asarray(w) for w in keras.saving.load_model(path).weights]


@pytest.mark.slow
@pytest.mark.process
def test_a_kill_between_the_weights_and_the_metadata_resumes_as_an_uninterrupted_run(tmp_path):
    run = tmp_path / "run"
    args = ["train", "mlp", "--epochs", 3, *SMALL_MLP, "--quiet"]
    killed = recipes(*args, "--run-dir", run, code=KILLED_BETWEEN_THE_WRITES)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    backup = run / "backup"
    meta = json.loads((backup / "training_metadata.json").read_text())
    assert meta["epoch"] == 1 and completed_epochs(run) == 1
    # the window: the latest weights are epoch 2's, a point whose metadata was never written
    assert checkpoints_module.weights_token(backup / "latest.weights.h5") != meta["token"]
    assert checkpoints_module.weights_token(backup / "latest.weights.h5.bkp") == meta["token"]

    resumed = recipes(*args, "--run-dir", run)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming {run}" in resumed.stdout
    assert "unreadable" not in resumed.stdout + resumed.stderr  # the backup's epoch 1, not last.keras
    epochs = [line.split(",", 1)[0] for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2", "3"]

    whole = tmp_path / "whole"
    done = recipes(*args, "--run-dir", whole)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run / "history.csv").read_text() == (whole / "history.csv").read_text()
    assert_weights_equal(_weights(run / "last.keras"), _weights(whole / "last.keras"))
