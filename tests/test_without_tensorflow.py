"""An install without TensorFlow (`keras-recipes[jax]` or `[torch]`): the backend Keras is given, what
trains, and the one-line refusals of what needs TensorFlow or a backend that is absent.

Each test runs Python in a subprocess where the packages named are absent: `sys.modules[name] = None`
makes their import fail as a missing package's does (and `importlib.util.find_spec` too, which is
how recipes looks), so the same tests hold in an install that really lacks them (.ci/run runs this
file in one without TensorFlow).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.process


def _python(code, *, absent=("tensorflow",), env=None, tmp_path=None):
    """Runs `code` in a fresh Python where `absent` cannot be imported; KERAS_BACKEND unset unless
    `env` sets it, and KERAS_HOME a folder without keras.json."""
    prelude = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in absent)
    environ = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    environ["KERAS_HOME"] = str(tmp_path / "keras-home")
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=600,
    )


def _command(*args, **kwargs):
    return _python(f"from recipes.cli import main\nsys.exit(main({list(args)!r}))", **kwargs)


def test_no_backend_at_all_is_one_line_naming_the_extras(tmp_path):
    done = _command("info", absent=("tensorflow", "jax", "torch"), tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "recipes info: error: No Keras backend is installed: "
        "pip install 'keras-recipes[tensorflow]' (or [jax], or [torch])\n"
    )
    # the library says the same where Keras would first be needed
    done = _python("import recipes\nrecipes.build_mlp", absent=("tensorflow", "jax", "torch"), tmp_path=tmp_path)
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith("No Keras backend is installed: pip install 'keras-recipes[tensorflow]' (or [jax], or [torch])")
    )


def test_an_absent_backend_asked_for_is_one_line(tmp_path):
    done = _command("info", "--backend", "tensorflow", tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "recipes info: error: The Keras backend 'tensorflow' (--backend) is not installed: "
        "pip install 'keras-recipes[tensorflow]', or use one that is: jax, torch\n"
    )
    done = _command("info", env={"KERAS_BACKEND": "tensorflow"}, tmp_path=tmp_path)
    assert done.returncode == 2
    assert "(KERAS_BACKEND) is not installed: pip install 'keras-recipes[tensorflow]'" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_keras_json_naming_an_absent_backend_is_passed_over(tmp_path):
    """Keras writes keras.json with TensorFlow the first time it starts: not a user's choice to refuse."""
    home = tmp_path / "keras-home"
    home.mkdir()
    (home / "keras.json").write_text(json.dumps({"backend": "tensorflow", "floatx": "float32"}))
    done = _python("import recipes, keras\nprint(keras.backend.backend())", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "jax"


def test_export_without_tensorflow_is_refused_and_touches_nothing(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: mlp\n")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()}
    done = _command("export", str(run), "--format", "onnx", "--out", str(tmp_path / "out"), tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "recipes export: error: Export writes through TensorFlow (a SavedModel, then ONNX, LiteRT or OpenVINO "
        "from it), which is not installed: pip install 'keras-recipes[export]' (or [tensorflow])\n"
    )
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()} == before
    assert not (tmp_path / "out").exists()


def test_info_says_which_engine_and_writer_and_why(tmp_path):
    done = _command("info", "--backend", "jax", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("backend: jax | devices: CPU:0")
    assert "backends installed: jax, torch" in lines
    assert "data engine: pydataset (TensorFlow is not installed)" in lines
    assert "TensorBoard writer: tensorboardX (TensorFlow is not installed)" in lines


def test_a_recipe_trains_on_jax_with_tensorflow_absent(tmp_path):
    """The library path: KERAS_BACKEND unset, the backend chosen, digits loaded, trained, TensorBoard
    written, and TensorFlow never imported."""
    done = _python(
        f"""
        import os, pathlib
        import recipes, keras
        from recipes import hardware
        from recipes.datasets import load_dataset
        from recipes.callbacks import default_callbacks
        assert keras.backend.backend() == "jax", keras.backend.backend()
        plan = hardware.configure()
        train, val, _, info = load_dataset("digits", batch_size=64)
        assert info.engine == "pydataset", info.engine
        model = recipes.build_mlp(input_shape=info.input_shape, num_classes=info.num_classes)
        run = pathlib.Path({str(tmp_path / "run")!r})
        history = model.fit(train, validation_data=val, epochs=2, verbose=0,
                            callbacks=default_callbacks(str(run), validation_data=val))
        losses = history.history["loss"]
        assert losses[1] < losses[0], losses
        events = sorted(p.relative_to(run).parts[:2] for p in run.rglob("events.out.tfevents.*"))
        assert ("logs", "train") in events and ("logs", "validation") in events, events
        try:
            hardware.split_cpu(2)
        except ImportError as e:
            print("split_cpu:", e)
        print("tensorflow imported:", sys.modules.get("tensorflow") is not None)
        """,
        tmp_path=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tensorflow imported: False" in done.stdout
    assert (
        "split_cpu: split_cpu (TensorFlow's logical CPU devices) needs TensorFlow, which is not installed: "
        "pip install 'keras-recipes[tensorflow]'"
    ) in done.stdout


@pytest.mark.job
def test_a_jax_job_of_two_processes_trains_without_tensorflow(tmp_path):
    """`recipes launch`: each process reads its share of every global batch through the PyDataset
    engine, and none of them imports TensorFlow (a sitecustomize on PYTHONPATH makes it absent in
    every process the launcher starts)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import atexit, os, sys\n"
        "sys.modules['tensorflow'] = None\n"
        "atexit.register(lambda: open(os.path.join(os.environ['NO_TF_MARKS'], str(os.getpid())), 'w')"
        ".write(str(sys.modules.get('tensorflow') is not None)))\n"
    )
    marks = tmp_path / "marks"
    marks.mkdir()
    environ = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    environ.update(
        KERAS_HOME=str(tmp_path / "keras-home"),
        PYTHONPATH=os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]),
        NO_TF_MARKS=str(marks),
    )
    run = tmp_path / "dp"
    done = subprocess.run(
        [sys.executable, "-m", "recipes.cli", "launch", "--num-processes", "2", "--",
         "train", "mlp", "--backend", "jax", "--epochs", "2", "--run-dir", str(run), "--set", "hidden_units=[32]"],
        capture_output=True, text=True, env=environ, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Data engine: pydataset (TensorFlow is not installed)" in done.stdout + done.stderr
    assert [line.split(",", 1)[0] for line in (run / "history.csv").read_text().splitlines()[1:]] == ["1", "2"]
    assert json.loads((run / "metrics.json").read_text())["accuracy"] > 0.5
    # the launcher and its two processes, none of which imported TensorFlow
    imported = [p.read_text() for p in marks.iterdir()]
    assert len(imported) >= 3 and set(imported) == {"False"}, imported


def test_a_folder_of_photos_trains_and_predicts_without_tensorflow(tmp_path):
    """`recipes train vgg16 --dataset photos/` as the issue types it (a shrunk VGG16), then `predict`
    on the files: the PyDataset engine reads the folder (a killed run's exact resume: test_smoke.py)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(3):
        folder = tmp_path / "photos" / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(24):
            pixels = (rng.random((48, 64, 3)) * 60 + c * 80).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
    run = tmp_path / "run"
    code = f"""
        from recipes.cli import main
        args = ["--backend", "jax", "--quiet"]
        assert main(["train", "vgg16", "--dataset", {str(tmp_path / "photos")!r}, "--epochs", "2",
                     "--image-size", "32", "32", "--batch-size", "16", "--run-dir", {str(run)!r},
                     "--set", "filters=[4,8,8,16,16]", "--set", "fc_units=[16]", *args]) == 0
        assert main(["predict", {str(run)!r}, {str(tmp_path / "photos" / "class2")!r},
                     "--out", {str(tmp_path / "p.json")!r}]) == 0
        print("tensorflow imported:", sys.modules.get("tensorflow") is not None)
    """
    done = _python(code, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tensorflow imported: False" in done.stdout
    assert [line.split(",", 1)[0] for line in (run / "history.csv").read_text().splitlines()[1:]] == ["1", "2"]
    rows = json.loads((tmp_path / "p.json").read_text())["predictions"]
    assert len(rows) == 24 and {row["predicted"] for row in rows} <= {"class0", "class1", "class2"}
