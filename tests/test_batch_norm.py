"""Precise batch-norm statistics: `recalibrate_batch_norm` and `BatchNormCalibration`."""

import keras
import numpy as np
import pytest

from recipes.callbacks import BatchNormCalibration, default_callbacks, recalibrate_batch_norm


def _model(momentum=0.99):
    inputs = keras.Input(shape=(3,))
    x = keras.layers.BatchNormalization(momentum=momentum, name="bn")(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(8, activation="relu")(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal([5.0, -2.0, 0.0], [1.0, 3.0, 0.5], size=(n, 3)).astype("float32")
    return x, (x[:, 0] > 5.0).astype("int32")


def test_recalibration_makes_the_moving_statistics_the_average_of_the_batch_statistics():
    model = _model()
    x, _ = _data()
    batches = [x[i : i + 32] for i in range(0, 96, 32)]
    bn = model.get_layer("bn")
    assert np.allclose(bn.moving_mean, 0.0)  # the initial, lagging statistics
    used = recalibrate_batch_norm(model, batches)
    assert used == 96
    np.testing.assert_allclose(bn.moving_mean, np.mean([b.mean(axis=0) for b in batches], axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance, np.mean([b.var(axis=0) for b in batches], axis=0), rtol=1e-4)
    assert bn.momentum == 0.99
    assert recalibrate_batch_norm(model, batches, max_examples=32) == 32  # stops after the first batch
    np.testing.assert_allclose(bn.moving_mean, batches[0].mean(axis=0), rtol=1e-5)
    assert recalibrate_batch_norm(keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]), batches) == 0


def test_validation_inside_fit_sees_recalibrated_statistics_and_data_order_is_kept():
    x, y = _data()
    model = _model()
    callback = BatchNormCalibration([(x[:48], y[:48]), (x[48:], y[48:])])
    model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=32, callbacks=[callback], verbose=0)
    np.testing.assert_allclose(model.get_layer("bn").moving_mean, x.mean(axis=0), rtol=1e-5)
    assert len(callback.batches) == 2


def test_without_validation_the_statistics_are_recalibrated_at_the_end_of_each_epoch():
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, batch_size=32, callbacks=[BatchNormCalibration([(x, y)])], verbose=0)
    np.testing.assert_allclose(model.get_layer("bn").moving_mean, x.mean(axis=0), rtol=1e-5)
    # a plain fit leaves them mostly at their initial values: what the callback fixes
    plain = _model()
    plain.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.abs(plain.get_layer("bn").moving_mean - x.mean(axis=0)).max() > 4.0


def test_default_callbacks_calibrate_only_with_training_data(tmp_path):
    x, y = _data()
    assert not any(isinstance(c, BatchNormCalibration) for c in default_callbacks(tmp_path / "a"))
    callbacks = default_callbacks(tmp_path / "b", training_data=(x, y))
    assert [type(c).__name__ for c in callbacks[1:3]] == ["EpochOrder", "BatchNormCalibration"]


@pytest.mark.long_training
def test_vgg16_default_configuration_validates_well_above_chance_from_the_first_epochs(tmp_path):
    # the bundled digits at 32x32: ~10 steps an epoch, where Keras's momentum of 0.99 leaves the
    # statistics of the initial weights in place and validation stayed at 0.07-0.15 for 6 epochs
    from recipes import config
    from recipes.training import train

    settings = config.resolve("vgg16", flags={"epochs": 3})
    run_dir, metrics = train(settings, tmp_path / "vgg", verbose=0, log=lambda *a: None)
    history = np.genfromtxt(run_dir / "history.csv", delimiter=",", names=True)
    assert history["val_accuracy"][-1] > 0.6, history["val_accuracy"]
    assert metrics["accuracy"] > 0.6, metrics
