"""One module per model family; importing this package registers every recipe."""

from recipes.models.dcgan import build_dcgan
from recipes.models.mlp import build_mlp
from recipes.models.vae import build_vae

__all__ = ["build_dcgan", "build_mlp", "build_vae"]
