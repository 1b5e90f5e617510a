"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012), with its local response normalisation."""

from __future__ import annotations

import keras
from keras import ops

from recipes.models import _common as c
from recipes.spec import register_model

# Smallest input side each stem accepts: pool5 must still see a 3x3 map.
MIN_SIZE = {"imagenet": 67, "small": 15}


@keras.saving.register_keras_serializable(package="recipes")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalisation across channels, as in AlexNet (section 3.3).

    `b_i = a_i / (k + alpha * sum_j a_j**2) ** beta`, where `j` runs over the
    `size` channels centred on `i` (clipped at the edges). `alpha` is not divided
    by `size`, as in the paper and `tf.nn.local_response_normalization`
    (Caffe's LRN divides it). The layer has no weights. Channels-last inputs.

    Args:
        size: number of adjacent channels summed over (`n`, odd). Defaults to `5`.
        bias: `k`. Defaults to `2.0`.
        alpha: scale of the sum of squares. Defaults to `1e-4`.
        beta: exponent. Defaults to `0.75`.
    """

    def __init__(self, size=5, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        size = c.check_int("size", size)
        if size % 2 == 0:
            raise ValueError(f"size must be odd. Received: size={size}")
        for name, value in (("bias", bias), ("alpha", alpha), ("beta", beta)):
            if not c.is_real(value):
                raise TypeError(f"{name} must be a number. Received: {name}={value!r}")
        self.size, self.bias, self.alpha, self.beta = size, float(bias), float(alpha), float(beta)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")  # squares of float16 activations overflow
        channels = x.shape[-1]
        half = self.size // 2
        squares = ops.pad(ops.square(x), [[0, 0]] * (len(x.shape) - 1) + [[half, half]])
        window = sum(squares[..., i : i + channels] for i in range(self.size))
        return ops.cast(x / ops.power(self.bias + self.alpha * window, self.beta), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = {"size": self.size, "bias": self.bias, "alpha": self.alpha, "beta": self.beta}
        return {**super().get_config(), **config}


# image_side: the command enlarges smaller images to 32x32 (the stem works from 15x15, but
# 32x32 trains better on the 8x8 digits and matches VGG16's smallest input).
@register_model(
    "alexnet",
    task="classification",
    inputs="image",
    image_side=32,
    defaults={"epochs": 30, "batch_size": 128},
    description="AlexNet (Krizhevsky et al. 2012): 5 conv + 3 dense, LRN, overlapping pooling; "
    "small-image stem below 67x67",
)
def build_alexnet(
    *,
    input_shape=(227, 227, 3),
    num_classes: int = 1000,
    stem: str = "auto",
    groups: int = 1,
    normalization: str | None = "lrn",
    filters=(96, 256, 384, 384, 256),
    fc_units=(4096, 4096),
    dropout: float = 0.5,
    classifier_activation: str = "auto",
    optimizer="adam",
    learning_rate: float | None = None,
    compile: bool = True,
) -> keras.Model:
    """Builds AlexNet.

    Five convolutions (11x11/4, 5x5, 3x3, 3x3, 3x3), ReLU after every
    convolution and dense layer, local response normalisation after conv1 and
    conv2, overlapping 3x3/2 max pooling after the normalisations and conv5,
    then two dense layers with dropout and the classifier.

    The default is the single-tower network: one GPU holds every filter. It is
    what modern frameworks ship and runs fastest on one device. `groups=2` is
    the original two-GPU network, whose conv2, conv4 and conv5 only see the
    half of the channels on their own GPU (grouped convolutions). For
    `input_shape=(227, 227, 3), num_classes=1000` the single-tower model has
    62,378,344 parameters and the two-tower model 60,965,224.

    The ImageNet stem needs inputs of at least 67x67. For small images
    (MNIST 28x28, CIFAR 32x32, up to 66x66) `stem="small"` replaces conv1 by a
    3x3 convolution with stride 1 (padding `"same"`), keeping the rest of the
    network; it accepts inputs from 15x15. `stem="auto"` picks it below 67x67.

    Layer names: `conv1`, `lrn1`, `pool1`, `conv2`, `lrn2`, `pool2`, `conv3`,
    `conv4`, `conv5`, `pool5`, `flatten`, `fc6`, `dropout6`, `fc7`, `dropout7`,
    `predictions` (with `normalization="batch"`: `bn1`..`bn5` and `relu1`..`relu5`
    instead of `lrn1`, `lrn2`).

    Reference:
    - [ImageNet Classification with Deep Convolutional Neural Networks](
      https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks)
      (NeurIPS 2012)

    Args:
        input_shape: shape of one image, channels last. Defaults to `(227, 227, 3)`.
        num_classes: number of classes. Defaults to `1000`.
        stem: `"imagenet"` (conv1 11x11 stride 4, inputs from 67x67),
            `"small"` (conv1 3x3 stride 1, inputs from 15x15) or `"auto"`
            (`"imagenet"` from 67x67, `"small"` below). Defaults to `"auto"`.
        groups: `1` (single tower) or `2` (the original two-tower network).
            Defaults to `1`.
        normalization: `"lrn"` (the paper's local response normalisation,
            k=2, n=5, alpha=1e-4, beta=0.75, after conv1 and conv2), `"batch"`
            (batch normalisation after every convolution, before its ReLU) or
            `None`. Defaults to `"lrn"`.
        filters: filters of conv1..conv5. Defaults to `(96, 256, 384, 384, 256)`.
        fc_units: units of fc6 and fc7. Defaults to `(4096, 4096)`.
        dropout: dropout rate after fc6 and fc7. Defaults to `0.5`.
        classifier_activation: `"auto"` (softmax, or one sigmoid unit when
            `num_classes=2`), `"softmax"` or `"sigmoid"`. Defaults to `"auto"`.
        optimizer: optimizer name or instance. Defaults to `"adam"`.
        learning_rate: overrides the optimizer's learning rate. Defaults to `None`.
        compile: return the model compiled with cross-entropy and accuracy.
            Defaults to `True`.

    Returns:
        A `keras.Model` named `"alexnet"`, compiled unless `compile=False`.

    Raises:
        ValueError, TypeError: for an invalid argument; the message names it.
            Inputs below the stem's minimum size fail with
            `"Input size must be at least 67x67. Received: input_shape=..."`.
    """
    c.check_choice("stem", stem, ("auto", "imagenet", "small"))
    c.check_choice("groups", groups, (1, 2))
    c.check_choice("normalization", normalization, ("lrn", "batch", None))
    input_shape = c.check_shape("input_shape", input_shape, rank=3)
    if stem == "auto":
        stem = "imagenet" if min(input_shape[:2]) >= MIN_SIZE["imagenet"] else "small"
    c.check_shape("input_shape", input_shape, rank=3, min_size=MIN_SIZE[stem])
    filters = c.check_int_tuple("filters", filters)
    if len(filters) != 5:
        raise ValueError(f"filters must have 5 entries (conv1..conv5). Received: filters={filters!r}")
    if groups == 2 and any(f % 2 for f in filters):
        raise ValueError(f"filters must be even with groups=2. Received: filters={filters!r}")
    fc_units = c.check_int_tuple("fc_units", fc_units)
    dropout = c.check_rate("dropout", dropout)
    c.head_units(num_classes, classifier_activation)

    def conv(x, i, kernel_size, strides=1, padding="same", conv_groups=1):
        batch_norm = normalization == "batch"
        x = keras.layers.Conv2D(
            filters[i - 1],
            kernel_size,
            strides=strides,
            padding=padding,
            groups=conv_groups,
            activation=None if batch_norm else "relu",
            name=f"conv{i}",
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
            x = keras.layers.Activation("relu", name=f"relu{i}")(x)
        elif normalization == "lrn" and i <= 2:
            x = LocalResponseNormalization(size=5, bias=2.0, alpha=1e-4, beta=0.75, name=f"lrn{i}")(x)
        return x

    def pool(x, name):
        return keras.layers.MaxPooling2D(3, strides=2, name=name)(x)  # overlapping: 3x3, stride 2

    inputs = keras.Input(shape=input_shape, name="inputs")
    if stem == "imagenet":
        x = conv(inputs, 1, 11, strides=4, padding="valid")
    else:
        x = conv(inputs, 1, 3)
    x = pool(x, "pool1")
    x = pool(conv(x, 2, 5, conv_groups=groups), "pool2")
    x = conv(x, 3, 3)
    x = conv(x, 4, 3, conv_groups=groups)
    x = pool(conv(x, 5, 3, conv_groups=groups), "pool5")

    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(fc_units, start=6):
        x = keras.layers.Dense(units, activation="relu", name=f"fc{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout{i}")(x)
    outputs = c.classifier_head(x, num_classes, classifier_activation)
    model = keras.Model(inputs, outputs, name="alexnet")
    return c.compile_classifier(model, optimizer=optimizer, learning_rate=learning_rate, compile=compile)
