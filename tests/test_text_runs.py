"""Runs on texts and on named classes: what a text run records, how every later reading (resume,
evaluate) reads its texts, the recipe's defaults for the form of the data, and string labels
through training and prediction."""

import json
import shutil

import numpy as np
import pytest
from conftest import make_reviews, write_reviews_csv

from recipes import config as config_lib
from recipes import preprocessing
from recipes.datasets import peek_form
from recipes.registry import get_spec
from recipes.trained import evaluate


def test_a_text_run_records_what_it_learned(tiny_text_run, reviews_folder):
    config = config_lib.load_yaml(tiny_text_run / "config.yaml")
    words = (tiny_text_run / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]
    pre = json.loads((tiny_text_run / "preprocessing.json").read_text())
    assert pre["kind"] == "text" and pre["class_names"] == ["neg", "pos"]
    assert config["vocab_size"] == pre["vocab_size"] == len(words) + 2
    assert config["sequence_length"] == pre["sequence_length"] == 16  # the reviews are 5..13 words: the floor
    assert (config["text_column"], config["label_column"]) == ("text", "label")
    assert "zyzzyva" not in words and len(set(words)) == len(words)
    # the test split's own word is out of the vocabulary: the run never learned from test
    assert preprocessing.read(tiny_text_run).transform(["zyzzyva"])[0, 0] == 1


def test_evaluate_reads_the_test_texts_as_training_did(tiny_text_run):
    recorded = json.loads((tiny_text_run / "metrics.json").read_text())
    measured = evaluate(tiny_text_run)
    assert measured["split"] == recorded["split"] == "test"
    assert measured["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-6)
    assert measured["loss"] == pytest.approx(recorded["loss"], rel=1e-5)


def test_resume_and_evaluate_keep_the_runs_vocabulary_when_the_data_changes(tmp_path, tiny_text_run, reviews_folder):
    from recipes import training

    data = tmp_path / "reviews"
    shutil.copytree(reviews_folder, data)
    run = tmp_path / "run"
    shutil.copytree(tiny_text_run, run)
    config = config_lib.load_yaml(run / "config.yaml")
    config["dataset"] = str(data)
    config_lib.dump(config_lib.resolve("lstm", file=config), run / "config.yaml")
    # unfinished again, as a kill after the last epoch's backup would leave it
    (run / "metrics.json").unlink()
    (run / "backup").mkdir()
    training.load_model_file(run / "last.keras").save_weights(run / "backup" / "latest.weights.h5")
    (run / "backup" / "training_metadata.json").write_text('{"epoch": 3, "batch": 0}')
    words = (run / "vocabulary.txt").read_bytes()
    # new training texts whose most frequent word is new: a vocabulary learned again would differ
    rows = [(f"{text} quokka quokka quokka", label) for text, label in make_reviews(240, seed=1)]
    write_reviews_csv(data / "train.csv", rows)

    import recipes

    lines = []
    resumed = config_lib.resolve("lstm", file={**config, "epochs": 4})
    recipes.train(resumed, run, verbose=0, log=lines.append, overrides={"epochs": 4})
    assert (run / "vocabulary.txt").read_bytes() == words
    assert "Vocabulary: the run's own" in lines
    assert preprocessing.read(run).transform(["quokka"])[0, 0] == 1
    assert evaluate(run)["split"] == "test"


def test_the_recipe_defaults_follow_the_form_of_the_data(reviews_folder, tmp_path):
    spec = get_spec("lstm")
    assert spec.data_defaults, "the LSTM has measured defaults for texts"
    on_text = config_lib.resolve("lstm", flags={"dataset": str(reviews_folder)})
    on_rows = config_lib.resolve("lstm", flags={"dataset": "digits"})
    text_defaults = spec.defaults_for("text")
    assert on_text["model_args"] == text_defaults["model_args"] != on_rows["model_args"]
    assert on_rows["model_args"] == spec.defaults["model_args"]
    for key, value in text_defaults.items():
        if key != "model_args":
            assert on_text[key] == value, key
    # what the user sets wins over the defaults of the form
    mine = config_lib.resolve("lstm", flags={"dataset": str(reviews_folder)}, sets={"units": [4], "epochs": 2})
    assert mine["model_args"]["units"] == [4] and mine["epochs"] == 2


def test_peek_form_tells_the_form_from_a_first_look(tmp_path, reviews_folder):
    (tmp_path / "table.csv").write_text("a,b,label\n1,2,x\n3,4,y\n")
    (tmp_path / "texts.jsonl").write_text('{"text": "hi", "label": "a"}\n')
    assert peek_form(str(reviews_folder)) == "text"
    assert peek_form(str(reviews_folder / "train.csv")) == "text"
    assert peek_form(str(tmp_path / "table.csv")) == "table"
    assert peek_form(str(tmp_path / "texts.jsonl")) == "text"
    assert peek_form("imdb") == "tokens" and peek_form("digits") == "image"
    assert peek_form(str(tmp_path / "missing.csv")) is None


@pytest.fixture
def iris_csv(tmp_path):
    """Three well separated species in two features, named in a `species` column."""
    rng = np.random.default_rng(0)
    lines = ["sepal_length,petal_length,species"]
    for i in range(150):
        species = ("setosa", "versicolor", "virginica")[i % 3]
        centre = (i % 3) * 3.0
        lines.append(f"{centre + rng.normal(0, 0.3):.3f},{centre + rng.normal(0, 0.3):.3f},{species}")
    path = tmp_path / "iris.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_string_class_labels_train_and_predict_by_name(recipes_main, iris_csv, tmp_path):
    run = tmp_path / "run"
    done = recipes_main(
        "train",
        "mlp",
        "--dataset",
        iris_csv,
        "--epochs",
        20,
        "--learning-rate",
        0.03,
        "--run-dir",
        run,
        "--set",
        "hidden_units=[16]",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "preprocessing.json").read_text())["class_names"] == ["setosa", "versicolor", "virginica"]
    assert json.loads((run / "metrics.json").read_text())["accuracy"] > 0.9
    new = tmp_path / "new.csv"
    new.write_text("sepal_length,petal_length\n0.1,-0.1\n6.1,5.9\n")
    done = recipes_main("predict", run, new, "--out", tmp_path / "p.csv")
    assert done.returncode == 0, done.stderr
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert [row.split(",")[1] for row in rows[1:]] == ["setosa", "virginica"]


def test_monitor_is_a_setting_and_refuses_nothing_to_monitor():
    from recipes.errors import ConfigError

    assert config_lib.resolve("mlp")["monitor"] == "auto"
    assert config_lib.resolve("lstm", flags={"dataset": "digits"})["monitor"] == "auto"  # rows: the recipe's own
    with pytest.raises(ConfigError, match=r"^monitor must be 'auto' or the name of a logged metric\. Received: "):
        config_lib.resolve("mlp", sets={"monitor": ""})


def test_data_defaults_must_be_for_forms_the_recipe_takes():
    from recipes.spec import register_model

    with pytest.raises(ValueError, match=r"data_defaults must be keyed by forms of data"):
        register_model("nope", description="", task="classification", inputs="any", data_defaults={"audio": {}})
    with pytest.raises(ValueError, match=r"data_reasons must explain settings of data_defaults\['text'\]"):
        register_model(
            "nope",
            description="",
            task="classification",
            inputs="any",
            data=("text",),
            data_defaults={"text": {"epochs": 3}},
            data_reasons={"text": {"batch_size": "unexplained"}},
        )
