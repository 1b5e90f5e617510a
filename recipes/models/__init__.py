"""One module per model family; importing this package registers every recipe."""

from recipes.models.mlp import build_mlp

__all__ = ["build_mlp"]
