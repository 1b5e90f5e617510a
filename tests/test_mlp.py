import pytest

from recipes import build_mlp


def test_classic_keras_mnist_mlp_parameter_count():
    model = build_mlp(input_shape=(784,), num_classes=10)
    assert model.count_params() == 669_706
    assert [l.name for l in model.layers] == ["inputs", "dense1", "dropout1", "dense2", "dropout2", "predictions"]


def test_image_inputs_are_flattened():
    model = build_mlp(input_shape=(28, 28, 1), num_classes=10)
    assert model.count_params() == 669_706
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(num_classes=1), ValueError, r"num_classes must be >= 2\. Received: num_classes=1"),
        (dict(num_classes=2.5), TypeError, r"num_classes must be an integer\. Received: num_classes=2\.5"),
        (dict(dropout=-0.1), ValueError, r"dropout must be in \[0, 1\)\. Received: dropout=-0\.1"),
        (
            dict(activation="sigmoidal"),
            ValueError,
            r"Unknown activation for activation\. Received: activation='sigmoidal'",
        ),
        (dict(optimizer="adamm"), ValueError, r"Unknown optimizer\..*Received: optimizer='adamm'"),
        (dict(learning_rate=0), ValueError, r"learning_rate must be a positive number\. Received: learning_rate=0"),
        (
            dict(input_shape=(0, 4)),
            ValueError,
            r"input_shape must contain positive integers\. Received: input_shape=\(0, 4\)",
        ),
        (
            dict(input_shape=784),
            TypeError,
            r"input_shape must be a non-empty tuple of integers\. Received: input_shape=784",
        ),
        (dict(hidden_units=(512, -1)), ValueError, r"hidden_units must contain integers >= 1"),
        (dict(classifier_activation="tanh"), ValueError, r"classifier_activation must be one of"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(kwargs, error, message):
    with pytest.raises(error, match=message):
        build_mlp(**kwargs)


def test_sigmoid_head_allows_a_single_class():
    model = build_mlp(input_shape=(4,), num_classes=1, classifier_activation="sigmoid")
    assert model.output_shape == (None, 1)
