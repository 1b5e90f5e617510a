import functools
import hashlib

import keras
import numpy as np
import pytest

from recipes import build_vgg16
from recipes.models import vgg

TINY = dict(filters=(4, 8, 8, 16, 16), fc_units=(16,))


def _images(n=4, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=(n, size, size, 3)).astype("float32")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """keras.applications.VGG16 at 32x32 with 10 classes, and its weights in the three file formats."""
    keras.utils.set_random_seed(1)
    model = keras.applications.VGG16(weights=None, input_shape=(32, 32, 3), classes=10)
    tmp = tmp_path_factory.mktemp("vgg16")
    files = {"weights.h5": tmp / "ref.weights.h5", "keras": tmp / "ref.keras", "h5": tmp / "ref.h5"}
    model.save_weights(files["weights.h5"])
    model.save(files["keras"])
    model.save(files["h5"])  # the legacy format of keras.applications' downloads
    return model, files


def _assert_same_weights(model, ref, names):
    for name in names:
        for a, b in zip(model.get_layer(name).get_weights(), ref.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)


@pytest.mark.full_model
def test_configuration_d_is_keras_applications_vgg16(reference):
    model = build_vgg16(compile=False)
    assert model.count_params() == 138_357_544
    assert model.output_shape == (None, 1000)
    # Layer names do not depend on the input size.
    assert [layer.name for layer in model.layers[1:]] == [layer.name for layer in reference[0].layers[1:]]
    assert model.get_layer("predictions").activation.__name__ == "softmax"


@pytest.mark.full_model
def test_copied_keras_applications_weights_give_identical_outputs(reference):
    ref, _ = reference
    x = _images()
    model = build_vgg16(input_shape=(32, 32, 3), num_classes=10, compile=False)
    assert model.count_params() == ref.count_params()
    assert not np.allclose(model.predict(x, verbose=0), ref.predict(x, verbose=0))  # the check has teeth
    model.set_weights(ref.get_weights())
    np.testing.assert_array_equal(model.predict(x, verbose=0), ref.predict(x, verbose=0))


@pytest.mark.full_model
@pytest.mark.parametrize("fmt", ["weights.h5", "keras", "h5"])
def test_weights_file_written_by_keras_applications_loads(reference, fmt):
    ref, files = reference
    x = _images()
    model = build_vgg16(input_shape=(32, 32, 3), num_classes=10, weights=files[fmt], compile=False)
    np.testing.assert_array_equal(model.predict(x, verbose=0), ref.predict(x, verbose=0))


@pytest.mark.full_model
def test_weights_for_another_head_load_the_base_and_warn(reference):
    ref, files = reference
    with pytest.warns(UserWarning, match=r"Layers \['predictions'\] keep their initial weights"):
        model = build_vgg16(input_shape=(32, 32, 3), num_classes=5, weights=files["weights.h5"], compile=False)
    _assert_same_weights(model, ref, ["block1_conv1", "block5_conv3", "fc1", "fc2"])
    assert model.output_shape == (None, 5)


@pytest.mark.full_model
def test_weights_that_do_not_fit_the_base_fail(reference):
    _, files = reference
    with pytest.raises(
        ValueError,
        match=r"no weights of matching shape for the convolutional base layers "
        r"\['block1_conv1', .*Received: weights='.*ref\.weights\.h5'",
    ):
        build_vgg16(input_shape=(32, 32, 3), num_classes=10, weights=files["weights.h5"], **TINY)


def _fake_imagenet(monkeypatch, tmp_path, notop_url, md5):
    """Points the ImageNet downloads at local URLs and the Keras cache at tmp_path."""
    monkeypatch.setattr(keras.utils, "get_file", functools.partial(keras.utils.get_file, cache_dir=str(tmp_path)))
    monkeypatch.setattr(
        vgg,
        "IMAGENET_WEIGHTS",
        {
            True: ("top.h5", (tmp_path / "missing_top.h5").as_uri(), "0" * 32),
            False: ("notop.h5", notop_url, md5),
        },
    )


@pytest.mark.full_model
def test_imagenet_weights_come_through_keras_get_file(reference, monkeypatch, tmp_path):
    ref, files = reference
    md5 = hashlib.md5(files["h5"].read_bytes()).hexdigest()
    _fake_imagenet(monkeypatch, tmp_path, files["h5"].as_uri(), md5)
    with pytest.warns(UserWarning, match=r"\['fc1', 'predictions'\]"):
        model = build_vgg16(
            input_shape=(32, 32, 3),
            num_classes=10,
            preset="small",
            batch_norm=False,
            weights="imagenet",
            trainable_base=False,
        )
    assert (tmp_path / "models" / "notop.h5").is_file()  # cached where get_file puts it
    _assert_same_weights(
        model, ref, [f"block{b}_conv{i}" for b, n in enumerate((2, 2, 3, 3, 3), 1) for i in range(1, n + 1)]
    )
    assert [w.path for w in model.trainable_weights] == [
        "fc1/kernel",
        "fc1/bias",
        "predictions/kernel",
        "predictions/bias",
    ]


def test_failed_imagenet_download_says_what_to_do(monkeypatch, tmp_path):
    _fake_imagenet(monkeypatch, tmp_path, (tmp_path / "missing_notop.h5").as_uri(), "0" * 32)
    # 224x224 with the ImageNet head asks for the file with the top; it fails before building 138M weights.
    with pytest.raises(
        OSError,
        match=r"Could not download the ImageNet weights of VGG16 from "
        r"file://.*missing_top\.h5 .*pass weights='/path/to/top\.h5'",
    ):
        build_vgg16(weights="imagenet")
    with pytest.raises(OSError, match=r"missing_notop\.h5"):
        build_vgg16(input_shape=(32, 32, 3), num_classes=10, weights="imagenet", **TINY)


def test_freezing_the_base_trains_only_the_head():
    model = build_vgg16(
        input_shape=(32, 32, 3), num_classes=10, preset="small", trainable_base=False, learning_rate=1e-2, **TINY
    )
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == (16 * 16 + 16) + (16 * 10 + 10)
    before = {w.path: w.numpy().copy() for w in model.weights}
    x, y = _images(8), np.arange(8) % 10
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    after = {w.path: w.numpy() for w in model.weights}
    changed = sorted(path for path in before if not np.array_equal(before[path], after[path]))
    # Frozen batch norm runs in inference mode: its moving statistics stay put too.
    assert changed == ["fc1/bias", "fc1/kernel", "predictions/bias", "predictions/kernel"]


def test_small_preset():
    model = build_vgg16(input_shape=(32, 32, 3), num_classes=10, preset="small", compile=False)
    assert model.count_params() == 14_999_370
    names = [layer.name for layer in model.layers]
    assert names[1:5] == ["block1_conv1", "block1_bn1", "block1_relu1", "block1_conv2"]
    assert names[-5:] == ["block5_pool", "avg_pool", "fc1", "dropout1", "predictions"]
    assert model.get_layer("dropout1").rate == 0.5
    # Explicit arguments win over the preset.
    plain = build_vgg16(
        input_shape=(32, 32, 3), num_classes=10, preset="small", batch_norm=False, dropout=0.0, compile=False
    )
    assert not any("bn" in layer.name or "dropout" in layer.name for layer in plain.layers)


def test_global_pooling_without_hidden_dense_layers():
    model = build_vgg16(
        input_shape=(48, 48, 3), num_classes=7, pooling="max", fc_units=(), filters=TINY["filters"], compile=False
    )
    assert [layer.name for layer in model.layers[-3:]] == ["block5_pool", "max_pool", "predictions"]
    assert model.get_layer("predictions").kernel.shape == (16, 7)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            dict(input_shape=(16, 16, 3)),
            ValueError,
            r"^Input size must be at least 32x32\. Received: input_shape=\(16, 16, 3\)$",
        ),
        (
            dict(input_shape=(32, 32)),
            ValueError,
            r"input_shape must have 3 dimensions\. Received: input_shape=\(32, 32\)",
        ),
        (dict(input_shape=(32, 32.5, 3)), ValueError, r"input_shape must contain positive integers"),
        (dict(num_classes=1), ValueError, r"num_classes must be >= 2\. Received: num_classes=1"),
        (
            dict(num_classes=0, classifier_activation="sigmoid"),
            ValueError,
            r"num_classes must be >= 1\. Received: num_classes=0",
        ),
        (dict(num_classes=10.0), TypeError, r"num_classes must be an integer\. Received: num_classes=10\.0"),
        (dict(preset="cifar"), ValueError, r"preset must be one of \('imagenet', 'small'\)\. Received: preset='cifar'"),
        (dict(pooling="mean"), ValueError, r"pooling must be one of .*Received: pooling='mean'"),
        (dict(batch_norm="yes"), TypeError, r"batch_norm must be True or False\. Received: batch_norm='yes'"),
        (dict(fc_units=(512, 0)), ValueError, r"fc_units must contain integers >= 1\. Received: fc_units=\(512, 0\)"),
        (dict(filters=(64, 128)), ValueError, r"filters must have 5 entries .*Received: filters=\(64, 128\)"),
        (dict(dropout=-0.1), ValueError, r"dropout must be in \[0, 1\)\. Received: dropout=-0\.1"),
        (dict(bn_momentum=1.0), ValueError, r"^bn_momentum must be a number in \[0, 1\)\. Received: bn_momentum=1\.0$"),
        (dict(bn_momentum="x"), ValueError, r"^bn_momentum must be a number in \[0, 1\)\. Received: bn_momentum='x'$"),
        (
            dict(weights="vgg.txt"),
            ValueError,
            r"weights must be None, 'imagenet' or the path .*Received: weights='vgg.txt'",
        ),
        (
            dict(weights="missing.weights.h5"),
            ValueError,
            r"weights file not found\. Received: weights='missing\.weights\.h5'",
        ),
        (dict(weights="imagenet", batch_norm=True), ValueError, r"Received: batch_norm=True"),
        (
            dict(weights="imagenet", input_shape=(32, 32, 1)),
            ValueError,
            r"need 3 input channels\. Received: input_shape=\(32, 32, 1\)",
        ),
        (dict(trainable_base=0), TypeError, r"trainable_base must be True or False\. Received: trainable_base=0"),
        (dict(optimizer="adamm"), ValueError, r"Unknown optimizer\..*Received: optimizer='adamm'"),
        (dict(classifier_activation="relu"), ValueError, r"classifier_activation must be one of"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(kwargs, error, message):
    kwargs = {"input_shape": (32, 32, 3), **TINY, **kwargs}
    with pytest.raises(error, match=message):
        build_vgg16(**kwargs)
