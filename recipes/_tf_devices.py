"""TensorFlow's devices as `recipes.hardware.configure` sets them up: whether there is a GPU, the
CPU split into logical devices, GPU memory growth and details, and the `tf.distribute` strategy."""

from __future__ import annotations

import tensorflow as tf

from recipes._checks import is_int


def has_gpu() -> bool:
    """Whether TensorFlow sees a GPU (this does not initialise the devices)."""
    return bool(tf.config.list_physical_devices("GPU"))


def split_cpu(n: int) -> None:
    """Splits the CPU into `n` logical devices, so `configure(strategy="mirrored")` runs `n` replicas.

    For testing multi-device code on a machine without several GPUs. It must run
    before TensorFlow initialises its devices (before any tensor, model or
    `configure(strategy="mirrored")`); calling it again with the same `n` is harmless.

    Raises:
        ValueError: if `n` is not an integer >= 1.
        RuntimeError: if TensorFlow has already initialised its devices with another split.
    """
    if not is_int(n) or n < 1:
        raise ValueError(f"n must be an integer >= 1. Received: n={n!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if len(current or [None]) == n:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        raise RuntimeError(
            "split_cpu must be called before TensorFlow initialises its devices "
            f"(before any tensor or model is created). Received: n={n}"
        ) from None


def _enable_memory_growth(gpus) -> str:
    if not gpus:
        return "n/a"
    for gpu in gpus:
        if tf.config.experimental.get_memory_growth(gpu):
            continue
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # TF has initialised the GPUs already; growth can no longer change
            return "unchanged (TF already initialised)"
        except ValueError:  # the GPU was split into logical devices with a memory limit
            return "unchanged (GPU has a logical device configuration)"
    return "on"


def _gpu_details(gpu):
    """(name, compute capability tuple or None) of a physical GPU."""
    try:
        details = tf.config.experimental.get_device_details(gpu)
    except Exception:  # some builds/devices give no details; treat as unknown
        details = {}
    return details.get("device_name", gpu.name.split("device:")[-1]), details.get("compute_capability")


def _make_strategy(name, num_gpus):
    if isinstance(name, tf.distribute.Strategy):
        return name, "given"
    if name == "auto":
        if num_gpus > 1:
            return tf.distribute.MirroredStrategy(), f"{num_gpus} GPUs"
        return tf.distribute.get_strategy(), "one device"
    if name in ("default", "none"):
        return tf.distribute.get_strategy(), "requested"
    kind = "GPU" if num_gpus else "CPU"
    devices = [d.name for d in tf.config.list_logical_devices(kind)]
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices), f"requested, over {len(devices)} {kind} devices"
    return tf.distribute.OneDeviceStrategy(devices[0]), f"requested, on {devices[0]}"
