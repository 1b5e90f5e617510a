"""Text data sets and string class labels: every input form, every refusal, the vocabulary learned from
the training split alone, and `"imdb"` read as text from the aclImdb archive (fast tier: small files
made here, no training)."""

import csv
import hashlib
import io
import json
import os
import pathlib
import tarfile
import time

import keras
import numpy as np
import pytest
from conftest import make_reviews, write_reviews_csv

from recipes.datasets import _remote, _text, _vocabulary, load_dataset


def _collect(ds):
    """All batches of `ds` as numpy: (x, y)."""
    batches = list(ds.as_numpy_iterator())
    return tuple(np.concatenate(parts) for parts in zip(*batches))


def _ids(y, class_names, names):
    """The expected labels: `names` (one per example) as indices into `class_names`."""
    return np.array([class_names.index(n) for n in names], np.int32)


def _snapshot(path):
    """Bytes and mtime of a file, or of every file under a folder."""
    path = pathlib.Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in files}


def _refused(path, match, **kwargs):
    """`load_dataset(path)` fails with one line matching `match`, and leaves `path` as it was."""
    before = _snapshot(path)
    with pytest.raises(ValueError, match=match) as e:
        load_dataset(path, validation_split=0, **kwargs)
    assert "\n" not in str(e.value), str(e.value)
    assert _snapshot(path) == before
    return str(e.value)


def _write(path, text, encoding="utf-8"):
    path = pathlib.Path(path)
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


# ----------------------------------------------------------------------------- input forms


def test_csv_with_string_labels(tmp_path):
    rows = make_reviews(40, seed=3)
    path = write_reviews_csv(tmp_path / "reviews.csv", rows)
    train, val, test, info = load_dataset(path, validation_split=0, batch_size=8)
    assert (info.kind, info.class_names, info.num_classes) == ("text", ("neg", "pos"), 2)
    assert (info.text_from, info.label_from, info.unused) == ("'text'", "'label'", ())
    assert (info.num_train, info.num_val, info.num_test, val, test) == (40, 0, 0, None, None)
    assert info.vocab_size == info.vocabulary.size == len(info.vocabulary.tokens) + 2
    assert info.sequence_length == info.vocabulary.sequence_length == 16  # reviews of <= 13 words: the minimum
    assert info.input_shape == (16,)
    x, y = _collect(load_dataset(path, validation_split=0, batch_size=8, seed=1)[0])
    assert x.dtype == np.int32 and x.shape == (40, 16) and x.max() < info.vocab_size
    # shuffled: the labels as a multiset, and each text's ids with its own label
    assert sorted(y.tolist()) == sorted(_ids(None, info.class_names, [label for _, label in rows]).tolist())
    expected = _vocabulary.vectorize([text for text, _ in rows], info.vocabulary)
    by_ids = {tuple(ids): i for i, ids in enumerate(expected)}
    assert [rows[by_ids[tuple(ids)]][1] for ids in x] == [info.class_names[label] for label in y]


def test_tsv_and_json_lines(tmp_path):
    rows = make_reviews(30, seed=4)
    tsv = tmp_path / "reviews.tsv"
    with open(tsv, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["label", "text"])
        writer.writerows([(label, text) for text, label in rows])
    jsonl = tmp_path / "reviews.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"id": i, "text": text, "label": label}) + "\n" for i, (text, label) in enumerate(rows)),
        encoding="utf-8",
    )
    expected = [label for _, label in rows]
    for path, unused in ((tsv, ()), (jsonl, ("'id'",))):
        train, _, _, info = load_dataset(path, validation_split=0, batch_size=64)
        assert (info.kind, info.class_names, info.text_from, info.label_from) == (
            "text",
            ("neg", "pos"),
            "'text'",
            "'label'",
        )
        assert info.unused == unused and info.num_train == 30
        _, y = _collect(train)
        assert sorted(y.tolist()) == sorted(_ids(None, ("neg", "pos"), expected).tolist())


def _txt_folder(root, reviews, start=0):
    for i, (text, label) in enumerate(reviews, start=start):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{i:03d}.txt").write_text(text, encoding="utf-8")


def test_folder_of_class_folders_of_txt_files(tmp_path):
    root = tmp_path / "texts"
    _txt_folder(root, make_reviews(20, seed=5))
    (root / "notes.md").write_text("not an example")
    _, _, test, info = load_dataset(root, validation_split=0.25, return_test="auto")
    assert (info.kind, info.class_names, info.num_train, info.num_val, info.num_test) == (
        "text",
        ("neg", "pos"),
        15,
        5,
        0,
    )
    assert (info.text_from, info.label_from, test) == (".txt files, one example each", "class folders", None)


def test_train_and_test_folders_leave_out_unsup(tmp_path):
    root = tmp_path / "aclImdb-like"
    _txt_folder(root / "train", make_reviews(12, seed=6))
    _txt_folder(root / "test", make_reviews(6, seed=7))
    (root / "train" / "unsup").mkdir()
    for i in range(5):
        (root / "train" / "unsup" / f"{i}.txt").write_text("no label here")
    (root / "train" / "labeledBow.feat").write_text("0 1:1\n")
    _, _, test, info = load_dataset(root, validation_split=0, return_test=True)
    assert (info.class_names, info.num_train, info.num_test) == (("neg", "pos"), 12, 6)
    assert info.unused == ("train/unsup (no test/unsup)",)
    _, y = _collect(test)
    assert y.tolist() == [0, 0, 0, 1, 1, 1]  # in file order: the neg folder, then pos


def test_train_and_test_csv_labels_mapped_by_training_class_names(tmp_path):
    root = tmp_path / "split"
    root.mkdir()
    write_reviews_csv(root / "train.csv", make_reviews(20, seed=8))
    # the test file holds one class, "pos": its label is 1, the training file's index of "pos"
    write_reviews_csv(root / "test.csv", [(text, "pos") for text, _ in make_reviews(4, seed=9)])
    (root / "valid.csv").write_text("ignored")
    _, _, test, info = load_dataset(root, validation_split=0, return_test=True)
    assert (info.class_names, info.num_test) == (("neg", "pos"), 4)
    assert info.unused == ("valid.csv (the validation split is drawn from train)",)
    assert _collect(test)[1].tolist() == [1, 1, 1, 1]


def test_test_label_not_in_training_names_the_file_and_line(tmp_path):
    root = tmp_path / "split"
    root.mkdir()
    write_reviews_csv(root / "train.csv", make_reviews(10, seed=8))
    write_reviews_csv(root / "test.csv", [("fine film", "pos"), ("so so film", "meh"), ("bad film", "neg")])
    message = _refused(root, r"test\.csv, line 3: the label 'meh' \('label'\) is not a class of the training data")
    assert "neg, pos" in message


def test_npz_of_strings_and_arrays_in_memory(tmp_path):
    rows = make_reviews(16, seed=10)
    texts, labels = [t for t, _ in rows], [label for _, label in rows]
    path = tmp_path / "reviews.npz"
    np.savez(
        path, x_train=np.array(texts), y_train=np.array(labels), x_test=np.array(texts[:4]), y_test=np.array(labels[:4])
    )
    _, _, test, info = load_dataset(path, validation_split=0, return_test=True)
    assert (info.kind, info.class_names, info.num_train, info.num_test) == ("text", ("neg", "pos"), 16, 4)
    assert _collect(test)[1].tolist() == _ids(None, ("neg", "pos"), labels[:4]).tolist()
    train, _, _, info = load_dataset((texts, labels), validation_split=0, batch_size=64)
    assert (info.kind, info.class_names, info.num_train) == ("text", ("neg", "pos"), 16)
    assert sorted(_collect(train)[1].tolist()) == sorted(_ids(None, ("neg", "pos"), labels).tolist())


def test_integer_labels_still_work(tmp_path):
    rows = make_reviews(12, seed=13)
    texts, numbers = [t for t, _ in rows], [int(label == "pos") for _, label in rows]
    *_, info = load_dataset((texts, numbers), validation_split=0)
    assert (info.kind, info.class_names) == ("text", ("0", "1"))
    path = write_reviews_csv(tmp_path / "ints.csv", [(t, n) for t, n in zip(texts, numbers)])
    train, _, _, info = load_dataset(path, validation_split=0, batch_size=64)
    assert (info.kind, info.class_names) == ("text", ("0", "1"))
    assert sorted(_collect(train)[1].tolist()) == sorted(numbers)
    # a test file of integers read by the training file's classes: class 1 may be absent from it
    root = tmp_path / "split"
    root.mkdir()
    _write(root / "train.csv", "a,b,label\n" + "".join(f"{i}.5,{i},{i % 3}\n" for i in range(9)))
    _write(root / "test.csv", "a,b,label\n1,2,2\n3,4,0.0\n")
    _, _, test, info = load_dataset(root, validation_split=0, return_test=True)
    assert (info.kind, info.class_names, info.num_test) == ("table", ("0", "1", "2"), 2)
    assert _collect(test)[1].tolist() == [2, 0]
    _write(root / "test.csv", "a,b,label\n1,2,2\n3,4,5\n")
    _refused(root, r"test\.csv, line 3: the label '5' \('label'\) is not a class of the training data \(0, 1, 2\)\.$")


# ----------------------------------------------------------------------------- columns


def _three_columns(path, header=("id", "review", "sentiment"), n=12):
    rows = make_reviews(n, seed=11)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows([(i, text, label) for i, (text, label) in enumerate(rows)])
    return path


def test_columns_found_by_name(tmp_path):
    path = _three_columns(tmp_path / "named.csv")
    *_, info = load_dataset(path, validation_split=0)
    assert (info.text_from, info.label_from, info.unused) == ("'review'", "'sentiment'", ("'id'",))
    assert info.class_names == ("neg", "pos")


def test_text_column_found_by_type_and_chosen(tmp_path):
    path = _three_columns(tmp_path / "unnamed.csv", header=("a", "b", "c"))
    *_, info = load_dataset(path, validation_split=0)
    assert (info.text_from, info.label_from) == ("'b'", "'c'")  # the longest texts; the fewest values
    *_, info = load_dataset(path, validation_split=0, text_column="a", label_column="c")
    assert (info.text_from, info.label_from, info.unused) == ("'a'", "'c'", ("'b'",))
    *_, info = load_dataset(path, validation_split=0, text_column=2, label_column=3)
    assert (info.text_from, info.label_from) == ("'b'", "'c'")
    no_header = _three_columns(tmp_path / "bare.csv", header=None)
    *_, info = load_dataset(no_header, validation_split=0, text_column=2)
    assert (info.text_from, info.label_from, info.num_train) == ("column 2", "column 3", 12)  # no header: 12 rows


def test_wrong_text_column_lists_the_columns(tmp_path):
    path = _three_columns(tmp_path / "unnamed.csv", header=("a", "b", "c"))
    _refused(path, r"unnamed\.csv has no column 'nope' \(text_column\)\. Found: 'a', 'b', 'c'$", text_column="nope")
    _refused(path, r"has no column 4 \(text_column\)\. Found: 'a', 'b', 'c'$", text_column=4)
    _refused(path, r"has no column 'x' \(label_column\)", label_column="x")
    jsonl = _write(tmp_path / "r.jsonl", '{"text": "a b", "label": "x"}\n{"text": "c d", "label": "y"}\n')
    _refused(jsonl, r"r\.jsonl has no key 'body' \(text_column\)\. Found: 'text', 'label'$", text_column="body")


# ----------------------------------------------------------------------------- the vocabulary


def test_vocabulary_learned_from_the_training_split_alone(tmp_path):
    rows = make_reviews(40, seed=12)
    n_val, seed = 10, 3
    val = set(np.random.default_rng(seed).permutation(40)[:n_val].tolist())  # as load_dataset draws it
    val_rows, train_rows = sorted(val)[:2], sorted(set(range(40)) - val)[:2]
    rows = [
        (text + (" valonly" if i in val_rows else " trainonly" if i in train_rows else ""), label)
        for i, (text, label) in enumerate(rows)
    ]
    root = tmp_path / "split"
    root.mkdir()
    write_reviews_csv(root / "train.csv", rows)
    write_reviews_csv(root / "test.csv", [(text + " testonly testonly", label) for text, label in make_reviews(6)])
    _, val_ds, test, info = load_dataset(root, validation_split=0.25, seed=seed, return_test=True)
    assert info.num_val == n_val
    tokens = info.vocabulary.tokens
    assert "trainonly" in tokens and "valonly" not in tokens and "testonly" not in tokens
    assert _vocabulary.vectorize(["valonly testonly trainonly"], info.vocabulary)[0, :3].tolist() == [
        1,
        1,
        tokens.index("trainonly") + 2,
    ]
    x_val, _ = _collect(val_ds)
    assert x_val.shape[0] == n_val
    assert all(1 in row for row in x_val[[sorted(val).index(i) for i in val_rows]])  # "valonly": out of vocabulary
    x_test, _ = _collect(test)
    assert np.all(np.sum(x_test == 1, axis=1) >= 2)
    # the same seed, the same vocabulary; a vocabulary given back, the same ids
    *_, again = load_dataset(root, validation_split=0.25, seed=seed)
    assert again.vocabulary == info.vocabulary
    _, _, test2, other = load_dataset(root, validation_split=0, seed=9, return_test=True, vocabulary=info.vocabulary)
    assert other.vocabulary == info.vocabulary
    np.testing.assert_array_equal(_collect(test2)[0], x_test)


def test_vocabulary_given_back_reads_the_test_split_alike(reviews_folder):
    _, _, test, info = load_dataset(reviews_folder, return_test=True)
    assert "zyzzyva" not in info.vocabulary.tokens
    _, _, test2, info2 = load_dataset(reviews_folder, return_test=True, vocabulary=info.vocabulary, seed=5)
    x, y = _collect(test)
    x2, y2 = _collect(test2)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert info2.vocab_size == info.vocab_size and info2.sequence_length == info.sequence_length


# ----------------------------------------------------------------------------- tables


def test_table_with_a_column_of_names(tmp_path):
    rng = np.random.default_rng(0)
    species = ["versicolor", "setosa", "virginica"] * 4
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    lines += [",".join(f"{v:.1f}" for v in rng.uniform(0, 8, 4)) + f",{name}" for name in species]
    path = _write(tmp_path / "iris.csv", "\n".join(lines) + "\n")
    train, _, _, info = load_dataset(path, validation_split=0, batch_size=64)
    assert (info.kind, info.class_names, info.input_shape) == ("table", ("setosa", "versicolor", "virginica"), (4,))
    assert sorted(_collect(train)[1].tolist()) == sorted(
        [("setosa", "versicolor", "virginica").index(s) for s in species]
    )
    numbers = _write(tmp_path / "ints.csv", "a,b,label\n" + "".join(f"{i}.5,{i},{i % 3}\n" for i in range(9)))
    *_, info = load_dataset(numbers, validation_split=0)
    assert (info.kind, info.class_names) == ("table", ("0", "1", "2"))


# ----------------------------------------------------------------------------- refusals


def test_label_column_with_one_class(tmp_path):
    path = write_reviews_csv(tmp_path / "one.csv", [(text, "pos") for text, _ in make_reviews(6)])
    _refused(path, r"one\.csv: the labels \('label'\) hold one class, 'pos'; a classifier needs at least 2")


def test_missing_labels_and_empty_texts(tmp_path):
    rows = make_reviews(5)
    path = write_reviews_csv(tmp_path / "missing.csv", rows[:3] + [(rows[3][0], " ")] + rows[4:])
    _refused(path, r"missing\.csv, line 5: the label \('label'\) is missing\.$")
    path = write_reviews_csv(tmp_path / "empty.csv", rows[:2] + [("  ", "pos")] + rows[3:])
    _refused(path, r"empty\.csv, line 4: the text \('text'\) is empty\.$")
    path = _write(tmp_path / "nolabel.jsonl", '{"text": "good", "label": "pos"}\n\n{"text": "bad"}\n')
    _refused(path, r"nolabel\.jsonl, line 3: the label \('label'\) is missing\.$")
    path = _write(tmp_path / "notext.jsonl", '{"text": "good", "label": "pos"}\n{"text": "", "label": "neg"}\n')
    _refused(path, r"notext\.jsonl, line 2: the text \('text'\) is empty\.$")
    folder = tmp_path / "texts"
    _txt_folder(folder, rows)
    (folder / "pos" / "blank.txt").write_text(" \n")
    _refused(folder, r"blank\.txt: the text is empty\.$")


def test_not_utf8(tmp_path):
    path = _write(tmp_path / "latin.csv", b"text,label\ngood film,pos\nnice caf\xe9,pos\nbad,neg\n")
    _refused(path, r"latin\.csv, line 3: not UTF-8 text; save the file as UTF-8\. Received: byte e9 at column 9$")
    path = _write(
        tmp_path / "latin.jsonl", b'{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{"text": "\xe9"}\n'
    )
    _refused(path, r"latin\.jsonl, line 3: not UTF-8 text")
    folder = tmp_path / "texts"
    _txt_folder(folder, make_reviews(4))
    _write(folder / "neg" / "latin.txt", b"first line\ncaf\xe9\n")
    _refused(folder, r"latin\.txt, line 2: not UTF-8 text")


def test_line_too_long(tmp_path, monkeypatch):
    monkeypatch.setattr(_text, "MAX_LINE", 50)
    path = _write(tmp_path / "long.csv", "text,label\nshort,pos\n" + "x" * 60 + ",neg\nok,neg\n")
    _refused(path, r"long\.csv, line 3: longer than 50 characters, too long for one example")
    path = _write(tmp_path / "long.jsonl", json.dumps({"text": "y" * 60, "label": "a"}) + "\n")
    _refused(path, r"long\.jsonl, line 1: longer than 50 characters")


def test_a_50_mb_line_fails_fast(tmp_path):
    path = _write(tmp_path / "huge.csv", "text,label\n")
    with open(path, "r+b") as f:  # a sparse file: 50 MB of zero bytes, none written
        f.truncate(50 * 2**20)
    size, mtime = path.stat().st_size, path.stat().st_mtime_ns
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"huge\.csv, line 2: longer than 1,000,000 characters") as e:
        load_dataset(path)
    assert time.perf_counter() - start < 2
    assert "\n" not in str(e.value)
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (size, mtime)


def test_broken_csv_quoting_names_the_line_the_record_starts(tmp_path):
    rows = [f"fine review {i},{'pos' if i % 2 else 'neg'}\n" for i in range(6)]
    path = _write(tmp_path / "open.csv", "text,label\n" + "".join(rows[:3]) + '"never closed,pos\n' + "".join(rows[3:]))
    _refused(path, r"open\.csv, line 5: broken CSV quoting \(a quote opened here is never closed\); a field that")
    # a later quote closes it, then the row goes on: the record still starts on the line of its first quote
    path = _write(tmp_path / "closed.csv", 'text,label\nok,pos\n"opened,neg\nmore text,pos\n"quoted",neg\n')
    _refused(path, r"closed\.csv, line 3: broken CSV quoting")


def test_too_many_columns(tmp_path):
    path = _write(tmp_path / "wide.csv", "text,label\ngood,pos\nbad, really,neg\nok,neg\n")
    _refused(path, r"wide\.csv, line 3: expected 2 columns, as the header has .* Received: 3$")


def test_bad_json_lines(tmp_path):
    path = _write(tmp_path / "bad.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": }\n')
    _refused(path, r"bad\.jsonl, line 2: not valid JSON \(Expecting value, column 24\)\.$")
    path = _write(tmp_path / "list.jsonl", '{"text": "a", "label": "x"}\n["b", "y"]\n')
    _refused(path, r"list\.jsonl, line 2: each line must be a JSON object\. Received: list$")


def test_columns_refused_for_images_npz_and_txt_folders(tmp_path):
    images = tmp_path / "images"
    for name in ("cat", "dog"):
        (images / name).mkdir(parents=True)
        keras.utils.save_img(images / name / "0.png", np.zeros((4, 4, 3), np.uint8), scale=False)
    _refused(
        images,
        r"text_column applies to CSV, TSV and JSON Lines files; 'images' holds images\. Received",
        text_column="x",
    )
    npz = tmp_path / "texts.npz"
    np.savez(npz, x_train=np.array(["a b", "c d"]), y_train=np.array(["x", "y"]))
    _refused(npz, r"label_column applies to CSV, TSV and JSON Lines files; 'texts\.npz' holds arrays", label_column=2)
    folder = tmp_path / "texts"
    _txt_folder(folder, make_reviews(4))
    _refused(folder, r"'texts' holds a folder of \.txt files\. Received: text_column='text'$", text_column="text")


# ----------------------------------------------------------------------------- "imdb" as text

REVIEWS = {
    ("train", "neg"): ["Awful, boring film.<br />Bad.", "Dull and bad acting", "So bad, so dull"],
    ("train", "pos"): ["A great film, great acting!", "Great fun", "Café scenes: great"],
    ("test", "neg"): ["Bad and dull", "Boring"],
    ("test", "pos"): ["Great!", "great and fun"],
}


def _add(tar, name, data):
    member = tarfile.TarInfo(name)
    member.size = len(data)
    tar.addfile(member, io.BytesIO(data))


def _acl_imdb_archive(path):
    """A tiny aclImdb_v1.tar.gz: aclImdb's layout, with unsup and the files that are not reviews."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "aclImdb/imdb.vocab", b"the\nand\n")
        _add(tar, "aclImdb/README", b"Large Movie Review Dataset v1.0\n")
        for (split, label), texts in REVIEWS.items():
            # file names as aclImdb's (id_rating.txt); 10_x sorts before 2_x
            for i, text in zip((2, 10, 7), texts):
                _add(tar, f"aclImdb/{split}/{label}/{i}_{3 if label == 'neg' else 8}.txt", text.encode("utf-8"))
            _add(tar, f"aclImdb/{split}/urls_{label}.txt", b"http://www.imdb.com/title/tt0000000/usercomments\n")
            _add(tar, f"aclImdb/{split}/labeledBow.feat", b"0 1:1\n")
        for i in range(4):
            _add(tar, f"aclImdb/train/unsup/{i}_0.txt", b"no label")
        _add(tar, "aclImdb/train/unsupBow.feat", b"0 1:1\n")
    return path


def _expected(split):
    """The texts and labels of a split as read: neg then pos, each in file-name order ("10_..." first)."""
    texts, y = [], []
    for i, label in enumerate(("neg", "pos")):
        reviews = REVIEWS[(split, label)]
        texts += [reviews[1], reviews[0], *reviews[2:]]  # 10_*.txt, 2_*.txt, 7_*.txt
        y += [i] * len(reviews)
    return texts, y


def test_imdb_from_the_acl_imdb_archive(tmp_path):
    archive = _acl_imdb_archive(tmp_path / "datasets" / "aclImdb_v1.tar.gz")
    before = _snapshot(archive)
    train, _, test, info = load_dataset("imdb", cache_dir=tmp_path, validation_split=0, return_test=True, batch_size=64)
    assert (info.name, info.kind, info.class_names, info.num_train, info.num_test) == (
        "imdb",
        "text",
        ("neg", "pos"),
        6,
        4,
    )
    assert info.source == str(archive)
    assert info.unused == ("train/unsup (not neg or pos)",)
    # the vocabulary and length learned from the texts, not keras.datasets.imdb's 20000 and 200
    assert info.sequence_length == 16 and info.vocab_size == info.vocabulary.size < 100
    assert {"great", "bad", "dull"} <= set(info.vocabulary.tokens)
    texts, y = _expected("test")
    x_test, y_test = _collect(test)
    assert y_test.tolist() == y
    np.testing.assert_array_equal(x_test, _vocabulary.vectorize(texts, info.vocabulary))
    assert _snapshot(archive) == before
    # vocab_size caps the vocabulary's ids; sequence_length is kept
    *_, info = load_dataset("imdb", cache_dir=tmp_path, validation_split=0, vocab_size=5, sequence_length=7)
    assert (info.vocab_size, info.sequence_length, len(info.vocabulary.tokens)) == (5, 7, 3)
    assert info.vocabulary.tokens == ("great", "bad", "acting")  # the most frequent (5, 3, 2), ties alphabetically


@pytest.mark.parametrize("folder", ["aclImdb", "aclImdb_v1/aclImdb", "aclImdb_v1_extracted/aclImdb"])
def test_imdb_from_an_extracted_folder_reads_as_the_archive(tmp_path, folder):
    archive = _acl_imdb_archive(tmp_path / "archive" / "datasets" / "aclImdb_v1.tar.gz")
    _, _, test, info = load_dataset(
        "imdb", cache_dir=tmp_path / "archive", validation_split=0, return_test=True, batch_size=64
    )
    home = tmp_path / "home"
    target = (home / "datasets" / folder).parent
    target.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target)
    _, _, test2, info2 = load_dataset("imdb", cache_dir=home, validation_split=0, return_test=True, batch_size=64)
    assert (info2.name, info2.kind, info2.class_names, info2.num_train, info2.num_test) == (
        "imdb",
        "text",
        ("neg", "pos"),
        6,
        4,
    )
    assert info2.vocabulary == info.vocabulary
    for a, b in zip(_collect(test), _collect(test2)):
        np.testing.assert_array_equal(a, b)


def test_imdb_where_keras_get_file_untars_it(tmp_path):
    """keras-io's download, `get_file("aclImdb_v1.tar.gz", ..., untar=True)`, here from a file:// URL."""
    archive = _acl_imdb_archive(tmp_path / "origin" / "aclImdb_v1.tar.gz")
    home = tmp_path / "home"
    home.mkdir()  # else get_file writes to /tmp/.keras
    extracted = keras.utils.get_file("aclImdb_v1.tar.gz", archive.as_uri(), untar=True, cache_dir=home)
    os.remove(home / "datasets" / "aclImdb_v1.tar.gz")  # the folder alone
    assert pathlib.Path(extracted).parent == home / "datasets"
    *_, info = load_dataset("imdb", cache_dir=home, validation_split=0)
    assert (info.kind, info.num_train, info.source) == ("text", 6, str(pathlib.Path(extracted) / "aclImdb"))


def test_imdb_npz_wins_over_the_archive(tmp_path, monkeypatch):
    _acl_imdb_archive(tmp_path / "datasets" / "aclImdb_v1.tar.gz")
    path = tmp_path / "datasets" / "imdb.npz"
    reviews = np.empty(2, dtype=object)
    reviews[:] = [[10, 20, 30], [5] * 10]
    np.savez(path, x_train=reviews, y_train=np.array([0, 1]), x_test=reviews, y_test=np.array([1, 0]))
    files = list(_remote.REMOTE_FILES["imdb"])
    files[0] = _remote.RemoteFile(files[0].fname, files[0].origin, hashlib.sha256(path.read_bytes()).hexdigest())
    monkeypatch.setitem(_remote.REMOTE_FILES, "imdb", tuple(files))
    *_, info = load_dataset("imdb", cache_dir=tmp_path, validation_split=0)
    assert (info.kind, info.vocab_size, info.sequence_length) == ("sequence", 20000, 200)


def test_imdb_truncated_or_bad_archive(tmp_path):
    whole = _acl_imdb_archive(tmp_path / "whole.tar.gz").read_bytes()
    (tmp_path / "datasets").mkdir()
    archive = _write(tmp_path / "datasets" / "aclImdb_v1.tar.gz", whole[: len(whole) // 2])
    before = _snapshot(archive)
    with pytest.raises(ValueError, match=r"Could not read .*aclImdb_v1\.tar\.gz: not a complete aclImdb archive") as e:
        load_dataset("imdb", cache_dir=tmp_path)
    assert "\n" not in str(e.value)
    assert _snapshot(archive) == before
    for cut in range(1, 10):  # a download cut anywhere, at a member's boundary too
        _write(archive, whole[: len(whole) * cut // 10])
        with pytest.raises(ValueError, match=r"aclImdb_v1\.tar\.gz: not a complete aclImdb archive \(.+\)\.$"):
            load_dataset("imdb", cache_dir=tmp_path)
    _write(archive, whole[:-1])
    with pytest.raises(ValueError, match=r"not a complete aclImdb archive"):
        load_dataset("imdb", cache_dir=tmp_path)
    _write(archive, b"not gzip at all")
    with pytest.raises(ValueError, match=r"aclImdb_v1\.tar\.gz: not a complete aclImdb archive") as e:
        load_dataset("imdb", cache_dir=tmp_path)
    assert "\n" not in str(e.value)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        _add(tar, "aclImdb/train/neg/0_1.txt", b"bad")
        _add(tar, "aclImdb/train/pos/0_9.txt", b"caf\xe9")
    _write(archive, buffer.getvalue())
    with pytest.raises(ValueError, match=r"aclImdb_v1\.tar\.gz: aclImdb/train/pos/0_9\.txt, line 1: not UTF-8") as e:
        load_dataset("imdb", cache_dir=tmp_path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        _add(tar, "aclImdb/train/neg/0_1.txt", b"bad")
    _write(archive, buffer.getvalue())
    with pytest.raises(ValueError, match=r"holds no aclImdb/train/pos/\*\.txt reviews: not the aclImdb archive\.$"):
        load_dataset("imdb", cache_dir=tmp_path)
