"""`recipes export` of a run trained on texts (conftest.py's `tiny_text_run`): a SavedModel that takes raw
strings, the token-id model with its vocabulary beside it, and the formats that cannot carry strings."""

import importlib.util

import keras
import numpy as np
import pytest

from recipes import preprocessing
from recipes.recipe import open_data
from recipes.trained import ExportError, export_run, load_run, run_exported
from recipes.trained._runtimes import as_float32

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export runs on TensorFlow")

MADE_UP = [
    "What a WONDERFUL, wonderful film!!!",
    "Terrible... simply terrible; the plot was dull.",
    "zyzzyva xylophone quixotic",  # no word of the vocabulary
    "",
    '  Loved   it,\tloved it; "superb" acting (really)  ',
    " ".join(["great"] * 100),  # longer than the sequence length: cut at the end
]


def held_out_texts(run):
    return [str(t) for t in open_data(load_run(run).config).arrays.x_test]


def keras_outputs(run, texts):
    """The float32 Keras model on the texts' token ids as training made them."""
    trained = load_run(run)
    return as_float32(trained.model).predict(trained.preprocessing.transform(texts), verbose=0)


def test_saved_model_with_preprocessing_takes_raw_strings(recipes_main, tiny_text_run, tmp_path):
    import tensorflow as tf

    out = tmp_path / "served"
    done = recipes_main("export", tiny_text_run, "--format", "tf_saved_model", "--include-preprocessing", "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 32 test texts of reviews, as raw strings" in done.stdout
    assert "input texts: N string" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]  # no temporaries left

    served = tf.saved_model.load(str(out))
    spec = served.signatures["serving_default"].structured_input_signature[1]
    assert [(s.dtype, s.shape.as_list()) for s in spec.values()] == [(tf.string, [None])]
    run = load_run(tiny_text_run)
    pre = preprocessing.read(tiny_text_run)
    for texts in (held_out_texts(tiny_text_run), MADE_UP, MADE_UP[:1]):
        got = served.serve(tf.constant(texts)).numpy()
        np.testing.assert_allclose(got, keras_outputs(tiny_text_run, texts), atol=1e-5)
        # what `recipes predict` gives for the same sentences: P(class 1) of a sigmoid model, every class else
        probabilities = run.predict_preprocessed(pre.transform(texts))
        np.testing.assert_allclose(got, probabilities[:, -got.shape[1] :], atol=1e-5)


@pytest.mark.parametrize(
    "format, name",
    [("onnx", "x.onnx"), ("tf_saved_model", "served"), ("litert", "x.tflite"), ("openvino", "x.xml")],
)
def test_token_id_export_writes_the_vocabulary_beside_it(recipes_main, tiny_text_run, tmp_path, format, name):
    if format == "openvino" and importlib.util.find_spec("openvino") is None:
        pytest.skip("openvino is not installed")
    out = tmp_path / name
    done = recipes_main("export", tiny_text_run, "--format", format, "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    words = out / "vocabulary.txt" if format == "tf_saved_model" else tmp_path / "x.vocabulary.txt"
    assert f"vocabulary: {words}  (one word a line, the first is id 2" in done.stdout
    beside = [] if format == "tf_saved_model" else [words.name] + (["x.bin"] if format == "openvino" else [])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, *beside])  # no temporaries left
    assert words.read_bytes() == (tiny_text_run / "vocabulary.txt").read_bytes()
    assert words.read_text(encoding="utf-8").split("\n")[:-1] == list(preprocessing.read(tiny_text_run).vocabulary)

    texts = held_out_texts(tiny_text_run) + MADE_UP
    ids = preprocessing.read(tiny_text_run).transform(texts)
    assert ids.dtype == np.int32
    got = run_exported(format, out, ids)[0]
    np.testing.assert_allclose(got, keras_outputs(tiny_text_run, texts), atol=1e-4)


@pytest.mark.parametrize("format, name", [("onnx", "m.onnx"), ("litert", "m.tflite"), ("openvino", "m.xml")])
def test_include_preprocessing_in_a_format_without_strings_is_refused(
    recipes_main, tiny_text_run, tmp_path, format, name
):
    if format == "openvino" and importlib.util.find_spec("openvino") is None:
        pytest.skip("openvino is not installed")
    out = tmp_path / name
    done = recipes_main("export", tiny_text_run, "--format", format, "--include-preprocessing", "--out", out)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"recipes export: error: --include-preprocessing cannot go into format={format!r}")
    assert "export without --include-preprocessing" in lines[0]
    assert "--format tf_saved_model --include-preprocessing" in lines[0]
    assert ("tf2onnx#1886" in lines[0]) == (format == "onnx")
    assert list(tmp_path.iterdir()) == []


def test_existing_paths_are_refused_and_left_as_they_were(recipes_main, tiny_text_run, tmp_path):
    model, words, folder = tmp_path / "x.onnx", tmp_path / "y.vocabulary.txt", tmp_path / "served"
    model.write_bytes(b"mine")
    words.write_bytes(b"my words\n")
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"mine too")
    cases = [
        (["--format", "onnx", "--out", model], model),
        (["--format", "onnx", "--out", tmp_path / "y.onnx"], words),  # the model is new, its vocabulary is not
        (["--format", "tf_saved_model", "--include-preprocessing", "--out", folder], folder),
    ]
    for args, existing in cases:
        done = recipes_main("export", tiny_text_run, *args)
        assert done.returncode == 2, done.stderr
        assert (
            done.stderr.strip()
            .splitlines()[-1]
            .startswith(f"recipes export: error: --out {str(existing)!r} exists; export never overwrites")
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served", "x.onnx", "y.vocabulary.txt"]
    assert model.read_bytes() == b"mine" and words.read_bytes() == b"my words\n"
    assert [p.name for p in folder.iterdir()] == ["saved_model.pb"]
    assert (folder / "saved_model.pb").read_bytes() == b"mine too"


@pytest.mark.parametrize(
    "format, name, include_preprocessing",
    [("onnx", "x.onnx", False), ("tf_saved_model", "served", True), ("tf_saved_model", "plain", False)],
)
def test_a_failed_check_leaves_nothing(tiny_text_run, tmp_path, monkeypatch, format, name, include_preprocessing):
    from recipes.trained import export as export_module

    real = export_module.run_exported
    monkeypatch.setattr(export_module, "run_exported", lambda *a: [o + 0.5 for o in real(*a)])
    with pytest.raises(ExportError, match=r"differs from Keras by 0\.5.* over the tolerance"):
        export_run(tiny_text_run, format, tmp_path / name, include_preprocessing=include_preprocessing, log=print)
    assert list(tmp_path.iterdir()) == []
