"""Measures which Keras training settings are fastest on this machine's CPU.

Compares, side by side in one process, a small CNN (conv-conv-pool-dense on
32x32x3, batch 64) and the classic MNIST MLP (`build_mlp`, batch 128) under:

- precision: `float32` vs `mixed_bfloat16`
- XLA: `jit_compile=False` vs `True`
- `steps_per_execution`: 1 vs 8 vs 32

Every model is built and warmed up (traced, XLA-compiled) first; then the
configurations are timed in interleaved rounds (A B C ... A B C ...), so a
neighbour's load on the shared cores hits them all alike, and the median round
is reported with its spread and the best round. Each configuration runs about
`--seconds` per round (whole executions, at least 4 steps). The results set the
CPU "auto" defaults of `recipes.hardware`.

    python scripts/bench/cpu_settings.py                      # ~3 minutes on 2 idle cores
    python scripts/bench/cpu_settings.py --repeats 3 --seconds 0.5
    python scripts/bench/cpu_settings.py --out cpu_settings.md

Data are random tensors: throughput does not depend on the values.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import re
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from recipes import build_mlp  # noqa: E402
from recipes.hardware import cpu_flags  # noqa: E402

# (precision, jit_compile, steps_per_execution); the first is the baseline. Each
# setting is measured alone and with 8 steps per execution, 32 only at float32 without
# XLA, to keep the run short: bf16 on a CPU without bf16 units can be ~10x slower.
CONFIGS = (
    ("float32", False, 1), ("float32", False, 8), ("float32", False, 32),
    ("float32", True, 1), ("float32", True, 8),
    ("mixed_bfloat16", False, 1), ("mixed_bfloat16", False, 8),
    ("mixed_bfloat16", True, 1), ("mixed_bfloat16", True, 8),
)


def build_cnn():
    """conv16-conv32-pool-dense64-softmax on 32x32x3 (CIFAR-sized), 10 classes."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="cnn")


WORKLOADS = {
    # name: (builder, example shape, batch size)
    "cnn": (build_cnn, (32, 32, 3), 64),
    "mlp": (lambda: build_mlp(input_shape=(784,), num_classes=10, compile=False), (784,), 128),
}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def dataset(shape, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((batch_size * 8, *shape), dtype=np.float32)
    y = rng.integers(0, 10, batch_size * 8).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().repeat().prefetch(2)


def prepare(workload, precision, jit, spe, seconds):
    """Builds, compiles and warms up one configuration; returns it with its number of timed steps."""
    builder, shape, batch_size = WORKLOADS[workload]
    keras.mixed_precision.set_global_policy(precision)
    model = builder()
    keras.mixed_precision.set_global_policy("float32")
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  jit_compile=jit, steps_per_execution=spe)
    data = dataset(shape, batch_size)
    model.fit(data, epochs=1, steps_per_epoch=spe, verbose=0, shuffle=False)  # trace + compile
    probe = max(spe, 4)
    step_time = time_fit(model, data, probe) / probe
    # about `seconds` per round, a whole number of executions, at least 4 steps
    steps = max(probe, spe * round(seconds / step_time / spe))
    return model, data, batch_size, steps

def time_fit(model, data, steps):
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per configuration")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="aim for this many seconds per configuration and round")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--out", type=pathlib.Path, help="also write the table to this markdown file")
    args = parser.parse_args()

    flags = cpu_flags()
    relevant = sorted(f for f in flags if re.fullmatch(r"amx\w*|avx512_bf16|avx512f|avx512_vnni|avx2", f))
    lines = [
        f"CPU: {cpu_model()}, {os.cpu_count()} cores, "
        f"flags: {', '.join(relevant) or 'none of amx/avx512'}; TF {tf.__version__}, Keras {keras.__version__}",
        f"{args.repeats} interleaved rounds; load average at start: "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}",
        "",
    ]
    configs = [(w, *c) for w in args.workloads for c in CONFIGS]
    prepared = {}
    t0 = time.perf_counter()
    for cfg in configs:
        prepared[cfg] = prepare(*cfg, args.seconds)
        print(f"warmed {cfg} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)

    rates = {cfg: [] for cfg in configs}  # samples/s per round
    for r in range(args.repeats):
        order = configs if r % 2 == 0 else configs[::-1]  # alternate direction: no config always first
        for cfg in order:
            model, data, batch_size, steps = prepared[cfg]
            rates[cfg].append(steps * batch_size / time_fit(model, data, steps))
        print(f"round {r + 1}/{args.repeats} done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)

    lines += ["| model | precision | jit | steps/exec | samples/s (median) | best | spread "
              "| vs float32, no jit, 1 (median) |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for workload in args.workloads:
        base = statistics.median(rates[(workload, *CONFIGS[0])])
        for cfg in (c for c in configs if c[0] == workload):
            r = rates[cfg]
            med = statistics.median(r)
            lines.append(f"| {workload} | {cfg[1]} | {'on' if cfg[2] else 'off'} | {cfg[3]} | {med:,.0f} | "
                         f"{max(r):,.0f} | {(max(r) - min(r)) / med:.0%} | {med / base:.2f}x |")
    lines += ["", f"load average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}; "
              f"total {time.perf_counter() - t0:.0f}s. spread = (fastest - slowest round) / median."]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
