"""Multi-layer perceptron: the classic Keras MNIST MLP."""

from __future__ import annotations

import keras

from recipes.models import _common as c
from recipes.spec import register_model


@register_model(
    "mlp",
    task="classification",
    inputs="any",
    data=("image", "table", "sequence"),
    defaults={"epochs": 20, "batch_size": "auto", "optimizer": "adam"},
    reasons={
        "batch_size": "auto (64 on the 1,294 digits, 128 on 5,400 32x32 shapes) with Adam: 0.965 on the digits at "
        "5.1 s from start vs 5.8 s at 32 and not in 10 epochs at 128; 0.68 on the shapes at 14.5 s vs 30.7 s at 32; "
        "the example's 128 with RMSprop needed 6-12 epochs on the digits (scripts/bench/time_to_accuracy.py)",
        "optimizer": "see batch_size; the builder keeps the example's RMSprop",
    },
    description="Multi-layer perceptron (the classic Keras MNIST MLP: 2x Dense 512, dropout 0.2)",
)
def build_mlp(
    *,
    input_shape=(784,),
    num_classes: int = 10,
    hidden_units=(512, 512),
    activation: str = "relu",
    dropout: float = 0.2,
    classifier_activation: str = "auto",
    optimizer="rmsprop",
    learning_rate: float | None = None,
    compile: bool = True,
) -> keras.Model:
    """Builds a multi-layer perceptron classifier.

    The defaults are the classic Keras `mnist_mlp.py` example: Dense 512 ReLU,
    Dropout 0.2, Dense 512 ReLU, Dropout 0.2, softmax, trained with RMSprop.
    For `input_shape=(784,), num_classes=10` it has 669,706 parameters.
    Inputs of any shape are flattened first, so image batches go straight in.

    Reference:
    - [Keras MNIST MLP example](https://github.com/keras-team/keras/blob/2.0.0/examples/mnist_mlp.py)

    Args:
        input_shape: shape of one example, without the batch axis. Defaults to `(784,)`.
        num_classes: number of classes. Defaults to `10`.
        hidden_units: width of each hidden layer. Defaults to `(512, 512)`.
        activation: activation of the hidden layers. Defaults to `"relu"`.
        dropout: dropout rate after each hidden layer. Defaults to `0.2`.
        classifier_activation: `"auto"` (softmax, or one sigmoid unit when
            `num_classes=2`), `"softmax"` or `"sigmoid"`. Defaults to `"auto"`.
        optimizer: optimizer name or instance. Defaults to `"rmsprop"`.
        learning_rate: overrides the optimizer's learning rate. Defaults to `None`.
        compile: return the model compiled with cross-entropy and accuracy.
            Defaults to `True`.

    Returns:
        A `keras.Model` named `"mlp"`, compiled unless `compile=False`.

    Raises:
        ValueError, TypeError: for an invalid argument; the message names it.
    """
    if not isinstance(input_shape, (list, tuple)) or not input_shape:
        raise TypeError(f"input_shape must be a non-empty tuple of integers. Received: input_shape={input_shape!r}")
    input_shape = c.check_shape("input_shape", input_shape, rank=len(input_shape))
    hidden_units = c.check_int_tuple("hidden_units", hidden_units)
    c.check_activation("activation", activation)
    dropout = c.check_rate("dropout", dropout)
    c.head_units(num_classes, classifier_activation)

    inputs = keras.Input(shape=input_shape, name="inputs")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    for i, units in enumerate(hidden_units, start=1):
        x = keras.layers.Dense(units, activation=activation, name=f"dense{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout{i}")(x)
    outputs = c.classifier_head(x, num_classes, classifier_activation)
    model = keras.Model(inputs, outputs, name="mlp")
    return c.compile_classifier(model, optimizer=optimizer, learning_rate=learning_rate, compile=compile)
