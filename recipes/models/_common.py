"""Argument checks, classifier heads and compilation shared by the builders.

Every public builder validates at its boundary with these helpers, so a bad
argument fails in one line that names the argument and the value received.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np

from recipes._checks import check_choice, check_int, check_int_tuple, check_rate, check_shape, is_int, is_real  # noqa: F401


def check_activation(name: str, value):
    """Returns `value` if Keras knows it as an activation (a name or a callable)."""
    if callable(value):
        return value
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        raise ValueError(f"Unknown activation for {name}. Received: {name}={value!r}") from None
    return value


def output_dtype():
    """float32 for the last layer under a mixed precision policy, so softmax/sigmoid stay stable."""
    return "float32" if keras.mixed_precision.global_policy().name.startswith("mixed") else None


def classifier_head(x, num_classes: int, classifier_activation: str = "auto", name: str = "predictions"):
    """The final Dense layer of a classifier.

    `"auto"` gives a softmax over `num_classes` units, except for a binary problem
    (`num_classes=2`), which gets one sigmoid unit. `"softmax"`/`"sigmoid"` force
    that activation with `num_classes` units (`"sigmoid"` allows `num_classes=1`).
    """
    units, activation = head_units(num_classes, classifier_activation)
    return keras.layers.Dense(units, activation=activation, name=name, dtype=output_dtype())(x)


def head_units(num_classes, classifier_activation):
    """Returns `(units, activation)` of the head, validating both arguments."""
    check_choice("classifier_activation", classifier_activation, ("auto", "softmax", "sigmoid"))
    minimum = 1 if classifier_activation == "sigmoid" else 2
    num_classes = check_int("num_classes", num_classes, minimum=minimum)
    if classifier_activation == "auto":
        return (1, "sigmoid") if num_classes == 2 else (num_classes, "softmax")
    return num_classes, classifier_activation


def make_optimizer(optimizer, learning_rate=None):
    """Returns a fresh Keras optimizer from a name or an instance.

    Raises:
        ValueError: for an unknown name or a non-positive learning rate.
    """
    if learning_rate is not None:
        if not is_real(learning_rate) or learning_rate <= 0:
            raise ValueError(f"learning_rate must be a positive number. Received: learning_rate={learning_rate!r}")
    if isinstance(optimizer, keras.optimizers.Optimizer):
        if learning_rate is not None:
            optimizer.learning_rate = learning_rate
        return optimizer
    opt = None
    if isinstance(optimizer, str):
        for name in dict.fromkeys((optimizer, optimizer.lower())):  # "adam", "Adam", "ADAM"
            try:
                opt = keras.optimizers.get(name)
                break
            except ValueError:
                continue
    if not isinstance(opt, keras.optimizers.Optimizer):
        raise ValueError(
            "Unknown optimizer. Expected a name keras.optimizers.get knows (adam, adamw, sgd, rmsprop, ...) "
            f"or a keras.optimizers.Optimizer. Received: optimizer={optimizer!r}"
        )
    if learning_rate is not None:
        opt.learning_rate = learning_rate
    return opt


def compile_classifier(model, *, optimizer, learning_rate, compile: bool, jit_compile="auto"):
    """Compiles a classifier for integer labels: cross-entropy that matches its head, accuracy.

    Validates `optimizer` and `learning_rate` even when `compile=False`.
    """
    opt = make_optimizer(optimizer, learning_rate)
    if not compile:
        return model
    head = model.layers[-1]
    binary = keras.activations.serialize(head.activation) == "sigmoid"
    loss = "binary_crossentropy" if binary else "sparse_categorical_crossentropy"
    model.compile(optimizer=opt, loss=loss, metrics=["accuracy"], jit_compile=jit_compile)
    return model


def build_optimizer(model) -> None:
    """Creates a compiled, built model's optimizer variables now, on TensorFlow, rather than in its
    first training step: a `tf.function` that creates variables is traced twice, and the step is
    the costliest trace of a run (first epoch of the VAE on the digits 2.4-3.5 s -> 1.7-2.0 s,
    of the MLP 1.1-1.2 s -> 0.6-1.0 s). JAX and PyTorch build it before their first step anyway."""
    optimizer = getattr(model, "optimizer", None)
    if (
        keras.backend.backend() == "tensorflow"
        and isinstance(optimizer, keras.optimizers.Optimizer)
        and not optimizer.built
        and model.built
        and model.trainable_variables
    ):
        optimizer.build(model.trainable_variables)


def batch_images(data):
    """The images of a `fit()` batch that is `images` or `(images, labels[, weights])`, as float32."""
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return keras.ops.cast(x, "float32")


_COMPILED = weakref.WeakKeyDictionary()  # model -> its jitted inference call (JAX)


def infer(model, x):
    """`model(x, training=False)`, on JAX as one compiled call of the whole model.

    Called eagerly, JAX compiles every operation of the model at every new shape: the VAE's
    and the DCGAN's sample grids, reconstructions and judge samples cost 175 compilations and
    about 5 s of a first epoch on 2 CPU cores (scripts/bench/jax_cpu.py). The jitted call is
    compiled once per batch shape, with the variables' current values as arguments, and
    leaves the model's state (the seed generators) as the eager call would.
    """
    from keras.src.backend.common.stateless_scope import in_stateless_scope

    if keras.backend.backend() != "jax" or in_stateless_scope():
        return model(x, training=False)
    call = _COMPILED.get(model)
    if call is None:
        import jax

        def stateless(trainable, non_trainable, x):
            return model.stateless_call(trainable, non_trainable, x, training=False)

        call = _COMPILED[model] = jax.jit(stateless)
    state = model.non_trainable_variables
    y, values = call([v.value for v in model.trainable_variables], [v.value for v in state], x)
    for variable, value in zip(state, values):
        variable.assign(value)
    return y


def batched(fn, x, batch_size):
    """Runs `fn` over `x` in batches; returns one float32 numpy array."""
    out = [
        keras.ops.convert_to_numpy(keras.ops.cast(fn(x[i : i + batch_size]), "float32"))
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out, axis=0)
