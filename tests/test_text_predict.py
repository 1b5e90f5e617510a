"""`recipes predict` on a run trained on texts (conftest.py's `tiny_text_run`): raw texts, CSV/JSONL
records, .txt files and folders, read exactly as training and `recipes evaluate` read texts."""

import csv
import json

import keras
import numpy as np
import pytest
from conftest import make_reviews, write_reviews_csv

from recipes import preprocessing
from recipes.recipe import held_out_data, run_vocabulary
from recipes.run_directory import stored_config
from recipes.trained import load_run

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the text pipeline is TensorFlow's")

SENTENCE = "what a great and wonderful film"


def last_line(done):
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def expected_probabilities(run_dir, texts):
    """`model.predict` of the run's own preprocessing of `texts`, both columns of a sigmoid."""
    run = load_run(run_dir)
    p = np.asarray(run.model.predict(preprocessing.read(run_dir).transform(texts), verbose=0), np.float32)
    return np.concatenate([1 - p, p], axis=-1) if p.shape[-1] == 1 else p


@pytest.fixture
def new_reviews(tmp_path):
    """`reviews_new.csv` (a label column too, ignored; the second record spans two lines), a `.txt`
    file and a folder of `.txt` files; -> (csv path, its texts, its record lines, txt path, folder)."""
    rows = make_reviews(4, seed=7)
    rows[1] = ("Loved it,\nreally a superb and moving story!", "pos")
    path = write_reviews_csv(tmp_path / "reviews_new.csv", rows)
    txt = tmp_path / "one.txt"
    txt.write_text("The plot was dull and the acting awful.\n", encoding="utf-8")
    folder = tmp_path / "more"
    (folder / "deeper").mkdir(parents=True)
    (folder / "b.txt").write_text("boring, tedious and weak", encoding="utf-8")
    (folder / "deeper" / "a.txt").write_text("charming and brilliant fun", encoding="utf-8")
    (folder / "notes.md").write_text("not read", encoding="utf-8")
    return path, [t for t, _ in rows], [2, 3, 5, 6], txt, folder


def test_predict_texts_csv_and_txt_match_the_model(recipes_main, tiny_text_run, new_reviews, tmp_path):
    path, texts, lines, txt, folder = new_reviews
    out = tmp_path / "preds.json"
    done = recipes_main("predict", tiny_text_run, SENTENCE, path, txt, folder, "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    names = [p["input"] for p in result["predictions"]]
    folder_files = [folder / "b.txt", folder / "deeper" / "a.txt"]
    assert names == [SENTENCE, *(f"{path}:{n}" for n in lines), str(txt), *map(str, folder_files)]
    assert result["class_names"] == ["neg", "pos"]
    all_texts = [SENTENCE, *texts, txt.read_text(encoding="utf-8"), *(f.read_text() for f in folder_files)]
    expected = expected_probabilities(tiny_text_run, all_texts)
    got = np.array([[p["probabilities"]["neg"], p["probabilities"]["pos"]] for p in result["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert [p["predicted"] for p in result["predictions"]] == [["neg", "pos"][i] for i in expected.argmax(1)]

    table = recipes_main("predict", tiny_text_run, SENTENCE, path, txt)
    assert table.returncode == 0, table.stderr[-3000:]
    rows = table.stdout.strip().splitlines()
    assert rows[0].split() == ["input", "top1", "prob"] and len(rows) == 1 + 1 + 4 + 1
    assert rows[1].startswith(SENTENCE) and rows[1].split()[-2] in ("neg", "pos")
    assert all(row.split()[-2] in ("neg", "pos") for row in rows[1:])


def test_long_texts_are_clipped_in_the_table_only(recipes_main, tiny_text_run, tmp_path):
    long_text = "a wonderful film, " * 20 + "the end"
    done = recipes_main("predict", tiny_text_run, long_text)
    assert done.returncode == 0, done.stderr[-3000:]
    row = done.stdout.strip().splitlines()[1]
    name = row.rsplit(maxsplit=2)[0]
    assert "…" in name and len(name) <= 60 and name.startswith("a wonderful film") and name.endswith("the end")
    out = tmp_path / "preds.csv"
    assert recipes_main("predict", tiny_text_run, long_text, "--out", out).returncode == 0
    with open(out, newline="") as f:
        assert next(csv.DictReader(f))["input"] == long_text


def test_predict_reads_texts_as_evaluate_does(tiny_text_run, reviews_folder):
    """The test split as `recipes evaluate` reads it, and as `recipes predict` reads test.csv."""
    config = stored_config(tiny_text_run)
    _, dataset, _, _ = held_out_data(config, vocabulary=run_vocabulary(tiny_text_run))
    ids = np.concatenate([np.asarray(x) for x, _ in dataset.as_numpy_iterator()])
    pre = preprocessing.read(tiny_text_run)
    with open(reviews_folder / "test.csv", newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    assert ids.dtype == np.int32 and ids.shape == (len(texts), pre.sequence_length)
    np.testing.assert_array_equal(ids, pre.transform(texts))
    inputs = preprocessing.read_inputs([reviews_folder / "test.csv"], pre)
    np.testing.assert_array_equal(inputs.x, ids)
    assert inputs.names[0] == f"{reviews_folder / 'test.csv'}:2"
    # "zyzzyva" is in every test review and never in training: out of vocabulary, id 1
    assert "zyzzyva" not in pre.text_vocabulary().tokens
    only = pre.transform(["zyzzyva"])
    assert only[0, 0] == 1 and not only[0, 1:].any()
    assert all(1 in row for row in ids)


def test_predict_jsonl_by_the_runs_column_else_by_name(tiny_text_run, tmp_path):
    pre = preprocessing.read(tiny_text_run)
    assert pre.text_from == "'text'"
    path = tmp_path / "new.jsonl"
    records = [{"id": 1, "note": "x", "text": "great fun"}, {"id": 2, "note": "y", "text": "dull and weak"}]
    path.write_text(json.dumps(records[0]) + "\n\n" + json.dumps(records[1]) + "\n", encoding="utf-8")
    inputs = preprocessing.read_inputs([path], pre)
    assert inputs.names == [f"{path}:1", f"{path}:3"]
    np.testing.assert_array_equal(inputs.x, pre.transform(["great fun", "dull and weak"]))
    # no 'text' column: found by name ('review'); a label column is ignored
    other = write_reviews_csv(tmp_path / "other.csv", [("pos", "superb film", "7")], header=("label", "review", "n"))
    np.testing.assert_array_equal(preprocessing.read_inputs([other], pre).x, pre.transform(["superb film"]))
    # a file of texts alone, no header: its first text is a text, not a header
    bare = tmp_path / "bare.csv"
    bare.write_text("what a superb film\nawful\n", encoding="utf-8")
    inputs = preprocessing.read_inputs([bare], pre)
    assert inputs.names == [f"{bare}:1", f"{bare}:2"]


def test_out_csv_has_one_row_per_input(recipes_main, tiny_text_run, new_reviews, tmp_path):
    path, texts, _, txt, _ = new_reviews
    out = tmp_path / "preds.csv"
    done = recipes_main("predict", tiny_text_run, SENTENCE, path, txt, "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 + len(texts) + 1
    assert {r["predicted"] for r in rows} <= {"neg", "pos"} and set(rows[0]) >= {"input", "p_neg", "p_pos"}
    assert rows[0]["input"] == SENTENCE and rows[-1]["input"] == str(txt)


@pytest.mark.parametrize("name", ["reviews_new.csv", "data/new_reviews", "notes.TXT", "photo.png"])
def test_a_mistyped_file_name_is_not_classified_as_a_text(recipes_main, tiny_text_run, tmp_path, name):
    out = tmp_path / "preds.csv"
    missing = tmp_path / name if "/" not in name else name
    done = recipes_main("predict", tiny_text_run, SENTENCE, missing, "--out", out)
    assert done.returncode != 0
    assert "does not exist" in last_line(done) and repr(str(missing)) in last_line(done)
    assert not out.exists()


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_text_fails(recipes_main, tiny_text_run, text):
    done = recipes_main("predict", tiny_text_run, SENTENCE, text)
    assert done.returncode != 0
    assert f"Input {text!r} is an empty text" in last_line(done) and len(done.stderr.strip().splitlines()) == 1


def test_bad_files_fail_with_one_line_naming_file_and_line(recipes_main, tiny_text_run, tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\nvery good,pos\ncaf\xe9 was awful,neg\n".encode("latin-1"))
    done = recipes_main("predict", tiny_text_run, latin)
    assert done.returncode != 0 and f"{latin}, line 3: not UTF-8 text" in last_line(done)

    quoting = tmp_path / "quoting.csv"
    quoting.write_text('text,label\nfine,pos\n"never closed,neg\nmore,pos\n', encoding="utf-8")
    done = recipes_main("predict", tiny_text_run, quoting)
    assert done.returncode != 0 and f"{quoting}, line 3: broken CSV quoting" in last_line(done)

    empty = write_reviews_csv(tmp_path / "empty.csv", [("good", "pos"), ("  ", "neg")])
    done = recipes_main("predict", tiny_text_run, empty)
    assert done.returncode != 0 and f"{empty}, line 3: the text ('text') is empty." in last_line(done)

    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"text": "good"}\n{"text": 3}\n', encoding="utf-8")
    done = recipes_main("predict", tiny_text_run, jsonl)
    assert done.returncode != 0 and f"{jsonl}, line 2: the text ('text') is not a string" in last_line(done)


def test_a_text_run_refuses_images_and_arrays(recipes_main, tiny_text_run, tmp_path):
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 8)))
    png = tmp_path / "pics" / "a.png"
    png.parent.mkdir()
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    for arg in (tmp_path / "x.npz", png, png.parent):
        done = recipes_main("predict", tiny_text_run, arg)
        assert done.returncode != 0, arg
        assert "trained on texts" in last_line(done) and str(arg) in last_line(done), last_line(done)
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    done = recipes_main("predict", tiny_text_run, numbers)
    assert done.returncode != 0 and f"{numbers} holds no column of text" in last_line(done)


def test_an_image_run_still_takes_no_raw_text(recipes_main, tiny_run):
    done = recipes_main("predict", tiny_run, SENTENCE)
    assert done.returncode != 0
    assert last_line(done).endswith(f"Input {SENTENCE!r} does not exist. Received: inputs={SENTENCE!r}")
