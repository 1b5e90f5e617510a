"""The plan `recipes.hardware.configure` returns: `HardwarePlan`, the `LocalDistribution` it holds on
JAX and PyTorch, the reasons it gives, and how a seeded run is made to repeat (`make_deterministic`)."""

from __future__ import annotations

import dataclasses
import os
import sys

import keras

from recipes import _optional


@dataclasses.dataclass
class HardwarePlan:
    """What `configure()` decided. Use it to build and compile a model:

    ```python
    with plan.strategy.scope():
        model = build(...)
        model.compile(..., jit_compile=plan.jit_compile,
                      steps_per_execution=plan.steps_per_execution)
    ```

    Attributes:
        devices: the devices found, e.g. `["CPU:0 (2 cores)", "GPU:0 (NVIDIA A100, compute 8.0)"]`.
        strategy: the `tf.distribute.Strategy` to build models under; on JAX and PyTorch a
            `LocalDistribution` with the same `scope()` and `num_replicas_in_sync`.
        precision: the Keras dtype policy name set globally, e.g. `"mixed_float16"`.
        jit_compile: pass to `model.compile(jit_compile=...)`.
        steps_per_execution: pass to `model.compile(steps_per_execution=...)`.
        num_replicas: model replicas trained in sync (the global batch is split between them).
        reasons: short explanations of each choice, e.g. `"jit off: XLA measured 0.2x on this CPU"`.
        memory_growth: `"on"`, `"n/a"` (no GPU), or why it could not be set.
        backend: the Keras backend the plan is for: `"tensorflow"`, `"jax"` or `"torch"`.
    """

    devices: list
    strategy: object  # tf.distribute.Strategy | LocalDistribution
    precision: str
    jit_compile: bool
    steps_per_execution: int
    num_replicas: int
    reasons: list = dataclasses.field(default_factory=list)
    memory_growth: str = "n/a"
    backend: str = "tensorflow"

    @property
    def data_parallel(self) -> bool:
        """Whether it trains with a `keras.distribution.DataParallel` over several devices (JAX: a
        job of several processes, or several devices of one process)."""
        return self.backend == "jax" and self.num_replicas > 1

    @property
    def strategy_name(self) -> str:
        return _strategy_name(self.strategy)

    def describe(self) -> str:
        """One line: backend, devices, strategy, precision, jit, steps_per_execution, GPU memory growth."""
        replicas = f"{self.num_replicas} replica{'s' if self.num_replicas != 1 else ''}"
        return (
            f"backend: {self.backend} | devices: {', '.join(self.devices)} | "
            f"strategy: {self.strategy_name} ({replicas}) | "
            f"precision: {self.precision} | jit: {'on' if self.jit_compile else 'off'} | "
            f"steps_per_execution: {self.steps_per_execution} | GPU memory growth: {self.memory_growth}"
        )


def make_deterministic() -> str:
    """Makes the same seed repeat a run exactly on this machine and backend (what `recipes
    train` does after seeding); returns `determinism(backend)`.

    Where TensorFlow is installed, tf.data feeds every backend, so TensorFlow's op determinism is
    on for all of them (TensorFlow's random ops then need a seed: `keras.utils.set_random_seed`);
    without it the PyDataset engine's order is a function of the seed and the epoch alone.
    """
    backend = keras.backend.backend()
    if _optional.has_tensorflow():
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    if backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)  # warn, not fail, for an op without one
        torch.backends.cudnn.benchmark = False
    return determinism(backend)


def determinism(backend) -> str:
    """How `make_deterministic` makes `backend` repeat a run (one line for the plan)."""
    if backend == "tensorflow":
        return "tf.config.experimental.enable_op_determinism"
    if backend == "jax":
        flag = "--xla_gpu_deterministic_ops=true"
        if flag in os.environ.get("XLA_FLAGS", ""):
            return f"XLA's CPU ops are deterministic; GPU ops by {flag} (XLA_FLAGS)"
        return f"XLA's CPU ops are deterministic; GPU ops only with XLA_FLAGS={flag} (`recipes` sets it)"
    return "torch.use_deterministic_algorithms (CUBLAS_WORKSPACE_CONFIG=:4096:8 on GPU, set by `recipes`)"


def _plan(backend, devices, strategy, precision, jit, steps_per_execution, strategy_why, memory_growth):
    """The `HardwarePlan` of `configure`'s choices, each `(value, why)`, with its reasons."""
    (precision, precision_why), (jit, jit_why), (steps, steps_why) = precision, jit, steps_per_execution
    reasons = [
        f"strategy {_strategy_name(strategy)}: {strategy_why}",
        f"precision {precision}: {precision_why}",
        f"jit {'on' if jit else 'off'}: {jit_why}",
        f"steps_per_execution {steps}: {steps_why}",
        f"determinism under a seed: {determinism(backend)}",
    ]
    return HardwarePlan(
        devices=devices,
        strategy=strategy,
        precision=precision,
        jit_compile=jit,
        steps_per_execution=int(steps),
        num_replicas=strategy.num_replicas_in_sync,
        reasons=reasons,
        memory_growth=memory_growth,
        backend=backend,
    )


class LocalDistribution:
    """A plan's distribution on JAX or PyTorch, with the `scope()` and `num_replicas_in_sync`
    of a `tf.distribute.Strategy`. On JAX a `keras.distribution.DataParallel` over several
    devices is set globally by `configure` (Keras reads it in `fit()`), so `scope()` has
    nothing more to do."""

    def __init__(self, name: str, num_replicas: int = 1, distribution=None):
        self.name, self.num_replicas_in_sync, self.distribution = name, num_replicas, distribution

    def scope(self):
        import contextlib

        return contextlib.nullcontext()


def is_tf_strategy(strategy) -> bool:
    """`strategy` is a `tf.distribute.Strategy` (never, where TensorFlow was not imported)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and hasattr(tf, "distribute") and isinstance(strategy, tf.distribute.Strategy)


def _strategy_name(strategy) -> str:
    if isinstance(strategy, LocalDistribution):
        return strategy.name
    import tensorflow as tf  # a strategy of TensorFlow's: imported already

    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    if isinstance(strategy, tf.distribute.OneDeviceStrategy):
        return "onedevice"
    if type(strategy).__name__ == "_DefaultDistributionStrategy":
        return "default"
    return type(strategy).__name__
