import keras
import numpy as np
import pytest
import tensorflow as tf

from recipes import build_alexnet
from recipes.models.alexnet import LocalResponseNormalization

TINY = dict(filters=(8, 8, 8, 8, 8), fc_units=(16, 16))


@pytest.mark.full_model
def test_single_tower_imagenet_model_is_the_default():
    model = build_alexnet(compile=False)
    assert model.count_params() == 62_378_344
    assert [layer.name for layer in model.layers] == [
        "inputs",
        "conv1",
        "lrn1",
        "pool1",
        "conv2",
        "lrn2",
        "pool2",
        "conv3",
        "conv4",
        "conv5",
        "pool5",
        "flatten",
        "fc6",
        "dropout6",
        "fc7",
        "dropout7",
        "predictions",
    ]
    assert model.get_layer("conv1").kernel.shape == (11, 11, 3, 96)
    assert model.get_layer("pool5").output.shape == (None, 6, 6, 256)
    assert model.output_shape == (None, 1000)


@pytest.mark.full_model
def test_two_tower_variant_groups_conv2_conv4_conv5():
    model = build_alexnet(groups=2, compile=False)
    assert model.count_params() == 60_965_224
    assert model.get_layer("conv2").kernel.shape == (5, 5, 48, 256)
    assert model.get_layer("conv3").kernel.shape == (3, 3, 256, 384)
    assert model.get_layer("conv4").kernel.shape == (3, 3, 192, 384)
    assert model.get_layer("conv5").kernel.shape == (3, 3, 192, 256)


def test_lrn_matches_tensorflow_and_the_paper():
    x = np.random.default_rng(0).normal(scale=30.0, size=(2, 5, 5, 16)).astype("float32")
    layer = LocalResponseNormalization()
    expected = tf.nn.local_response_normalization(x, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5)
    # Channel 0 sums the squares of channels 0..2 only (the window is clipped at the edge).
    np.testing.assert_allclose(
        layer(x)[..., 0], x[..., 0] / (2.0 + 1e-4 * (x[..., :3] ** 2).sum(-1)) ** 0.75, rtol=1e-5
    )
    assert layer.weights == []
    clone = LocalResponseNormalization.from_config(LocalResponseNormalization(size=3, alpha=2e-4).get_config())
    assert (clone.size, clone.bias, clone.alpha, clone.beta) == (3, 2.0, 2e-4, 0.75)


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_small_images_get_the_small_stem_and_train(shape):
    model = build_alexnet(input_shape=shape, num_classes=10, fc_units=(256, 256))
    assert model.get_layer("conv1").kernel.shape == (3, 3, shape[-1], 96)
    assert model.get_layer("conv1").strides == (1, 1)
    assert model.get_layer("pool5").output.shape[1:] == ((2, 2, 256) if shape[0] == 28 else (3, 3, 256))
    before = [w.numpy().copy() for w in model.trainable_weights]
    rng = np.random.default_rng(0)
    x, y = rng.random((8, *shape), dtype=np.float32), np.arange(8) % 10
    losses = model.fit(x, y, epochs=2, batch_size=4, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses))
    # Every layer learns, the stem included. (The generic suite checks that a small AlexNet's loss goes down.)
    for old, new in zip(before, model.trainable_weights):
        assert not np.array_equal(old, new.numpy()), new.path


@pytest.mark.parametrize("size, kernel, pool5", [(15, 3, 1), (66, 3, 7), (67, 11, 1)])
def test_auto_stem_switches_at_67(size, kernel, pool5):
    model = build_alexnet(input_shape=(size, size, 3), compile=False, **TINY)
    assert model.get_layer("conv1").kernel.shape[0] == kernel
    assert model.get_layer("pool5").output.shape[1:3] == (pool5, pool5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_shape=(14, 14, 1)), r"^Input size must be at least 15x15\. Received: input_shape=\(14, 14, 1\)$"),
        (
            dict(input_shape=(32, 32, 3), stem="imagenet"),
            r"^Input size must be at least 67x67\. Received: input_shape=\(32, 32, 3\)$",
        ),
        (dict(input_shape=(8, 8, 1), stem="small"), r"at least 15x15\. Received: input_shape=\(8, 8, 1\)"),
    ],
)
def test_too_small_inputs_fail_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_alexnet(**kwargs)


def test_batch_normalization_option():
    model = build_alexnet(input_shape=(32, 32, 3), normalization="batch", compile=False, **TINY)
    names = [layer.name for layer in model.layers]
    assert names[1:5] == ["conv1", "bn1", "relu1", "pool1"]
    assert "bn5" in names and not any(name.startswith("lrn") for name in names)
    assert model.get_layer("conv1").activation.__name__ == "linear"
    plain = build_alexnet(input_shape=(32, 32, 3), normalization=None, dropout=0.0, compile=False, **TINY)
    assert not any(name.startswith(("lrn", "bn", "dropout")) for name in (l.name for l in plain.layers))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            dict(input_shape=(32, 32)),
            ValueError,
            r"input_shape must have 3 dimensions\. Received: input_shape=\(32, 32\)",
        ),
        (
            dict(input_shape="32x32"),
            TypeError,
            r"input_shape must be a tuple of 3 integers\. Received: input_shape='32x32'",
        ),
        (dict(num_classes=1), ValueError, r"num_classes must be >= 2\. Received: num_classes=1"),
        (dict(stem="tiny"), ValueError, r"stem must be one of \('auto', 'imagenet', 'small'\)\. Received: stem='tiny'"),
        (dict(groups=4), ValueError, r"groups must be one of \(1, 2\)\. Received: groups=4"),
        (dict(normalization="layer"), ValueError, r"normalization must be one of .*Received: normalization='layer'"),
        (dict(filters=(8, 8, 8)), ValueError, r"filters must have 5 entries .*Received: filters=\(8, 8, 8\)"),
        (dict(filters=(8, 8, 8, 8, 8.5)), ValueError, r"filters must contain integers >= 1"),
        (
            dict(filters=(96, 255, 384, 384, 256), groups=2),
            ValueError,
            r"filters must be even with groups=2\. Received: filters=\(96, 255, 384, 384, 256\)",
        ),
        (dict(fc_units=(16, -1)), ValueError, r"fc_units must contain integers >= 1\. Received: fc_units=\(16, -1\)"),
        (dict(dropout=-0.5), ValueError, r"dropout must be in \[0, 1\)\. Received: dropout=-0\.5"),
        (dict(optimizer="adamm"), ValueError, r"Unknown optimizer\..*Received: optimizer='adamm'"),
        (
            dict(learning_rate=-1.0),
            ValueError,
            r"learning_rate must be a positive number\. Received: learning_rate=-1\.0",
        ),
    ],
)
def test_bad_arguments_name_the_argument_and_value(kwargs, error, message):
    kwargs = {"input_shape": (32, 32, 3), **TINY, **kwargs}
    with pytest.raises(error, match=message):
        build_alexnet(**kwargs)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(size=4), ValueError, r"size must be odd\. Received: size=4"),
        (dict(alpha="big"), TypeError, r"alpha must be a number\. Received: alpha='big'"),
    ],
)
def test_bad_lrn_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        LocalResponseNormalization(**kwargs)


def test_lrn_under_mixed_precision_does_not_overflow():
    keras.mixed_precision.set_global_policy("mixed_float16")
    layer = LocalResponseNormalization()
    x = np.full((1, 2, 2, 8), 300.0, dtype="float16")  # 300**2 overflows float16
    out = keras.ops.convert_to_numpy(layer(x))
    assert out.dtype == np.float16
    expected = 300.0 / (2.0 + 1e-4 * 5 * 300.0**2) ** 0.75  # a channel in the middle sums 5 squares
    np.testing.assert_allclose(out[0, 0, 0, 4], expected, rtol=1e-2)
