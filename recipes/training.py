"""Training runs: the data matched to the model, one directory per run, train / evaluate / sample.

A run directory holds everything about one run:

    config.yaml     the resolved configuration (reproduces the run)
    logs/           TensorBoard event files (`tensorboard --logdir runs`)
    backup/         the resume point while the run is unfinished (removed at the end)
    best.keras      the best model so far, last.keras the latest
    history.csv     one row per epoch
    metrics.json    the test metrics, written when the run finishes
    plots/          training curves, and a confusion matrix or sample grids
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import inspect
import io
import json
import os
import pathlib

import numpy as np

from recipes import config as config_lib
from recipes._atomic import atomic_write_text
from recipes.config import ConfigError
from recipes.registry import get_spec

RUNS_ROOT = pathlib.Path("runs")

# Smallest image side each architecture accepts; smaller data is resized up to it.
MIN_IMAGE_SIDE = {"alexnet": 32, "vgg16": 32, "dcgan": 28}


class TrainingError(RuntimeError):
    """Training started but could not finish (for example the loss became NaN)."""


@contextlib.contextmanager
def user_errors():
    """Turns the loaders' and builders' `ValueError`/`TypeError`/`OSError` into `ConfigError`.

    Used around the steps that only fail on what the user gave, so the command can
    answer in one line; errors raised while training keep their traceback.
    """
    try:
        yield
    except ConfigError:
        raise
    except (ValueError, TypeError, OSError) as e:
        raise ConfigError(str(e).strip().splitlines()[0] if str(e).strip() else repr(e)) from None


# ---------------------------------------------------------------------------- data

def load_data(config: dict):
    """Loads the run's dataset in the form its model needs: `(train, val, test, info)`."""
    from recipes.datasets import load_dataset  # TensorFlow is imported lazily

    spec = get_spec(config["model"])
    kwargs = dict(batch_size=config["batch_size"], validation_split=config["validation_split"],
                  seed=config["seed"], return_test="auto",
                  labels=spec.task == "classification",
                  value_range=(-1.0, 1.0) if config["model"] == "dcgan" else (0.0, 1.0),
                  sequence_length=config["sequence_length"], vocab_size=config["vocab_size"])
    image_size = tuple(config["image_size"]) if config["image_size"] else None
    data = load_dataset(config["dataset"], image_size=image_size, **kwargs)
    info = data[-1]
    check_compatible(config["model"], info)
    if info.kind == "image":
        side = MIN_IMAGE_SIDE.get(config["model"], 1)
        if image_size is None and min(info.input_shape[:2]) < side:
            data = load_dataset(config["dataset"], image_size=(side, side), **kwargs)
        elif config["model"] == "lstm":
            data = load_dataset(config["dataset"], image_size=image_size, as_sequence=True, **kwargs)
    return data


def check_compatible(model: str, info) -> None:
    """Raises `ConfigError` before anything trains if `model` cannot take this data."""
    needs = get_spec(model).inputs
    if needs == "image" and info.kind != "image":
        raise ConfigError(f"Model {model!r} needs image data, but dataset {info.name!r} holds "
                          f"{info.kind} data of shape {tuple(info.input_shape)}.")
    if needs == "sequence" and info.kind not in ("sequence", "image"):
        raise ConfigError(f"Model {model!r} needs sequences (or images read row by row), but dataset "
                          f"{info.name!r} holds {info.kind} data.")
    if model == "mlp" and info.kind == "sequence" and info.vocab_size:
        raise ConfigError(f"Model 'mlp' takes real-valued features, but dataset {info.name!r} holds "
                          f"token ids (vocab_size={info.vocab_size}); use 'lstm'.")


# --------------------------------------------------------------------------- model

def builder_kwargs(config: dict, info) -> dict:
    """The keyword arguments `build_model` passes to the recipe's builder for this data."""
    spec = get_spec(config["model"])
    params = inspect.signature(spec.builder).parameters
    kwargs = dict(config["model_args"])
    shape = tuple(info.input_shape)
    kwargs["image_shape" if "image_shape" in params else "input_shape"] = shape
    if "vocab_size" in params:  # token ids get an Embedding; real-valued sequences none
        kwargs["vocab_size"] = info.vocab_size
    if "num_classes" in params:
        kwargs["num_classes"] = info.num_classes
    for key in ("learning_rate", "optimizer"):
        if config[key] is not None:
            if key not in params:
                raise ConfigError(f"Model {config['model']!r} does not take {key}. "
                                  f"Received: {key}={config[key]!r}")
            kwargs[key] = config[key]
    return kwargs


def build_model(config: dict, info, plan):
    """Builds and compiles the recipe for this data, inside the plan's distribution scope."""
    kwargs = builder_kwargs(config, info)
    with plan.strategy.scope():
        model = get_spec(config["model"]).builder(**kwargs)
    model.jit_compile = plan.jit_compile
    model.steps_per_execution = plan.steps_per_execution
    return model


# ---------------------------------------------------------------------- run dirs

def default_run_dir(config: dict, root=RUNS_ROOT) -> pathlib.Path:
    dataset = pathlib.Path(config["dataset"]).stem or "data"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return pathlib.Path(root) / f"{config['model']}-{dataset}-{stamp}"


def run_state(run_dir) -> str:
    """`"new"`, `"unfinished"` (resumable) or `"finished"`."""
    run_dir = pathlib.Path(run_dir)
    if (run_dir / "metrics.json").exists():
        return "finished"
    if (run_dir / "config.yaml").exists():
        return "unfinished"
    return "new"


def find_unfinished(config: dict, root=RUNS_ROOT):
    """The newest unfinished run under `root` with exactly this configuration, or `None`."""
    dataset = pathlib.Path(config["dataset"]).stem or "data"
    candidates = sorted(pathlib.Path(root).glob(f"{config['model']}-{dataset}-*"), reverse=True)
    for run_dir in candidates:
        if run_state(run_dir) == "unfinished" and read_config(run_dir) == _comparable(config):
            return run_dir
    return None


def read_config(run_dir) -> dict:
    return config_lib.load_yaml(pathlib.Path(run_dir) / "config.yaml")


def _comparable(config):
    """The configuration as it reads back from config.yaml."""
    import yaml
    return yaml.safe_load(yaml.safe_dump({k: config[k] for k in config_lib.DEFAULTS}, sort_keys=False))


def trim_history(run_dir) -> None:
    """Drops rows of epochs after the resume point, so a resumed history has no repeats."""
    meta = pathlib.Path(run_dir) / "backup" / "training_metadata.json"
    history = pathlib.Path(run_dir) / "history.csv"
    if not history.exists():
        return
    done = json.loads(meta.read_text())["epoch"] if meta.exists() else 0
    with history.open(newline="") as f:
        rows = list(csv.reader(f))
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) < done] if rows else []
    if len(kept) != len(rows):
        out = io.StringIO()
        csv.writer(out).writerows(kept)
        atomic_write_text(history, out.getvalue())


# -------------------------------------------------------------------------- train

def prepare(config: dict, *, log=print):
    """Seeds, plans the hardware, loads the data and builds the model, as `train` does.

    Returns `(plan, (train, val, test, info), model)`: the model is compiled with the
    plan's automatic settings and ready for `model.fit(train, validation_data=val)`.

    Raises:
        ConfigError: for invalid settings or data the model cannot take.
    """
    import keras
    import tensorflow as tf

    from recipes import hardware

    keras.utils.set_random_seed(config["seed"])
    tf.config.experimental.enable_op_determinism()
    with user_errors():
        plan = hardware.configure(strategy=config["strategy"], precision=config["precision"],
                                  jit=config["jit"], steps_per_execution=config["steps_per_execution"],
                                  recipe=config["model"])
        log(plan.describe())
        data = load_data(config)
        model = build_model(config, data[-1], plan)
    return plan, data, model


def train(config: dict, run_dir=None, *, verbose: int = 1, log=print):
    """Trains a run to the end and returns `(run_dir, metrics)`.

    Everything that can fail on bad input (configuration, data, model) is checked
    before the run directory is made. A run directory that holds an unfinished run
    with the same configuration is resumed from its last completed epoch.

    Raises:
        ConfigError: for invalid settings, data the model cannot take, or a run
            directory that holds another run.
        TrainingError: if the loss became NaN.
    """
    from recipes.callbacks import default_callbacks

    plan, (train_ds, val_ds, test_ds, info), model = prepare(config, log=log)

    if run_dir is None:
        run_dir = find_unfinished(config) or default_run_dir(config)
    run_dir = pathlib.Path(run_dir)
    state = run_state(run_dir)
    if state == "finished":
        raise ConfigError(f"Run directory {str(run_dir)!r} holds a finished run; "
                          f"choose another --run-dir.")
    if state == "unfinished":
        if read_config(run_dir) != _comparable(config):
            raise ConfigError(f"Run directory {str(run_dir)!r} holds an unfinished run with another "
                              f"configuration; resume it with `recipes train --resume {run_dir}`.")
        trim_history(run_dir)
        log(f"Resuming {run_dir}")
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        config_lib.dump(config, run_dir / "config.yaml")
        log(f"Run directory: {run_dir}")

    callbacks = default_callbacks(
        run_dir, validation_data=val_ds, class_names=info.class_names, epochs=config["epochs"],
        early_stopping_patience=config["early_stopping"], lr_schedule=config["lr_schedule"])
    history = model.fit(train_ds, validation_data=val_ds, epochs=config["epochs"],
                        callbacks=callbacks, verbose=verbose, shuffle=False)
    losses = [v for k, vs in history.history.items() if "loss" in k for v in vs]
    if any(not np.isfinite(v) for v in losses):
        raise TrainingError(f"The loss became NaN; training stopped. The last good checkpoint is "
                            f"{run_dir / 'best.keras'}.")
    split, data = held_out(test_ds, val_ds, train_ds)
    metrics = {**evaluate_model(model_path(run_dir, model), data, verbose=0), "split": split}
    write_json(run_dir / "metrics.json", metrics)
    return run_dir, metrics


def held_out(test_ds, val_ds, train_ds):
    """The split the final metrics are measured on: test, else validation, else train."""
    for split, data in (("test", test_ds), ("validation", val_ds), ("train", train_ds)):
        if data is not None:
            return split, data


def model_path(run_dir, fallback=None):
    """The run's best model file, else its last one; `fallback` (a model) if neither exists."""
    for name in ("best.keras", "last.keras"):
        path = pathlib.Path(run_dir) / name
        if path.exists():
            return path
    if fallback is not None:
        return fallback
    raise ConfigError(f"Run directory {str(run_dir)!r} has no best.keras or last.keras.")


def evaluate_model(model_or_path, test_ds, verbose=0) -> dict:
    """Test metrics as plain floats; the VAE's loss is reported as `negative_elbo` too."""
    import keras
    model = keras.models.load_model(model_or_path) if isinstance(model_or_path, os.PathLike) \
        else model_or_path
    results = model.evaluate(test_ds, return_dict=True, verbose=verbose)
    metrics = {k: float(v) for k, v in results.items()}
    if hasattr(model, "encode") and "loss" in metrics:
        metrics["negative_elbo"] = metrics["loss"]
    return metrics


def write_json(path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------- evaluate/sample

def open_run(run_dir) -> dict:
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory (no config.yaml).")
    config = read_config(run_dir)
    try:
        return config_lib.resolve(config.get("model"), file=config)
    except ConfigError as e:
        raise ConfigError(f"{run_dir / 'config.yaml'}: {e}") from None


def evaluate(run_dir, *, verbose: int = 0) -> dict:
    """Metrics of a run's best (else last) model on its held-out split (see `held_out`)."""
    config = open_run(run_dir)
    path = model_path(run_dir)
    with user_errors():
        train_ds, val_ds, test_ds, _ = load_data(config)
    split, data = held_out(test_ds, val_ds, train_ds)
    return {**evaluate_model(path, data, verbose=verbose), "split": split}


def sample(run_dir, *, n: int = 64, out=None, seed: int = 0) -> pathlib.Path:
    """Writes a grid of `n` images generated by a DCGAN or VAE run to `out` (PNG)."""
    import keras

    from recipes.plots import save_image_grid

    config = open_run(run_dir)
    if get_spec(config["model"]).task != "generation":
        raise ConfigError(f"Run {str(run_dir)!r} trained {config['model']!r}, a classifier; "
                          f"sample needs a dcgan or vae run.")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be a positive integer. Received: n={n!r}")
    model = keras.models.load_model(model_path(run_dir))
    images = model.generate(n, seed=seed)
    out = pathlib.Path(out or pathlib.Path(run_dir) / "plots" / "samples.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image_grid(images, out, value_range=model.value_range)
    return out
