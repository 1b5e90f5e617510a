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

With `--recipes`, it instead trains each recipe's `recipes train` configuration on the
bundled digits in float32 and in `mixed_bfloat16` side by side (one epoch of one, then
one of the other, from the same initial weights and data order), and reports samples/s
(the epochs after the first, which traces) and held-out quality after the same epochs.
`recipes.hardware.CPU_BF16_RECIPES` lists the recipes where bf16 was at least
`MIN_BF16_SPEEDUP` faster with quality within `BF16_QUALITY_TOLERANCE`; only CPUs with
bf16 units (avx512_bf16 or AMX) are measured, elsewhere the output says so.

    python scripts/bench/cpu_settings.py --recipes            # ~10 minutes on 2 idle cores
    python scripts/bench/cpu_settings.py --recipes mlp vae --epochs 3
"""

from __future__ import annotations

import argparse
import os
import pathlib
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

from recipes import (
    build_mlp,  # noqa: E402
    hardware,  # noqa: E402
)
from recipes.hardware import cpu_flags  # noqa: E402

# (precision, jit_compile, steps_per_execution); the first is the baseline. Each
# setting is measured alone and with 8 steps per execution, 32 only at float32 without
# XLA, to keep the run short: bf16 on a CPU without bf16 units can be ~10x slower.
CONFIGS = (
    ("float32", False, 1),
    ("float32", False, 8),
    ("float32", False, 32),
    ("float32", True, 1),
    ("float32", True, 8),
    ("mixed_bfloat16", False, 1),
    ("mixed_bfloat16", False, 8),
    ("mixed_bfloat16", True, 1),
    ("mixed_bfloat16", True, 8),
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
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", jit_compile=jit, steps_per_execution=spe)
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
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="aim for this many seconds per configuration and round"
    )
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--out", type=pathlib.Path, help="also write the table to this markdown file")
    parser.add_argument(
        "--recipes",
        nargs="*",
        metavar="RECIPE",
        dest="recipes",
        help="compare float32 and mixed_bfloat16 per recipe instead (all recipes if none named)",
    )
    parser.add_argument("--epochs", type=int, help="with --recipes: epochs per side (default: per recipe)")
    args = parser.parse_args()
    if args.recipes is not None:
        return bench_recipes(args.recipes or list(RECIPE_EPOCHS), args.epochs, args.out)

    flags = cpu_flags()
    relevant = sorted(f for f in flags if re.fullmatch(r"amx\w*|avx512_bf16|avx512f|avx512_vnni|avx2", f))
    lines = [
        f"{hardware.describe_machine()}; flags: {', '.join(relevant) or 'none of amx/avx512'}",
        f"{args.repeats} interleaved rounds; load average at start: {', '.join(f'{v:.2f}' for v in os.getloadavg())}",
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

    lines += [
        "| model | precision | jit | steps/exec | samples/s (median) | best | spread "
        "| vs float32, no jit, 1 (median) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for workload in args.workloads:
        base = statistics.median(rates[(workload, *CONFIGS[0])])
        for cfg in (c for c in configs if c[0] == workload):
            r = rates[cfg]
            med = statistics.median(r)
            lines.append(
                f"| {workload} | {cfg[1]} | {'on' if cfg[2] else 'off'} | {cfg[3]} | {med:,.0f} | "
                f"{max(r):,.0f} | {(max(r) - min(r)) / med:.0%} | {med / base:.2f}x |"
            )
    lines += [
        "",
        f"load average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}; "
        f"total {time.perf_counter() - t0:.0f}s. spread = (fastest - slowest round) / median.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


# ------------------------------------------------------- float32 vs bf16 per recipe

# Epochs per side on the bundled digits (1,294 training images); the first epoch traces
# and is not timed. ~10 minutes in all on 2 idle cores: VGG16 and AlexNet take ~1 min an
# epoch (6, since VGG16 validates near chance for its first epochs on the digits); the MLP,
# LSTM and VAE epochs take 0.05-0.3 s, so 12 (with 5, the same LSTM measured 0.8x to 1.6x).
RECIPE_EPOCHS = {"mlp": 12, "alexnet": 6, "vgg16": 6, "lstm": 12, "dcgan": 3, "vae": 12}
MIN_BF16_SPEEDUP = 1.1  # below this, a timing difference is noise on shared cores
BF16_QUALITY_TOLERANCE = 0.01  # accuracy points, or 1% of the VAE's negative ELBO


def recipe_side(name, precision):
    """The command's own setup for `name` on the digits, at `precision`: (model, train, test, info)."""
    from recipes import run as run_lib
    from recipes._log import forwarded_to
    from recipes.config import resolve

    config = resolve(name, flags={"dataset": "digits", "precision": precision})
    with forwarded_to(lambda line: None):  # quiet
        run = run_lib.prepare(config)
    (train, val, test, info), model = run.data, run.model
    keras.mixed_precision.set_global_policy("float32")
    return model, train, test if test is not None else val, info


def recipe_quality(name, model, test, history):
    """(figure, higher is better): test accuracy, negative ELBO, or the DCGAN's last g_loss."""
    if name == "dcgan":
        return history["g_loss"][-1], None
    results = model.evaluate(test, return_dict=True, verbose=0)
    return (results["accuracy"], True) if "accuracy" in results else (results["loss"], False)


def bench_recipes(names, epochs_override, out):
    lines = [
        f"float32 vs mixed_bfloat16 per recipe, `recipes train` settings on the bundled digits. "
        f"{hardware.describe_machine()}; load average {os.getloadavg()[0]:.1f} before."
    ]
    if not hardware.has_bf16_units():
        lines.append(
            "This CPU has no bf16 units (avx512_bf16 or AMX): bf16 is emulated here and "
            "says nothing about CPUs that have them; nothing measured."
        )
        print("\n".join(lines))
        return
    t0 = time.perf_counter()
    rows, faster = [], []
    for name in names:
        epochs = epochs_override or RECIPE_EPOCHS[name]
        sides = {p: recipe_side(name, p) for p in ("float32", "mixed_bfloat16")}
        seconds = {p: [] for p in sides}
        history = {p: {} for p in sides}
        for epoch in range(epochs):
            order = list(sides) if epoch % 2 == 0 else list(sides)[::-1]
            for p in order:
                model, train, _, _ = sides[p]
                start = time.perf_counter()
                h = model.fit(train, epochs=1, verbose=0, shuffle=False)
                seconds[p].append(time.perf_counter() - start)
                for k, v in h.history.items():
                    history[p].setdefault(k, []).extend(v)
        n = sides["float32"][3].num_train
        rate = {p: n / statistics.median(s[1:] or s) for p, s in seconds.items()}
        quality = {p: recipe_quality(name, sides[p][0], sides[p][2], history[p]) for p in sides}
        speedup = rate["mixed_bfloat16"] / rate["float32"]
        (q32, higher), (q16, _) = quality["float32"], quality["mixed_bfloat16"]
        if higher is None:
            keeps, verdict_q = False, "not comparable (GAN losses)"
        elif higher:
            keeps, verdict_q = q16 >= q32 - BF16_QUALITY_TOLERANCE, f"{q16 - q32:+.3f}"
        else:
            keeps, verdict_q = q16 <= q32 * (1 + BF16_QUALITY_TOLERANCE), f"{(q16 - q32) / q32:+.1%}"
        choose = speedup >= MIN_BF16_SPEEDUP and keeps
        if choose:
            faster.append(name)
        label = "g_loss" if name == "dcgan" else "accuracy" if higher else "neg. ELBO"
        rows.append(
            f"| {name} | {epochs} | {rate['float32']:,.0f} | {rate['mixed_bfloat16']:,.0f} | "
            f"{speedup:.2f}x | {label} | {q32:.3f} | {q16:.3f} | {verdict_q} | "
            f"{'bf16' if choose else 'float32'} |"
        )
        print(
            f"{name}: {speedup:.2f}x, quality {q32:.4f} -> {q16:.4f} ({time.perf_counter() - t0:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
    lines += [
        "",
        "| recipe | epochs | float32 samples/s | bf16 samples/s | bf16 / float32 | quality | "
        "float32 | bf16 | bf16 change | choice |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---|",
        *rows,
        "",
        f"choice: bf16 where at least {MIN_BF16_SPEEDUP}x faster with quality within "
        f"{BF16_QUALITY_TOLERANCE} (accuracy) or {BF16_QUALITY_TOLERANCE:.0%} (neg. ELBO); "
        f"CPU_BF16_RECIPES = {sorted(faster)}. samples/s: median epoch after the first. "
        f"Load average {os.getloadavg()[0]:.1f} after; {time.perf_counter() - t0:.0f}s.",
    ]
    table = "\n".join(lines)
    print(table)
    if out:
        out.write_text(table + "\n")


if __name__ == "__main__":
    main()
