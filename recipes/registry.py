"""Name -> recipe: `list_models()`, `get_spec()`, `get_model()`; `register_model()` adds one.

The bundled families (`recipes.models`) register themselves with `recipes.spec` when they
are imported; the lookups here import them on first use, because they import Keras,
which must not load before the command has picked its backend.
"""

from __future__ import annotations

from recipes import spec as _spec
from recipes.spec import DATA_FORMS, ModelSpec, register_model  # noqa: F401  (the registry's public names)


def _load_recipes() -> dict:
    import recipes.models  # noqa: F401  (Keras: each family module registers its builders)

    return _spec._REGISTRY


def list_models() -> list[str]:
    """Returns the names of all registered recipes, sorted."""
    return sorted(_load_recipes())


def get_spec(name: str) -> ModelSpec:
    """Returns the `ModelSpec` of `name`.

    Raises:
        ValueError: if `name` is not a registered recipe; the message lists the valid names.
    """
    try:
        return _load_recipes()[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown model {name!r}. Valid names: {', '.join(list_models())}") from None


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
