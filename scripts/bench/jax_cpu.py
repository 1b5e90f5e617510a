"""Where a JAX epoch goes on a CPU, against TensorFlow: every recipe through `recipes train`, instrumented.

    python scripts/bench/jax_cpu.py                                   # every recipe, 2 rounds (~40 min, 2 cores)
    python scripts/bench/jax_cpu.py --recipes vae mlp --rounds 3
    python scripts/bench/jax_cpu.py --recipes vae --variants plain async spe8   # what a change would gain
    python scripts/bench/jax_cpu.py --kernels-only                    # one layer, TF against XLA (~3 min)

Two parts, written to results/jax_cpu.md and .json:

Recipes. Each run is the command a user types, `recipes train <recipe> --backend B --epochs E`
with the recipe's defaults and the backend's plan, in a fresh process (Keras reads
KERAS_BACKEND once), on the bundled digits. The CNNs (AlexNet, VGG16, the DCGAN) train on
the first `--cnn-examples` training digits (an .npz written here; their real input shape,
32x32 or 28x28, as the command enlarges the digits), so a JAX epoch takes seconds, not
minutes; the rest on all of them. The generative runs get `--judge` with one MLP run trained
first on TensorFlow, so no run trains a judge of its own inside the timed epochs (it is
trained before `fit()` anyway). The worker wraps, without changing what runs:
- every callback hook a recipe's callback overrides (Keras's own `is_default` hooks are left
  alone, so Keras's choice of synchronous or asynchronous batch callbacks is unchanged):
  seconds per callback and epoch;
- validation: from the fit's `on_test_begin` to its `on_test_end`, less the callbacks in it
  (batch-norm calibration runs in `on_test_begin`);
- JAX compilations: `jax_log_compiles` messages ("Finished XLA compilation of F in S sec",
  "Finished tracing + transforming F"), counted and summed per epoch and per place (the
  training loop, validation, or the callback running);
- the epoch: from one `on_epoch_end` to the next (the first from `on_train_begin`), as a user
  waits for it; "steps" is the epoch less the callbacks and validation: the training
  steps, their data, and the host round trips between them.
Whether Keras dispatched batch callbacks asynchronously (`CallbackList._async_train`) is
recorded: when any callback overrides a batch-end hook, Keras converts each step's logs to
Python floats on the main thread, a wait for the device every step.

`--variants` (JAX only; TensorFlow always runs its plan, `plain`) tries changes in files this
script does not own, patched in the worker: `async` treats every callback as `async_safe`
(TerminateOnNaN, InterruptBetweenSteps, TensorBoard and the checkpoints override batch-end
hooks), so Keras converts the logs and calls the batch-end hooks on its own thread; `spe8`
compiles with `steps_per_execution=8` as TensorFlow's plan does. Runs of one recipe take
turns, the order reversed every other round; the table shows medians over rounds of each
epoch after the first, and ratios of those medians.

Kernels. One layer forward and backward (the gradient of the sum of its output with
respect to its input and weights), TensorFlow (`tf.function`, jit off as the plan has it)
against JAX (`jax.jit`), Keras's layers at the shapes of the recipes' own (the LSTM
unrolled, as the recipe had it on every backend), then the recipes' own choices where they
differ on JAX (`recipes.models._transpose.Conv2DTranspose`, the LSTM's loop); each backend
in its own process, alternated over rounds; median milliseconds per call.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import logging
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PREFIX = "@@ "  # the worker's result line on stdout

RECIPES = ("mlp", "lstm", "vae", "alexnet", "vgg16", "dcgan")
CNNS = ("alexnet", "vgg16", "dcgan")  # trained on the first --cnn-examples digits
EPOCHS = {"mlp": 6, "lstm": 6, "vae": 6}  # the first compiles; the median is of the rest
DEFAULT_EPOCHS = 3
VARIANTS = ("plain", "async", "spe8")

# (name, layer, input shape with batch): the recipes' own layers at their own shapes
KERNELS = [
    ("VAE conv 3x3/2, 28x28x1->32, batch 16", "conv", dict(filters=32, kernel_size=3, strides=2), (16, 28, 28, 1)),
    ("VAE convT 3x3/2, 7x7x64->64, batch 16", "convT", dict(filters=64, kernel_size=3, strides=2), (16, 7, 7, 64)),
    (
        "DCGAN conv 5x5/2, 14x14x128->256, batch 64",
        "conv",
        dict(filters=256, kernel_size=5, strides=2),
        (64, 14, 14, 128),
    ),
    (
        "DCGAN convT 5x5/2, 7x7x256->128, batch 64",
        "convT",
        dict(filters=128, kernel_size=5, strides=2),
        (64, 7, 7, 256),
    ),
    ("AlexNet conv2 5x5, 15x15x96->256, batch 128", "conv", dict(filters=256, kernel_size=5), (128, 15, 15, 96)),
    ("VGG16 block1 conv 3x3, 32x32x64->64, batch 128", "conv", dict(filters=64, kernel_size=3), (128, 32, 32, 64)),
    ("VGG16 block3 conv 3x3, 8x8x256->256, batch 128", "conv", dict(filters=256, kernel_size=3), (128, 8, 8, 256)),
    ("MLP dense 784->512, batch 128", "dense", dict(units=512), (128, 784)),
    ("LSTM 128 over 28 steps of 28, batch 128", "lstm", dict(units=128), (128, 28, 28)),
    # the recipes' own layers where they differ from Keras's on JAX (the same as Keras's on TensorFlow)
    ("VAE convT, recipes' layer", "convT-recipes", dict(filters=64, kernel_size=3, strides=2), (16, 7, 7, 64)),
    ("DCGAN convT, recipes' layer", "convT-recipes", dict(filters=128, kernel_size=5, strides=2), (64, 7, 7, 256)),
    ("LSTM 28 steps, recipes' choice (loop on JAX)", "lstm-recipes", dict(units=128), (128, 28, 28)),
]


# ------------------------------------------------------------------------ worker: one instrumented run


class Probe:
    """What the worker records: per epoch, callback seconds, validation, compilations."""

    def __init__(self):
        self.epoch = 0  # 1-based while fit() runs; 0 before
        self.where = ["steps"]  # the place compilations are charged to
        self.t_start = self.t_last_end = None
        self.epochs = []  # per epoch: {"wall", "callbacks": {name: s}, "validation", "compiles": [...]}
        self.current = self._fresh()
        self.fit_list = None
        self.async_train = None
        self.test_t0 = None
        self.test_callbacks = 0.0
        self.before_fit = None
        self.t_step = None

    @staticmethod
    def _fresh():
        return {"callbacks": collections.Counter(), "validation": 0.0, "compiles": [], "traces": [], "steps": []}

    def compiled(self, name, seconds):
        self.current["compiles"].append((self.where[-1], name, seconds))

    def traced(self, name, seconds):
        self.current["traces"].append((self.where[-1], name, seconds))


PROBE = Probe()


class _CompileLog(logging.Handler):
    DONE = re.compile(r"Finished XLA compilation of (.+?) in ([\d.e+-]+) sec")
    TRACED = re.compile(r"Finished tracing (?:\+ transforming )?(.+?) for \w+ in ([\d.e+-]+) sec")

    def emit(self, record):
        message = record.getMessage()
        if m := self.DONE.search(message):
            PROBE.compiled(m[1], float(m[2]))
        elif m := self.TRACED.search(message):
            PROBE.traced(m[1], float(m[2]))


def _timed_hook(callback, hook_name, method):
    name = type(callback).__name__

    def hook(*args, **kwargs):
        nested = PROBE.where[-1] != "steps" and PROBE.where[-1] != "validation"
        PROBE.where.append(name)
        t0 = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            PROBE.where.pop()
            if not nested:
                seconds = time.perf_counter() - t0
                PROBE.current["callbacks"][name] += seconds
                if PROBE.test_t0 is not None:
                    PROBE.test_callbacks += seconds

    return hook


HOOKS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_batch_begin",
    "on_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_train_end",
)


def instrument(variant):
    """Wraps Keras's CallbackList and, on JAX, listens to compilations; `variant` patches (module doc)."""
    import keras
    from keras.src.callbacks.callback_list import CallbackList
    from keras.src.utils.python_utils import is_default

    if keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_log_compiles", True)
        handler = _CompileLog()
        for logger_name in ("jax._src.dispatch", "jax._src.interpreters.pxla", "jax._src.compiler", "jax"):
            lg = logging.getLogger(logger_name)
            lg.addHandler(handler)
            lg.propagate = False
            lg.setLevel(logging.DEBUG)

    if variant == "async":  # as if every callback of the run were marked `async_safe`
        configure = CallbackList._configure_async_dispatch

        def all_async(self, callbacks):
            configure(self, None)

        CallbackList._configure_async_dispatch = all_async
    if variant == "spe8":
        from keras.src.trainers.trainer import Trainer

        compile_ = Trainer.compile

        def compile(self, *args, **kwargs):
            kwargs["steps_per_execution"] = 8
            return compile_(self, *args, **kwargs)

        Trainer.compile = compile

    init = CallbackList.__init__

    def __init__(self, callbacks=None, *args, **kwargs):
        init(self, callbacks, *args, **kwargs)
        for cb in self.callbacks:
            if getattr(cb, "_probed", False):
                continue
            cb._probed = True
            for hook_name in HOOKS:
                method = getattr(cb, hook_name)
                if not is_default(method):
                    setattr(cb, hook_name, _timed_hook(cb, hook_name, method))

    CallbackList.__init__ = __init__

    on_train_begin, on_epoch_begin, on_epoch_end = (
        CallbackList.on_train_begin,
        CallbackList.on_epoch_begin,
        CallbackList.on_epoch_end,
    )
    on_test_begin, on_test_end = CallbackList.on_test_begin, CallbackList.on_test_end
    on_train_batch_end = CallbackList.on_train_batch_end

    def train_begin(self, logs=None):
        if PROBE.fit_list is None:
            PROBE.fit_list, PROBE.async_train = self, bool(self._async_train)
            PROBE.t_start = PROBE.t_last_end = PROBE.t_step = time.perf_counter()
            PROBE.epoch = 1
            PROBE.before_fit, PROBE.current = PROBE.current, PROBE._fresh()
        return on_train_begin(self, logs)

    def epoch_begin(self, epoch, logs=None):
        if self is PROBE.fit_list:
            PROBE.epoch, PROBE.t_step = epoch + 1, time.perf_counter()
        return on_epoch_begin(self, epoch, logs)

    def batch_end(self, batch, logs=None):
        result = on_train_batch_end(self, batch, logs)
        if self is PROBE.fit_list:  # from one step's end (or the epoch's start) to the next: the host's view
            now = time.perf_counter()
            PROBE.current["steps"].append(now - PROBE.t_step)
            PROBE.t_step = now
        return result

    def epoch_end(self, epoch, logs=None):
        result = on_epoch_end(self, epoch, logs)
        if self is PROBE.fit_list:
            now = time.perf_counter()
            PROBE.current["wall"] = now - PROBE.t_last_end
            PROBE.t_last_end = now
            PROBE.epochs.append(PROBE.current)
            PROBE.current = PROBE._fresh()
        return result

    def test_begin(self, logs=None):
        if self is PROBE.fit_list:
            PROBE.test_t0, PROBE.test_callbacks = time.perf_counter(), 0.0
            PROBE.where.append("validation")
        return on_test_begin(self, logs)

    def test_end(self, logs=None):
        result = on_test_end(self, logs)
        if self is PROBE.fit_list and PROBE.test_t0 is not None:
            PROBE.current["validation"] += time.perf_counter() - PROBE.test_t0 - PROBE.test_callbacks
            PROBE.test_t0 = None
            PROBE.where.pop()
        return result

    CallbackList.on_train_begin, CallbackList.on_epoch_begin = train_begin, epoch_begin
    CallbackList.on_train_batch_end = batch_end
    CallbackList.on_epoch_end, CallbackList.on_test_begin, CallbackList.on_test_end = epoch_end, test_begin, test_end


def worker(args):
    import keras

    instrument(args.variant)
    from recipes import cli

    t0 = time.perf_counter()
    code = cli.main(args.command)
    total = time.perf_counter() - t0
    backend = keras.backend.backend()
    version = f"{backend} {__import__(backend).__version__}"
    result = {"code": code, "total_s": total, "version": version, "async_train": PROBE.async_train}
    result["setup_s"] = (PROBE.t_start - t0) if PROBE.t_start else None
    result["epochs"] = [
        {
            "wall": e["wall"],
            "callbacks": dict(e["callbacks"]),
            "validation": e["validation"],
            "compiles": e["compiles"],
            "traces": e["traces"],
            "step_intervals": e["steps"],
        }
        for e in PROBE.epochs
    ]
    before = PROBE.before_fit or PROBE.current
    result["before_fit"] = {"compiles": before["compiles"], "traces": before["traces"]}
    print(PREFIX + json.dumps(result), flush=True)


# ------------------------------------------------------------------------ parent: the runs


def train(root, recipe, backend, variant, run_dir, epochs, *, judge=None, dataset=None, limit=1800):
    command = ["train", recipe, "--backend", backend, "--run-dir", str(run_dir), "--quiet", "--epochs", str(epochs)]
    command += ["--judge", str(judge)] if judge else []
    command += ["--dataset", str(dataset)] if dataset else []
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(root)}
    worker_command = [sys.executable, __file__, "--worker", "--variant", variant, "--", *command]
    start = time.perf_counter()
    try:
        done = subprocess.run(worker_command, cwd=root, env=env, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"failed": f"stopped after {limit} s"}
    for line in done.stdout.splitlines():
        if line.startswith(PREFIX):
            result = json.loads(line[len(PREFIX) :])
            result["process_s"] = time.perf_counter() - start
            if result["code"] not in (0, None):
                result["failed"] = f"exit {result['code']}: {done.stderr.strip().splitlines()[-1:]}"
            return result
    tail = [line for line in done.stderr.splitlines() if line.strip()][-3:]
    return {"failed": f"exit {done.returncode}: {' | '.join(tail)}"}


def small_digits(path, n):
    """The first `n` training digits (and the whole test split) as an .npz in Keras's layout."""
    import numpy as np

    with np.load(ROOT / "data" / "digits.npz") as d:
        np.savez(path, x_train=d["x_train"][:n], y_train=d["y_train"][:n], x_test=d["x_test"], y_test=d["y_test"])
    return path


def large_digits(path, n=8000, n_test=1000, seed=0):
    """`n` training digits at 28x28 (MNIST's size): the bundled 8x8 digits drawn at random, each
    enlarged 3x and placed at a random offset, 0-255; the scale of a run on MNIST-like data."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def draw(x, y, count):
        picks = rng.integers(0, len(x), count)
        big = np.repeat(np.repeat(x[picks].astype("float32") * (255 / 16), 3, axis=1), 3, axis=2)
        out = np.zeros((count, 28, 28), "uint8")
        for i, (a, b) in enumerate(rng.integers(0, 5, (count, 2))):
            out[i, a : a + 24, b : b + 24] = big[i]
        return out, y[picks]

    with np.load(ROOT / "data" / "digits.npz") as d:
        (x_train, y_train), (x_test, y_test) = (
            draw(d["x_train"], d["y_train"], n),
            draw(d["x_test"], d["y_test"], n_test),
        )
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def summarize(runs):
    """Per run: median epoch after the first, its parts, and the compilations of epoch 1 and after."""
    out = []
    for run in runs:
        if "failed" in run or len(run.get("epochs", [])) < 2:
            out.append(None)
            continue
        later = run["epochs"][1:]

        def med(f, later=later):
            return statistics.median(f(e) for e in later)

        callbacks = collections.Counter()
        for e in later:
            callbacks.update(e["callbacks"])
        first = run["epochs"][0]
        out.append(
            {
                "epoch_s": med(lambda e: e["wall"]),
                "first_s": first["wall"],
                "callbacks_s": med(lambda e: sum(e["callbacks"].values())),
                "validation_s": med(lambda e: e["validation"]),
                "steps_s": med(lambda e: e["wall"] - sum(e["callbacks"].values()) - e["validation"]),
                "top_callbacks": {k: v / len(later) for k, v in callbacks.most_common(4)},
                "compiles_first": len(first["compiles"]),
                "compile_s_first": sum(c[2] for c in first["compiles"]),
                "traces_first": len(first["traces"]),
                "compiles_later": sum(len(e["compiles"]) for e in later),
                "compile_s_later": sum(c[2] for e in later for c in e["compiles"]),
                "later_compiled": sorted({f"{c[0]}: {c[1]}" for e in later for c in e["compiles"]})[:6],
                "async_train": run.get("async_train"),
            }
        )
    return out


def recipes_part(args, report):
    from recipes.registry import get_spec

    root = args.root.resolve()
    work = pathlib.Path(args.runs_dir or tempfile.mkdtemp(prefix="jax-cpu-"))
    work.mkdir(parents=True, exist_ok=True)
    small = small_digits(work / f"digits_{args.cnn_examples}.npz", args.cnn_examples)
    large = large_digits(work / "digits28_8000.npz") if args.data == "digits28" else None
    t0 = time.perf_counter()
    judge = None
    if any(get_spec(r).task == "generation" for r in args.recipes):
        judge = work / "judge-mlp"
        shutil.rmtree(judge, ignore_errors=True)
        result = train(root, "mlp", "tensorflow", "plain", judge, 10)
        if "failed" in result:
            raise SystemExit(f"the judge's MLP run failed: {result['failed']}")
        print(f"judge trained ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    settings = [("tensorflow", "plain")] + [("jax", v) for v in args.variants]
    for recipe in args.recipes:
        epochs = args.epochs or EPOCHS.get(recipe, DEFAULT_EPOCHS)
        dataset = small if recipe in CNNS else large
        for r in range(args.rounds):
            for backend, variant in settings if r % 2 == 0 else settings[::-1]:
                run_dir = work / f"{recipe}-{backend}-{variant}-{r}"
                shutil.rmtree(run_dir, ignore_errors=True)
                generative = get_spec(recipe).task == "generation"
                result = train(
                    root,
                    recipe,
                    backend,
                    variant,
                    run_dir,
                    epochs,
                    judge=judge if generative else None,
                    dataset=dataset,
                )
                result.update(recipe=recipe, backend=backend, variant=variant, round=r, load=os.getloadavg()[0])
                result["dataset"] = (
                    f"first {args.cnn_examples} digits"
                    if recipe in CNNS
                    else "8,000 digits at 28x28"
                    if large
                    else "digits"
                )
                report["runs"].append(result)
                walls = ", ".join(f"{e['wall']:.1f}" for e in result.get("epochs", []))
                print(
                    f"{recipe} {backend} {variant} round {r + 1}: {result.get('failed') or walls + ' s/epoch'} "
                    f"(total {time.perf_counter() - t0:.0f}s, load {result['load']:.1f})",
                    file=sys.stderr,
                    flush=True,
                )
                _save(args, report)
    if not args.runs_dir:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------ kernels: one layer, TF against XLA


def kernel_worker(rounds_seconds):
    """Prepares every kernel, then times each once per line read from stdin."""
    import keras
    import numpy as np

    from recipes.models._transpose import Conv2DTranspose

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    prepared = []
    for name, kind, kwargs, shape in KERNELS:
        layer = {
            "conv": lambda kwargs=kwargs: keras.layers.Conv2D(padding="same", **kwargs),
            "convT": lambda kwargs=kwargs: keras.layers.Conv2DTranspose(padding="same", **kwargs),
            "convT-recipes": lambda kwargs=kwargs: Conv2DTranspose(padding="same", **kwargs),
            "dense": lambda kwargs=kwargs: keras.layers.Dense(**kwargs),
            "lstm": lambda kwargs=kwargs: keras.layers.LSTM(unroll=True, **kwargs),
            "lstm-recipes": lambda kwargs=kwargs: keras.layers.LSTM(unroll=backend != "jax", **kwargs),
        }[kind]()
        x = rng.standard_normal(shape).astype("float32")
        layer.build(shape)
        if backend == "jax":
            import jax

            fixed = [v.value for v in layer.non_trainable_variables]  # the LSTM's seed generator state

            def loss(weights, x, layer=layer, fixed=fixed):
                out, _ = layer.stateless_call(weights, fixed, x)
                return out.sum()

            fn = jax.jit(jax.grad(loss, argnums=(0, 1)))
            weights = [v.value for v in layer.trainable_variables]
            args = (weights, jax.numpy.asarray(x))

            def call(fn=fn, args=args):
                jax.block_until_ready(fn(*args))

        else:
            import tensorflow as tf

            tx = tf.constant(x)

            @tf.function(jit_compile=False)
            def step(x, layer=layer):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    out = tf.reduce_sum(layer(x))
                return tape.gradient(out, [x, *layer.trainable_variables])

            def call(step=step, tx=tx):
                [g.numpy() for g in step(tx)]

        call()
        call()
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < 0.2:
            call()
            n += 1
        prepared.append((name, call, max(3, int(rounds_seconds / ((time.perf_counter() - t0) / n)))))
    print(PREFIX + json.dumps({"ready": backend}), flush=True)
    for _ in sys.stdin:
        times = {}
        for name, call, n in prepared:
            t0 = time.perf_counter()
            for _ in range(n):
                call()
            times[name] = (time.perf_counter() - t0) / n * 1000
        print(PREFIX + json.dumps(times), flush=True)


def kernels_part(args, report):
    workers = {}
    for backend in ("tensorflow", "jax"):
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(args.root.resolve())}
        command = [sys.executable, __file__, "--kernel-worker", str(args.kernel_seconds)]
        workers[backend] = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def read(p):
        for line in p.stdout:
            if line.startswith(PREFIX):
                return json.loads(line[len(PREFIX) :])
        raise RuntimeError("a kernel worker exited")

    for p in workers.values():
        read(p)
    times = collections.defaultdict(list)
    order = list(workers)
    for r in range(args.kernel_rounds):
        for backend in order if r % 2 == 0 else order[::-1]:
            p = workers[backend]
            p.stdin.write("go\n")
            p.stdin.flush()
            for name, ms in read(p).items():
                times[f"{backend}|{name}"].append(ms)
        print(f"kernel round {r + 1}/{args.kernel_rounds}", file=sys.stderr, flush=True)
    for p in workers.values():
        p.stdin.close()
        p.wait()
    report["kernels"] = dict(times)
    _save(args, report)


# ------------------------------------------------------------------------ report


def _save(args, report):
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(_summarised(report), indent=1) + "\n")


def _summarised(report):
    """The report with each epoch's step intervals as their count, sum and median (the raw lists made
    the file 0.8 MB)."""
    runs = []
    for run in report.get("runs", []):
        epochs = []
        for epoch in run.get("epochs", []):
            steps = epoch.get("step_intervals")
            if isinstance(steps, list):
                epoch = {**epoch, "step_intervals": _step_summary(steps)}
            epochs.append(epoch)
        runs.append({**run, "epochs": epochs})
    return {**report, "runs": runs}


def _step_summary(steps):
    return {"count": len(steps), "sum": sum(steps), "median": statistics.median(steps) if steps else None}


def table(report):
    from recipes import hardware

    lines = [
        f"JAX against TensorFlow on this CPU, every recipe through `recipes train`. {report['date']}; "
        f"{hardware.describe_machine()}; load average at start {report['load_start']}.",
        "",
    ]
    runs = report.get("runs", [])
    if runs:
        summaries = summarize(runs)
        groups = collections.defaultdict(list)
        for run, s in zip(runs, summaries):
            where = run.get("dataset", "") + (f", session {run['session']}" if run.get("session") else "")
            groups[(run["recipe"], where, run["backend"], run["variant"])].append((run, s))
        lines += [
            "| recipe | backend, variant | s/epoch (median, epochs 2+) | vs TF | first epoch | steps | validation "
            "| callbacks | compiles epoch 1 (s) | compiles after | batch callbacks | largest callbacks (s/epoch) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for recipe, data in dict.fromkeys(k[:2] for k in groups):
            tf_runs = [s for _, s in groups.get((recipe, data, "tensorflow", "plain"), []) if s]
            tf_epoch = statistics.median(s["epoch_s"] for s in tf_runs) if tf_runs else None
            for key in [k for k in groups if k[:2] == (recipe, data)]:
                ok = [s for _, s in groups[key] if s]
                failed = [run["failed"] for run, s in groups[key] if not s and "failed" in run]
                if not ok:
                    lines.append(f"| {recipe} ({data}) | {key[2]}, {key[3]} | failed: {failed[:1]} |" + " |" * 9)
                    continue

                def m(k, ok=ok):
                    return statistics.median(s[k] for s in ok)

                top = collections.Counter()
                for s in ok:
                    top.update({k: v / len(ok) for k, v in s["top_callbacks"].items()})
                jax_cells = (
                    f"{m('compiles_first'):.0f} ({m('compile_s_first'):.1f})",
                    f"{m('compiles_later'):.0f}" + (f": {ok[0]['later_compiled']}" if m("compiles_later") else ""),
                )
                lines.append(
                    f"| {recipe} ({data}) | {key[2]}, {key[3]} | {m('epoch_s'):.2f} | "
                    f"{tf_epoch / m('epoch_s') if tf_epoch else float('nan'):.2f}x | {m('first_s'):.1f} | "
                    f"{m('steps_s'):.2f} | {m('validation_s'):.2f} | {m('callbacks_s'):.2f} | "
                    + (" | ".join(jax_cells) if key[2] == "jax" else "- | -")
                    + f" | {'async' if ok[0]['async_train'] else 'sync'} | "
                    + ", ".join(f"{k} {v:.2f}" for k, v in top.most_common(3))
                    + " |"
                )
        lines += [
            "",
            f"{max(r['round'] for r in runs) + 1} round(s); s/epoch: median over rounds of each run's median epoch "
            "after the first (callbacks, validation and steps likewise); vs TF: TensorFlow's s/epoch over this row's "
            "(above 1: faster than TensorFlow). steps = the epoch less validation and callbacks. Load average "
            f"(1 min) after each run: {min(r['load'] for r in runs):.1f}-{max(r['load'] for r in runs):.1f}.",
            "",
        ]
    lines += [f"Note: {note}" for note in report.get("notes", [])] + ([""] if report.get("notes") else [])
    kernels = report.get("kernels")
    if kernels:
        lines += [
            "One layer forward and backward, TensorFlow (tf.function, jit off) against XLA (jax.jit), median ms:",
            "",
            "| layer | TensorFlow ms | JAX ms | JAX / TF time |",
            "|---|---:|---:|---:|",
        ]
        for name, *_ in KERNELS:
            tf_ms, jax_ms = (kernels.get(f"{b}|{name}") for b in ("tensorflow", "jax"))
            if tf_ms and jax_ms:
                ratios = statistics.median(j / t for j, t in zip(jax_ms, tf_ms))
                lines.append(
                    f"| {name} | {statistics.median(tf_ms):.2f} | {statistics.median(jax_ms):.2f} | {ratios:.2f}x |"
                )
        lines.append("")
        lines.append(
            f"{len(next(iter(kernels.values())))} alternating rounds; JAX / TF: median of per-round ratios "
            "(above 1: XLA's kernel is slower)."
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--variants", nargs="+", default=["plain"], choices=VARIANTS, help="JAX runs (module doc)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, help="epochs of every run, at least 2 (default: per recipe)")
    parser.add_argument(
        "--data",
        choices=("digits", "digits28"),
        default="digits",
        help="MLP, LSTM, VAE: the bundled digits, or 8,000 of them at 28x28 (large_digits)",
    )
    parser.add_argument("--cnn-examples", type=int, default=128, help="training digits of the CNN recipes")
    parser.add_argument("--kernels-only", action="store_true")
    parser.add_argument("--recipes-only", action="store_true")
    parser.add_argument("--kernel-rounds", type=int, default=7)
    parser.add_argument("--kernel-seconds", type=float, default=0.5, help="per kernel and round")
    parser.add_argument("--root", type=pathlib.Path, default=ROOT, help="the checkout whose package is measured")
    parser.add_argument("--runs-dir", type=pathlib.Path, help="keep the runs here (default: a temporary dir)")
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "results" / "jax_cpu.md")
    parser.add_argument("--report", action="store_true", help="only redraw the table from --out's .json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="plain", help=argparse.SUPPRESS)
    parser.add_argument("--kernel-worker", type=float, help=argparse.SUPPRESS)
    parser.add_argument("command", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.kernel_worker:
        return kernel_worker(args.kernel_worker)
    sys.path.insert(0, str(args.root.resolve()))
    if args.report:
        report = json.loads(args.out.with_suffix(".json").read_text())
    else:
        if args.epochs is not None and args.epochs < 2:
            parser.error(f"--epochs must be at least 2: the first compiles. Received: --epochs {args.epochs}")
        report = {
            "date": time.strftime("%Y-%m-%d"),
            "load_start": ", ".join(f"{v:.2f}" for v in os.getloadavg()),
            "runs": [],
            "args": {k: str(v) for k, v in vars(args).items()},
        }
        with contextlib.suppress(KeyboardInterrupt):
            if not args.kernels_only:
                recipes_part(args, report)
            if not args.recipes_only:
                kernels_part(args, report)
    text = table(report)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
