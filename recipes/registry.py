"""Name -> builder registry: `list_models()`, `get_model()`, `register_model()`."""

from __future__ import annotations

import dataclasses
from typing import Callable


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one recipe.

    Attributes:
        name: registry name, e.g. `"vgg16"`.
        builder: the `build_*` function.
        description: one line, shown by `recipes list`.
        task: `"classification"` or `"generation"`.
        inputs: `"image"`, `"sequence"` or `"any"`: what data the recipe takes.
    """

    name: str
    builder: Callable
    description: str
    task: str
    inputs: str


_REGISTRY: dict[str, ModelSpec] = {}
_TASKS = ("classification", "generation")
_INPUTS = ("image", "sequence", "any")


def register_model(name: str, *, description: str, task: str, inputs: str):
    """Decorator that registers a `build_*` function under `name`."""
    if task not in _TASKS:
        raise ValueError(f"task must be one of {_TASKS}. Received: task={task!r}")
    if inputs not in _INPUTS:
        raise ValueError(f"inputs must be one of {_INPUTS}. Received: inputs={inputs!r}")

    def decorator(builder):
        if name in _REGISTRY:
            raise ValueError(f"A model named {name!r} is already registered.")
        _REGISTRY[name] = ModelSpec(name, builder, description, task, inputs)
        return builder

    return decorator


def _load_recipes():
    import recipes.models  # noqa: F401  (each family module registers its builders)


def list_models() -> list[str]:
    """Returns the names of all registered recipes, sorted."""
    _load_recipes()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """Returns the `ModelSpec` of `name`.

    Raises:
        ValueError: if `name` is not a registered recipe; the message lists the valid names.
    """
    _load_recipes()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown model {name!r}. Valid names: {', '.join(list_models())}"
        ) from None


def get_model(name: str, **kwargs):
    """Builds the recipe `name`; keyword arguments go to its `build_*` function.

    Example:
    ```python
    model = get_model("alexnet", input_shape=(227, 227, 3), num_classes=1000)
    ```

    Raises:
        ValueError: if `name` is unknown, or an argument is invalid for that builder.
    """
    return get_spec(name).builder(**kwargs)
