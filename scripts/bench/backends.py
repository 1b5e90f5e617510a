"""Measures training per Keras backend (TensorFlow, JAX, PyTorch) on this CPU: throughput, and every recipe.

    python scripts/bench/backends.py                          # both parts, ~55 minutes on 2 shared cores
    python scripts/bench/backends.py --throughput-only        # ~6-7 minutes
    python scripts/bench/backends.py --throughput-only --repeats 3 --seconds 0.5 --out /tmp/backends.md
    python scripts/bench/backends.py --backends tensorflow jax --models mlp
    python scripts/bench/backends.py --recipes-only           # ~47 minutes (load 2-7 on 2 cores)
    python scripts/bench/backends.py --recipes-only --recipes mlp vae --epochs 3 --runs-dir /tmp/runs

Two parts, each writing its table to results/:
- throughput (backends.md, `--out`): the settings the plans choose between, timed on
  synthetic data, below;
- recipes (backends_recipes.md, `--recipes-out`): every recipe trained by the
  `recipes train` command on each backend, with the plan each backend chose: samples/s,
  the first epoch, and the held-out metric after the same epochs. The method is in
  `backends_recipes.py`.

Throughput. Two models: the MLP recipe (`build_mlp(input_shape=(784,), num_classes=10)`,
batch 128) and the small CNN of `cpu_settings.py` (conv16-conv32-pool-dense64 on
32x32x3, batch 64), both compiled here with RMSprop and sparse categorical
cross-entropy, no metrics. Data: random float32 arrays (8 batches) in a tf.data pipeline
(`from_tensor_slices -> batch -> cache -> repeat -> prefetch`), the way `recipes` feeds
`fit()` on every backend; throughput does not depend on the values.

The settings `recipes.hardware.configure()` chooses between, per backend:
- TensorFlow: the plan (jit off, steps_per_execution 8) and Keras's default (jit off, 1);
- JAX: Keras's default (jit on, 1), jit off, steps_per_execution 8, and the CNN in
  `mixed_bfloat16`;
- PyTorch (steps_per_execution must be 1): Keras's default (eager), `jit_compile=True`
  (`torch.compile`; its compile time is reported apart and not timed; a compile that
  takes longer than `--compile-limit` seconds is stopped and the row says so), and the CNN
  in `mixed_bfloat16`; the same again in a second worker, `torch-passive`, with
  `OMP_WAIT_POLICY=PASSIVE` (OpenMP threads sleep instead of spinning while they wait),
  which matters on cores shared with other jobs. Its torch.compile may reuse the first
  worker's compiled kernels (Inductor's cache), so its compile time is not comparable.

The backend is fixed when Keras is imported, so each backend runs in its own worker
process (`KERAS_BACKEND` set), which builds and warms up (traces, compiles) every setting
first. Then the parent runs interleaved rounds: each round asks every worker in turn to
time all its settings once (about `--seconds` each, whole executions), the order of
backends and of settings reversed every other round, so a neighbour's load on the shared
cores hits them all alike. Only one worker computes at a time; the others wait on a pipe.
The table shows the median round, the spread ((fastest - slowest) / median), and ratios:
medians of per-round ratios against the backend's Keras default and against
TensorFlow's plan for the same model.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(1, str(HERE))

MODELS = {
    # name: (example shape, batch size)
    "mlp": ((784,), 128),
    "cnn": ((32, 32, 3), 64),
}
# worker: (KERAS_BACKEND, extra environment, [(label, jit_compile, steps_per_execution,
# precision, models or None for all)]). The first setting of the worker named after a
# backend is Keras's default there (what compile() picks on a CPU). PyTorch's CPU kernels
# run on OpenMP threads that spin while they wait; on cores shared with other jobs that
# spinning was measured 5-10x slower than OMP_WAIT_POLICY=PASSIVE (read when torch is
# imported, so a second worker).
WORKERS = {
    "tensorflow": (
        "tensorflow",
        {},
        [
            ("Keras default: jit off, spe 1", False, 1, "float32", None),
            ("plan: jit off, spe 8", False, 8, "float32", None),
        ],
    ),
    "jax": (
        "jax",
        {},
        [
            ("Keras default: jit on, spe 1", True, 1, "float32", None),
            ("jit off, spe 1", False, 1, "float32", None),
            ("jit on, spe 8", True, 8, "float32", None),
            ("jit on, spe 1, mixed_bfloat16", True, 1, "mixed_bfloat16", ("cnn",)),
        ],
    ),
    "torch": (
        "torch",
        {},
        [
            ("Keras default: eager (jit off)", False, 1, "float32", None),
            ("torch.compile (jit on)", True, 1, "float32", None),
            ("eager, mixed_bfloat16", False, 1, "mixed_bfloat16", ("cnn",)),
        ],
    ),
    "torch-passive": (
        "torch",
        {"OMP_WAIT_POLICY": "PASSIVE"},
        [
            ("eager, OMP_WAIT_POLICY=PASSIVE", False, 1, "float32", None),
            ("torch.compile, OMP_WAIT_POLICY=PASSIVE", True, 1, "float32", None),
            ("eager, mixed_bfloat16, OMP_WAIT_POLICY=PASSIVE", False, 1, "mixed_bfloat16", ("cnn",)),
        ],
    ),
}
TF_PLAN = "plan: jit off, spe 8"
PREFIX = "@@ "  # marks the workers' protocol lines on stdout (libraries may print there too)


# ------------------------------------------------------------------------ worker


def build(model_name):
    from cpu_settings import build_cnn  # the CNN that set TensorFlow's CPU defaults

    from recipes import build_mlp

    if model_name == "mlp":
        return build_mlp(input_shape=(784,), num_classes=10, compile=False)
    return build_cnn()


def dataset(shape, batch_size, seed=0):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = rng.random((batch_size * 8, *shape), dtype=np.float32)
    y = rng.integers(0, 10, batch_size * 8).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().repeat().prefetch(2)


def time_fit(model, data, steps):
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return time.perf_counter() - start


class CompileTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CompileTimeout


def prepare(model_name, jit, spe, precision, seconds, compile_limit):
    """Builds, compiles and warms up one setting: (model, data, batch size, steps per round, first-fit seconds)."""
    import keras

    shape, batch_size = MODELS[model_name]
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(precision)
    model = build(model_name)
    keras.mixed_precision.set_global_policy("float32")
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", jit_compile=jit, steps_per_execution=spe)
    data = dataset(shape, batch_size)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(compile_limit)
    try:
        first = time_fit(model, data, spe)  # traces / compiles
        time_fit(model, data, spe)  # a second call may compile again (torch.compile guards)
    finally:
        signal.alarm(0)
    probe = max(spe, 4)
    step_time = time_fit(model, data, probe) / probe
    steps = max(probe, spe * round(seconds / step_time / spe))  # about `seconds`, whole executions
    return model, data, batch_size, steps, first


def worker(name, models, seconds, compile_limit):
    import keras

    backend, _, settings = WORKERS[name]
    assert keras.backend.backend() == backend, (keras.backend.backend(), backend)
    version = f"{backend} {__import__(backend).__version__}"

    def say(kind, payload):
        print(PREFIX + json.dumps({"kind": kind, **payload}), flush=True)

    prepared, info = {}, {}
    for label, jit, spe, precision, only in settings:
        for model_name in models:
            if only and model_name not in only:
                continue
            key = f"{label}|{model_name}"
            t0 = time.perf_counter()
            try:
                *prepared[key], first = prepare(model_name, jit, spe, precision, seconds, compile_limit)
                info[key] = {"first_fit_s": first, "steps": prepared[key][3]}
            except Exception as e:  # report, and time the other settings
                cause = e
                while cause is not None and not isinstance(cause, CompileTimeout):
                    cause = cause.__cause__ or cause.__context__  # torch.compile wraps it
                info[key] = {
                    "skipped": f"warm-up passed {compile_limit} s; stopped"
                    if cause is not None
                    else f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
                }
            print(f"[{name}] warmed {key} in {time.perf_counter() - t0:.1f}s: {info[key]}", file=sys.stderr)
    say("ready", {"version": version, "info": info})

    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        keys = list(prepared) if int(command[1]) % 2 == 0 else list(prepared)[::-1]
        rates = {}
        for key in keys:
            model, data, batch_size, steps = prepared[key]
            rates[key] = steps * batch_size / time_fit(model, data, steps)
        say("round", {"rates": rates})


# ------------------------------------------------------------------------ parent


class Worker:
    def __init__(self, name, args):
        backend, extra_env, self.settings = WORKERS[name]
        env = {**os.environ, **extra_env, "KERAS_BACKEND": backend}
        command = [sys.executable, __file__, "--worker", name, "--models", *args.models]
        command += ["--seconds", str(args.seconds), "--compile-limit", str(args.compile_limit)]
        self.name, self.backend = name, backend
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def read(self):
        for line in self.process.stdout:
            if line.startswith(PREFIX):
                return json.loads(line[len(PREFIX) :])
        raise RuntimeError(f"the {self.name} worker exited with code {self.process.wait()}")

    def send(self, text):
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()


def loadavg():
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends", nargs="+", default=list(WORKERS), choices=list(WORKERS), help="workers to run (default: all)"
    )
    part = parser.add_mutually_exclusive_group()
    part.add_argument("--throughput-only", action="store_true", help="only the MLP and CNN on synthetic data")
    part.add_argument("--recipes-only", action="store_true", help="only each recipe trained by `recipes train`")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--repeats", type=int, default=9, help="interleaved timed rounds")
    parser.add_argument("--seconds", type=float, default=1.0, help="aim for this many seconds per setting and round")
    parser.add_argument(
        "--compile-limit", type=int, default=240, help="stop a setting whose warm-up (compilation) takes longer"
    )
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "results" / "backends.md", help="markdown table")
    parser.add_argument("--recipes", nargs="+", metavar="RECIPE", help="recipes to train (default: all)")
    parser.add_argument("--epochs", type=int, help="epochs of every recipe run, at least 3 (default: per recipe)")
    parser.add_argument("--rounds", type=int, default=1, help="runs per recipe and backend, in alternating order")
    parser.add_argument("--runs-dir", type=pathlib.Path, help="keep the recipe runs here (default: a temporary dir)")
    parser.add_argument(
        "--recipes-out",
        type=pathlib.Path,
        default=HERE / "results" / "backends_recipes.md",
        help="markdown table of the recipe runs",
    )
    parser.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.models, args.seconds, args.compile_limit)
    if args.epochs is not None and args.epochs < 3:
        parser.error(
            f"--epochs must be at least 3: the first epoch compiles, the median is of the rest. "
            f"Received: --epochs {args.epochs}"
        )
    from recipes import list_models

    recipes = args.recipes or list_models()
    unknown = [name for name in recipes if name not in list_models()]
    if unknown:
        parser.error(f"unknown recipe {unknown[0]!r}; valid names: {', '.join(list_models())}")
    if not args.recipes_only:
        throughput(args)
    if not args.throughput_only:
        import backends_recipes

        backends = list(dict.fromkeys(WORKERS[name][0] for name in args.backends))  # torch-passive: torch
        table = backends_recipes.run(recipes, backends, args.epochs, rounds=args.rounds, runs_dir=args.runs_dir)
        print(table)
        if args.recipes_out:
            args.recipes_out.parent.mkdir(parents=True, exist_ok=True)
            args.recipes_out.write_text(table + "\n")


def throughput(args):
    """The MLP and the CNN on synthetic data, each setting the plans choose between, interleaved."""
    from recipes import hardware

    t0 = time.perf_counter()
    start_load = loadavg()
    versions, info = {}, {}
    workers = []
    for name in args.backends:  # one at a time, so compile times are not inflated by each other
        w = Worker(name, args)
        ready = w.read()
        versions[w.backend], info[name] = ready["version"], ready["info"]
        workers.append(w)
        print(f"{name} ready ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)

    rates, loads = {}, []
    warm_s = time.perf_counter() - t0
    for r in range(args.repeats):
        for w in workers if r % 2 == 0 else workers[::-1]:
            w.send(f"round {r}")
            for key, rate in w.read()["rates"].items():
                rates.setdefault((w.backend, *key.split("|")), []).append(rate)
        loads.append(os.getloadavg()[0])
        print(f"round {r + 1}/{args.repeats} done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    for w in workers:
        w.send("quit")
        w.process.wait()

    def ratio(key, base):
        """Median of per-round ratios: each round times both within seconds of each other."""
        if key not in rates or base not in rates:
            return "-"
        return f"{statistics.median(a / b for a, b in zip(rates[key], rates[base])):.2f}x"

    lines = [
        f"Training throughput per Keras backend. {hardware.describe_machine()}; " + "; ".join(versions.values()),
        f"{args.repeats} interleaved rounds of ~{args.seconds:g} s per setting; synthetic float32 data "
        f"in a tf.data pipeline; load average (1, 5, 15 min) at start: {start_load}.",
        "",
        "| model | backend | setting | samples/s (median) | spread | vs backend's Keras default "
        "| vs TF plan | first fit (compile) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    spreads = []
    for model_name in args.models:
        tf_plan = ("tensorflow", TF_PLAN, model_name)
        for w in workers:
            backend = w.backend
            default = (backend, WORKERS[backend][2][0][0], model_name)
            for label, *_, only in w.settings:
                if only and model_name not in only:
                    continue
                key = (backend, label, model_name)
                meta = info[w.name][f"{label}|{model_name}"]
                if "skipped" in meta:
                    lines.append(f"| {model_name} | {backend} | {label} | skipped: {meta['skipped']} | | | | |")
                    continue
                r = rates[key]
                med = statistics.median(r)
                spreads.append((max(r) - min(r)) / med)
                lines.append(
                    f"| {model_name} | {backend} | {label} | {med:,.0f} | {(max(r) - min(r)) / med:.0%} | "
                    f"{ratio(key, default)} | {ratio(key, tf_plan)} | {meta['first_fit_s']:.1f} s |"
                )
    lines += [
        "",
        f"Load average (1 min) after each round: {min(loads):.1f}-{max(loads):.1f}; at end: {loadavg()}. "
        f"Spread per row: median {statistics.median(spreads):.0%}, largest {max(spreads):.0%}. "
        f"Warm-up {warm_s:.0f} s, total {time.perf_counter() - t0:.0f} s. "
        "first fit = the first `fit()` of one execution (tracing, jit or torch.compile), not timed in samples/s.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
