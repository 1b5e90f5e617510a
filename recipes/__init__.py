"""Classic deep-learning model recipes for Keras 3 / TensorFlow.

```python
from recipes import build_vgg16, list_models, get_model
model = build_vgg16(input_shape=(32, 32, 3), num_classes=10)   # compiled
```

The builders are loaded on first use, so `import recipes` itself does not start
TensorFlow (the `recipes` command quiets TensorFlow's start-up notices first).
"""

__version__ = "0.1.0"

__all__ = ["build_alexnet", "build_dcgan", "build_lstm", "build_mlp", "build_vae", "build_vgg16",
           "get_model", "list_models", "__version__"]


def __getattr__(name):
    if name in __all__:
        import recipes.models
        from recipes import registry

        value = getattr(recipes.models, name, None) or getattr(registry, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recipes' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
