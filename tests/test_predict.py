"""`recipes predict` and `recipes export` (in this process, `recipes.cli.main`) on tiny runs trained in
this process: conftest.py's shared ones and a few more once per module."""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from recipes import export, preprocessing
from recipes.config import ConfigError
from recipes.predict import load_run

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export runs on TensorFlow")

ROOT = pathlib.Path(__file__).resolve().parents[1]
DIGITS = np.load(ROOT / "data" / "digits.npz")


def stderr_line(done):
    return done.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, train_quietly, tiny_run, tiny_dcgan_run, tiny_vae_run):
    """One epoch of each recipe on small data, shrunk with --set: name -> run directory (the MLP,
    DCGAN and VAE runs are conftest.py's, shared with other modules: copy one to change it)."""
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=80).astype("uint8")
    x = (rng.random((80, 6, 6)) * 100 + y[:, None, None] * 120).astype("uint8")
    binary = root / "binary.npz"
    np.savez(binary, x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:], class_names=np.array(["cat", "dog"]))
    settings = {
        "binary": ("mlp", {"dataset": str(binary)}, {"hidden_units": [8]}),
        "alexnet": ("alexnet", {}, {"filters": [8, 8, 8, 8, 8], "fc_units": [16, 16]}),
        "vgg16": ("vgg16", {}, {"filters": [4, 8, 8, 16, 16], "fc_units": [16]}),
        "lstm": ("lstm", {}, {"units": [8]}),
    }
    made = {"mlp": tiny_run, "dcgan": tiny_dcgan_run, "vae": tiny_vae_run}  # latent_dim 8: the DCGAN's
    for name, (model, flags, sets) in settings.items():
        made[name] = train_quietly(model, root / name, flags={"epochs": 1, **flags}, sets=sets)
    return made


def digits_png_folder(path, n=12):
    """The first `n` test digits as 8-bit PNGs (0..16 -> 0..255) in `path`; returns the uint8 images."""
    path.mkdir()
    images = np.round(DIGITS["x_test"][:n].astype(np.float32) * 255 / 16).astype(np.uint8)
    for i, image in enumerate(images):
        (path / f"{i:02d}.png").write_bytes(tf.io.encode_png(image[..., None]).numpy())
    return images


# ------------------------------------------------------------------------ predict


def test_run_predict_gives_model_predict_of_the_training_pipeline(runs):
    from recipes.training import load_data

    for name in ("mlp", "vgg16", "lstm"):
        run = load_run(runs[name])
        test = load_data(run.config, splits=["test"]).test
        x = np.concatenate([batch[0].numpy() for batch in test])
        expected = run.model.predict(x, verbose=0)
        np.testing.assert_allclose(run.predict(DIGITS["x_test"]), expected, atol=1e-6, err_msg=name)
        assert run.class_names == tuple(str(i) for i in range(10))


def test_predict_png_folder_matches_model_on_the_same_pixels(recipes_main, runs, tmp_path):
    images = digits_png_folder(tmp_path / "pngs")
    out = tmp_path / "preds.json"
    done = recipes_main("predict", runs["vgg16"], tmp_path / "pngs", "--top-k", 3, "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    model = keras.models.load_model(runs["vgg16"] / "best.keras")
    x = tf.image.resize(images[..., None].astype(np.float32), (32, 32)).numpy() / 255.0  # what training does
    expected = model.predict(x, verbose=0)
    got = np.array([[p["probabilities"][str(c)] for c in range(10)] for p in result["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [p["input"] for p in result["predictions"]] == [str(tmp_path / "pngs" / f"{i:02d}.png") for i in range(12)]
    first = result["predictions"][0]
    assert len(first["top_k"]) == 3 and first["predicted"] == str(int(np.argmax(expected[0])))


def test_predict_table_and_csv(recipes_main, runs, tmp_path):
    done = recipes_main("predict", runs["mlp"], ROOT / "data" / "digits.npz", "--top-k", 2)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].split() == ["input", "top1", "prob", "top2", "prob"]
    assert len(lines) == 1 + len(DIGITS["x_test"])
    out = tmp_path / "preds.csv"
    done = recipes_main("predict", runs["mlp"], ROOT / "data" / "digits.npz", "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = out.read_text().splitlines()
    assert rows[0] == "input,predicted,probability," + ",".join(f"p_{c}" for c in range(10))
    expected = load_run(runs["mlp"]).predict(DIGITS["x_test"])
    cells = rows[1].split(",")
    assert cells[0] == f"{ROOT / 'data' / 'digits.npz'}[0]" and cells[1] == str(int(np.argmax(expected[0])))
    np.testing.assert_allclose([float(v) for v in cells[3:]], expected[0], rtol=1e-5)


def test_binary_model_reports_both_classes(recipes_main, runs, tmp_path):
    run = load_run(runs["binary"])
    assert run.class_names == ("cat", "dog") and run.model.output_shape[-1] == 1
    x = np.load(runs["binary"].parent / "binary.npz")["x_test"]
    p = run.predict(x)
    sigmoid = run.model.predict(run.preprocessing.transform(x), verbose=0)[:, 0]
    np.testing.assert_allclose(p[:, 1], sigmoid, atol=1e-7)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    out = tmp_path / "binary.json"
    done = recipes_main("predict", runs["binary"], runs["binary"].parent / "binary.npz", "--top-k", 2, "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    first = json.loads(out.read_text())["predictions"][0]
    assert set(first["probabilities"]) == {"cat", "dog"} and len(first["top_k"]) == 2


def test_recorded_preprocessing_needs_no_data_set(runs, tmp_path):
    """With preprocessing.json a run predicts after its data set is gone; without it, one line says why not."""
    import shutil

    data = tmp_path / "moved.npz"
    shutil.copy(runs["binary"].parent / "binary.npz", data)
    run_dir = tmp_path / "run"
    shutil.copytree(runs["binary"], run_dir)
    assert (run_dir / "preprocessing.json").is_file()  # training records it
    (run_dir / "preprocessing.json").unlink()  # as in a run of an older version
    config = (run_dir / "config.yaml").read_text()
    (run_dir / "config.yaml").write_text(config.replace(str(runs["binary"].parent / "binary.npz"), str(data)))
    x = np.load(data)["x_test"]
    expected = load_run(run_dir).predict(x)
    data.unlink()
    with pytest.raises(ConfigError, match="has no preprocessing.json and its data set cannot be read"):
        load_run(run_dir)
    from recipes.training import load_data

    shutil.copy(runs["binary"].parent / "binary.npz", data)
    info = load_data(load_run(run_dir).config, splits=["test"]).info
    preprocessing.record(run_dir, info, "mlp")
    data.unlink()
    np.testing.assert_array_equal(load_run(run_dir).predict(x), expected)


@pytest.mark.parametrize(
    "args, line",
    [
        (["--top-k", "0"], "recipes predict: error: --top-k must be a positive integer. Received: top_k=0"),
        (
            ["--out", "{tmp}/preds.txt"],
            "recipes predict: error: --out must name a .csv or .json file. Received: out='{tmp}/preds.txt'",
        ),
        (
            ["--out", "{tmp}/missing/preds.csv"],
            "recipes predict: error: --out must be in an existing folder; '{tmp}/missing' does not exist. "
            "Received: out='{tmp}/missing/preds.csv'",
        ),
    ],
)
def test_predict_refuses_bad_flags_in_one_line(recipes_main, runs, tmp_path, args, line):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    done = recipes_main("predict", runs["mlp"], ROOT / "data" / "digits.npz", *args)
    assert done.returncode == 2
    assert done.stderr.strip() == line.replace("{tmp}", str(tmp_path))


def test_predict_refusals_leave_the_out_file_as_it_was(recipes_main, runs, tmp_path):
    out = tmp_path / "preds.csv"
    out.write_text("keep me\n")
    bright = tmp_path / "bright.npz"
    np.savez(bright, x=np.full((2, 8, 8), 200, np.uint8))
    cases = [
        (
            [runs["mlp"], bright],
            f"recipes predict: error: {bright}: Image values must be in [0, 16], the raw range of the run's data "
            f"(digits). Received: values in [200, 200]",
        ),
        (
            [runs["mlp"], tmp_path / "nothing.png"],
            f"recipes predict: error: Input '{tmp_path / 'nothing.png'}' does not exist. "
            f"Received: inputs='{tmp_path / 'nothing.png'}'",
        ),
        (
            [runs["vae"], ROOT / "data" / "digits.npz"],
            f"recipes predict: error: Run '{runs['vae']}' trained 'vae', a generative model; predict needs a "
            f"classifier run: use `recipes sample {runs['vae']}` for images or `recipes export {runs['vae']}` "
            f"for its generator/encoder and decoder.",
        ),
    ]
    for args, line in cases:
        done = recipes_main("predict", *args, "--out", out)
        assert done.returncode == 2, done.stderr
        assert stderr_line(done) == line
        assert out.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bright.npz", "preds.csv"]


def test_inputs_of_the_wrong_form_are_refused(runs, tmp_path):
    run = load_run(runs["mlp"])
    table = tmp_path / "rows.csv"
    table.write_text("1,2,3\n")
    with pytest.raises(ValueError, match=r"trained on images \(digits\); a \.csv holds feature rows"):
        run.predict_files([table])
    with pytest.raises(ValueError, match=r"Expected images \(N, H, W\) or \(N, H, W, C\) with 1-4 channels"):
        run.predict(np.zeros((2, 64)))
    with pytest.raises(ValueError, match=r"Inputs must be finite numbers. Received: nan at index \(0, 0, 0\)"):
        run.predict(np.where(np.eye(8)[None] > 0, np.nan, 1.0))


def test_tokens_and_tables_preprocess_as_training_does():
    tokens = preprocessing.Preprocessing(kind="tokens", input_shape=(4,), vocab_size=10, sequence_length=4)
    np.testing.assert_array_equal(tokens.transform([[1, 2], [3, 4]]), [[0, 0, 1, 2], [0, 0, 3, 4]])
    np.testing.assert_array_equal(tokens.transform([[1, 2, 3, 4, 5, 6]]), [[3, 4, 5, 6]])  # cut at the front
    with pytest.raises(ValueError, match=r"Token ids must be in \[0, 10\)"):
        tokens.transform([[1, 10]])
    table = preprocessing.Preprocessing(kind="table", input_shape=(2, 3))
    assert table.transform(np.arange(12).reshape(2, 6)).shape == (2, 2, 3)


def test_csv_features_drop_a_label_column(tmp_path):
    pre = preprocessing.Preprocessing(kind="table", input_shape=(3,), dataset="t")
    path = tmp_path / "rows.csv"
    path.write_text("a,label,b,c\n1,0,2,3\n4,1,5,6\n")
    inputs = preprocessing.read_inputs([path], pre)
    np.testing.assert_array_equal(inputs.x, [[1, 2, 3], [4, 5, 6]])
    assert inputs.names == [f"{path}:2", f"{path}:3"]


# ------------------------------------------------------------------------- export


def onnx_outputs(path, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


@pytest.mark.parametrize("format, name", [("tf_saved_model", "sm"), ("onnx", "m.onnx"), ("litert", "m.tflite")])
def test_export_gives_keras_predictions_in_its_runtime(recipes_main, runs, tmp_path, format, name):
    out = tmp_path / name
    done = recipes_main("export", runs["mlp"], "--format", format, "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "largest difference from Keras" in done.stdout
    run = load_run(runs["mlp"])
    x = run.preprocessing.transform(DIGITS["x_test"][:50])
    expected = run.model.predict(x, verbose=0)
    for batch in (x[:1], x):  # any batch size
        got = export.run_exported(format, out, batch)[0]
        np.testing.assert_allclose(got, expected[: len(batch)], atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporaries left


@pytest.mark.parametrize("format", ["tf_saved_model", "onnx"])
@pytest.mark.parametrize("name", ["alexnet", "vgg16", "lstm", "binary"])
def test_every_classifier_recipe_exports_what_keras_computes(recipes_main, runs, tmp_path, name, format):
    """SavedModel and ONNX of each classifier recipe, read back here in their own runtime:
    the float32 Keras model's outputs (a bf16-trained VGG16 exports in float32)."""
    out = tmp_path / ("m.onnx" if format == "onnx" else "sm")
    done = recipes_main("export", runs[name], "--format", format, "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    run = load_run(runs[name])
    raw = np.load(runs["binary"].parent / "binary.npz")["x_test"] if name == "binary" else DIGITS["x_test"][:20]
    x = run.preprocessing.transform(raw)
    expected = export.as_float32(run.model).predict(x, verbose=0)
    got = export.run_exported(format, out, x)[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_export_with_preprocessing_takes_raw_images_of_any_size(recipes_main, runs, tmp_path):
    out = tmp_path / "vgg_sm"
    done = recipes_main("export", runs["vgg16"], "--format", "tf_saved_model", "--out", out, "--include-preprocessing")
    assert done.returncode == 0, done.stderr[-3000:]
    run = load_run(runs["vgg16"])
    float32 = export.as_float32(run.model)  # exports compute in float32; the run may train in bfloat16
    rng = np.random.default_rng(1)
    served = tf.saved_model.load(str(out))
    for size in ((8, 8), (40, 23)):
        raw = rng.integers(0, 256, size=(5, *size, 1), dtype=np.uint8)
        got = served.serve(tf.constant(raw)).numpy()
        x = tf.image.resize(raw.astype(np.float32), (32, 32)).numpy() / 255.0  # as training resizes and scales
        np.testing.assert_allclose(got, float32.predict(x, verbose=0), atol=1e-5)
        if all(layer.dtype_policy.name == "float32" for layer in run.model.layers):
            np.testing.assert_allclose(got, run.predict(raw, raw_max=255), atol=1e-5)


def test_export_of_generative_runs(recipes_main, runs, tmp_path):
    done = recipes_main("export", runs["dcgan"], "--format", "onnx", "--out", tmp_path / "gan.onnx")
    assert done.returncode == 0, done.stderr[-3000:]
    gan = keras.models.load_model(runs["dcgan"] / "best.keras")
    z = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    np.testing.assert_allclose(
        onnx_outputs(tmp_path / "gan.onnx", z)[0], gan.generator.predict(z, verbose=0), atol=1e-5
    )
    done = recipes_main("export", runs["vae"], "--format", "onnx", "--out", tmp_path / "vae.onnx")
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gan.onnx", "vae-decoder.onnx", "vae-encoder.onnx"]
    vae = keras.models.load_model(runs["vae"] / "best.keras")
    x = DIGITS["x_test"][:6, :, :, None].astype(np.float32) / 16
    z_mean, z_log_var, _ = vae.encoder.predict(x, verbose=0)
    got_mean, got_log_var = onnx_outputs(tmp_path / "vae-encoder.onnx", x)
    np.testing.assert_allclose(got_mean, z_mean, atol=1e-5)
    np.testing.assert_allclose(got_log_var, z_log_var, atol=1e-5)
    np.testing.assert_allclose(
        onnx_outputs(tmp_path / "vae-decoder.onnx", z_mean)[0], vae.decoder.predict(z_mean, verbose=0), atol=1e-5
    )


def test_export_refusals_are_one_line_and_touch_nothing(recipes_main, runs, tmp_path):
    existing = tmp_path / "model.onnx"
    existing.write_bytes(b"mine")
    cases = [
        (
            [runs["mlp"], "--format", "onnx", "--out", existing],
            f"recipes export: error: --out '{existing}' exists; export never overwrites: choose a new path or "
            f"remove it. Received: out='{existing}'",
        ),
        (
            [runs["mlp"], "--format", "onnx", "--out", tmp_path / "m.tflite"],
            "recipes export: error: --out must end in .onnx for format='onnx'. "
            f"Received: out='{tmp_path / 'm.tflite'}'",
        ),
        (
            [runs["mlp"], "--format", "torchscript", "--out", tmp_path / "m.pt"],
            "recipes export: error: format must be one of tf_saved_model, onnx, litert, openvino. "
            "Received: format='torchscript'",
        ),
        (
            [runs["dcgan"], "--format", "onnx", "--out", tmp_path / "g.onnx", "--include-preprocessing"],
            "recipes export: error: --include-preprocessing does not apply to a dcgan run: its generator takes "
            "latent vectors, not images. Received: include_preprocessing=True",
        ),
        (
            [runs["mlp"], "--format", "onnx", "--out", tmp_path / "t.onnx", "--tolerance", "-1"],
            "recipes export: error: tolerance must be a positive number. Received: tolerance=-1.0",
        ),
    ]
    for args, line in cases:
        done = recipes_main("export", *args)
        assert done.returncode == 2, done.stderr
        assert stderr_line(done) == line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"] and existing.read_bytes() == b"mine"


def test_export_over_tolerance_fails_and_leaves_nothing(runs, tmp_path):
    with pytest.raises(export.ExportError, match=r"differs from Keras by .* over the tolerance 1e-12"):
        export.export_run(runs["vgg16"], "onnx", tmp_path / "m.onnx", tolerance=1e-12, log=lambda line: None)
    assert list(tmp_path.iterdir()) == []


def test_missing_export_packages_name_the_extra(runs, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    with pytest.raises(ConfigError) as raised:
        export.export_run(runs["mlp"], "onnx", tmp_path / "m.onnx")
    assert str(raised.value) == (
        "format='onnx' needs tf2onnx, not installed: pip install -e \".[export]\". Received: format='onnx'"
    )
