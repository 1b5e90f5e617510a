"""The two networks of `build_dcgan` (Radford et al., 2015): a transposed-conv generator and a
strided-conv discriminator, for square images with a side of 4*2^k or 7*2^k."""

from __future__ import annotations

import keras

from recipes.models import _common as c
from recipes.models._transpose import Conv2DTranspose

_BASES = (4, 7)  # side of the generator's first feature map: 4 for 32/64, 7 for 28
_SUPPORTED = "square, with a side of 4*2^k or 7*2^k (k >= 1; e.g. 28, 32, 64)"


def _stages(input_shape):
    """Returns `(base, k)` with side == base * 2**k, or raises."""
    side = input_shape[0]
    for base in _BASES:
        size, k = base, 0
        while size < side:
            size, k = size * 2, k + 1
        if size == side and k >= 1 and input_shape[1] == side:
            return base, k
    raise ValueError(f"input_shape must be {_SUPPORTED}. Received: input_shape={tuple(input_shape)!r}")


def networks(input_shape, base, k, latent_dim, base_filters, kernel_size):
    """`(generator, discriminator)` of `build_dcgan` (its docstring describes them), for images of
    `input_shape` whose side is `base * 2**k` (`_stages`)."""
    init = keras.initializers.RandomNormal(mean=0.0, stddev=0.02)
    conv = dict(kernel_size=kernel_size, strides=2, padding="same", kernel_initializer=init)
    widths = [base_filters * 2**i for i in reversed(range(k))]  # e.g. 1024, 512, 256, 128

    # Generator: project and reshape, then fractionally-strided convolutions.
    latent = keras.Input(shape=(latent_dim,), name="latent")
    x = keras.layers.Dense(base * base * widths[0], use_bias=False, kernel_initializer=init, name="project_dense")(
        latent
    )
    x = keras.layers.BatchNormalization(name="project_bn")(x)
    x = keras.layers.ReLU(name="project_relu")(x)
    x = keras.layers.Reshape((base, base, widths[0]), name="project_reshape")(x)
    for i, filters in enumerate(widths[1:], start=1):
        x = Conv2DTranspose(filters, use_bias=False, name=f"block{i}_convT", **conv)(x)
        x = keras.layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu")(x)
    images = Conv2DTranspose(input_shape[-1], activation="tanh", dtype=c.output_dtype(), name="output_convT", **conv)(x)
    generator = keras.Model(latent, images, name="generator")

    # Discriminator: strided convolutions, no batch norm on the input layer.
    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    for i, filters in enumerate(reversed(widths), start=1):
        x = keras.layers.Conv2D(filters, use_bias=i == 1, name=f"block{i}_conv", **conv)(x)
        if i > 1:
            x = keras.layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = keras.layers.LeakyReLU(negative_slope=0.2, name=f"block{i}_lrelu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(
        1, activation="sigmoid", kernel_initializer=init, dtype=c.output_dtype(), name="predictions"
    )(x)
    discriminator = keras.Model(inputs, outputs, name="discriminator")
    return generator, discriminator
