"""The judge of a generative run: a classifier that scores the images a generator makes.

```python
from recipes.judge import Judge, judge_from_run, train_judge
judge = judge_from_run("runs/mlp1", image_shape=(28, 28, 1), value_range=(-1, 1), generator="dcgan")
judge, accuracy = train_judge(x_train, y_train, value_range=(-1, 1))   # a small convnet, seconds
probabilities, features = judge.predict(gan.generate(1000, seed=0))
```

A judge takes images as the generator makes them (its shape and value range) and
converts them, inside its own Keras model, to what the classifier reads: rescaled to the
classifier's value range, resized to its input size, read as rows for a sequence model.
So `judge.keras` in a run directory is all a resumed run or `recipes evaluate` needs.
What its numbers mean is in `recipes.quality`.
"""

from __future__ import annotations

import hashlib
import pathlib
import time
import warnings

import keras
import numpy as np

from recipes._atomic import atomic_write
from recipes._home import keras_home
from recipes.errors import ConfigError, user_errors
from recipes.models._common import build_optimizer, infer
from recipes.recipe import open_data
from recipes.registry import get_spec
from recipes.run_directory import load_model_file, model_path, run_state, stored_config

JUDGE_FILE = "judge.keras"  # in the run directory
NUM_SAMPLES = 1000  # generated images scored at the end (each epoch: SampleQuality's 500)
SAMPLE_SEED = 4321  # their latent vectors are fixed, so epochs compare
JUDGE_EPOCHS = 8  # of the small convnet: ~0.98 held-out accuracy on the bundled digits in seconds
JUDGE_HOLDOUT = 0.1  # share of each class held out to check the trained judge
# part of the cache's key: raise it whenever build_judge_convnet or train_judge change what they make
JUDGE_VERSION = 1


class Judge:
    """A classifier wrapped to read a generator's images: class probabilities and features.

    Args:
        model: a Keras model from generator images `(H, W, C)` to two outputs, the class
            probabilities `(K,)` (or one sigmoid unit for two classes) and the
            classifier's penultimate-layer features; `from_classifier` builds one.
    """

    def __init__(self, model):
        if not isinstance(model, keras.Model) or len(model.outputs) != 2:
            raise TypeError(
                f"model must be a keras.Model with two outputs (probabilities, features). Received: {model!r}"
            )
        self.model = model

    @property
    def image_shape(self) -> tuple:
        """Shape `(H, W, C)` of the images it reads: the generator's."""
        return tuple(self.model.input_shape[1:])

    @property
    def num_classes(self) -> int:
        units = self.model.output_shape[0][-1]
        return 2 if units == 1 else units

    @classmethod
    def from_classifier(
        cls, classifier, *, image_shape, value_range, classifier_value_range=(0.0, 1.0), as_rows=False
    ) -> Judge:
        """Wraps a functional classifier so that it reads images of `image_shape` in `value_range`.

        The features are the input of the classifier's last layer with weights (its
        `predictions` layer), e.g. the 512 units of the MLP's second hidden layer.

        Args:
            classifier: a functional or Sequential `keras.Model` whose output is class
                probabilities.
            image_shape: `(H, W, C)` of the generator's images.
            value_range: `(low, high)` of the generator's images.
            classifier_value_range: what the classifier reads. Defaults to `(0.0, 1.0)`.
            as_rows: the classifier reads images as sequences `(h, w*C)` of rows (the
                LSTM). Defaults to `False`.

        Raises:
            ValueError: if the classifier reads another number of channels.
        """
        h, w, channels = classifier_image_shape(classifier, channels=image_shape[-1] if as_rows else None)
        if channels != image_shape[-1]:
            raise ValueError(
                f"The classifier reads images with {channels} channels; the generator's have {image_shape[-1]}. "
                f"Received: image_shape={tuple(image_shape)!r}"
            )
        weighted = [layer for layer in classifier.layers if layer.weights]
        if not weighted:
            raise ValueError(f"The classifier has no layer with weights. Received: {classifier.name!r}")
        trunk = keras.Model(classifier.inputs, [classifier.outputs[0], weighted[-1].input], name="classifier")
        inputs = keras.Input(shape=tuple(image_shape), name="images")
        x = inputs
        (low, high), (to_low, to_high) = value_range, classifier_value_range
        if (low, high) != (to_low, to_high):
            scale = (to_high - to_low) / (high - low)
            x = keras.layers.Rescaling(scale, offset=to_low - low * scale, dtype="float32", name="to_judge_range")(x)
        if (h, w) != tuple(image_shape[:2]):
            x = keras.layers.Resizing(h, w, dtype="float32", name="resize")(x)
        if as_rows:
            x = keras.layers.Reshape((h, w * channels), name="as_rows")(x)
        probabilities, features = trunk(x)
        return cls(keras.Model(inputs, [probabilities, features], name="judge"))

    def predict(self, images, batch_size: int = 256):
        """Returns `(probabilities (n, K), features (n, d))`, float64 numpy arrays.

        Calls the model batch by batch: for the few hundred images a run scores each
        epoch, `model.predict`'s own loop costs more than the model (0.07 s against
        0.02 s for 500 digits)."""
        images = np.asarray(images, dtype="float32")
        if not len(images):
            raise ValueError(f"images must hold at least one image. Received: images.shape={images.shape}")
        # one compiled call per batch shape on JAX (2.2 s and 26 compiles -> 0.8 s and 2 for 500 images)
        outputs = [infer(self.model, images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        probabilities, features = (
            np.concatenate([keras.ops.convert_to_numpy(batch[k]) for batch in outputs]).astype("float64")
            for k in (0, 1)
        )
        if probabilities.shape[-1] == 1:  # one sigmoid unit: P(class 1)
            probabilities = np.concatenate([1.0 - probabilities, probabilities], axis=-1)
        return probabilities, features.reshape(len(features), -1)

    def save(self, path) -> None:
        """Writes the judge to a `.keras` file, atomically."""
        atomic_write(path, lambda tmp: self.model.save(tmp))

    @classmethod
    def load(cls, path) -> Judge:
        return cls(load_model_file(path))


def classifier_image_shape(classifier, channels=None) -> tuple:
    """`(h, w, C)` of the images a classifier reads: its input `(h, w, C)`, or `(h, w*C)` read as
    rows with `channels` given."""
    shape = tuple(classifier.input_shape[1:])
    if channels is not None and len(shape) == 2 and shape[1] % channels == 0:
        return shape[0], shape[1] // channels, channels
    if len(shape) != 3:
        raise ValueError(f"The classifier does not read images (h, w, C). Received: input_shape={shape!r}")
    return shape


# ------------------------------------------------------------- a judge of its own


def build_judge_convnet(*, input_shape=(28, 28, 1), num_classes: int = 10, compile: bool = True) -> keras.Model:
    """A small convnet classifier, in the spirit of the keras-io MNIST convnet.

    Conv 32 and Conv 64 (3x3, ReLU, "same"), each followed by 2x2 max pooling, dropout
    0.5, a 64-unit `fc1` layer whose output is the judge's features, and a softmax.
    The `fc1` layer keeps the features few, so their Gaussians can be fitted on a few
    hundred held-out images.

    Reference:
    - [keras-io: Simple MNIST convnet](https://keras.io/examples/vision/mnist_convnet/)

    Args:
        input_shape: `(H, W, C)` of the images. Defaults to `(28, 28, 1)`.
        num_classes: number of classes. Defaults to `10`.
        compile: compile with Adam and sparse categorical cross-entropy. Defaults to `True`.

    Returns:
        A `keras.Model` named `"judge_convnet"`.
    """
    layer = dict(dtype="float32")  # the judge reads the same numbers under any precision policy
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = inputs
    for i, filters in enumerate((32, 64), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{i}_conv", **layer)(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"block{i}_pool", **layer)(x)
    x = keras.layers.Flatten(name="flatten", **layer)(x)
    x = keras.layers.Dropout(0.5, name="dropout", **layer)(x)
    x = keras.layers.Dense(64, activation="relu", name="fc1", **layer)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions", **layer)(x)
    model = keras.Model(inputs, outputs, name="judge_convnet")
    if compile:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def stratified_split(labels, fraction: float, seed: int = 0):
    """Indices `(kept, held_out)`: `fraction` of each class (at least one when it has two) held out."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n = int(round(fraction * len(members))) or (1 if len(members) > 1 else 0)
        held.append(members[:n])
        kept.append(members[n:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def train_judge(x, y, *, value_range, num_classes=None, epochs: int = JUDGE_EPOCHS, seed: int = 0, log=None):
    """Trains `build_judge_convnet` on labelled images `x` (in the generator's form and range).

    A stratified `JUDGE_HOLDOUT` of each class is held out to check it.

    Returns:
        `(judge, held_out_accuracy)`.
    """
    x, y = np.asarray(x, dtype="float32"), np.asarray(y).ravel()
    num_classes = num_classes or int(y.max()) + 1
    kept, held = stratified_split(y, JUDGE_HOLDOUT, seed)
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    classifier = build_judge_convnet(input_shape=x.shape[1:], num_classes=num_classes)
    build_optimizer(classifier)  # not in the first step's trace: one trace fewer
    classifier.fit(x[kept], y[kept], epochs=epochs, batch_size=64, shuffle=True, verbose=0)
    judge = Judge.from_classifier(
        classifier, image_shape=x.shape[1:], value_range=value_range, classifier_value_range=value_range
    )
    accuracy = float(np.mean(judge.predict(x[held])[0].argmax(axis=1) == y[held])) if len(held) else float("nan")
    if log:
        log(
            f"Trained a judge on {len(kept)} images in {time.perf_counter() - start:.1f} s: "
            f"accuracy {accuracy:.3f} on {len(held)} held-out training images"
        )
    return judge, accuracy


def judges_dir(cache_dir=None) -> pathlib.Path:
    """`<cache_dir>/recipes/judges`; `cache_dir` defaults to `$KERAS_HOME`, else `~/.keras`."""
    return keras_home(cache_dir) / "recipes" / "judges"


def judge_key(x, y, *, value_range, num_classes, epochs: int = JUDGE_EPOCHS, seed: int = 0) -> str:
    """What `train_judge` makes depends on: the images and labels, its settings, the code that
    trains it (`JUDGE_VERSION`), Keras, the backend and the precision policy. A hex digest."""
    x, y = np.ascontiguousarray(x, dtype="float32"), np.ascontiguousarray(np.asarray(y).ravel(), dtype="int64")
    digest = hashlib.sha256()
    settings = (
        JUDGE_VERSION,
        keras.__version__,
        keras.backend.backend(),
        keras.mixed_precision.global_policy().name,
        x.shape,
        tuple(float(v) for v in value_range),
        int(num_classes),
        int(epochs),
        int(seed),
        JUDGE_HOLDOUT,
    )
    digest.update(repr(settings).encode())
    digest.update(x.tobytes())
    digest.update(y.tobytes())
    return digest.hexdigest()[:32]


def cached_judge(x, y, *, value_range, num_classes=None, seed: int = 0, cache_dir=None, log=None) -> Judge:
    """`train_judge`'s judge of these images, from the cache when one was trained on them before.

    Training is deterministic (the seed, and TensorFlow's op determinism that runs set), so
    the judge kept in `judges_dir(cache_dir)` under `judge_key` is the one training would
    make again: a second run on the same data skips the seconds it takes. An unreadable
    cached judge is trained again and replaced; a cache that cannot be written is skipped.
    """
    x, y = np.asarray(x, dtype="float32"), np.asarray(y).ravel()
    num_classes = num_classes or int(y.max()) + 1
    key = judge_key(x, y, value_range=value_range, num_classes=num_classes, seed=seed)
    path = judges_dir(cache_dir) / f"{key}.keras"
    if path.is_file():
        try:
            judge = Judge.load(path)
        except Exception as e:  # a partial or foreign file: train it again
            warnings.warn(
                f"The cached judge {path} is unreadable ({type(e).__name__}); training it again.", stacklevel=2
            )
        else:
            if log:
                log(f"Judge: the one trained on these {len(x)} images before, from {path}")
            return judge
    judge, _ = train_judge(x, y, value_range=value_range, num_classes=num_classes, seed=seed, log=log)
    try:
        judge.save(path)
    except OSError as e:
        if log:
            log(f"Judge: not kept in {path.parent} ({e.strerror or e}); the next run trains it again.")
    return judge


# ------------------------------------------------------------- a classifier run


def judge_from_run(run_dir, *, image_shape, value_range, generator: str) -> Judge:
    """The judge made of a finished classifier run's best model, reading `image_shape` in `value_range`.

    Raises:
        ConfigError: one line, when `run_dir` is not a finished run, not a classifier,
            not trained on images, or reads another number of channels.
    """
    name = str(run_dir)
    needs = "--judge needs a finished classifier run"
    if not (pathlib.Path(run_dir) / "config.yaml").is_file():
        raise ConfigError(f"--judge {name!r} is not a run directory (no config.yaml); {needs}.")
    config = stored_config(run_dir)
    spec = get_spec(config["model"])
    if spec.task != "classification":
        raise ConfigError(f"--judge {name!r} trained {config['model']!r}, not a classifier; {needs}.")
    if run_state(run_dir) != "finished":
        raise ConfigError(f"--judge {name!r} has not finished (no metrics.json); {needs}.")
    classifier = load_model_file(model_path(run_dir))
    as_rows = spec.images_as_rows and len(classifier.input_shape) == 3 and _trained_on_images(config)
    try:
        shape = classifier_image_shape(classifier, channels=image_shape[-1] if as_rows else None)
    except ValueError:
        raise ConfigError(
            f"--judge {name!r} does not classify images (its input has shape {tuple(classifier.input_shape[1:])}); "
            f"{needs} on images."
        ) from None
    if shape[-1] != image_shape[-1]:
        raise ConfigError(
            f"--judge {name!r} reads images with {shape[-1]} channels, but {generator} generates images "
            f"with {image_shape[-1]}; choose a classifier trained on {image_shape[-1]}-channel images."
        )
    return Judge.from_classifier(
        classifier,
        image_shape=image_shape,
        value_range=value_range,
        classifier_value_range=spec.value_range,
        as_rows=as_rows,
    )


def _trained_on_images(config) -> bool:
    """Whether a sequence model's run read images as rows (its input alone cannot tell)."""
    with user_errors():
        return open_data(config).kind == "image"
