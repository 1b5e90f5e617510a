"""VGG16 (configuration D), layer for layer as keras.applications.VGG16, plus a small-image preset."""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile

import h5py
import keras
import numpy as np

from recipes.models import _common as c
from recipes.spec import register_model

# keras.applications.vgg16's files: include_top -> (file name, URL, md5).
_KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
IMAGENET_WEIGHTS = {
    True: (
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        _KERAS_APPLICATIONS + "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "64373286793e3c8b2b4e3219cbf3544b",
    ),
    False: (
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _KERAS_APPLICATIONS + "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc",
    ),
}

# preset -> defaults of the arguments left at None.
PRESETS = {
    "imagenet": dict(batch_norm=False, pooling="flatten", fc_units=(4096, 4096), dropout=0.0),
    "small": dict(batch_norm=True, pooling="avg", fc_units=(512,), dropout=0.5),
}
_CONVS_PER_BLOCK = (2, 2, 3, 3, 3)  # configuration D
_WEIGHT_FILES = (".weights.h5", ".keras", ".h5", ".hdf5")


@register_model(
    "vgg16",
    task="classification",
    inputs="image",
    image_side=32,
    defaults={"epochs": 30, "batch_size": 128, "model_args": {"preset": "small"}},
    description="VGG16 (configuration D) as keras.applications.VGG16; "
    "preset='small' (batch norm, small head) for 32x32 images",
)
def build_vgg16(
    *,
    input_shape=(224, 224, 3),
    num_classes: int = 1000,
    preset: str = "imagenet",
    batch_norm: bool | None = None,
    pooling: str | None = None,
    fc_units=None,
    dropout: float | None = None,
    bn_momentum: float = 0.99,
    filters=(64, 128, 256, 512, 512),
    weights=None,
    trainable_base: bool = True,
    classifier_activation: str = "auto",
    optimizer="adam",
    learning_rate: float | None = None,
    compile: bool = True,
) -> keras.Model:
    """Builds VGG16 (configuration D: 13 convolutions 3x3 in 5 blocks, 3 dense layers).

    With the defaults the model is `keras.applications.VGG16` layer for layer
    (`block1_conv1` ... `block5_pool`, `flatten`, `fc1`, `fc2`, `predictions`):
    for `input_shape=(224, 224, 3), num_classes=1000` it has 138,357,544
    parameters, and Keras's ImageNet weights or any weights file written by
    `keras.applications.VGG16` load into it and give the same outputs.

    Two presets set `batch_norm`, `pooling`, `fc_units` and `dropout` (any of
    them given explicitly wins):
    - `"imagenet"`: no batch norm, flatten, fc1 and fc2 of 4096 units, no
      dropout; `keras.applications.VGG16`.
    - `"small"`: for small images trained from scratch (CIFAR 32x32 and up):
      BatchNormalization between each convolution and its ReLU (`block1_bn1`,
      `block1_relu1`, ...), global average pooling (`avg_pool`), one `fc1` of
      512 units and dropout 0.5. Batch norm lets the 13-layer stack train
      with Adam from random initialisation; at 32x32 block5 is 1x1, so the
      4096-unit head would only add 20M parameters to overfit.
      `build_vgg16(input_shape=(32, 32, 3), num_classes=10, preset="small")`
      has 14,999,370 parameters.
      On a small data set (tens of steps an epoch) the batch-norm moving
      statistics lag behind the weights and the model validates near chance
      for epochs; `recipes train` and `default_callbacks(training_data=...)`
      re-estimate them before each validation
      (`recipes.callbacks.BatchNormCalibration`): pass that callback to your
      own `fit()` too.

    Weights (`weights="imagenet"` or a file) are loaded layer by layer by name.
    Every layer of the convolutional base (the `block*` layers) must find
    weights of the same shape in the file, or the build fails. A head layer
    whose shape differs (`predictions` for `num_classes != 1000`, `fc1` for
    another input size or pooling) keeps its fresh initialisation and a warning
    names it: this is transfer learning, as `include_top=False` plus a new top
    would be in Keras. ImageNet weights are downloaded by `keras.utils.get_file`
    from the URL and checked against the hash that `keras.applications` uses,
    into `~/.keras/models`; they need `batch_norm=False` and 3 channels. The
    full file (553 MB) is fetched when `fc1` can use it (224x224 input,
    flatten, 4096 units), otherwise the file without the top (59 MB). Inputs
    should then be preprocessed with `keras.applications.vgg16.preprocess_input`.

    Reference:
    - [Very Deep Convolutional Networks for Large-Scale Image Recognition](
      https://arxiv.org/abs/1409.1556) (ICLR 2015)

    Args:
        input_shape: shape of one image, channels last, at least 32x32.
            Defaults to `(224, 224, 3)`.
        num_classes: number of classes. Defaults to `1000`.
        preset: `"imagenet"` or `"small"`, see above. Defaults to `"imagenet"`.
        batch_norm: BatchNormalization after each convolution. Defaults to
            `None`: the preset's (`False` / `True`).
        pooling: how block5 reaches the head: `"flatten"`, `"avg"` or `"max"`
            (global pooling). Defaults to `None`: the preset's (`"flatten"` / `"avg"`).
        fc_units: units of the hidden dense layers `fc1`, `fc2`, ... (may be
            empty). Defaults to `None`: the preset's (`(4096, 4096)` / `(512,)`).
        dropout: dropout rate after each hidden dense layer (`dropout1`, ...).
            Defaults to `None`: the preset's (`0.0` / `0.5`).
        bn_momentum: momentum of the batch norm's moving statistics, in [0, 1).
            Defaults to `0.99` (Keras's).
        filters: filters of the convolutions of blocks 1 to 5. Defaults to
            `(64, 128, 256, 512, 512)`.
        weights: `None` (random initialisation), `"imagenet"`, or the path to a
            `.weights.h5`, `.keras` or `.h5` file. Defaults to `None`.
        trainable_base: `False` freezes the convolutional base (the `block*`
            layers; frozen batch norm runs in inference mode) so that only the
            head trains. Defaults to `True`.
        classifier_activation: `"auto"` (softmax, or one sigmoid unit when
            `num_classes=2`), `"softmax"` or `"sigmoid"`. Defaults to `"auto"`.
        optimizer: optimizer name or instance. Use a small learning rate
            (e.g. `1e-5`) to fine-tune pretrained layers. Defaults to `"adam"`.
        learning_rate: overrides the optimizer's learning rate. Defaults to `None`.
        compile: return the model compiled with cross-entropy and accuracy.
            Defaults to `True`.

    Returns:
        A `keras.Model` named `"vgg16"`, compiled unless `compile=False`.

    Raises:
        ValueError, TypeError: for an invalid argument; the message names it.
            Inputs below 32x32 fail with
            `"Input size must be at least 32x32. Received: input_shape=(16, 16, 3)"`.
        OSError: when the ImageNet weights cannot be downloaded.
    """
    c.check_choice("preset", preset, tuple(PRESETS))
    defaults = PRESETS[preset]
    batch_norm = defaults["batch_norm"] if batch_norm is None else batch_norm
    pooling = defaults["pooling"] if pooling is None else pooling
    fc_units = defaults["fc_units"] if fc_units is None else fc_units
    dropout = defaults["dropout"] if dropout is None else dropout

    input_shape = c.check_shape("input_shape", input_shape, rank=3, min_size=32)
    c.head_units(num_classes, classifier_activation)
    if not isinstance(batch_norm, bool):
        raise TypeError(f"batch_norm must be True or False. Received: batch_norm={batch_norm!r}")
    c.check_choice("pooling", pooling, ("flatten", "avg", "max"))
    fc_units = () if isinstance(fc_units, (list, tuple)) and not fc_units else c.check_int_tuple("fc_units", fc_units)
    dropout = c.check_rate("dropout", dropout)
    if not c.is_real(bn_momentum) or not 0.0 <= bn_momentum < 1.0:
        raise ValueError(f"bn_momentum must be a number in [0, 1). Received: bn_momentum={bn_momentum!r}")
    filters = c.check_int_tuple("filters", filters)
    if len(filters) != 5:
        raise ValueError(f"filters must have 5 entries (blocks 1 to 5). Received: filters={filters!r}")
    if not isinstance(trainable_base, bool):
        raise TypeError(f"trainable_base must be True or False. Received: trainable_base={trainable_base!r}")
    weights = _check_weights(weights, input_shape, batch_norm)
    if weights == "imagenet":  # fetched before building, so a failed download fails fast
        full = (
            pooling == "flatten" and fc_units[:1] == (4096,) and (input_shape[0] // 32, input_shape[1] // 32) == (7, 7)
        )  # fc1 is then ImageNet's 25088x4096
        weights = imagenet_weights(include_top=full)

    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs
    for block, (n_convs, n_filters) in enumerate(zip(_CONVS_PER_BLOCK, filters), start=1):
        for i in range(1, n_convs + 1):
            x = keras.layers.Conv2D(
                n_filters, 3, padding="same", activation=None if batch_norm else "relu", name=f"block{block}_conv{i}"
            )(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"block{block}_bn{i}")(x)
                x = keras.layers.Activation("relu", name=f"block{block}_relu{i}")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)

    if pooling == "flatten":
        x = keras.layers.Flatten(name="flatten")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    else:
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    for i, units in enumerate(fc_units, start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"fc{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout{i}")(x)
    outputs = c.classifier_head(x, num_classes, classifier_activation)
    model = keras.Model(inputs, outputs, name="vgg16")

    if weights is not None:
        load_weights_by_name(model, weights)
    if not trainable_base:
        for layer in model.layers:
            if layer.name.startswith("block"):
                layer.trainable = False
    return c.compile_classifier(model, optimizer=optimizer, learning_rate=learning_rate, compile=compile)


def _check_weights(weights, input_shape, batch_norm):
    if weights is None:
        return None
    if weights == "imagenet":
        if batch_norm:
            raise ValueError("weights='imagenet' exist for batch_norm=False only. Received: batch_norm=True")
        if input_shape[-1] != 3:
            raise ValueError(f"weights='imagenet' need 3 input channels. Received: input_shape={input_shape!r}")
        return weights
    if not isinstance(weights, (str, os.PathLike)) or not str(weights).endswith(_WEIGHT_FILES):
        raise ValueError(
            "weights must be None, 'imagenet' or the path to a .weights.h5, .keras or .h5 file. "
            f"Received: weights={weights!r}"
        )
    if not os.path.isfile(weights):
        raise ValueError(f"weights file not found. Received: weights={str(weights)!r}")
    return str(weights)


def imagenet_weights(include_top: bool = True) -> str:
    """Returns the local path of Keras's ImageNet VGG16 weights, downloading them once.

    Uses `keras.utils.get_file` with the URL and md5 of `keras.applications.VGG16`,
    so a file Keras already downloaded into `~/.keras/models` is reused.

    Raises:
        OSError: when the file is not cached and cannot be downloaded.
    """
    fname, url, md5 = IMAGENET_WEIGHTS[bool(include_top)]
    try:
        return keras.utils.get_file(fname, url, cache_subdir="models", file_hash=md5)
    except Exception as e:  # get_file raises a bare Exception on a failed fetch
        raise OSError(
            f"Could not download the ImageNet weights of VGG16 from {url} ({e}). Download the file "
            f"into ~/.keras/models/ yourself, pass weights='/path/to/{fname}', or use weights=None."
        ) from e


def load_weights_by_name(model: keras.Model, path) -> None:
    """Loads a `.weights.h5`, `.keras` or legacy `.h5` file into `model`, matching layers by name.

    Every `block*` layer with weights must find weights of the same shapes;
    other layers that do not keep their initial weights, with a warning.

    Raises:
        ValueError: when a layer of the convolutional base has no matching weights.
    """
    # Not Keras's `model.load_weights(path, skip_mismatch=True)`: that skips any mismatched
    # layer with a warning, so a base that does not fit would load half-way and train on;
    # here a `block*` layer without weights of its shape is an error, and only the head may
    # keep fresh weights. Reading by name also takes the legacy `.h5` files of
    # keras.applications, whose layers need not be in the order of this model's.
    saved = _read_weights(str(path))
    skipped = []
    for layer in model.layers:
        if not layer.weights:
            continue
        values = saved.get(layer.name)
        if values is not None and [v.shape for v in values] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(values)
        else:
            skipped.append(layer.name)
    base = [name for name in skipped if name.startswith("block")]
    if base:
        raise ValueError(
            f"The weights file has no weights of matching shape for the convolutional base layers "
            f"{base}. Received: weights={str(path)!r}"
        )
    if skipped:
        warnings.warn(
            f"Layers {skipped} keep their initial weights: the file {str(path)!r} has none of matching shape for them.",
            stacklevel=3,
        )


def _read_weights(path: str) -> dict[str, list[np.ndarray]]:
    """Layer name -> weight arrays, in the order of `layer.weights`."""
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as tmp:
            return _read_weights(archive.extract("model.weights.h5", tmp))
    with h5py.File(path, "r") as f:
        if path.endswith(".weights.h5"):
            # Keras 3 layout: layers/<auto name>/vars/{0,1,...}, with the layer name as an attribute.
            return {
                group["vars"].attrs["name"]: [group["vars"][str(i)][()] for i in range(len(group["vars"]))]
                for group in f["layers"].values()
                if "vars" in group
            }
        # Legacy layout (keras.applications downloads, model.save("x.h5")).
        if "layer_names" not in f.attrs and "model_weights" in f:
            f = f["model_weights"]
        return {
            _str(name): [f[_str(name)][_str(w)][()] for w in f[_str(name)].attrs["weight_names"]]
            for name in f.attrs["layer_names"]
        }


def _str(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)
