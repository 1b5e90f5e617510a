"""The time-to-accuracy benchmark's own logic: its made data set and how it reads a race."""

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts" / "bench"))

import time_to_accuracy as bench  # noqa: E402

from recipes.datasets import load_dataset  # noqa: E402


def test_shapes_are_made_the_same_from_the_seed_and_load_as_a_data_set(tmp_path):
    first = np.load(bench.make_shapes(tmp_path / "a.npz", n_train=60, n_test=20))
    again = np.load(bench.make_shapes(tmp_path / "b.npz", n_train=60, n_test=20))
    other = np.load(bench.make_shapes(tmp_path / "c.npz", n_train=60, n_test=20, seed=1))
    assert first["x_train"].shape == (60, 32, 32, 3) and first["x_train"].dtype == np.uint8
    np.testing.assert_array_equal(first["x_train"], again["x_train"])
    assert not np.array_equal(first["x_train"], other["x_train"])
    labels = np.concatenate([first["y_train"], first["y_test"]])
    assert np.bincount(labels).tolist() == [8] * 10  # every kind of shape equally often
    for label in range(10):  # each kind differs from the others on average
        mean = first["x_train"][first["y_train"] == label].mean()
        assert 0 < mean < 255

    train, val, test, info = load_dataset(str(tmp_path / "a.npz"), validation_split=0.1, batch_size=16)
    assert info.class_names == bench.SHAPES and info.input_shape == (32, 32, 3)
    assert (info.num_train, info.num_val, info.num_test) == (54, 6, 20)


def round_of(ours, theirs, final=0.9):
    return {
        "ours": {"curve": ours, "seconds": 10.0, "final": {"accuracy": final}},
        "theirs": {"curve": theirs, "seconds": 8.0, "final": {"accuracy": final}},
        "load": 1.0,
    }


def test_the_target_is_the_scripts_last_epochs_and_the_ratio_the_time_to_it():
    theirs = [(4.0, 0.5), (5.0, 0.8), (6.0, 0.9), (7.0, 0.85), (8.0, 0.95)]  # target: (0.9 + 0.85 + 0.95) / 3
    ours = [(5.0, 0.7), (5.5, 0.91), (6.0, 0.97)]
    s = bench.summary_of("mlp", round_of(ours, theirs))
    assert s["target"] == pytest.approx(0.9) and s["ours"] == 5.5 and s["theirs"] == 6.0
    assert s["whole"] == 8.0 and s["ratio"] == pytest.approx(8.0 / 5.5)  # the script's whole run over ours
    assert s["to_target"] == pytest.approx(6.0 / 5.5)  # both to the target

    never = bench.summary_of("mlp", round_of([(5.0, 0.7), (6.0, 0.8)], theirs))
    assert never["ours"] is None and never["ratio"] is None and never["to_target"] is None

    vae = bench.summary_of("vae", round_of([(9.0, 35.0), (10.0, 26.0)], [(5.0, 40.0), (6.0, 27.0), (7.0, 26.5)]))
    assert vae["target"] == pytest.approx((40.0 + 27.0 + 26.5) / 3) and vae["ours"] == 10.0  # lower is better
    assert vae["theirs"] == 6.0


def test_rounds_give_medians_and_a_round_never_reached_counts_against(tmp_path):
    theirs = [(4.0, 0.9), (5.0, 0.9), (6.0, 0.9)]
    rounds = [round_of([(3.0, 0.95)], theirs), round_of([(2.0, 0.95)], theirs), round_of([(9.0, 0.5)], theirs)]
    s = bench.summary({"recipe": "mlp", "dataset": "digits", "rounds": rounds})
    assert s["ratios"] == [pytest.approx(8 / 3), pytest.approx(4.0), 0.0]  # the scripts' whole runs: 8 s
    assert s["ratio"] == pytest.approx(8 / 3) and s["ours"] == 2.5  # the median of the rounds that reached it
    assert s["to_targets"] == [pytest.approx(4 / 3), pytest.approx(2.0), 0.0]
    assert s["to_target"] == pytest.approx(4 / 3)

    table = bench.report([{"recipe": "mlp", "dataset": "digits", "rounds": rounds}], tmp_path)
    assert "**2.67x (0.00-4.00)**" in table and "1.33x (0.00-2.00)" in table
    assert "Geometric mean of the ratios: **2.67x** over 1 pairs (both to the target: 1.33x)" in table
    assert (tmp_path / "time_to_accuracy.png").stat().st_size > 0


def test_a_judged_recipes_first_round_is_reported_apart(tmp_path):
    theirs = [(4.0, 30.0), (5.0, 28.0), (6.0, 26.0)]  # -ELBO, lower is better: target 28, whole run 8 s
    rounds = [round_of([(7.0, 27.0)], theirs), round_of([(4.0, 27.0)], theirs)]  # round 1 trains the judge
    table = bench.report([{"recipe": "vae", "dataset": "digits", "rounds": rounds}], tmp_path)
    assert "Round 1 alone, where the judge is trained before the first epoch: vae on digits 1.14x." in table
    assert "**1.57x (1.14-2.00)**" in table  # the median of 8/7 and 8/4
