"""Hardware plan: which devices, distribution strategy, precision and compile settings to train with.

```python
from recipes import hardware
plan = hardware.configure()          # or configure(strategy="mirrored", precision="float32", ...)
print(plan.describe())
# devices: CPU:0 (2 cores) | strategy: default (1 replica) | precision: float32 | jit: off | ...
with plan.strategy.scope():
    model = build_vgg16(input_shape=(32, 32, 3), compile=False)
    model.compile(..., jit_compile=plan.jit_compile, steps_per_execution=plan.steps_per_execution)
```

What "auto" picks, and why:

- GPUs: memory growth is turned on for every GPU (TensorFlow otherwise reserves
  all GPU memory at start). Several GPUs get a `MirroredStrategy` over all of them.
  `mixed_float16` when every GPU has compute capability >= 7.0 (Tensor Cores).
  XLA stays off: not measured on a GPU here, and cuDNN LSTMs and the random
  augmentation layers do not support it. `steps_per_execution` stays at Keras's 1
  (not measured on a GPU here). Under a `MirroredStrategy` it must stay 1: more fails
  inside `fit()` with Keras 3.15 / TF 2.21 (keras-team/keras#19246).
- CPUs: only settings measured faster by `scripts/bench/cpu_settings.py`. On the
  machine this was written on (AMD EPYC, 2 cores, AVX2, no AVX-512/AMX; TF 2.21,
  Keras 3.15), median samples/s relative to float32, no XLA, steps_per_execution=1.
  The cores were shared with 4 other jobs (load 3-8), so single rounds varied by
  50-150%. Three runs (A: 5 rounds of 32 CNN / 128 MLP steps; B: 3 rounds of ~1 s;
  C: 5 rounds of ~2 s):

  | setting                                  | CNN 32x32x3 b64, A / B / C | MLP 784-512-512 b128, A / B / C |
  |---|---|---|
  | steps_per_execution=8                    | 1.30x / 1.57x / 1.20x | 1.03x / 1.44x / 2.08x |
  | steps_per_execution=32                   | 1.27x / 1.57x / 1.47x | 0.93x / 0.93x / 0.99x |
  | jit_compile=True                         | 0.25x / 0.80x / 0.39x | 0.78x / 0.64x / 0.66x |
  | mixed_bfloat16 (emulated: no bf16 units) | 0.12x / 0.20x / 0.16x | 0.63x / 0.73x / 0.99x |

  so CPUs get float32, no XLA, steps_per_execution=8 (never slower; 32 is, on the MLP).
  CPUs with bf16 units (`avx512_bf16`, or AMX: `amx_bf16` and `amx_tile` in
  /proc/cpuinfo) run bf16 natively through oneDNN; there precision is chosen per
  recipe (`configure(recipe=...)`): `mixed_bfloat16` for the recipes that
  `scripts/bench/cpu_settings.py --recipes` measured faster in bf16 with no loss of
  held-out quality (`CPU_BF16_RECIPES`), float32 for the others. Measured on an AMD
  EPYC with AVX-512 and `avx512_bf16` (no AMX); the AMX branch uses the same list.
"""

from __future__ import annotations

import functools
import os

import keras

from recipes import _optional
from recipes._checks import PRECISIONS, STRATEGIES, check_choice, is_int
from recipes._hardware_plan import (
    HardwarePlan,
    LocalDistribution,
    _plan,
    determinism,
    is_tf_strategy,
    make_deterministic,
)

# The public names, in the order of the reference (the plan and the devices' set-up live in
# recipes._hardware_plan and recipes._tf_devices).
__all__ = [
    "CPU_STEPS_PER_EXECUTION",
    "JAX_CPU_STEPS_PER_EXECUTION",
    "JAX_CPU_STEPS_WHY",
    "CPU_BF16_RECIPES",
    "CPU_EXTENSIONS",
    "MIN_FLOAT16_COMPUTE_CAPABILITY",
    "HardwarePlan",
    "configure",
    "make_deterministic",
    "determinism",
    "LocalDistribution",
    "has_gpu",
    "split_cpu",
    "cpu_flags",
    "has_amx",
    "has_bf16_units",
    "cpu_extensions",
    "describe_cpu_extensions",
    "cpu_model",
    "describe_machine",
]

# Measured (table above): 8 steps per tf.function call beat 1 and 32 on both models.
CPU_STEPS_PER_EXECUTION = 8
# JAX on CPUs: steps per jitted call (scripts/bench/backends.py); measured below.
JAX_CPU_STEPS_PER_EXECUTION = 1
JAX_CPU_STEPS_WHY = "8 measured no faster on a 2-core CPU (MLP 1.02-1.07x, CNN 0.89-0.94x)"
# Recipes measured faster in mixed_bfloat16 than in float32, with held-out quality within the
# benchmark's tolerance, on a CPU with bf16 units (scripts/bench/cpu_settings.py --recipes;
# the table is in the README). The others train in float32 there too.
# On an AMD EPYC with avx512_bf16 (2 shared cores), four runs: vgg16 1.85x, 1.00x (beside the
# test suite), 1.90x, 1.58x faster at the same held-out accuracy. The MLP (0.96x-1.33x), LSTM
# (0.81x-1.62x) and VAE (0.63x-1.08x) are within the noise; alexnet gained 1.1-1.6x but lost
# accuracy; the DCGAN 1.15-2.24x, with no quality measure that tells GAN samples apart.
CPU_BF16_RECIPES = frozenset({"vgg16"})
# The CPU features that decide correctness traps and the best precision, as shown to users.
CPU_EXTENSIONS = (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_bf16", "AVX512-BF16"), ("amx_bf16", "AMX"))
# Tensor Cores (Volta and newer) make float16 matmuls/convolutions several times faster.
MIN_FLOAT16_COMPUTE_CAPABILITY = (7, 0)


def configure(strategy="auto", precision="auto", jit="auto", steps_per_execution="auto", recipe=None) -> HardwarePlan:
    """Detects the hardware, turns on GPU memory growth, sets the precision policy; returns the plan.

    Call it before building models: it sets the global Keras dtype policy
    (`keras.mixed_precision.set_global_policy`), and GPU memory growth can only be
    set before TensorFlow initialises the GPUs (if it already has, growth is left as
    it is and `plan.memory_growth` says so). Calling it again is harmless.

    Args:
        strategy: `"auto"` (a `MirroredStrategy` over all GPUs when there are
            several, else the default strategy), `"default"` or `"none"` (the
            current `tf.distribute.get_strategy()`), `"mirrored"` (over all GPUs, or
            over the CPU's logical devices when there is no GPU; see `split_cpu`),
            `"onedevice"` (the first GPU, else the CPU), or a
            `tf.distribute.Strategy` instance, used as is. Defaults to `"auto"`.
        precision: `"auto"`, `"float32"`, `"mixed_float16"` or `"mixed_bfloat16"`.
            Defaults to `"auto"`.
        jit: `"auto"`, `True` or `False`: whether to compile with XLA. Defaults to `"auto"`.
        steps_per_execution: `"auto"` or an integer >= 1: training steps per
            `tf.function` call. Under a `MirroredStrategy` it must be 1: with
            Keras 3.15 / TF 2.21 more fails inside `fit()` (keras-team/keras#19246).
            Defaults to `"auto"`.
        recipe: the recipe name the plan is for (`"vgg16"`, ...), or `None`. On a
            CPU with bf16 units, `precision="auto"` picks `mixed_bfloat16` only for
            the recipes measured faster in it (`CPU_BF16_RECIPES`); without a
            recipe it stays float32. Defaults to `None`.

    Returns:
        A `HardwarePlan`.

    Raises:
        ValueError: for an invalid argument; the message names it and the value received.
    """
    backend = keras.backend.backend()
    if not is_tf_strategy(strategy):
        check_choice("strategy", strategy, STRATEGIES)
    elif backend != "tensorflow":
        raise ValueError(f"A tf.distribute.Strategy needs the TensorFlow backend; Keras runs on {backend}.")
    check_choice("precision", precision, PRECISIONS)
    if not (jit == "auto" or isinstance(jit, bool)):
        raise ValueError(f'jit must be "auto", True or False. Received: jit={jit!r}')
    if steps_per_execution != "auto" and (not is_int(steps_per_execution) or steps_per_execution < 1):
        raise ValueError(
            'steps_per_execution must be "auto" or an integer >= 1. '
            f"Received: steps_per_execution={steps_per_execution!r}"
        )

    if backend != "tensorflow":
        return _configure_other(backend, strategy, precision, jit, steps_per_execution, recipe)

    import tensorflow as tf

    from recipes._tf_devices import _enable_memory_growth, _gpu_details, _make_strategy

    gpus = tf.config.list_physical_devices("GPU")
    memory_growth = _enable_memory_growth(gpus)  # before anything below can initialise the GPUs
    details = [_gpu_details(gpu) for gpu in gpus]
    devices = [_describe_cpu()] + [
        f"GPU:{i} ({name}, compute {cc[0]}.{cc[1]})" if cc else f"GPU:{i} ({name})"
        for i, (name, cc) in enumerate(details)
    ]
    strategy, strategy_why = _make_strategy(strategy, num_gpus=len(gpus))
    mirrored = isinstance(strategy, tf.distribute.MirroredStrategy)

    steps_why = "requested"
    if steps_per_execution == "auto":
        if mirrored:
            steps_per_execution, steps_why = 1, "more fails under MirroredStrategy (keras#19246)"
        elif gpus:
            steps_per_execution, steps_why = 1, "Keras default; not measured on GPU"
        else:
            steps_per_execution, steps_why = (
                CPU_STEPS_PER_EXECUTION,
                "measured 1.2-1.6x (CNN), 1.0-2.1x (MLP) on a 2-core CPU",
            )
    elif mirrored and steps_per_execution > 1:
        # Keras 3.15 / TF 2.21: fit() stops with InvalidArgumentError "You must feed a value for
        # placeholder tensor" (keras-team/keras#19246); say so here rather than deep inside fit().
        raise ValueError(
            "steps_per_execution > 1 does not work under a MirroredStrategy with this Keras "
            f"(keras-team/keras#19246); use 1. Received: steps_per_execution={steps_per_execution!r}"
        )

    jit_why = "requested"
    if jit == "auto":
        jit, jit_why = (
            (False, "XLA not measured on GPU; cuDNN LSTM and augmentation layers do not support it")
            if gpus
            else (False, "XLA measured slower on a 2-core CPU (CNN 0.25-0.8x, MLP 0.64-0.78x)")
        )

    precision_why = "requested"
    if precision == "auto":
        precision, precision_why = _auto_precision(details, recipe)
    keras.mixed_precision.set_global_policy(precision)  # last: a bad argument above changes nothing

    return _plan(
        "tensorflow",
        devices,
        strategy,
        (precision, precision_why),
        (jit, jit_why),
        (steps_per_execution, steps_why),
        strategy_why,
        memory_growth,
    )


def _configure_other(backend, strategy, precision, jit, steps_per_execution, recipe):
    """`configure` on JAX and PyTorch (the arguments are checked already)."""
    if backend == "jax":
        import jax

        accelerators = [d for d in jax.local_devices() if d.platform != "cpu"]
        cpus = jax.local_devices(backend="cpu")
        devices = [_describe_cpu(len(cpus))] + [f"{d.platform.upper()}:{d.id} ({d.device_kind})" for d in accelerators]
        local = accelerators or cpus
        if jax.process_count() > 1:  # a job (recipes.distributed): the devices of every process
            if strategy not in ("auto", "mirrored"):
                raise ValueError(
                    f"strategy={strategy!r} trains in one process, but this one is in a job of "
                    f"{jax.process_count()} processes, which trains with keras.distribution.DataParallel: "
                    f"use 'auto' or 'mirrored'. Received: strategy={strategy!r}"
                )
            everywhere = jax.devices()
            devices = [f"{d.platform.upper()}:{d.id} (process {d.process_index})" for d in everywhere]
            # each process's training data comes sharded already (recipes.training reads its slice)
            distribution = keras.distribution.DataParallel(devices=everywhere, auto_shard_dataset=False)
            keras.distribution.set_distribution(distribution)
            strategy_obj, strategy_why = (
                LocalDistribution("data_parallel", len(everywhere), distribution),
                f"keras.distribution.DataParallel over the {len(everywhere)} devices of "
                f"{jax.process_count()} processes (this is process {jax.process_index()})",
            )
        elif strategy == "mirrored" or (strategy == "auto" and len(accelerators) > 1):
            distribution = keras.distribution.DataParallel(devices=local)
            keras.distribution.set_distribution(distribution)
            where = f"{len(local)} {'GPU' if accelerators else 'CPU'} devices"
            strategy_obj, strategy_why = (
                LocalDistribution("data_parallel", len(local), distribution),
                (f"keras.distribution.DataParallel over {where}"),
            )
        else:
            keras.distribution.set_distribution(None)
            strategy_obj = LocalDistribution("default" if strategy != "onedevice" else "onedevice")
            strategy_why = "one device" if strategy == "auto" else "requested"
        gpu_cc = [None] * len(accelerators)
        jit_auto = (True, "jax.jit: off measured 0.2x (MLP), 0.55-0.67x (CNN) on a 2-core CPU")
        spe_auto = (JAX_CPU_STEPS_PER_EXECUTION, JAX_CPU_STEPS_WHY) if not accelerators else (1, "Keras default on GPU")
    else:  # torch
        import torch

        n_gpus = torch.cuda.device_count()
        gpu_cc = [torch.cuda.get_device_capability(i) for i in range(n_gpus)]
        devices = [_describe_cpu(1)] + [
            f"GPU:{i} ({torch.cuda.get_device_name(i)}, compute {cc[0]}.{cc[1]})" for i, cc in enumerate(gpu_cc)
        ]
        if strategy == "mirrored":
            raise ValueError(
                "strategy='mirrored' trains on several devices in sync, which Keras 3.15 does not offer on PyTorch "
                "(its keras.distribution is JAX-only): use --backend jax or tensorflow. Received: strategy='mirrored'"
            )
        strategy_obj = LocalDistribution("default" if strategy != "onedevice" else "onedevice")
        strategy_why = "one device" + (": Keras 3.15 has no multi-device training on PyTorch" if n_gpus > 1 else "")
        if steps_per_execution not in ("auto", 1):
            raise ValueError(
                "steps_per_execution must be 1 with the PyTorch backend (Keras runs one step a call there). "
                f"Received: steps_per_execution={steps_per_execution!r}"
            )
        jit_auto = (False, "torch.compile measured 0.8-1.0x of eager on a 2-core CPU, after 10-50 s compiling")
        spe_auto = (1, "the PyTorch backend runs one step a call")

    jit, jit_why = jit_auto if jit == "auto" else (jit, "requested")
    if steps_per_execution == "auto":
        steps_per_execution, steps_why = spe_auto
    else:
        steps_why = "requested"
    precision_why = "requested"
    if precision == "auto":
        if gpu_cc:
            precision, precision_why = _auto_precision([(None, cc) for cc in gpu_cc], recipe)
        else:
            precision, precision_why = "float32", f"bf16 on CPUs measured on TensorFlow only, not on {backend}"
    keras.mixed_precision.set_global_policy(precision)
    return _plan(
        backend,
        devices,
        strategy_obj,
        (precision, precision_why),
        (jit, jit_why),
        (steps_per_execution, steps_why),
        strategy_why,
        _memory_note(backend) if gpu_cc or (backend == "jax" and devices[1:]) else "n/a",
    )


def _memory_note(backend) -> str:
    if backend == "torch":
        return "on demand (PyTorch's caching allocator)"
    if os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "").lower() == "false":
        return "on (XLA_PYTHON_CLIENT_PREALLOCATE=false)"
    return "off: JAX preallocates 75% (set XLA_PYTHON_CLIENT_PREALLOCATE=false before JAX starts)"


@functools.lru_cache(maxsize=1)
def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset:
    """The CPU feature flags the kernel reports (`avx2`, `amx_bf16`, ...); empty where there is no /proc/cpuinfo."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_amx() -> bool:
    """Whether the CPU has AMX tiles with bf16 (Intel Sapphire Rapids and newer)."""
    return {"amx_bf16", "amx_tile"} <= cpu_flags()


def has_bf16_units() -> bool:
    """Whether the CPU computes bf16 natively: `avx512_bf16` (AMD Zen 4, Intel Cooper Lake
    and newer) or AMX. Elsewhere bf16 is emulated and measured several times slower."""
    return "avx512_bf16" in cpu_flags() or has_amx()


def cpu_extensions() -> list[str]:
    """The CPU's vector extensions that matter here, e.g. `["AVX2", "AVX-512", "AVX512-BF16"]`."""
    flags = cpu_flags()
    return [label for flag, label in CPU_EXTENSIONS if flag in flags]


def describe_cpu_extensions() -> str:
    """One phrase: `"AVX2, AVX-512, AVX512-BF16; no AMX"`, or `"none of AVX2/AVX-512/AMX reported"`."""
    found = cpu_extensions()
    missing = [label for _, label in CPU_EXTENSIONS if label not in found]
    if not found:
        return f"none of {'/'.join(label for _, label in CPU_EXTENSIONS)} reported"
    return ", ".join(found) + (f"; no {', '.join(missing)}" if missing else "")


def cpu_model() -> str:
    """The CPU's model name, e.g. `"AMD EPYC 9B14"`, else the machine type."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def has_gpu() -> bool:
    """Whether the Keras backend sees a GPU (on TensorFlow, without initialising the devices)."""
    return _gpu_count() > 0


def split_cpu(n: int) -> None:
    """Splits the CPU into `n` TensorFlow logical devices, so `configure(strategy="mirrored")` runs `n`
    replicas on the TensorFlow backend (see `recipes._tf_devices.split_cpu`). On JAX, set
    `XLA_FLAGS=--xla_force_host_platform_device_count=N` before JAX starts instead.

    Raises:
        MissingDependency: where TensorFlow is not installed (one line naming the extra).
    """
    _optional.require_tensorflow("split_cpu (TensorFlow's logical CPU devices)")
    from recipes._tf_devices import split_cpu as tf_split_cpu

    tf_split_cpu(n)


def _versions() -> str:
    """`"Keras 3.15.1 on jax 0.10.2"`, with TensorFlow's version where it is installed (tf.data)."""
    import importlib.metadata

    def version(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    backend = keras.backend.backend()
    text = f"Keras {keras.__version__} on {backend}"
    if backend != "tensorflow":
        text += f" {version(backend) or '?'}"
    tf_version = version("tensorflow") or version("tensorflow-cpu")
    return text + (f", TF {tf_version}" if tf_version else ", no TensorFlow")


def _gpu_count() -> int:
    """The GPUs the Keras backend sees."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return sum(d.platform == "gpu" for d in jax.local_devices())
    if backend == "torch":
        import torch

        return torch.cuda.device_count()
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def describe_machine() -> str:
    """One line for benchmark headers: CPU model, cores, vector extensions, GPUs, versions."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = _gpu_count()
    return (
        f"CPU: {cpu_model()}, {cores} cores ({describe_cpu_extensions()}); "
        f"{gpus or 'no'} GPU{'s' if gpus != 1 else ''}; {_versions()}"
    )


def _describe_cpu(split=None) -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if split is None:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        split = len(tf.config.get_logical_device_configuration(cpu) or [None])
    logical = f", {split} logical devices" if split > 1 else ""
    return f"CPU:0 ({cores} cores{logical}; {describe_cpu_extensions()})"


def _auto_precision(details, recipe=None):
    if details:
        ccs = [cc for _, cc in details]
        if all(cc and tuple(cc) >= MIN_FLOAT16_COMPUTE_CAPABILITY for cc in ccs):
            return "mixed_float16", "every GPU has compute capability >= 7.0"
        return "float32", "a GPU has compute capability < 7.0 or unknown"
    if not has_bf16_units():
        return (
            "float32",
            "no bf16 units (avx512_bf16/AMX); bf16 measured slower without them (CNN 0.12-0.2x, MLP 0.63-0.99x)",
        )
    if recipe is None:
        return "float32", "CPU has bf16 units; bf16 is chosen per recipe; name the recipe to see its choice"
    if recipe in CPU_BF16_RECIPES:
        return "mixed_bfloat16", f"CPU has bf16 units; {recipe} measured faster in bf16 at the same quality"
    return "float32", f"CPU has bf16 units, but {recipe} measured no faster in bf16 or lost quality"
