"""The per-recipe part of `backends.py`: every recipe trained by `recipes train` on every backend.

    python scripts/bench/backends.py --recipes-only                    # ~47 minutes on 2 shared cores
    python scripts/bench/backends.py --recipes-only --recipes mlp vae --backends tensorflow jax

Each run is the command a user types, in a fresh process, on this checkout's package:
`python -m recipes.cli train <recipe> --backend <backend> --epochs E --run-dir ... --quiet`
(E per recipe, `EPOCHS` below, the same on every backend), on the default data set (the
bundled digits), with the recipe's default configuration and the backend's own hardware
plan. The generative recipes get `--judge` with one finished MLP run (trained first, on
TensorFlow, with the MLP's default epochs), so every backend's samples are scored by the
same classifier and no run trains a judge of its own.

For each recipe the backends run one after another; with `--rounds` above 1 the order
is reversed every other round, so a neighbour's load on shared cores hits them all alike.
From each run:
- the plan: the line the command prints when it starts (precision, jit,
  steps_per_execution, distribution strategy);
- epoch wall times, from the wall_time of the TensorBoard events in `logs/train`: the
  first epoch runs from the layer graphs `fit()` writes when it starts to the first
  epoch's scalars (tracing, compiling), each later epoch from one epoch's scalars to the
  next. An epoch is all `fit()` does in it: the training steps, validation, and the
  recipe's callbacks (batch-norm calibration, checkpoints, sample grids, the judge's
  scores), as a user waits for it;
- samples/s: the training examples (`DatasetInfo.num_train` of the run's configuration)
  over the median epoch after the first, hence E >= 3; with several rounds, the median
  over rounds, and the ratio to TensorFlow is the median of per-round ratios;
- the held-out metric after the same E epochs, from the run's metrics.json: test
  accuracy for a classifier, the negative ELBO (nats per image) for a VAE, the Fréchet
  distance of the judge's features for the GAN (lower is better for both).
A run that fails is reported with the last line of its error and the others go on.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]  # the checkout whose package is measured
BACKENDS = ("tensorflow", "jax", "torch")
BASELINE = "tensorflow"
# Epochs per run (--epochs overrides): the first traces and compiles, samples/s is the median
# of the rest. An MLP, LSTM or VAE epoch on the digits takes 0.2-6 s, much of it the
# callbacks' files, so 10 of them; AlexNet, VGG16 and the DCGAN took 15-220 s an epoch on 2
# shared cores (VGG16 on JAX the slowest, after a first of 5 minutes), so 3: 47 minutes in all.
EPOCHS = {"mlp": 10, "lstm": 10, "vae": 10}
DEFAULT_EPOCHS = 3
# metrics.json key -> (label, format); the first of these a run's metrics.json has is shown
HELD_OUT = {
    "accuracy": ("accuracy", ".3f"),  # classifiers
    "negative_elbo": ("neg. ELBO", ".2f"),  # the VAE (nats per image)
    "frechet_distance": ("Fréchet distance", ".2f"),  # the GAN, in the judge's features
    "loss": ("loss", ".3f"),
}


def train_command(recipe, backend, run_dir, *, epochs=None, judge=None, limit=None):
    """Runs `recipes train` in a fresh process: (exit code or None if stopped, stdout, stderr, seconds)."""
    command = [sys.executable, "-m", "recipes.cli", "train", recipe, "--backend", backend]
    command += ["--run-dir", str(run_dir), "--quiet"]
    command += ["--epochs", str(epochs)] if epochs else []
    command += ["--judge", str(judge)] if judge else []
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return None, "", f"stopped after {limit} s", time.perf_counter() - start
    return done.returncode, done.stdout, done.stderr, time.perf_counter() - start


def plan_of(stdout):
    """The hardware plan the command printed: {"precision": ..., "jit": ..., ...}, or {}."""
    for line in stdout.splitlines():
        if line.startswith("backend: "):
            return dict(part.partition(": ")[::2] for part in line.strip().split(" | "))
    return {}


def epoch_seconds(run_dir):
    """Wall seconds of each epoch, from the TensorBoard events in `logs/train` (see the module doc)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    start, ends = None, {}
    for path in sorted((pathlib.Path(run_dir) / "logs" / "train").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if event.step == 0 and start is None:  # the layer graphs, written as fit() starts
                    start = event.wall_time
                elif event.step > 0 and value.tag.startswith("epoch_"):
                    ends[event.step] = min(ends.get(event.step, event.wall_time), event.wall_time)
    times = [ends[k] for k in sorted(ends)]
    if start is None or not times:
        return []
    return [b - a for a, b in zip([start, *times], times)]


def training_examples(run_dir):
    """Examples `fit()` trained on per epoch: the run's configuration through the command's own loader."""
    from recipes import recipe, run_directory

    config = run_directory.read_config(run_dir)
    return recipe.load_data(config, splits=("train",)).info.num_train


def held_out(metrics):
    """(label, value, format, split) of the metric shown for a run."""
    key = next(k for k in HELD_OUT if k in metrics)
    label, fmt = HELD_OUT[key]
    return label, metrics[key], fmt, metrics.get("split", "?")


def package_version():
    """`recipes at <commit>` of the measured checkout, `+ changes` when its package differs from it."""
    try:
        git = ["git", "-C", str(ROOT)]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        changed = subprocess.run([*git, "status", "--porcelain", "recipes"], capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "recipes (no git)"
    return f"recipes at {commit.stdout.strip()}" + (" + changes" if changed.strip() else "")


def loadavg():
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def run(recipes, backends, epochs=None, *, rounds=1, runs_dir=None, limit=1800):
    """Trains every recipe on every backend and returns the markdown report (see the module doc).

    `epochs` is per run, for every recipe; `None` takes `EPOCHS`. Run directories go to
    `runs_dir`, else to a temporary directory removed at the end."""
    from recipes.registry import get_spec

    epochs = {recipe: epochs or EPOCHS.get(recipe, DEFAULT_EPOCHS) for recipe in recipes}

    t0 = time.perf_counter()
    start_load = loadavg()
    root = pathlib.Path(runs_dir or tempfile.mkdtemp(prefix="backends-recipes-"))
    root.mkdir(parents=True, exist_ok=True)
    results, loads, failures, judge_metrics = {}, [], [], None
    try:
        if any(get_spec(recipe).task == "generation" for recipe in recipes):
            judge = fresh(root / "judge-mlp")
            code, _, err, seconds = train_command("mlp", BASELINE, judge, limit=limit)
            if code != 0:
                raise SystemExit(f"The judge's MLP run failed (exit {code}):\n{err[-3000:]}")
            judge_metrics = json.loads((judge / "metrics.json").read_text())
            print(f"judge trained ({seconds:.0f}s): {judge_metrics}", file=sys.stderr, flush=True)
        for recipe in recipes:
            generative = get_spec(recipe).task == "generation"
            for r in range(rounds):
                for backend in backends if r % 2 == 0 else backends[::-1]:
                    run_dir = fresh(root / f"{recipe}-{backend}-{r + 1}")
                    code, out, err, seconds = train_command(
                        recipe,
                        backend,
                        run_dir,
                        epochs=epochs[recipe],
                        judge=judge if generative else None,
                        limit=limit,
                    )
                    loads.append(os.getloadavg()[0])
                    entry = {"round": r, "seconds": seconds, "plan": plan_of(out)}
                    lines = [line for line in err.splitlines() if line.strip()] or ["(no message)"]
                    if code != 0:
                        entry["failed"] = f"exit {code}: {lines[-1]}" if code is not None else lines[-1]
                    elif len(times := epoch_seconds(run_dir)) != epochs[recipe]:
                        entry["failed"] = f"exit 0, but logs/train holds {len(times)} of {epochs[recipe]} epochs"
                    else:
                        entry["epochs"] = times
                        entry["metrics"] = json.loads((run_dir / "metrics.json").read_text())
                        entry["examples"] = training_examples(run_dir)
                    if "failed" in entry:
                        failures.append((recipe, backend, r, lines[-25:]))
                    results.setdefault((recipe, backend), []).append(entry)
                    done = entry.get("failed") or ", ".join(f"{s:.1f}" for s in entry["epochs"]) + " s/epoch"
                    print(
                        f"{recipe} on {backend}, round {r + 1}: {done} ({seconds:.0f}s; "
                        f"total {time.perf_counter() - t0:.0f}s; load {loads[-1]:.1f})",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        if runs_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    return report(results, recipes, backends, epochs, rounds, judge_metrics, start_load, loads, failures, t0)


def fresh(run_dir):
    if run_dir.exists():
        shutil.rmtree(run_dir)
    return run_dir


def rate(entry):
    """Training samples/s of one run: examples over its median epoch after the first."""
    return entry["examples"] / statistics.median(entry["epochs"][1:])


def report(results, recipes, backends, epochs, rounds, judge_metrics, start_load, loads, failures, t0):
    from recipes import hardware

    versions = "; ".join(f"{name} {importlib.metadata.version(name)}" for name in ("jax", "torch"))
    lines = [
        f"Every recipe trained by `recipes train <recipe> --backend <backend> --epochs <epochs>` on the "
        f"bundled digits, with the recipe's default configuration and the backend's plan; {rounds} "
        f"round{'s' if rounds > 1 else ''}. {package_version()}; {hardware.describe_machine()}; {versions}. "
        f"Load average (1, 5, 15 min) at start: {start_load}.",
        "",
        f"| recipe | backend | epochs | plan: precision, jit, steps/execution, strategy | samples/s "
        f"(median epoch after the first) | vs {BASELINE} | first epoch | whole command | held-out after the epochs |",
        "|---|---|---:|---|---:|---:|---:|---:|---|",
    ]
    fastest = []
    for recipe in recipes:
        base = {e["round"]: rate(e) for e in results.get((recipe, BASELINE), []) if "failed" not in e}
        medians, ratios = {}, {}
        for backend in backends:
            entries = results.get((recipe, backend), [])
            ok = [e for e in entries if "failed" not in e]
            plan = next((e["plan"] for e in entries if e["plan"]), None)
            settings = (
                f"{plan['precision']}, jit {plan['jit']}, spe {plan['steps_per_execution']}, {plan['strategy']}"
                if plan
                else "-"
            )
            if not ok:
                failed = entries[0]["failed"] if entries else "not run"
                lines.append(f"| {recipe} | {backend} | {epochs[recipe]} | {settings} | failed: {failed} | | | | |")
                continue
            rates = {e["round"]: rate(e) for e in ok}
            medians[backend] = statistics.median(rates.values())
            shared = [r for r in rates if r in base]  # per-round ratios: both ran minutes apart at most
            if shared:
                ratios[backend] = statistics.median(rates[r] / base[r] for r in shared)
            label, _, fmt, split = held_out(ok[0]["metrics"])
            values = [held_out(e["metrics"])[1] for e in ok]
            metric = f"{split} {label} {statistics.median(values):{fmt}}"
            if max(values) != min(values):
                metric += f" ({min(values):{fmt}}-{max(values):{fmt}})"
            lines.append(
                f"| {recipe} | {backend} | {epochs[recipe]} | {settings} | {medians[backend]:,.0f} | "
                f"{f'{ratios[backend]:.2f}x' if backend in ratios else '-'} | "
                f"{statistics.median(e['epochs'][0] for e in ok):.1f} s | "
                f"{statistics.median(e['seconds'] for e in ok):.0f} s | {metric} |"
            )
        ranked = sorted(medians, key=medians.get, reverse=True)
        if len(ranked) > 1:
            best, next_ = ranked[:2]
            fastest.append(f"{recipe} {best}, {medians[best] / medians[next_]:.2f}x the next ({next_})")
    judged = (
        f"The generative recipes' samples are scored by one MLP judge run (TensorFlow, test accuracy "
        f"{judge_metrics['accuracy']:.3f}). "
        if judge_metrics
        else ""
    )
    lines += ["", f"Fastest per recipe: {'; '.join(fastest)}."] if fastest else []
    lines += [
        "",
        "samples/s: training examples over the median epoch after the first; an epoch is all `fit()` does "
        "in it (training steps, validation, the recipe's callbacks), timed by its TensorBoard events. "
        "first epoch: the same, with tracing and compiling. whole command: the process from start to "
        f"exit (imports, data, the epochs, the test evaluation). {judged}"
        f"Load average (1 min) after each run: {min(loads):.1f}-{max(loads):.1f}; at end: {loadavg()}. "
        f"Total {time.perf_counter() - t0:.0f} s.",
    ]
    for recipe, backend, r, tail in failures:
        lines += ["", f"{recipe} on {backend} (round {r + 1}) failed; the end of its output:", "", "```"]
        lines += [*tail, "```"]
    return "\n".join(lines)
