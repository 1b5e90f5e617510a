"""Sample quality of generative runs: the maths, the judge, --judge refusals, a DCGAN run and its resume."""

import csv
import hashlib
import json
import math
import pathlib

import keras
import numpy as np
import pytest

from recipes import cli, runs, training
from recipes import config as config_lib
from recipes.callbacks import SampleQuality, resolve_mode, resolve_monitor
from recipes.judge import JUDGE_FILE, Judge, build_judge_convnet, cached_judge, judge_key, judges_dir, stratified_split
from recipes.quality import class_entropy, frechet_distance, gaussian, sample_quality
from recipes.run_judge import real_images

# ---------------------------------------------------------------------------- the maths


def test_frechet_distance_of_identical_sets_is_zero():
    features = np.random.default_rng(0).normal(size=(500, 16))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_gaussians_is_the_closed_form():
    # diagonal covariances: ||mu_a - mu_b||^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    mu_a, mu_b = np.zeros(3), np.array([1.0, -2.0, 0.5])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert frechet_distance((mu_a, np.diag(var_a)), (mu_b, np.diag(var_b))) == pytest.approx(expected, rel=1e-12)
    # the same covariance, shifted: the squared shift; invariant to rotating both
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    cov = rotation @ np.diag(var_a) @ rotation.T
    assert frechet_distance((mu_a, cov), (mu_b, cov)) == pytest.approx(np.sum(mu_b**2), rel=1e-9)


def test_frechet_distance_of_samples_approaches_the_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20000, 4)), rng.normal(loc=1.0, scale=2.0, size=(20000, 4))
    assert frechet_distance(a, b) == pytest.approx(4 * 1.0 + 4 * (2.0 - 1.0) ** 2, rel=0.03)


def test_frechet_distance_with_fewer_examples_than_features_stays_real_and_non_negative():
    features = np.random.default_rng(0).normal(size=(10, 64))  # singular covariances
    other = features + 0.1
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)
    # round-off in the null space costs a few digits, not the sign or a complex result
    assert frechet_distance(features, other) == pytest.approx(64 * 0.01, rel=1e-4)


def test_class_entropy_of_uniform_and_one_class_predictions():
    assert class_entropy(np.arange(100) % 10, 10) == pytest.approx(math.log(10))
    assert class_entropy(np.full(100, 3), 10) == 0.0
    assert class_entropy([0, 0, 1, 1], 10) == pytest.approx(math.log(2))


class FixedJudge:
    """Probabilities from a table: image i (its first value) gets row i."""

    def __init__(self, probabilities, features):
        self.probabilities, self.features = probabilities, features

    def predict(self, images):
        index = np.asarray(images).reshape(len(images), -1)[:, 0].astype(int)
        return self.probabilities[index], self.features[index]


def test_sample_quality_reports_confidence_entropy_distance_accuracy_and_floor():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    features = np.random.default_rng(0).normal(size=(4, 3))
    judge = FixedJudge(probabilities, features)
    samples, real = np.array([[0], [1], [2], [3]]), np.array([[0], [1], [2], [3]])
    result = sample_quality(judge, samples, real, labels=[0, 1, 1, 1], reference=real, prefix="val_")
    assert result == pytest.approx(
        {
            "val_judge_confidence": (0.9 + 0.8 + 0.6 + 0.7) / 4,
            "val_class_entropy": math.log(2),
            "val_frechet_distance": 0.0,
            "val_judge_accuracy": 0.75,
            "val_frechet_distance_real": 0.0,
        },
        abs=1e-9,
    )
    # the real side can be given as its Gaussian, fitted once
    stats = gaussian(features)
    assert sample_quality(judge, samples, stats)["frechet_distance"] == pytest.approx(0.0, abs=1e-9)


def test_stratified_split_holds_out_a_share_of_every_class():
    labels = np.repeat(np.arange(3), [10, 20, 2])
    kept, held = stratified_split(labels, 0.1, seed=0)
    assert sorted(np.bincount(labels[held], minlength=3)) == [1, 1, 2]
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(len(labels)))


@pytest.mark.parametrize(
    "monitor, expected",
    [("val_frechet_distance", "min"), ("val_judge_confidence", "max"), ("val_class_entropy", "max")],
)
def test_quality_keys_go_the_right_way_for_checkpoints_and_early_stopping(monitor, expected):
    assert resolve_mode(monitor) == expected
    with pytest.raises(ValueError, match="cannot tell"):  # a cross-entropy is no class entropy
        resolve_mode("val_sparse_categorical_crossentropy")
    assert resolve_monitor("auto", ["d_loss", "g_loss", "val_frechet_distance"]) == "val_frechet_distance"
    assert resolve_monitor("auto", ["loss", "val_loss", "val_frechet_distance"]) == "val_loss"


# ------------------------------------------------------------------------ the judge


def test_judge_converts_range_size_and_rows_to_what_the_classifier_reads():
    inputs = keras.Input(shape=(8, 8))  # a sequence classifier: 8 rows of 8 values
    hidden = keras.layers.Dense(5, activation="relu", name="fc1")(keras.layers.Flatten()(inputs))
    classifier = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(hidden))
    judge = Judge.from_classifier(
        classifier, image_shape=(16, 16, 1), value_range=(-1.0, 1.0), classifier_value_range=(0.0, 1.0), as_rows=True
    )
    images = np.random.default_rng(0).uniform(-1, 1, size=(4, 16, 16, 1)).astype("float32")
    read = keras.ops.convert_to_numpy(keras.ops.image.resize((images + 1) / 2, (8, 8))).reshape(4, 8, 8)
    probabilities, features = judge.predict(images)
    np.testing.assert_allclose(probabilities, classifier.predict(read, verbose=0), rtol=1e-5, atol=1e-6)
    assert features.shape == (4, 5) and judge.num_classes == 3 and judge.image_shape == (16, 16, 1)
    with pytest.raises(ValueError, match="reads images with 1 channels; the generator's have 3"):
        Judge.from_classifier(build_judge_convnet(input_shape=(8, 8, 1)), image_shape=(8, 8, 3), value_range=(0, 1))


def test_judge_survives_save_and_load(tmp_path):
    classifier = build_judge_convnet(input_shape=(8, 8, 1), num_classes=4)
    judge = Judge.from_classifier(classifier, image_shape=(8, 8, 1), value_range=(0, 1))
    images = np.random.default_rng(0).uniform(size=(5, 8, 8, 1))
    judge.save(tmp_path / "judge.keras")
    for before, after in zip(judge.predict(images), Judge.load(tmp_path / "judge.keras").predict(images)):
        np.testing.assert_allclose(before, after, rtol=1e-6)
    assert judge.predict(images)[1].shape == (5, 64)  # fc1


def labelled_squares(n=60, seed=0):
    """8x8 images of a bright square in one of three places, labelled by the place."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.uniform(0, 0.2, size=(n, 8, 8, 1)).astype("float32")
    for i, label in enumerate(y):
        x[i, 2 * label : 2 * label + 3, 2:6] = 1.0
    return x, y


def test_a_judge_trained_on_the_same_images_comes_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    x, y = labelled_squares()
    logged = []
    first = cached_judge(x, y, value_range=(0, 1), seed=3, log=logged.append)
    kept = list(judges_dir().glob("*.keras"))
    assert judges_dir() == tmp_path / "home" / "recipes" / "judges" and len(kept) == 1
    assert logged[0].startswith("Trained a judge on 54 images")

    with monkeypatch.context() as patch:
        patch.setattr("recipes.judge.train_judge", lambda *a, **k: pytest.fail("the judge was trained again"))
        again = cached_judge(x, y, value_range=(0, 1), seed=3, log=logged.append)
    assert logged[1] == f"Judge: the one trained on these 60 images before, from {kept[0]}"
    for a, b in zip(first.predict(x), again.predict(x)):
        np.testing.assert_array_equal(a, b)
    # what the judge depends on changes the key: another seed, other labels, another range
    other_keys = {
        judge_key(x, y, value_range=(0, 1), num_classes=3, seed=4),
        judge_key(x, (y + 1) % 3, value_range=(0, 1), num_classes=3, seed=3),
        judge_key(x, y, value_range=(-1, 1), num_classes=3, seed=3),
    }
    assert kept[0].stem not in other_keys and len(other_keys) == 3

    kept[0].write_bytes(b"PK\x03\x04 half a zip")  # a broken cache file: trained again and replaced
    with pytest.warns(UserWarning, match=r"The cached judge .* is unreadable \(.*\); training it again\."):
        mended = cached_judge(x, y, value_range=(0, 1), seed=3)
    for a, b in zip(first.predict(x), mended.predict(x)):
        np.testing.assert_array_equal(a, b)  # training is deterministic: the same judge
    assert Judge.load(kept[0]).image_shape == (8, 8, 1)


def test_a_cache_that_cannot_be_written_costs_a_line_not_the_run(tmp_path, monkeypatch):
    (tmp_path / "home").write_text("a file where the cache's folder would be")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    x, y = labelled_squares()
    logged = []
    judge = cached_judge(x, y, value_range=(0, 1), log=logged.append)
    assert judge.predict(x)[0].shape == (60, 3)
    assert logged[-1].startswith(f"Judge: not kept in {tmp_path / 'home' / 'recipes' / 'judges'} (")
    assert logged[-1].endswith("); the next run trains it again.")
    assert (tmp_path / "home").read_text() == "a file where the cache's folder would be"


# ------------------------------------------------------------------ --judge refused


def fake_classifier_run(path, *, model="mlp", input_shape=(8, 8, 1), finished=True):
    path.mkdir()
    config_lib.dump(config_lib.resolve(model), path / "config.yaml")
    if model == "mlp":
        from recipes import build_mlp

        build_mlp(input_shape=input_shape, num_classes=10, hidden_units=(8,)).save(path / "best.keras")
    if finished:
        (path / "metrics.json").write_text("{}\n")
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("nothing", "is not a run directory (no config.yaml); --judge needs a finished classifier run."),
        ("dcgan", "trained 'dcgan', not a classifier; --judge needs a finished classifier run."),
        ("unfinished", "has not finished (no metrics.json); --judge needs a finished classifier run."),
        (
            "rgb",
            "reads images with 3 channels, but dcgan generates images with 1; choose a classifier trained on "
            "1-channel images.",
        ),
    ],
)
def test_an_unusable_judge_is_refused_in_one_line_and_nothing_is_written(tmp_path, capsys, case, message):
    judge = tmp_path / case
    if case == "dcgan":
        judge.mkdir()
        config_lib.dump(config_lib.resolve("dcgan"), judge / "config.yaml")
        (judge / "metrics.json").write_text("{}\n")
    elif case == "unfinished":
        fake_classifier_run(judge, finished=False)
    elif case == "rgb":
        fake_classifier_run(judge, input_shape=(8, 8, 3))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    run = tmp_path / "run"
    code = cli.main(["train", "dcgan", "--epochs", "1", "--judge", str(judge), "--run-dir", str(run), "--quiet"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert err == [f"recipes train: error: --judge {str(judge)!r} {message}"]
    assert not run.exists() and sorted(p.name for p in tmp_path.rglob("*")) == before


def test_judge_is_for_generative_recipes_only(capsys):
    assert cli.main(["train", "mlp", "--judge", "runs/x"]) == 2
    assert capsys.readouterr().err.strip() == (
        "recipes train: error: judge scores the samples of a generative recipe (dcgan, vae), not of 'mlp'. "
        "Received: judge='runs/x'"
    )


# ------------------------------------------------------------------ a DCGAN run


def tiny_dcgan(epochs):
    return config_lib.resolve(
        "dcgan", flags={"epochs": epochs, "batch_size": 256}, sets={"base_filters": 8, "latent_dim": 8}
    )


def history(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def digest(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


QUALITY = ("judge_confidence", "class_entropy", "frechet_distance", "judge_accuracy", "frechet_distance_real")


@pytest.mark.long_training
def test_dcgan_run_scores_samples_each_epoch_keeps_the_best_and_reports_quality(tmp_path, recwarn):
    run_dir, metrics = training.train(tiny_dcgan(2), tmp_path / "gan", verbose=0, log=lambda *a: None)
    rows = history(run_dir)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for key in ("val_frechet_distance", "val_judge_confidence", "val_class_entropy"):
        assert all(np.isfinite(float(row[key])) for row in rows), key
    assert (run_dir / "best.keras").exists() and (run_dir / JUDGE_FILE).exists()
    assert not [w for w in recwarn if "best.keras is not written" in str(w.message)]
    assert set(QUALITY) <= set(metrics) and metrics["split"] == "test"
    assert 0 <= metrics["class_entropy"] <= math.log(10) + 1e-9 and 0.1 <= metrics["judge_confidence"] <= 1
    assert metrics["frechet_distance"] > metrics["frechet_distance_real"] >= 0
    assert metrics["judge_accuracy"] > 0.8
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    assert config_lib.load_yaml(run_dir / "config.yaml")["judge"] is None
    # evaluate scores best.keras with the same judge, on the same split: the same numbers
    evaluated = runs.evaluate(run_dir)
    assert {k: evaluated[k] for k in QUALITY} == pytest.approx({k: metrics[k] for k in QUALITY}, rel=1e-6)


@pytest.mark.long_training
def test_a_resumed_run_reuses_its_judge_and_repeats_the_numbers(tmp_path, monkeypatch):
    quiet = dict(verbose=0, log=lambda *a: None)
    whole, _ = training.train(tiny_dcgan(2), tmp_path / "whole", **quiet)

    from recipes.callbacks import InterruptBetweenSteps

    def killed_after_first_epoch(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(InterruptBetweenSteps, "on_epoch_begin", killed_after_first_epoch)
        with pytest.raises(KeyboardInterrupt):
            training.train(tiny_dcgan(2), tmp_path / "resumed", **quiet)
    resumed = tmp_path / "resumed"
    judge_file = digest(resumed / JUDGE_FILE)
    monkeypatch.setattr("recipes.judge.train_judge", lambda *a, **k: pytest.fail("the judge was trained again"))
    training.train(tiny_dcgan(2), resumed, **quiet)
    assert digest(resumed / JUDGE_FILE) == judge_file
    rows = history(resumed)
    assert [row["epoch"] for row in rows] == ["1", "2"] and rows[0] == history(whole)[0]
    # the resumed epoch was scored by the judge in the file: the same numbers from last.keras and judge.keras
    # (the resumed epoch's training itself differs slightly from an unbroken run's, with or without a judge)
    score = SampleQuality(Judge.load(resumed / JUDGE_FILE), real_images(tiny_dcgan(2)).epoch_reference)
    score.set_model(runs.load_model_file(resumed / "last.keras"))
    score.on_train_begin()
    score.on_epoch_end(1, logs := {})
    assert logs == pytest.approx({k: float(rows[1][k]) for k in logs}, rel=1e-9)
    assert set(QUALITY) <= set(json.loads((resumed / "metrics.json").read_text()))
