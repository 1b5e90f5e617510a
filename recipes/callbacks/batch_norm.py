"""Batch-normalisation statistics that match the weights they normalise (precise BN)."""

from __future__ import annotations

import keras
import numpy as np

from recipes.datasets._batches import batches, is_pipeline


def _batches_of(data):
    """The batches of a pipeline (either engine) as numpy arrays, or those of any other iterable as they are."""
    return batches(data) if is_pipeline(data) else iter(data)


def _takes_examples(data, max_examples: int, max_bytes: int) -> list:
    """The first batches of `data` as numpy arrays, up to `max_examples` examples or `max_bytes`."""
    batches, seen, size = [], 0, 0
    for batch in _batches_of(data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        x = np.asarray(x)
        if batches and size + x.nbytes > max_bytes:
            break
        batches.append(x)
        seen, size = seen + len(x), size + x.nbytes
        if seen >= max_examples:
            break
    return batches


def batch_norm_layers(model) -> list:
    """Every trainable `BatchNormalization` layer of `model` and of its nested models."""
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable:
            found.append(layer)
    return found


def recalibrate_batch_norm(model, data, *, max_examples: int = 4096) -> int:
    """Re-estimates the moving mean and variance of every batch-norm layer of `model`.

    Runs `model(x, training=True)` over batches of `data` (`(x, y)` or `x`, as
    `fit()` takes) with each layer's momentum set so that its moving statistics
    become the plain average of the batch statistics (momentum `k / (k + 1)` for
    batch `k`), then restores the momenta. Weights, optimizer and the random-number
    state (dropout) are as they were, so training goes on as it would have without it.

    Args:
        model: a built Keras model.
        data: an iterable of batches (a `tf.data.Dataset`, a `keras.utils.PyDataset`, a list of arrays).
        max_examples: stop after about this many examples. Defaults to `4096`.

    Returns:
        The number of examples used (0 when the model has no trainable batch norm).
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    from recipes.callbacks.checkpoints import random_state, restore_random_state

    momenta = [layer.momentum for layer in layers]
    seeds = random_state(model)
    seen = 0
    try:
        for k, batch in enumerate(_batches_of(data)):
            x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
            for layer in layers:
                layer.momentum = k / (k + 1)
            model(x, training=True)
            seen += len(x)
            if seen >= max_examples:
                break
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        restore_random_state(model, seeds)
    return seen


class BatchNormCalibration(keras.callbacks.Callback):
    """Re-estimates batch-norm statistics from the training data before each validation.

    Batch norm keeps moving averages of its batch statistics (momentum 0.99: about
    the last 100 steps) while the weights keep changing. On a small data set, with
    few steps an epoch, those averages describe the weights of epochs ago, and the
    model in inference mode (validation, predictions, saved checkpoints) can be near
    chance while it is right in training mode. This callback recomputes them for the
    current weights (Wu & Johnson, 2021, "precise BN") before the validation of each
    epoch, or at its end when there is no validation, so validation and the saved
    models see statistics that match their weights. It costs a forward pass over up
    to `max_examples` training examples an epoch; the examples are the first batches
    of `data`, read once when training begins (at most `max_bytes`), so the data's
    own shuffling is left as it was.

    Place it before the checkpoint callbacks. It does nothing for a model without
    trainable `BatchNormalization` layers, or one with its own `train_step` (a GAN's
    `call` is not what it trains).

    Args:
        data: the training data given to `fit()` (batched).
        max_examples: examples used per re-estimation. Defaults to `4096`.
        max_bytes: memory for the examples kept. Defaults to 256 MiB.

    Reference:
    - [Rethinking "Batch" in BatchNorm](https://arxiv.org/abs/2105.07576) (Wu & Johnson, 2021)
    """

    def __init__(self, data, *, max_examples: int = 4096, max_bytes: int = 256 * 2**20):
        super().__init__()
        self.data = data
        self.max_examples = max_examples
        self.max_bytes = max_bytes
        self.batches = None
        self._done = False
        self._fitting = False

    def on_train_begin(self, logs=None):
        own_step = type(self.model).train_step is not keras.Model.train_step
        self._fitting = bool(batch_norm_layers(self.model)) and not own_step
        if self._fitting and self.batches is None:
            self.batches = _takes_examples(self.data, self.max_examples, self.max_bytes)

    def on_train_end(self, logs=None):
        self._fitting = False

    def on_epoch_begin(self, epoch, logs=None):
        self._done = False

    def on_test_begin(self, logs=None):
        if self._fitting and not self._done:  # the validation inside fit(), not a later evaluate()
            recalibrate_batch_norm(self.model, self.batches, max_examples=self.max_examples)
            self._done = True

    def on_epoch_end(self, epoch, logs=None):
        self.on_test_begin()
