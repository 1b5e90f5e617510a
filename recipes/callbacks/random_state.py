"""A run's random state across a resume: the model's seed generators and Keras's global seed
(`random_state`, `KeepRandomState`), and the order of each epoch's data (`EpochOrder`)."""

from __future__ import annotations

import base64

import keras
import numpy as np


def _seed_states(model) -> list:
    """The state variables of the model's `SeedGenerator`s: its variables that are not weights."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def random_state(model) -> dict:
    """The random-number state training draws from: each `SeedGenerator` of `model` and its
    layers (dropout, sampling...), in the model's order, and on PyTorch the global generators
    (Keras's torch dropout draws from them when the layer has no seed of its own). Keras's
    `.keras` and `.weights.h5` files leave these out, so a rebuilt model draws anew."""
    state = {
        "seed_generators": [
            {"path": v.path, "value": np.asarray(keras.ops.convert_to_numpy(v)).tolist()} for v in _seed_states(model)
        ]
    }
    if keras.backend.backend() == "torch":
        import torch

        state["torch"] = base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["torch_cuda"] = [
                base64.b64encode(s.numpy().tobytes()).decode() for s in torch.cuda.get_rng_state_all()
            ]
    return state


def restore_random_state(model, state: dict) -> None:
    """Sets the random-number state of `model` (and PyTorch's) to `state`, from `random_state`.

    Raises:
        ValueError: when `state` is not one of this model's: another count or shape of generators.
    """
    variables = _seed_states(model)
    generators = state["seed_generators"]
    shapes = [tuple(np.shape(s["value"])) for s in generators]
    if shapes != [tuple(v.shape) for v in variables]:
        raise ValueError(
            f"the saved random state holds {len(generators)} generator(s) of shapes {shapes}, but the model has "
            f"{len(variables)} of shapes {[tuple(v.shape) for v in variables]}"
        )
    for variable, s in zip(variables, generators):
        variable.assign(np.asarray(s["value"], dtype=variable.dtype))
    if keras.backend.backend() == "torch" and "torch" in state:
        import torch

        def as_tensor(text):
            return torch.from_numpy(np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy())

        torch.set_rng_state(as_tensor(state["torch"]))
        if "torch_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([as_tensor(s) for s in state["torch_cuda"]])


class KeepRandomState(keras.callbacks.Callback):
    """What runs between training epochs leaves the model's random-number state as it found it.

    Validation (the VAE evaluates with a sampled code) and the callbacks that run the model
    (reconstructions encode with the sampling layer) would otherwise move its training
    stream, so training would depend on whether and how often they run, and a job of
    several processes (where they run on a copy of the model) would train otherwise than
    one process. `keep_random_state()` returns the two ends: the first callback notes the
    state when an epoch's training ends and before each validation; the second, placed
    after everything else but the backup, puts it back.
    """

    def __init__(self, shared: dict, restores: bool):
        super().__init__()
        self.shared, self.restores = shared, restores

    def on_train_begin(self, logs=None):
        self.shared.clear()

    def on_test_begin(self, logs=None):
        if not self.restores and self.model is not None:
            self.shared["test"] = random_state(self.model)

    def on_test_end(self, logs=None):
        if not self.restores and "test" in self.shared:
            restore_random_state(self.model, self.shared.pop("test"))

    def on_epoch_end(self, epoch, logs=None):
        if self.restores:
            if "epoch" in self.shared:
                restore_random_state(self.model, self.shared.pop("epoch"))
        else:
            self.shared["epoch"] = random_state(self.model)


def keep_random_state() -> tuple[KeepRandomState, KeepRandomState]:
    """`KeepRandomState`'s two ends: put the first before every callback, the second last but the backup."""
    shared = {}
    return KeepRandomState(shared, restores=False), KeepRandomState(shared, restores=True)


class EpochOrder(keras.callbacks.Callback):
    """Makes each epoch read the training data in its own order, the one an uninterrupted
    run reads in that epoch, also after a resume (`recipes.datasets.set_epoch`).

    `tf.data`'s reshuffling starts again from the first order in a new process; the
    pipelines of `load_dataset` take each epoch's order from the seed and the epoch
    alone, and this callback tells them the epoch. It does nothing for other data.

    Args:
        data: the training data given to `fit()`.
    """

    def __init__(self, data):
        super().__init__()
        self.data = data

    def on_epoch_begin(self, epoch, logs=None):
        from recipes.datasets import set_epoch

        set_epoch(self.data, epoch)
