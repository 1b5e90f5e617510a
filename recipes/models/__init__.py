"""One module per model family; importing this package registers every recipe."""

from recipes.models.alexnet import build_alexnet
from recipes.models.dcgan import build_dcgan
from recipes.models.lstm import build_lstm
from recipes.models.mlp import build_mlp
from recipes.models.vae import build_vae
from recipes.models.vgg import build_vgg16

__all__ = ["build_alexnet", "build_dcgan", "build_lstm", "build_mlp", "build_vae", "build_vgg16"]
