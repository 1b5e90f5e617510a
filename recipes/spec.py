"""What a recipe is: its `ModelSpec`, and `register_model`, the decorator that records one beside its builder.

A leaf: the model families import it to register themselves, and `recipes.registry`
looks the recipes up (after loading the families).
"""

from __future__ import annotations

import dataclasses
import types
from typing import Callable

# The forms of data a recipe can train on, as `load_dataset` gives them, with how they read.
DATA_FORMS = {
    "image": "images",
    "table": "tables of features",
    "sequence": "real-valued sequences",
    "tokens": "token ids",
    "text": "texts",
}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything about one recipe, kept beside its builder (as timm keeps `default_cfgs`).

    Attributes:
        name: registry name, e.g. `"vgg16"`.
        builder: the `build_*` function; its input argument is `input_shape`.
        description: one line, shown by `recipes list`.
        task: `"classification"` (trains on labels) or `"generation"` (images alone).
        inputs: `"image"`, `"sequence"` or `"any"`: what the builder's input is.
        data: the forms of data the command trains it on, from `DATA_FORMS`.
        defaults: its training settings over `config.DEFAULTS` (and `model_args`,
            builder arguments), chosen for small data.
        reasons: for each default chosen by measurement, the one-line measured reason,
            keyed like `defaults` (a `model_args` entry by its own name); shown by
            `recipes train --help`.
        data_defaults: per form of data (a key of `DATA_FORMS`), settings over `defaults`
            when the run's data is of that form (the LSTM's for texts differ from its
            defaults for image rows); `--config`, flags and `--set` still override them.
        data_reasons: per form of data, the measured reasons of `data_defaults`.
        value_range: the range images are scaled to for it.
        image_side: images smaller than this (either side) are enlarged to it by
            the command; `None` leaves them as they are.
        images_as_rows: the command reads images as sequences of rows (the LSTM).
    """

    name: str
    builder: Callable
    description: str
    task: str
    inputs: str
    data: tuple = ("image",)
    defaults: types.MappingProxyType = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))
    reasons: types.MappingProxyType = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))
    data_defaults: types.MappingProxyType = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))
    data_reasons: types.MappingProxyType = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))
    value_range: tuple = (0.0, 1.0)
    image_side: int | None = None
    images_as_rows: bool = False

    @property
    def uses_labels(self) -> bool:
        return self.task == "classification"

    def defaults_for(self, form: str | None) -> dict:
        """The recipe's defaults for data of `form` (`None`: unknown): `defaults` with that form's
        `data_defaults` over them (`model_args` merged key by key)."""
        merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.defaults.items()}
        for key, value in self.data_defaults.get(form, {}).items():
            if key == "model_args":
                merged["model_args"] = {**merged.get("model_args", {}), **value}
            else:
                merged[key] = value
        return merged


_REGISTRY: dict[str, ModelSpec] = {}
_TASKS = ("classification", "generation")
_INPUTS = ("image", "sequence", "any")


def register_model(
    name: str,
    *,
    description: str,
    task: str,
    inputs: str,
    data=("image",),
    defaults=None,
    reasons=None,
    data_defaults=None,
    data_reasons=None,
    value_range=(0.0, 1.0),
    image_side=None,
    images_as_rows=False,
):
    """Decorator that registers a `build_*` function under `name`, with its facts (see `ModelSpec`)."""
    if task not in _TASKS:
        raise ValueError(f"task must be one of {_TASKS}. Received: task={task!r}")
    if inputs not in _INPUTS:
        raise ValueError(f"inputs must be one of {_INPUTS}. Received: inputs={inputs!r}")
    unknown = [form for form in data if form not in DATA_FORMS]
    if unknown or not data:
        raise ValueError(f"data must name forms from {tuple(DATA_FORMS)}. Received: data={data!r}")

    defaults = dict(defaults or {})
    reasons = dict(reasons or {})
    settable = set(defaults) | set(defaults.get("model_args", {}))
    unexplained = [k for k, v in reasons.items() if k not in settable or not isinstance(v, str) or "\n" in v]
    if unexplained:
        raise ValueError(f"reasons must explain settings of defaults, one line each. Received: {unexplained!r}")
    data_defaults = {form: dict(values) for form, values in (data_defaults or {}).items()}
    data_reasons = {form: dict(values) for form, values in (data_reasons or {}).items()}
    for form, values in data_reasons.items():
        settable = set(data_defaults.get(form, {})) | set(data_defaults.get(form, {}).get("model_args", {}))
        unexplained = [k for k, v in values.items() if k not in settable or not isinstance(v, str) or "\n" in v]
        if form not in data or unexplained:
            raise ValueError(
                f"data_reasons must explain settings of data_defaults[{form!r}], one line each. "
                f"Received: {unexplained or form!r}"
            )
    if any(form not in data for form in data_defaults):
        raise ValueError(f"data_defaults must be keyed by forms of data. Received: {list(data_defaults)!r}")

    def decorator(builder):
        if name in _REGISTRY:
            raise ValueError(f"A model named {name!r} is already registered.")
        _REGISTRY[name] = ModelSpec(
            name,
            builder,
            description,
            task,
            inputs,
            data=tuple(data),
            defaults=types.MappingProxyType(defaults),
            reasons=types.MappingProxyType(reasons),
            data_defaults=types.MappingProxyType(data_defaults),
            data_reasons=types.MappingProxyType(data_reasons),
            value_range=tuple(value_range),
            image_side=image_side,
            images_as_rows=images_as_rows,
        )
        return builder

    return decorator
