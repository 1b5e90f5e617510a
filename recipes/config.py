"""Run configuration: the defaults, per-recipe defaults, YAML files and `--set` overrides.

A configuration is one flat dict of training settings plus `model_args`, the keyword
arguments of the recipe's `build_*` function. It is resolved in this order, each layer
over the one before: `DEFAULTS`, the recipe's own defaults (`ModelSpec.defaults`, kept
with its registration), a YAML file, command-line flags, `--set key=value`. The resolved
dict is written to `config.yaml` in the run directory, and is everything needed to
reproduce the run.
"""

from __future__ import annotations

import inspect
import pathlib
import re

import yaml

from recipes._checks import BACKENDS, PRECISIONS, SCHEDULES, STRATEGIES, is_int, is_real, parse_bytes
from recipes.errors import ConfigError
from recipes.registry import get_spec

DEFAULTS = {
    "model": None,
    "dataset": "digits",  # the bundled UCI digits: offline, trains in seconds
    "epochs": 10,
    "batch_size": 64,  # or "auto": from the training examples (recipes.datasets.auto_batch_size)
    "learning_rate": None,  # None: the recipe's own default
    "optimizer": None,  # None: the recipe's own default
    "validation_split": 0.1,
    "seed": 0,
    "image_size": None,  # None: the data's size, enlarged to what the recipe needs
    # decoded images kept in memory when they fit (bytes, or 512MiB, 2GiB; 0: none); see load_dataset
    "cache_budget": "2GiB",
    "cache": None,  # a folder for decoded images that do not fit the budget; None: decode every epoch
    "sequence_length": None,  # token datasets: pad/truncate length (None: the loader's)
    "vocab_size": None,  # token datasets: keep the most frequent words
    # texts: the CSV/TSV column (a name, or a number from 1) or JSON Lines key; None: found by name or content
    "text_column": None,
    "label_column": None,
    "early_stopping": None,  # patience in epochs, or None
    # what picks best.keras and stops early: "auto" (val_loss, else loss) or a logged metric, e.g. val_accuracy
    "monitor": "auto",
    "lr_schedule": None,  # None, "plateau" or "cosine"
    "strategy": "auto",  # see recipes.hardware.configure
    "precision": "auto",
    "jit": "auto",
    "steps_per_execution": "auto",
    "judge": None,  # generative recipes: a finished classifier run that scores samples; None trains one
    "backend": None,  # Keras's backend; None: the process's ($KERAS_BACKEND); config.yaml records the one used
    "model_args": {},
}

# Settings `--resume` may change: they do not change what the model or its data are.
RESUME_SETTINGS = ("epochs", "learning_rate", "early_stopping", "cache_budget", "cache")

_CHOICES = {
    "lr_schedule": (None, *SCHEDULES),
    "strategy": STRATEGIES,
    "precision": PRECISIONS,
    "jit": ("auto", True, False),
    "backend": (None, *BACKENDS),
}


class _Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` that reads `3e-4` and `1E5` as numbers, as YAML 1.2 and Python do
    (PyYAML follows YAML 1.1, where a float needs a dot: `3e-4` would be a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def read_yaml(text: str):
    """Parses YAML text with numbers in scientific notation read as floats."""
    return yaml.load(text, Loader=_Loader)


def load_yaml(path) -> dict:
    """Reads a YAML mapping; any problem is a `ConfigError` naming the file."""
    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"Cannot read config file {str(path)!r}: {e.strerror or e}") from None
    try:
        data = read_yaml(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise ConfigError(f"Config file {str(path)!r} is not valid YAML{line}.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {str(path)!r} must hold a mapping of settings. Received: {type(data).__name__}")
    return data


def parse_sets(items) -> dict:
    """Parses `--set key=value` items; values are read as YAML (`3e-4`, `[64, 64]`, `true`)."""
    result = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value. Received: {item!r}")
        try:
            result[key.strip()] = read_yaml(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set value for {key.strip()!r} is not valid. Received: {value!r}") from None
    return result


def builder_params(model: str) -> set[str]:
    """Names of the keyword arguments that the recipe's builder accepts."""
    return set(inspect.signature(get_spec(model).builder).parameters)


def resolve(model: str, *, file=None, flags=None, sets=None) -> dict:
    """Returns the validated configuration of a run of `model`.

    Args:
        model: a registered recipe name.
        file: a dict read from a YAML config file, or `None`.
        flags: settings from command-line flags (`None` values are ignored).
        sets: settings from `--set key=value`; a key that is no training setting
            goes to the builder (`model_args`) if the builder accepts it.

    Raises:
        ConfigError: for an unknown model or key, or an invalid value.
    """
    try:
        get_spec(model)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    spec = get_spec(model)
    layers = [file or {}, {k: v for k, v in (flags or {}).items() if v is not None}, sets or {}]
    form = None
    if spec.data_defaults:  # the recipe has defaults for some form of data: which form is the run's?
        dataset = next((layer["dataset"] for layer in reversed(layers) if "dataset" in layer), DEFAULTS["dataset"])
        columns = {k: next((la[k] for la in reversed(layers) if k in la), None) for k in ("text_column",)}
        form = data_form(dataset, **columns)
    config = {**DEFAULTS, "model_args": {}}
    layers = [spec.defaults_for(form), *layers]
    params = builder_params(model)
    for source, layer in zip(("recipe defaults", "config file", "flags", "--set"), layers):
        if "model" in layer and layer["model"] not in (None, model):
            raise ConfigError(f"The config is for model {layer['model']!r}, not {model!r}.")
        for key, value in layer.items():
            if key == "model":
                continue
            if key == "model_args":
                if not isinstance(value, dict):
                    raise ConfigError(f"model_args must be a mapping. Received: model_args={value!r}")
                for k, v in value.items():
                    _set_model_arg(config, params, model, k, v)
            elif key in DEFAULTS:
                config[key] = value
            elif key in params:
                _set_model_arg(config, params, model, key, value)
            else:
                valid = sorted(set(DEFAULTS) - {"model", "model_args"} | params - _DATA_DERIVED)
                raise ConfigError(
                    f"Unknown setting {key!r} (from {source}) for model {model!r}. Valid settings: {', '.join(valid)}"
                )
    config["model"] = model
    validate(config)
    return config


def data_form(dataset, text_column=None) -> str | None:
    """The form of a data set (`"text"`, `"tokens"`, ...) from a first look (a file's first records),
    or `None` when it cannot tell; loading it checks it all."""
    if not isinstance(dataset, str):
        return None
    from recipes.datasets import peek_form  # TensorFlow: the data sets' package

    return peek_form(dataset, text_column=text_column)


# Builder arguments that come from the data; a user who sets them would fight the loader.
_DATA_DERIVED = {"input_shape", "num_classes", "vocab_size", "compile"}


def _set_model_arg(config, params, model, key, value):
    if key not in params or key in _DATA_DERIVED:
        why = "comes from the dataset" if key in _DATA_DERIVED else "is not an argument of its builder"
        raise ConfigError(f"Setting {key!r} {why} for model {model!r}. Received: {key}={value!r}")
    config["model_args"][key] = value


def _positive_int(config, key, allow_none=False):
    value = config[key]
    if value is None and allow_none:
        return
    if not is_int(value) or value < 1:
        raise ConfigError(f"{key} must be a positive integer. Received: {key}={value!r}")


def validate(config: dict) -> None:
    """Checks the training settings of a resolved configuration (the builder checks its own)."""
    _positive_int(config, "epochs")
    if config["batch_size"] != "auto" and (not is_int(config["batch_size"]) or config["batch_size"] < 1):
        raise ConfigError(
            f"batch_size must be a positive integer or 'auto'. Received: batch_size={config['batch_size']!r}"
        )
    for key in ("early_stopping", "sequence_length", "vocab_size"):
        _positive_int(config, key, allow_none=True)
    monitor = config["monitor"]
    if not isinstance(monitor, str) or not monitor.strip():
        raise ConfigError(f"monitor must be 'auto' or the name of a logged metric. Received: monitor={monitor!r}")
    for key in ("text_column", "label_column"):
        value = config[key]
        if value is not None and not (isinstance(value, str) and value or is_int(value) and value >= 1):
            raise ConfigError(f"{key} must be a column name or number (from 1), or null. Received: {key}={value!r}")
    seed = config["seed"]
    if not is_int(seed) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer. Received: seed={seed!r}")
    split = config["validation_split"]
    if not is_real(split) or not 0 <= split < 1:
        raise ConfigError(f"validation_split must be in [0, 1). Received: validation_split={split!r}")
    lr = config["learning_rate"]
    if lr is not None and (not is_real(lr) or lr <= 0):
        raise ConfigError(f"learning_rate must be a positive number. Received: learning_rate={lr!r}")
    for key, choices in _CHOICES.items():
        if config[key] not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}. Received: {key}={config[key]!r}")
    spe = config["steps_per_execution"]
    if spe != "auto" and (not is_int(spe) or spe < 1):
        raise ConfigError(
            f"steps_per_execution must be 'auto' or a positive integer. Received: steps_per_execution={spe!r}"
        )
    size = config["image_size"]
    if size is not None:
        if is_int(size):
            size = config["image_size"] = [size, size]
        if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(is_int(s) and s > 0 for s in size):
            raise ConfigError(
                f"image_size must be two positive integers (height, width). Received: image_size={size!r}"
            )
        config["image_size"] = [int(s) for s in size]
    try:
        parse_bytes("cache_budget", config["cache_budget"])
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None
    if config["cache"] is not None and (not isinstance(config["cache"], str) or not config["cache"]):
        raise ConfigError(f"cache must be a folder path or null. Received: cache={config['cache']!r}")
    if not isinstance(config["dataset"], str) or not config["dataset"]:
        raise ConfigError(f"dataset must be a name or a path. Received: dataset={config['dataset']!r}")
    judge = config["judge"]
    if judge is not None:
        if not isinstance(judge, str) or not judge:
            raise ConfigError(f"judge must be the path of a classifier run. Received: judge={judge!r}")
        if get_spec(config["model"]).task != "generation":
            raise ConfigError(
                f"judge scores the samples of a generative recipe (dcgan, vae), not of {config['model']!r}. "
                f"Received: judge={judge!r}"
            )


def dump(config: dict, path, *, resumes=None) -> None:
    """Writes the configuration as YAML, keys in the order of `DEFAULTS`, atomically
    (a full disk leaves the previous file, never an empty one). `resumes` records the
    settings changed by each `--resume`."""
    from recipes._atomic import atomic_write_text

    ordered = {key: config[key] for key in DEFAULTS}
    if resumes:
        ordered["resumes"] = list(resumes)
    atomic_write_text(path, yaml.safe_dump(ordered, sort_keys=False))
