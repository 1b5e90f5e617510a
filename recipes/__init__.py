"""Classic deep-learning model recipes for Keras 3 (TensorFlow, JAX or PyTorch).

```python
from recipes import build_vgg16, list_models, get_model, load_dataset, default_callbacks, train
model = build_vgg16(input_shape=(32, 32, 3), num_classes=10)   # compiled
```

The layers, and what each may import, are described once, in docs/design/layout.md.

Everything here is loaded on first use, so `import recipes` itself does not start
TensorFlow (the `recipes` command quiets TensorFlow's start-up notices first).
"""

__version__ = "0.1.0"

from recipes import _optional  # noqa: E402  (imports no Keras)

# Keras picks TensorFlow unless told otherwise; in a JAX or PyTorch install without it, Keras is
# told the installed backend before anything imports it. With no backend at all this is kept,
# and raised (one line naming the extra) by the first attribute that needs Keras, and by the command.
try:
    _optional.choose_backend()
    backend_error = None
except _optional.MissingDependency as e:
    backend_error = e

# name -> module that defines it, imported on first use (and every `build_*` of recipes.models)
_LAZY = {
    **{
        name: "recipes.models"
        for name in ("build_alexnet", "build_dcgan", "build_lstm", "build_mlp", "build_vae", "build_vgg16")
    },  # listed for dir() and `import *`
    "get_model": "recipes.registry",
    "list_models": "recipes.registry",
    "load_dataset": "recipes.datasets",
    "default_callbacks": "recipes.callbacks",
    "train": "recipes.run",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name):
    if name in _LAZY or name.startswith("build_"):
        import importlib

        if backend_error is not None:
            raise backend_error

        models = importlib.import_module("recipes.models")  # registers every recipe
        if name not in _LAZY and name not in models.__all__:
            raise AttributeError(f"module 'recipes' has no attribute {name!r}")
        value = getattr(importlib.import_module(_LAZY.get(name, "recipes.models")), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recipes' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
