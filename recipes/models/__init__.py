"""One module per model family; importing this package imports each and so registers every recipe.

A new family needs no line here: every module of this package that does not start with
an underscore is imported, and its `build_*` functions are exported.
"""

import importlib
import pkgutil

__all__ = []
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    _mod = importlib.import_module(f"{__name__}.{_module}")
    for _name in dir(_mod):
        if _name.startswith("build_") and getattr(_mod, _name).__module__ == _mod.__name__:
            globals()[_name] = getattr(_mod, _name)
            __all__.append(_name)
__all__.sort()
del _module, _mod, _name
