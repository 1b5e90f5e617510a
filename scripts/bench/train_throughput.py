"""Training throughput of `recipes train` against the same models trained plainly in Keras.

    python scripts/bench/train_throughput.py                     # the README table (~12 min on 2 CPU cores)
    python scripts/bench/train_throughput.py --quick             # a smoke run (~2 min)
    python scripts/bench/train_throughput.py --recipes mlp lstm --reps 5

For each recipe, side by side in one process, on the bundled digits:

- recipes: the command's own code path, `recipes.run.prepare(config)` with the
  configuration `recipes train <name>` resolves (automatic hardware settings from
  `recipes.hardware.configure`, the `load_dataset` pipeline, the recipe's builder),
  then `model.fit(train, validation_data=val, shuffle=False)` as `training.train` calls it;
- plain Keras: the same builder with `compile=False` (identical layers, same seed, so the
  same initial weights), compiled with Keras defaults the way the keras-io examples do
  (`model.compile(optimizer=<same optimizer and learning rate>, loss=..., metrics=[...])`;
  DCGAN and VAE: their own `compile()`), and `model.fit(x, y, batch_size=...,
  validation_data=(x_val, y_val))` on numpy arrays holding the same images.

Both train on the same examples (the digits as `recipes train` prepares them: 32x32 for
AlexNet and VGG16, 28x28 for the DCGAN, rows as sequences for the LSTM, 8x8 for the MLP
and VAE), with the recipe's batch size and seed. The run-directory callbacks of `recipes
train` (checkpoints, plots, TensorBoard, CSV) are left out of both: they run between
epochs, not inside the training loop measured here. Timing: each fit trains a fresh model
1 warm-up epoch (tracing, cache filling) plus `epochs` timed epochs; an epoch's time runs
from its start to the start of its validation pass (training alone). samples/s = examples
trained / time, per fit; the two sides alternate (A B, B A, ...) `reps` times and the
table shows the medians. The heavy models train on a fixed number of batches per epoch
(`max_batches`): a random subset, reshuffled every epoch on the recipes side
(`train.take(n)`), a fixed random subset on the plain side, the same count of examples.

Final quality, median over the fits, each model after its 1 + `epochs` epochs: held-out
(test split, 359 digits) accuracy for classifiers, the negative ELBO (nats per image) on
the test split for the VAE, the last epoch's d_loss / g_loss for the DCGAN (no held-out
score: a GAN's losses say that it trains, not how well; see scripts/bench/generative.py).

FLOP/s: VGG16 (preset "small", 32x32x1) training FLOPs per example counted analytically:
2 x multiply-adds of every Conv2D and Dense layer for the forward pass, x3 for forward and
backward (the usual convention: the backward pass costs twice the forward one; batch norm,
pooling, activations and the optimizer update are not counted). Achieved FLOP/s = FLOPs
per example x samples/s, as a fraction of a float32 4096x4096 @ 4096x4096 `tf.matmul`
(2 x 4096^3 FLOPs, median of repeated products in this run): the machine's practical peak.
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework import config as tf_config  # noqa: E402

from recipes import recipe  # noqa: E402
from recipes import run as run_lib  # noqa: E402
from recipes._log import forwarded_to  # noqa: E402
from recipes.config import resolve  # noqa: E402
from recipes.hardware import describe_machine  # noqa: E402
from recipes.models._common import make_optimizer  # noqa: E402
from recipes.registry import get_spec  # noqa: E402

RECIPES = ("mlp", "alexnet", "vgg16", "lstm", "dcgan", "vae")
# name: (timed epochs per fit, fits per side, batches per epoch or None for all ~1,294
# training digits); sized for ~12 minutes in all on 2 CPU cores.
PLAN = {
    "mlp": (10, 5, None),
    "alexnet": (2, 2, 1),  # ~10 s a batch of 128 on 2 shared cores
    "vgg16": (2, 2, 1),  # ~1.9 GFLOP per example: ~15 s a batch of 128
    "lstm": (5, 4, None),
    "dcgan": (1, 3, 3),  # ~2 s a batch of 64
    "vae": (8, 5, None),
}
QUICK = {
    "mlp": (2, 2, None),
    "alexnet": (1, 2, 1),
    "vgg16": (1, 2, 1),
    "lstm": (1, 2, None),
    "dcgan": (1, 2, 1),
    "vae": (2, 2, None),
}
MATMUL_N = 4096


class EpochTimer(keras.callbacks.Callback):
    """Seconds each epoch spends training: from its start to its validation pass (or its end)."""

    def on_train_begin(self, logs=None):
        self.seconds, self._start = [], None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._stop()

    def on_epoch_end(self, epoch, logs=None):
        self._stop()

    def _stop(self):
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None


def arrays(ds):
    """A batched (x, y) or x dataset -> numpy arrays, in the dataset's order."""
    batches = list(ds.as_numpy_iterator())
    if isinstance(batches[0], tuple):
        return tuple(np.concatenate(part) for part in zip(*batches))
    return (np.concatenate(batches),)


def quality(model, task, name, test, history):
    """Held-out accuracy, negative ELBO, or the DCGAN's last d_loss / g_loss."""
    if name == "dcgan":
        return history["d_loss"][-1], history["g_loss"][-1]
    results = (
        model.evaluate(*test, return_dict=True, verbose=0)
        if isinstance(test, tuple)
        else model.evaluate(test, return_dict=True, verbose=0)
    )
    return (results["accuracy"],) if task == "classification" else (results["loss"],)


def fit_recipes(config, epochs, max_batches):
    """One fit through the command's code path; returns (samples/s, quality, model, plan)."""
    with forwarded_to(lambda line: None):  # quiet
        run = run_lib.prepare(config)
    plan, (train, val, test, info), model = run.plan, run.data, run.model
    n = info.num_train
    if max_batches is not None:
        train = train.take(max_batches)
        n = min(n, max_batches * config["batch_size"])
    timer = EpochTimer()
    history = model.fit(train, validation_data=val, epochs=1 + epochs, callbacks=[timer], verbose=0, shuffle=False)
    rate = n * epochs / sum(timer.seconds[1:])
    held_out = test if test is not None else val
    return rate, quality(model, get_spec(config["model"]).task, config["model"], held_out, history.history), model, plan


def plain_model(config, info):
    """The recipe's architecture, compiled the plain Keras way (default compile settings)."""
    spec = get_spec(config["model"])
    kwargs = recipe.builder_kwargs(config, info)
    tf_config.disable_op_determinism()  # plain Keras does not turn it on; recipes train does
    keras.utils.set_random_seed(config["seed"])
    if config["model"] == "lstm":
        kwargs["unroll"] = False  # keras.layers.LSTM's default, as a plain Keras model has it
    model = spec.builder(**kwargs, compile=False)
    if config["model"] == "dcgan":
        model.compile()  # the paper's Adam(2e-4, beta_1=0.5) for both halves
        return model
    default = spec.builder.__kwdefaults__
    optimizer = make_optimizer(
        kwargs.get("optimizer", default["optimizer"]), kwargs.get("learning_rate", default["learning_rate"])
    )
    if config["model"] == "vae":
        model.compile(optimizer=optimizer)
    else:
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fit_plain(config, data, epochs, max_batches):
    """One plain fit on numpy arrays; returns (samples/s, quality, model)."""
    (x, *y), val, test, info = data
    if max_batches is not None:
        keep = np.random.default_rng(config["seed"]).permutation(len(x))[: max_batches * config["batch_size"]]
        x, y = x[keep], [part[keep] for part in y]
    model = plain_model(config, info)
    timer = EpochTimer()
    history = model.fit(
        x, *y, batch_size=config["batch_size"], epochs=1 + epochs, validation_data=val, callbacks=[timer], verbose=0
    )
    rate = len(x) * epochs / sum(timer.seconds[1:])
    return rate, quality(model, get_spec(config["model"]).task, config["model"], test or val, history.history), model


def numpy_data(config):
    """The examples `recipes train` trains on, as arrays: (train, val, test, info)."""
    train, val, test, info = recipe.load_data(config)
    return (arrays(train), None if val is None else arrays(val), None if test is None else arrays(test), info)


def vgg_training_flops(model) -> int:
    """Training FLOPs per example: 3 x 2 x multiply-adds of the Conv2D and Dense layers."""
    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            h, w, c_out = layer.output.shape[1:]
            kh, kw, c_in, _ = layer.kernel.shape
            macs += h * w * c_out * kh * kw * c_in
        elif isinstance(layer, keras.layers.Dense):
            macs += int(np.prod(layer.kernel.shape))
    return 3 * 2 * macs


def matmul_flops(n=MATMUL_N, reps=5):
    """Median FLOP/s of float32 n x n @ n x n products."""
    a = tf.random.normal((n, n), seed=1)
    b = tf.random.normal((n, n), seed=2)
    tf.matmul(a, b).numpy()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        tf.matmul(a, b).numpy()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def bench_recipe(name, epochs, reps, max_batches, log):
    config = resolve(name, flags={"dataset": "digits"})
    data = numpy_data(config)
    rates = {"recipes": [], "plain": []}
    scores = {"recipes": [], "plain": []}
    settings = {}
    for r in range(reps):
        for side in ("recipes", "plain") if r % 2 == 0 else ("plain", "recipes"):
            start = time.perf_counter()
            if side == "recipes":
                rate, score, model, plan = fit_recipes(config, epochs, max_batches)
            else:
                rate, score, model = fit_plain(config, data, epochs, max_batches)
            settings[side] = f"jit {'on' if model.jit_compile else 'off'}, spe {model.steps_per_execution}"
            rates[side].append(rate)
            scores[side].append(score)
            log(
                f"  {name} {side} rep {r + 1}/{reps}: {rate:,.0f} samples/s, "
                f"{', '.join(f'{s:.4f}' for s in score)} ({time.perf_counter() - start:.0f}s)"
            )
    med = {side: statistics.median(v) for side, v in rates.items()}
    score = {
        side: tuple(statistics.median(s[i] for s in scores[side]) for i in range(len(scores[side][0])))
        for side in scores
    }
    n = data[3].num_train if max_batches is None else min(data[3].num_train, max_batches * config["batch_size"])
    return dict(
        name=name,
        config=config,
        rates=rates,
        median=med,
        score=score,
        settings=settings,
        model=model,
        input_shape=data[3].input_shape,
        examples=n,
        epochs=epochs,
        reps=reps,
        plan=plan,
    )


def fmt_score(name, score):
    if name == "dcgan":
        return f"d {score[0]:.3f} / g {score[1]:.3f}"
    if name == "vae":
        return f"{score[0]:.2f}"
    return f"{score[0]:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--reps", type=int, help="fits per side (overrides the plan)")
    parser.add_argument("--epochs", type=int, help="timed epochs per fit (overrides the plan)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("scripts/bench/results/train_throughput.md"))
    args = parser.parse_args()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    plan_table = QUICK if args.quick else PLAN
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    results, peaks = [], []
    for name in args.recipes:
        epochs, reps, max_batches = plan_table[name]
        epochs, reps = args.epochs or epochs, args.reps or reps
        if name == "vgg16":
            peaks.append(matmul_flops(reps=2 if args.quick else 5))
        results.append(bench_recipe(name, epochs, reps, max_batches, log))
        if name == "vgg16":
            peaks.append(matmul_flops(reps=2 if args.quick else 5))
        log(f"{name} done ({time.perf_counter() - t0:.0f}s)")

    ratios = [r["median"]["recipes"] / r["median"]["plain"] for r in results]
    geomean = math.exp(sum(map(math.log, ratios)) / len(ratios))
    score_name = {"vae": "neg. ELBO (nats)", "dcgan": "last d_loss / g_loss"}
    lines = [
        f"Training throughput, `recipes train` vs plain Keras, on the bundled digits. "
        f"{describe_machine()}; "
        f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after; {time.perf_counter() - t0:.0f}s.",
        f"recipes settings (auto): {results[0]['plan'].describe()}",
        "",
        "| recipe | input, batch | examples x timed epochs x fits | recipes samples/s | plain samples/s "
        "| recipes / plain | settings: recipes ; plain | quality | recipes | plain |",
        "|---|---|---|---:|---:|---:|---|---|---:|---:|",
    ]
    for r, ratio in zip(results, ratios):
        name, cfg = r["name"], r["config"]
        shape = "x".join(map(str, r["input_shape"]))
        lines.append(
            f"| {name} | {shape}, {cfg['batch_size']} | {r['examples']:,} x {r['epochs']} x {r['reps']} | "
            f"{r['median']['recipes']:,.0f} | {r['median']['plain']:,.0f} | {ratio:.2f}x | "
            f"{r['settings']['recipes']} ; {r['settings']['plain']} | "
            f"{score_name.get(name, 'test accuracy')} | {fmt_score(name, r['score']['recipes'])} | "
            f"{fmt_score(name, r['score']['plain'])} |"
        )
    lines += [
        "",
        f"Geometric mean of recipes / plain: **{geomean:.2f}x** over {len(results)} recipes "
        f"(target >= 1.3x, none below 1.0x).",
        "samples/s: median over the fits; each fit's figure is its timed epochs' examples over "
        "their training time (validation excluded).",
    ]
    vgg = next((r for r in results if r["name"] == "vgg16"), None)
    if vgg is not None:
        flops = vgg_training_flops(vgg["model"])
        peak = statistics.median(peaks)
        achieved = {side: flops * vgg["median"][side] for side in ("recipes", "plain")}
        lines += [
            "",
            f"VGG16 (small, 32x32x1) training: {flops / 1e9:.2f} GFLOP per example "
            f"(3 x 2 x conv/dense multiply-adds); float32 {MATMUL_N}x{MATMUL_N} matmul: "
            f"{peak / 1e9:.1f} GFLOP/s (median of {len(peaks)} runs: "
            f"{', '.join(f'{p / 1e9:.1f}' for p in peaks)}).",
            "",
            "| VGG16 32x32 | achieved GFLOP/s | fraction of matmul peak |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {side} | {achieved[side] / 1e9:.1f} | {achieved[side] / peak:.0%} |" for side in ("recipes", "plain")
        ]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
