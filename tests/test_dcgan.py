import keras
import numpy as np
import pytest
import tensorflow as tf

from recipes import build_dcgan
from recipes.models.dcgan import DCGAN

TINY = dict(input_shape=(28, 28, 1), latent_dim=8, base_filters=4, kernel_size=3, seed=1)


def _images(shape=(28, 28, 1), n=32, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *shape)).astype("float32")


def _weights(model):
    return [np.array(v) for v in model.weights]


def _optimizer_state(gan):
    return [[np.array(v) for v in opt.variables] for opt in (gan.d_optimizer, gan.g_optimizer)]


def test_paper_architecture_and_layer_names():
    gan = build_dcgan(input_shape=(64, 64, 3), latent_dim=100, base_filters=8)
    g, d = gan.generator, gan.discriminator
    assert [l.name for l in g.layers] == [
        "latent",
        "project_dense",
        "project_bn",
        "project_relu",
        "project_reshape",
        "block1_convT",
        "block1_bn",
        "block1_relu",
        "block2_convT",
        "block2_bn",
        "block2_relu",
        "block3_convT",
        "block3_bn",
        "block3_relu",
        "output_convT",
    ]
    # 4x4 -> 64x64 in four fractionally-strided steps, widths halving like the paper's 1024-512-256-128
    assert [
        tuple(g.get_layer(n).output.shape[1:])
        for n in ("project_reshape", "block1_convT", "block2_convT", "block3_convT", "output_convT")
    ] == [(4, 4, 64), (8, 8, 32), (16, 16, 16), (32, 32, 8), (64, 64, 3)]
    assert [l.name for l in d.layers] == [
        "images",
        "block1_conv",
        "block1_lrelu",
        "block2_conv",
        "block2_bn",
        "block2_lrelu",
        "block3_conv",
        "block3_bn",
        "block3_lrelu",
        "block4_conv",
        "block4_bn",
        "block4_lrelu",
        "flatten",
        "predictions",
    ]
    assert tuple(d.get_layer("block4_conv").output.shape[1:]) == (4, 4, 64)
    assert g.get_layer("output_convT").activation.__name__ == "tanh"
    assert d.get_layer("predictions").activation.__name__ == "sigmoid"
    assert all(l.negative_slope == pytest.approx(0.2) for l in d.layers if isinstance(l, keras.layers.LeakyReLU))
    for layer in g.layers + d.layers:
        assert not isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D))
        if hasattr(layer, "kernel_initializer"):
            assert layer.kernel_initializer.stddev == pytest.approx(0.02)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            assert layer.strides == (2, 2)
    for opt in (gan.d_optimizer, gan.g_optimizer):
        assert isinstance(opt, keras.optimizers.Adam)
        assert float(opt.learning_rate) == pytest.approx(2e-4) and opt.beta_1 == 0.5
    assert gan.d_optimizer is not gan.g_optimizer
    assert gan.value_range == (-1.0, 1.0) and gan.latent_dim == 100


@pytest.mark.parametrize("side, base, stages", [(28, 7, 2), (32, 4, 3), (64, 4, 4), (14, 7, 1), (8, 4, 1)])
def test_upsampling_stages_follow_the_image_size(side, base, stages):
    gan = build_dcgan(input_shape=(side, side, 3), latent_dim=4, base_filters=2, compile=False)
    assert tuple(gan.generator.get_layer("project_reshape").output.shape[1:3]) == (base, base)
    convs = [l for l in gan.generator.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert len(convs) == stages
    assert gan.generator.output_shape == (None, side, side, 3)
    assert gan.discriminator.output_shape == (None, 1)


def test_paper_parameter_count():
    # 64x64x3, z=100, widths 1024-512-256-128 with 5x5 kernels (the paper's code).
    gan = build_dcgan(input_shape=(64, 64, 3), latent_dim=100, compile=False)
    assert gan.generator.count_params() == (
        100 * 4 * 4 * 1024
        + 4 * 4 * 4 * 1024  # project + bn
        + 25 * 1024 * 512
        + 4 * 512
        + 25 * 512 * 256
        + 4 * 256
        + 25 * 256 * 128
        + 4 * 128
        + 25 * 128 * 3
        + 3
    )


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            dict(input_shape=(30, 30, 1)),
            ValueError,
            r"input_shape must be square, with a side of 4\*2\^k or 7\*2\^k \(k >= 1; e\.g\. 28, 32, 64\)\. "
            r"Received: input_shape=\(30, 30, 1\)",
        ),
        (dict(input_shape=(28, 32, 1)), ValueError, r"input_shape must be square.*Received: input_shape=\(28, 32, 1\)"),
        (dict(input_shape=(7, 7, 1)), ValueError, r"input_shape must be square.*Received: input_shape=\(7, 7, 1\)"),
        (
            dict(input_shape=(28, 28, 2)),
            ValueError,
            r"input_shape must have 1 or 3 channels\. Received: input_shape=\(28, 28, 2\)",
        ),
        (
            dict(input_shape=(28, 28)),
            ValueError,
            r"input_shape must have 3 dimensions\. Received: input_shape=\(28, 28\)",
        ),
        (dict(latent_dim=0), ValueError, r"latent_dim must be >= 1\. Received: latent_dim=0"),
        (dict(latent_dim=2.0), TypeError, r"latent_dim must be an integer\. Received: latent_dim=2\.0"),
        (dict(base_filters=0), ValueError, r"base_filters must be >= 1\. Received: base_filters=0"),
        (dict(learning_rate=-1), ValueError, r"learning_rate must be a positive number\. Received: learning_rate=-1"),
        (dict(beta_1=1.0), ValueError, r"beta_1 must be in \[0, 1\)\. Received: beta_1=1\.0"),
        (
            dict(label_smoothing=1.0),
            ValueError,
            r"label_smoothing must be in \[0, 1\)\. Received: label_smoothing=1\.0",
        ),
    ],
)
def test_bad_arguments_name_the_argument_and_value(kwargs, error, message):
    with pytest.raises(error, match=message):
        build_dcgan(**kwargs)


def test_compile_defaults_custom_and_errors():
    gan = build_dcgan(compile=False, **TINY)
    assert not gan.compiled
    gan.compile()
    assert gan.compiled and float(gan.g_optimizer.learning_rate) == pytest.approx(2e-4)
    gan.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer="rmsprop", loss_fn=keras.losses.BinaryCrossentropy())
    assert isinstance(gan.g_optimizer, keras.optimizers.RMSprop)
    history = gan.fit(_images(n=16), epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["d_loss"][0])
    opt = keras.optimizers.Adam()
    with pytest.raises(ValueError, match=r"d_optimizer and g_optimizer must be two distinct optimizer instances"):
        gan.compile(d_optimizer=opt, g_optimizer=opt)
    with pytest.raises(
        TypeError,
        match=r"DCGAN\.compile\(\) takes d_optimizer and g_optimizer, not optimizer\. "
        r"Received: optimizer='adam'",
    ):
        gan.compile(optimizer="adam")
    with pytest.raises(TypeError, match=r"g_optimizer must be an optimizer name or a keras\.optimizers\.Optimizer"):
        gan.compile(g_optimizer=3)


def test_fit_on_images_or_image_label_datasets_logs_the_four_metrics(tmp_path):
    gan = build_dcgan(**TINY)
    x = _images()
    images = tf.data.Dataset.from_tensor_slices(x).batch(8)
    pairs = tf.data.Dataset.from_tensor_slices((x, np.zeros(len(x), "int32"))).batch(8)
    csv = tmp_path / "history.csv"
    history = gan.fit(images, epochs=2, shuffle=False, verbose=0, callbacks=[keras.callbacks.CSVLogger(str(csv))])
    assert sorted(history.history) == ["d_acc_fake", "d_acc_real", "d_loss", "g_loss"]
    for values in history.history.values():
        assert np.all(np.isfinite(values))
    assert all(0 <= a <= 1 for a in history.history["d_acc_real"] + history.history["d_acc_fake"])
    assert csv.read_text().splitlines()[0].startswith("epoch,d_acc_fake,d_acc_real,d_loss,g_loss")
    gan.fit(pairs, epochs=1, shuffle=False, verbose=0)
    assert int(gan.d_optimizer.iterations) == int(gan.g_optimizer.iterations) == 12
    results = gan.evaluate(pairs, verbose=0, return_dict=True)
    assert sorted(results) == ["d_acc_fake", "d_acc_real", "d_loss", "g_loss"]
    assert int(gan.d_optimizer.iterations) == 12  # evaluation does not train


def test_generate_shapes_range_and_seeds():
    gan = build_dcgan(**TINY)
    gan.fit(_images(n=16), epochs=1, batch_size=8, verbose=0)
    images = gan.generate(5, seed=0)
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    np.testing.assert_array_equal(images, gan.generate(5, seed=0))
    assert not np.allclose(images, gan.generate(5, seed=1))
    assert not np.allclose(gan.generate(5), gan.generate(5))  # the model's SeedGenerator advances
    assert gan.generate(300, seed=0).shape == (300, 28, 28, 1)  # more than one generation batch
    with pytest.raises(ValueError, match=r"n must be >= 1\. Received: n=0"):
        gan.generate(0)


def test_save_load_restores_outputs_and_both_optimizers(tmp_path):
    gan = build_dcgan(**TINY)
    x = _images()
    gan.fit(x, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "gan.keras"
    gan.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, DCGAN) and restored.compiled
    np.testing.assert_array_equal(gan.generate(4, seed=3), restored.generate(4, seed=3))
    for a, b in zip(_weights(gan), _weights(restored)):
        np.testing.assert_array_equal(a, b)
    saved, loaded = _optimizer_state(gan), _optimizer_state(restored)
    assert (
        [len(s) for s in saved]
        == [len(s) for s in loaded]
        == [2 + 2 * len(gan.discriminator.trainable_variables), 2 + 2 * len(gan.generator.trainable_variables)]
    )
    for a, b in zip(sum(saved, []), sum(loaded, [])):
        np.testing.assert_array_equal(a, b)
    assert int(restored.d_optimizer.iterations) == int(restored.g_optimizer.iterations) == 8
    assert restored.d_optimizer.beta_1 == 0.5 and restored.d_optimizer is not restored.g_optimizer

    history = restored.fit(x, epochs=1, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["g_loss"]))
    assert int(restored.d_optimizer.iterations) == int(restored.g_optimizer.iterations) == 12


def test_mixed_float16_scales_both_losses_and_keeps_float32_outputs(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    gan = build_dcgan(**TINY)
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert gan.generator.output.dtype == "float32" and gan.discriminator.output.dtype == "float32"
    history = gan.fit(_images(n=16), epochs=2, batch_size=8, verbose=0)
    for values in history.history.values():
        assert np.all(np.isfinite(values))
    assert int(gan.g_optimizer.iterations) == 4
    images = gan.generate(2, seed=0)
    assert images.dtype == np.float32 and np.all(np.abs(images) <= 1)
    gan.save(tmp_path / "gan.keras")
    restored = keras.models.load_model(tmp_path / "gan.keras")
    assert isinstance(restored.g_optimizer, keras.optimizers.LossScaleOptimizer)
    for a, b in zip(sum(_optimizer_state(gan), []), sum(_optimizer_state(restored), [])):
        np.testing.assert_array_equal(a, b)
