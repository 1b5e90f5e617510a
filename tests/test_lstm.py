import keras
import numpy as np
import pytest

from recipes import build_lstm
from recipes.registry import get_spec


def test_defaults_are_the_keras_io_imdb_model():
    model = build_lstm()
    assert model.count_params() == 2_757_761
    assert [layer.name for layer in model.layers] == [
        "tokens",
        "embedding",
        "bidirectional1",
        "bidirectional2",
        "predictions",
    ]
    assert model.get_layer("bidirectional1").forward_layer.units == 64
    assert model.input_shape == (None, None) and model.input.dtype == "int32"
    assert model.output_shape == (None, 1)  # binary: one sigmoid unit
    assert model.loss == "binary_crossentropy"
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert get_spec("lstm").inputs == "sequence"


def test_masking_makes_padding_irrelevant_and_costs_no_parameters(tmp_path):
    kwargs = dict(vocab_size=50, embedding_dim=8, units=(8, 8), compile=False)
    model = build_lstm(**kwargs)
    unmasked = build_lstm(mask_zero=False, **kwargs)
    assert model.count_params() == unmasked.count_params()
    unmasked.set_weights(model.get_weights())
    tokens = np.array([[5, 9, 2, 7, 31]])
    padded = np.concatenate([np.zeros((1, 7), "int64"), tokens], axis=1)  # pad_sequences pads in front
    out = np.asarray(model(tokens))
    np.testing.assert_allclose(model(padded), out, rtol=1e-5)
    np.testing.assert_allclose(unmasked(tokens), out, rtol=1e-5)
    assert not np.allclose(unmasked(padded), out, rtol=1e-5)
    # The mask survives saving.
    model.save(tmp_path / "lstm.keras")
    restored = keras.models.load_model(tmp_path / "lstm.keras")
    assert restored.get_layer("embedding").mask_zero
    np.testing.assert_allclose(restored(padded), out, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["max", "mean", "max_mean"])
def test_pooling_reads_the_real_steps_only_and_survives_saving(tmp_path, pooling):
    kwargs = dict(vocab_size=50, embedding_dim=8, units=(8,), pooling=pooling, dropout=0.3, embedding_dropout=0.3)
    model = build_lstm(**kwargs, compile=False)
    names = [layer.name for layer in model.layers]
    assert names[:3] == ["tokens", "embedding", "embedding_dropout"] and names[-1] == "predictions"
    assert "max_pool" in names if "max" in pooling else "max_pool" not in names
    # the dropout after the last LSTM comes after the pooling: a max of dropped-out steps is not the max
    assert names.index("dropout1") > names.index("max_pool" if "max" in pooling else "mean_pool")
    tokens = np.array([[5, 9, 2, 7, 31, 0, 0, 0]])
    longer = np.concatenate([tokens, np.zeros((1, 9), "int64")], axis=1)  # TextVectorization pads at the end
    out = np.asarray(model(tokens))
    np.testing.assert_allclose(model(longer), out, rtol=1e-5)
    model.save(tmp_path / "pooled.keras")
    restored = keras.models.load_model(tmp_path / "pooled.keras")
    np.testing.assert_allclose(restored(longer), out, rtol=1e-5)


def test_masked_max_pooling_never_picks_a_padded_step():
    from recipes.models.lstm import MaskedGlobalMaxPooling1D

    x = -np.ones((1, 4, 2), "float32")  # every real value below the zeros a padded step would hold
    x[0, 3] = 0.0
    mask = np.array([[True, True, True, False]])
    pooled = np.asarray(MaskedGlobalMaxPooling1D()(x, mask=mask))
    np.testing.assert_array_equal(pooled, [[-1.0, -1.0]])
    assert np.asarray(keras.layers.GlobalMaxPooling1D()(x)).tolist() == [[0.0, 0.0]]  # why the layer exists


def test_real_valued_sequences_unidirectional_with_dropout():
    model = build_lstm(
        input_shape=(28, 28), vocab_size=None, num_classes=10, units=(16, 8), bidirectional=False, dropout=0.1
    )
    assert [layer.name for layer in model.layers] == ["inputs", "lstm1", "dropout1", "lstm2", "dropout2", "predictions"]
    assert model.get_layer("lstm1").output.shape == (None, 28, 16)  # stacked: whole sequences go up
    assert model.output_shape == (None, 10)
    assert model.loss == "sparse_categorical_crossentropy"
    # 28x28 images read row by row: (28 timesteps, 28 features).
    probabilities = np.asarray(model(np.random.default_rng(0).random((4, 28, 28), dtype=np.float32)))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_variable_length_real_valued_sequences():
    model = build_lstm(input_shape=(None, 3), vocab_size=None, num_classes=4, units=4, compile=False)
    assert model(np.zeros((2, 7, 3))).shape == (2, 4)
    assert model(np.zeros((2, 11, 3))).shape == (2, 4)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(vocab_size=1), ValueError, r"vocab_size must be >= 2\. Received: vocab_size=1"),
        (dict(vocab_size=100.0), TypeError, r"vocab_size must be an integer\. Received: vocab_size=100\.0"),
        (dict(embedding_dim=0), ValueError, r"embedding_dim must be >= 1\. Received: embedding_dim=0"),
        (
            dict(input_shape=(28, 28)),
            ValueError,
            r"input_shape must be \(timesteps,\) for token ids; pass vocab_size=None "
            r".*Received: input_shape=\(28, 28\)",
        ),
        (
            dict(input_shape=(0,)),
            ValueError,
            r"input_shape must contain positive integers\. Received: input_shape=\(0,\)",
        ),
        (dict(input_shape=100), TypeError, r"input_shape must be a tuple of 1 integers\. Received: input_shape=100"),
        (
            dict(input_shape=(None,), vocab_size=None),
            ValueError,
            r"input_shape must have 2 dimensions\. Received: input_shape=\(None,\)",
        ),
        (
            dict(input_shape=(28, None), vocab_size=None),
            ValueError,
            r"input_shape must give the number of features\. Received: input_shape=\(28, None\)",
        ),
        (dict(units=(64, 0)), ValueError, r"units must contain integers >= 1\. Received: units=\(64, 0\)"),
        (dict(units=()), TypeError, r"units must be an integer or a non-empty list of integers\. Received: units=\(\)"),
        (dict(dropout=-0.2), ValueError, r"dropout must be in \[0, 1\)\. Received: dropout=-0\.2"),
        (
            dict(recurrent_dropout=1.0),
            ValueError,
            r"recurrent_dropout must be in \[0, 1\)\. Received: recurrent_dropout=1\.0",
        ),
        (dict(mask_zero="yes"), TypeError, r"mask_zero must be True or False\. Received: mask_zero='yes'"),
        (dict(bidirectional=1), TypeError, r"bidirectional must be True or False\. Received: bidirectional=1"),
        (dict(num_classes=1), ValueError, r"num_classes must be >= 2\. Received: num_classes=1"),
        (dict(optimizer="adamm"), ValueError, r"Unknown optimizer\..*Received: optimizer='adamm'"),
        (
            dict(pooling="min"),
            ValueError,
            r"pooling must be one of last, max, mean, max_mean\. Received: pooling='min'",
        ),
        (
            dict(embedding_dropout=1.5),
            ValueError,
            r"embedding_dropout must be in \[0, 1\)\. Received: embedding_dropout=1\.5",
        ),
    ],
)
def test_bad_arguments_name_the_argument_and_value(kwargs, error, message):
    with pytest.raises(error, match=message):
        build_lstm(**{"vocab_size": 50, "units": 4, **kwargs})


def test_sigmoid_head_allows_a_single_label():
    model = build_lstm(vocab_size=50, units=4, num_classes=1, classifier_activation="sigmoid")
    assert model.output_shape == (None, 1)
    assert model.loss == "binary_crossentropy"


def test_short_known_lengths_are_unrolled_on_cpu_and_long_ones_are_not():
    def unrolled(model):
        return [l.forward_layer.unroll for l in model.layers if l.name.startswith("bidirectional")]

    assert unrolled(build_lstm(input_shape=(8, 8), vocab_size=None, units=(4, 4))) == [True, True]
    assert unrolled(build_lstm(input_shape=(200,), units=(4,))) == [False]
    assert unrolled(build_lstm(input_shape=(None,), units=(4,))) == [False]
    assert unrolled(build_lstm(input_shape=(8, 8), vocab_size=None, units=(4,), unroll=False)) == [False]


def test_unroll_gives_the_same_outputs_as_the_loop():
    import numpy as np

    x = np.random.default_rng(0).random((4, 6, 3), dtype=np.float32)
    loop = build_lstm(input_shape=(6, 3), vocab_size=None, units=(5, 5), unroll=False, compile=False)
    unrolled = build_lstm(input_shape=(6, 3), vocab_size=None, units=(5, 5), unroll=True, compile=False)
    unrolled.set_weights(loop.get_weights())
    np.testing.assert_allclose(loop.predict(x, verbose=0), unrolled.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_unroll_must_be_a_bool_or_auto():
    with pytest.raises(ValueError, match=r"unroll must be True, False or 'auto'\. Received: unroll='yes'"):
        build_lstm(unroll="yes")
