"""The recipes on TensorFlow, JAX and PyTorch: the backend setting, the plan per backend, runs and files.

Keras fixes its backend when it is first imported, so everything on JAX or PyTorch runs in a
subprocess with KERAS_BACKEND set; this process (conftest.py) runs TensorFlow.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from _backend import run_in_backend

from recipes import build_mlp
from recipes import config as config_lib
from recipes.run import backend_for as check_backend

ROOT = pathlib.Path(__file__).resolve().parents[1]


def recipes_cli(*args, backend=None, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    if backend:
        env["KERAS_BACKEND"] = backend
    return subprocess.run(
        [sys.executable, "-m", "recipes.cli", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


# ------------------------------------------------------------------ the setting


def test_backend_setting_is_checked_and_must_match_the_process():
    config = config_lib.resolve("mlp", flags={"backend": "jax"})
    assert config["backend"] == "jax"
    with pytest.raises(config_lib.ConfigError, match=r"^backend must be one of None, tensorflow, jax, torch\. "):
        config_lib.resolve("mlp", sets={"backend": "theano"})
    assert check_backend(config_lib.resolve("mlp")) == "tensorflow"  # None: the process's
    with pytest.raises(
        config_lib.ConfigError,
        match=r"^backend='jax' needs Keras on jax, but this process runs tensorflow: use `recipes train --backend "
        r"jax`, or set KERAS_BACKEND=jax before Python imports keras\.$",
    ):
        check_backend(config)


# ------------------------------------------------------------ the plan per backend


@pytest.mark.process
def test_the_hardware_plan_is_per_backend():
    code = """
        from recipes import hardware
        plan = hardware.configure()
        out = dict(backend=plan.backend, jit=plan.jit_compile, spe=plan.steps_per_execution,
                   strategy=plan.strategy_name, replicas=plan.num_replicas, line=plan.describe())
        errors = {}
        for kwargs in (dict(strategy="mirrored"), dict(steps_per_execution=8)):
            try:
                hardware.configure(**kwargs)
                errors[str(kwargs)] = None
            except ValueError as e:
                errors[str(kwargs)] = str(e)
        out["errors"] = errors
        report(**out)
    """
    torch = run_in_backend("torch", code)
    assert (torch["backend"], torch["jit"], torch["spe"], torch["strategy"]) == ("torch", False, 1, "default")
    assert torch["line"].startswith("backend: torch | devices: CPU:0 (")
    assert torch["errors"]["{'strategy': 'mirrored'}"].startswith(
        "strategy='mirrored' trains on several devices in sync, which Keras 3.15 does not offer on PyTorch"
    )
    assert torch["errors"]["{'steps_per_execution': 8}"] == (
        "steps_per_execution must be 1 with the PyTorch backend (Keras runs one step a call there). "
        "Received: steps_per_execution=8"
    )

    jax = run_in_backend("jax", code, env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert (jax["backend"], jax["jit"], jax["strategy"], jax["replicas"]) == ("jax", True, "default", 1)
    assert "2 logical devices" in jax["line"]
    assert jax["errors"]["{'strategy': 'mirrored'}"] is None  # DataParallel over the 2 CPU devices
    mirrored = run_in_backend(
        "jax",
        """
        from recipes import hardware
        plan = hardware.configure(strategy="mirrored")
        report(plan=[plan.strategy_name, plan.num_replicas, plan.reasons[0]])
        """,
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    assert mirrored["plan"] == [
        "data_parallel",
        2,
        "strategy data_parallel: keras.distribution.DataParallel over 2 CPU devices",
    ]


# --------------------------------------------------------------- the command


@pytest.mark.process
def test_recipes_train_on_jax_and_torch_records_the_backend_and_refuses_another_on_resume(tmp_path):
    for backend in ("jax", "torch"):
        run = tmp_path / backend
        done = recipes_cli("train", "mlp", "--backend", backend, "--epochs", "2", "--run-dir", run, "--quiet")
        assert done.returncode == 0, done.stderr[-3000:]
        assert config_lib.load_yaml(run / "config.yaml")["backend"] == backend
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["accuracy"] > 0.5, metrics
        # evaluate picks the run's own backend, with no flag and another KERAS_BACKEND
        evaluated = recipes_cli("evaluate", run, backend="tensorflow")
        assert evaluated.returncode == 0, evaluated.stderr[-3000:]
        assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(metrics["accuracy"])

    run = tmp_path / "jax"
    (run / "metrics.json").unlink()  # unfinished again: a resume point exists (last.keras)
    before = (run / "config.yaml").read_bytes()
    refused = recipes_cli("train", "--resume", run, "--backend", "torch")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"recipes train: error: Run {str(run)!r} trained on jax; a run resumes on its own backend (its checkpoints "
        f"and random streams are that backend's): `recipes train --resume {run}` uses it. Received: backend='torch'"
    ]
    assert (run / "config.yaml").read_bytes() == before and not (run / "metrics.json").exists()


# ---------------------------------------------------------- models on each backend


@pytest.mark.process
def test_a_classifier_file_loads_on_every_backend_with_the_same_predictions(tmp_path):
    x = np.random.default_rng(0).random((16, 12), dtype=np.float32)
    model = build_mlp(input_shape=(12,), num_classes=3, hidden_units=(8,))
    model.fit(x, np.arange(16) % 3, epochs=1, verbose=0)
    model.save(tmp_path / "tensorflow.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "tensorflow.npy", model.predict(x, verbose=0))
    # TensorFlow -> JAX -> PyTorch: each loads the file the backend before it wrote
    for source, backend in (("tensorflow", "jax"), ("jax", "torch")):
        result = run_in_backend(
            backend,
            f"""
            model = keras.saving.load_model({str(tmp_path / (source + ".keras"))!r})
            x, expected = np.load({str(tmp_path / "x.npy")!r}), np.load({str(tmp_path / (source + ".npy"))!r})
            predicted = np.asarray(model.predict(x, verbose=0))
            np.save({str(tmp_path / (backend + ".npy"))!r}, predicted)
            model.save({str(tmp_path / (backend + ".keras"))!r})
            report(difference=float(np.abs(predicted - expected).max()))
            """,
        )
        assert result["difference"] < 1e-5, (source, backend, result)


@pytest.mark.process
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_vae_and_lstm_train_evaluate_save_and_load(backend):
    result = run_in_backend(
        backend,
        """
        import os, tempfile
        from recipes import build_lstm, build_vae
        out, tmp = {}, tempfile.mkdtemp()
        x = np.random.default_rng(0).random((32, 8, 8, 1)).astype("float32")
        vae = build_vae(input_shape=(8, 8, 1), seed=0, free_bits=0.0)
        history = vae.fit(x, validation_data=x[:8], epochs=3, batch_size=8, verbose=0).history
        out["vae_loss"] = [history["loss"][0], history["loss"][-1]]
        out["vae_eval"] = sorted(vae.evaluate(x, verbose=0, return_dict=True))
        vae.save(os.path.join(tmp, "vae.keras"))
        z = np.zeros((2, 2), "float32")
        loaded = keras.saving.load_model(os.path.join(tmp, "vae.keras"))
        out["vae_same"] = float(np.abs(loaded.decode(z) - vae.decode(z)).max())
        # masked, bidirectional and unrolled: the configuration Keras's PyTorch RNN crashes on
        tokens = np.random.default_rng(1).integers(1, 50, (32, 8))
        tokens[:, 5:] = 0
        lstm = build_lstm(vocab_size=50, input_shape=(8,), units=(4, 4), embedding_dim=4, unroll=True)
        lstm.fit(tokens, np.arange(32) % 2, epochs=1, batch_size=8, verbose=0)
        lstm.save(os.path.join(tmp, "lstm.keras"))
        again = keras.saving.load_model(os.path.join(tmp, "lstm.keras"))
        out["lstm_same"] = float(np.abs(again.predict(tokens, verbose=0) - lstm.predict(tokens, verbose=0)).max())
        report(**out)
        """,
    )
    first, last = result["vae_loss"]
    assert np.isfinite([first, last]).all() and last < first
    assert result["vae_eval"] == ["kl_loss", "loss", "reconstruction_loss"]
    assert result["vae_same"] < 1e-6 and result["lstm_same"] < 1e-6


@pytest.mark.process
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_recipe_builds_trains_evaluates_saves_and_loads(backend):
    # the tiny configurations of test_models.py, on the other backends
    result = run_in_backend(
        backend,
        """
        import os, sys, tempfile
        sys.path.insert(0, os.path.join(os.environ["PYTHONPATH"].split(os.pathsep)[0], "tests"))
        from test_models import CASES, _output
        from recipes import get_model, list_models
        tmp, out = tempfile.mkdtemp(), {}
        for name in list_models():
            kwargs, data, _ = CASES[name]
            x, y = data()
            labels = () if name in ("dcgan", "vae") else (y,)
            model = get_model(name, **kwargs)
            history = model.fit(x, *labels, epochs=2, batch_size=8, verbose=0).history
            losses = [v for k, vs in history.items() if "loss" in k for v in vs]
            evaluated = model.evaluate(x, *labels, verbose=0, return_dict=True)
            path = os.path.join(tmp, name + ".keras")
            model.save(path)
            loaded = keras.saving.load_model(path)
            same = float(np.abs(np.asarray(_output(name, loaded, x)) - np.asarray(_output(name, model, x))).max())
            out[name] = dict(finite=bool(np.isfinite(losses).all()), evaluated=sorted(evaluated), same=same)
        report(**out)
        """,
    )
    assert sorted(result) == ["alexnet", "dcgan", "lstm", "mlp", "vae", "vgg16"]
    for name, checks in result.items():
        assert checks["finite"] and checks["evaluated"] and checks["same"] < 1e-5, (name, checks)
