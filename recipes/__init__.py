"""Classic deep-learning model recipes for Keras 3 / TensorFlow.

```python
from recipes import build_vgg16, list_models, get_model
model = build_vgg16(input_shape=(32, 32, 3), num_classes=10)   # compiled
```
"""

__version__ = "0.1.0"

from recipes.models import *  # noqa: E402,F401,F403  (registers every recipe)
from recipes.models import __all__ as _builders  # noqa: E402
from recipes.registry import get_model, list_models  # noqa: E402

__all__ = [*_builders, "get_model", "list_models", "__version__"]
