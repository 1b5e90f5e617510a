"""Time to a good model: each recipe's default against the plain Keras script it replaces.

    python scripts/bench/time_to_accuracy.py                              # the README's table (~40 min, 2 cores)
    python scripts/bench/time_to_accuracy.py --recipes mlp lstm --datasets digits
    python scripts/bench/time_to_accuracy.py --report                     # redraw from the kept results

For each recipe and data set, two fresh processes, one after the other, on the same data
splits:
- the recipe: `python -m recipes.cli train <recipe> --dataset <data> --run-dir D`, the
  command a user types, with the recipe's default configuration and the machine's plan
  (for the three slow recipes `--epochs` caps the run to keep the bench's time, `CAPS`);
  its quality after each epoch comes from `history.csv`, the time from the wall_time of the
  epoch's TensorBoard scalars (written once validation and the callbacks' per-epoch work
  are done).
- the plain script (`scripts/bench/plain/`): the Keras example as written, with its own
  number of epochs, reading the same splits from an .npz; `plain/_clock.py` notes the wall
  time and validation quality after each epoch, and leaves its own measuring out of the
  times.

Both clocks start when the bench starts the process: imports, loading, building and
compiling count, as a user waits for them. Quality is measured on the validation split
after each epoch: accuracy for the classifiers, the negative ELBO (nats per image, lower is
better) for the VAE, and for the DCGAN the Fréchet distance of 500 samples in the features
of the recipe run's judge (lower is better; the plain script is scored by the same judge).

The target is the plain script's final quality: the mean of its last three epochs'
validation quality (one epoch's, on 144 validation digits, moves by 0.007 an image). The
recipe's time to it is the first epoch end at which its validation quality is at least as
good. Two ratios (above 1: the recipe is sooner):
- **the ratio** (the issue's goal): the plain script's whole run (from process start to its
  test figure) over the recipe's time to the script's final quality: what a user waits for
  the script's result, against what the recipe needs to give the same quality;
- **both to the target**, stricter: the script's own first epoch end at the target over the
  recipe's, as if the user had known when to stop the script.
"Final" is each side's held-out test figure at the end of its epochs.

A generative recipe's judge (`recipes.judge.cached_judge`) is trained in a pair's first
round and comes from the cache (the pair's own KERAS_HOME) in the others, as it does for a
user's second run on the same data; the table's note gives the first round's ratios apart.

Data sets: the bundled digits (1,438 train, 10% of it validation, 359 test), and `shapes`,
a larger one this script makes (`make_shapes`: 32x32 RGB images of ten kinds of shape,
random colour, size, place and noise; 6,000 train and 1,200 test, made the same from the
seed every time). Results are kept per pair in --work/results.json, so a rerun of some
pairs redraws the table with the others. Writes time_to_accuracy.md, .png and .json (the
results) to --out; `--report` alone redraws them from that .json.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]  # the checkout whose package is measured
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

# recipe -> (plain script, its epochs, the recipe's history column, the script's log key,
# higher is better, what the quality is). The scripts' epochs are the examples' own where
# they have one (MNIST MLP 20, VAE 30); the LSTM's 15 are imdb_lstm.py's, and
# AlexNet, VGG16 (no example) and the DCGAN (one epoch of CelebA in the example) get what
# the bench's time allows.
PAIRS = {
    "mlp": ("mnist_mlp.py", 20, "val_accuracy", "val_accuracy", True, "validation accuracy"),
    "lstm": ("lstm.py", 15, "val_accuracy", "val_accuracy", True, "validation accuracy"),
    "alexnet": ("alexnet.py", 6, "val_accuracy", "val_accuracy", True, "validation accuracy"),
    "vgg16": ("vgg16.py", 8, "val_accuracy", "val_accuracy", True, "validation accuracy"),
    "vae": ("vae.py", 30, "val_loss", "val_negative_elbo", False, "validation negative ELBO (nats)"),
    "dcgan": ("dcgan.py", 10, "val_frechet_distance", "val_frechet_distance", False, "Fréchet distance, judge"),
}
FINAL = {"accuracy": "test accuracy", "negative_elbo": "test -ELBO", "frechet_distance": "Fréchet distance"}
# epochs of the recipe runs where its default would take too long for the bench (its
# time to the target is found well inside them; its final quality is after these)
CAPS = {"alexnet": 12, "vgg16": 8, "dcgan": 15}
# rounds per pair on the digits: the quick pairs three times, their order alternating (on
# shared cores one run's start-up varies by a second); the others, and every pair on
# `shapes` (where the epochs outweigh the start-up), once
ROUNDS = {"mlp": 3, "lstm": 3, "vae": 3}
DATASETS = ("digits", "shapes")
JUDGED = ("vae", "dcgan")  # generative recipes: a judge scores their samples every epoch
LAST = 3  # epochs averaged for the target
# the DCGAN draws 28x28 digits; AlexNet and VGG16 take minutes an epoch there (the plain
# AlexNet over 10 at 227x227)
ON_SHAPES = ("mlp", "lstm", "vae")
SHAPES = ("disk", "ring", "square", "frame", "triangle", "plus", "cross", "bar", "column", "diamond")


def make_shapes(path, n_train=6000, n_test=1200, side=32, seed=0):
    """Writes a 10-class .npz of side x side RGB uint8 shapes (see the module doc); returns its path."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    labels = np.arange(n) % len(SHAPES)
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:side, 0:side].astype("float32")
    images = np.empty((n, side, side, 3), dtype="uint8")
    for i, label in enumerate(labels):
        cy, cx = rng.uniform(side * 0.3, side * 0.7, size=2)
        r = rng.uniform(side * 0.15, side * 0.32)
        w = max(1.5, r * rng.uniform(0.25, 0.4))  # stroke width
        dy, dx = yy - cy, xx - cx
        ay, ax = np.abs(dy), np.abs(dx)
        mask = {
            "disk": dy**2 + dx**2 <= r**2,
            "ring": np.abs(np.sqrt(dy**2 + dx**2) - r) <= w / 2,
            "square": np.maximum(ay, ax) <= r * 0.85,
            "frame": np.abs(np.maximum(ay, ax) - r * 0.85) <= w / 2,
            "triangle": (dy <= r * 0.7) & (dy >= -r) & (ax <= (dy + r) * 0.6),
            "plus": ((ay <= w / 2) & (ax <= r)) | ((ax <= w / 2) & (ay <= r)),
            "cross": ((np.abs(dy - dx) <= w * 0.7) | (np.abs(dy + dx) <= w * 0.7)) & (np.maximum(ay, ax) <= r * 0.8),
            "bar": (ay <= w / 2) & (ax <= r),
            "column": (ax <= w / 2) & (ay <= r),
            "diamond": ay + ax <= r,
        }[SHAPES[label]]
        background = rng.uniform(0, 110, size=3)
        colour = rng.uniform(120, 255, size=3)
        image = np.where(mask[..., None], colour, background) + rng.normal(0, 18, size=(side, side, 3))
        images[i] = np.clip(image, 0, 255).astype("uint8")
    np.savez_compressed(
        path,
        x_train=images[:n_train],
        y_train=labels[:n_train],
        x_test=images[n_train:],
        y_test=labels[n_train:],
        class_names=np.array(SHAPES),
    )
    return path


def export_splits(recipe, dataset, path):
    """The recipe's own splits (its loader, sizes, scaling) as the .npz the plain script reads."""
    from recipes import config as config_lib
    from recipes.callbacks.images import take_examples
    from recipes.recipe import load_data

    config = config_lib.resolve(recipe, flags={"dataset": dataset})
    data = load_data(config, labels=True)
    arrays = {}
    for split in ("train", "val", "test"):
        if getattr(data, split) is None:  # the DCGAN holds no validation split out
            continue
        x, y = take_examples(getattr(data, split))
        if recipe == "dcgan":
            x = (x + 1.0) / 2.0  # the recipe's [-1, 1] to the example's [0, 1]
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x.astype("float32"), y
    np.savez(path, **arrays)
    return config


def dataset_flag(dataset, work):
    if dataset == "shapes":
        path = work / "shapes.npz"
        if not path.exists():
            make_shapes(path)
        return str(path)
    return dataset


def env(keras_home=None):
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    home = {"KERAS_HOME": str(keras_home)} if keras_home else {}
    return {**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", **home}


def timed(command, limit, keras_home=None):
    """Runs `command`; returns (start wall time, seconds until exit, exit code, stderr)."""
    start = time.time()
    done = subprocess.run(command, cwd=ROOT, env=env(keras_home), capture_output=True, text=True, timeout=limit)
    return start, time.time() - start, done.returncode, done.stderr


def epoch_ends(run_dir):
    """Wall time of each epoch's TensorBoard scalars in logs/train, by epoch (their step, 1-based)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    ends = {}
    for path in sorted((pathlib.Path(run_dir) / "logs" / "train").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag.startswith("epoch_"):
                    ends[event.step] = min(ends.get(event.step, event.wall_time), event.wall_time)
    return ends


def run_recipe(recipe, data_flag, epochs, run_dir, limit, flags=(), keras_home=None):
    command = [sys.executable, "-m", "recipes.cli", "train", recipe, "--dataset", data_flag]
    command += (["--epochs", str(epochs)] if epochs else []) + ["--run-dir", str(run_dir), "--quiet", *flags]
    start, seconds, code, err = timed(command, limit, keras_home)
    if code != 0:
        raise RuntimeError(f"recipes train {recipe} failed (exit {code}): {err.strip().splitlines()[-1:]}")
    column = PAIRS[recipe][2]
    with open(run_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    ends = epoch_ends(run_dir)
    curve = [(ends[int(row["epoch"])] - start, float(row[column])) for row in rows]
    final = json.loads((run_dir / "metrics.json").read_text())
    return {"curve": curve, "seconds": seconds, "final": final}


def run_plain(recipe, npz, epochs, work, limit, judge=None):
    script, _, _, key, _, _ = PAIRS[recipe]
    log = work / f"{recipe}-plain.jsonl"
    log.unlink(missing_ok=True)
    command = [sys.executable, str(HERE / "plain" / script), "--data", str(npz), "--epochs", str(epochs)]
    command += ["--log", str(log)] + (["--judge", str(judge)] if judge else [])
    start, _, code, err = timed(command, limit)
    if code != 0:
        raise RuntimeError(f"{script} failed (exit {code}): {err.strip().splitlines()[-1:]}")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    curve = [(row["time"] - start, row[key]) for row in rows if "epoch" in row]
    end = rows[-1]  # its time leaves the probe out, as every epoch's does
    return {"curve": curve, "seconds": end["time"] - start, "final": end["final"]}


def target_of(curve):
    """The plain script's final quality: the mean of its last `LAST` epochs' validation quality,
    so one lucky or unlucky epoch on a small validation split does not set it."""
    values = [value for _, value in curve[-LAST:]]
    return sum(values) / len(values)


def first_reaching(curve, target, higher):
    """Seconds at the first point of `curve` at least as good as `target`; None if never."""
    for seconds, value in curve:
        if (value >= target) if higher else (value <= target):
            return seconds
    return None


def bench_pair(recipe, dataset, work, epochs, limit, rounds=None):
    """Both sides of one pair, `rounds` times (default `ROUNDS`), the order alternating;
    `epochs` (if given) for both, else the script's own and the recipe's default."""
    plain_epochs, recipe_epochs = epochs or PAIRS[recipe][1], epochs or CAPS.get(recipe)
    rounds = rounds or (ROUNDS.get(recipe, 1) if dataset == "digits" else 1)
    pair_dir = work / f"{dataset}-{recipe}"
    shutil.rmtree(pair_dir, ignore_errors=True)
    pair_dir.mkdir(parents=True)
    data_flag = dataset_flag(dataset, work)
    npz = pair_dir / "splits.npz"
    export_splits(recipe, data_flag, npz)
    done = []
    for r in range(rounds):
        order = ("ours", "theirs") if r % 2 == 0 else ("theirs", "ours")  # the GAN's judge: round 1's run
        sides = {}
        for side in order:
            print(f"{dataset} {recipe}, round {r + 1}: {side} ...", file=sys.stderr, flush=True)
            if side == "ours":  # the pair's own KERAS_HOME: round 1 trains a generative run's judge
                home = pair_dir / "keras_home"
                sides[side] = run_recipe(
                    recipe, data_flag, recipe_epochs, pair_dir / f"run-{r + 1}", limit, keras_home=home
                )
            else:
                judge = pair_dir / "run-1" if recipe == "dcgan" else None  # scored by the recipe run's judge
                sides[side] = run_plain(recipe, npz, plain_epochs, pair_dir, limit, judge=judge)
        done.append({**sides, "first": order[0], "load": os.getloadavg()[0]})
        print(f"{dataset} {recipe}, round {r + 1}: {summary_of(recipe, done[-1])}", file=sys.stderr, flush=True)
    return {"recipe": recipe, "dataset": dataset, "rounds": done, "package": package_version()}


def summary_of(recipe, round_):
    """Target, each side's time to it, the script's whole run and the two ratios, in one round."""
    higher = PAIRS[recipe][4]
    target = target_of(round_["theirs"]["curve"])
    ours = first_reaching(round_["ours"]["curve"], target, higher)
    theirs = first_reaching(round_["theirs"]["curve"], target, higher)
    whole = round_["theirs"]["seconds"]
    return {
        "target": target,
        "ours": ours,
        "theirs": theirs,
        "whole": whole,
        "ratio": whole / ours if ours else None,
        "to_target": theirs / ours if ours else None,
    }


def summary(result):
    """Medians over the pair's rounds; a round the recipe never reached the target in counts as ratio 0."""
    each = [summary_of(result["recipe"], r) for r in result["rounds"]]
    ratios = [s["ratio"] or 0.0 for s in each]
    to_target = [s["to_target"] or 0.0 for s in each]
    reached = [s["ours"] for s in each if s["ours"] is not None]
    return {
        "target": statistics.median(s["target"] for s in each),
        "ours": statistics.median(reached) if len(reached) > len(each) / 2 else None,
        "theirs": statistics.median(s["theirs"] for s in each),
        "whole": statistics.median(s["whole"] for s in each),
        "ratio": statistics.median(ratios) or None,
        "ratios": ratios,
        "to_target": statistics.median(to_target) or None,
        "to_targets": to_target,
    }


def final_of(final):
    key = next(k for k in FINAL if k in final)
    return key, final[key]


def report(results, out):
    from recipes.hardware import describe_machine

    lines = [
        "| data | recipe vs plain script | rounds | epochs | quality | target (script's last 3 epochs) | "
        "recipe reaches it | script's whole run | **ratio** | script reaches it | both to the target | "
        "recipe final | script final | recipe's whole run |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios, to_targets = [], []
    for result in results:
        recipe, dataset, rounds = result["recipe"], result["dataset"], result["rounds"]
        s = summary(result)
        script, *_, label = PAIRS[recipe]
        key = final_of(rounds[0]["ours"]["final"])[0]
        finals = {side: statistics.median(final_of(r[side]["final"])[1] for r in rounds) for side in ("ours", "theirs")}
        ours_whole = statistics.median(r["ours"]["seconds"] for r in rounds)
        fmt = ".3f" if key == "accuracy" else ".2f"
        ratios.append(s["ratio"] or 0.0)
        to_targets.append(s["to_target"] or 0.0)
        reached = f"{s['ours']:.1f} s" if s["ours"] is not None else "never"
        ratio, to_target = (f"{s[k]:.2f}x" if s[k] else "never" for k in ("ratio", "to_target"))
        if len(rounds) > 1:
            ratio += f" ({min(s['ratios']):.2f}-{max(s['ratios']):.2f})"
            to_target += f" ({min(s['to_targets']):.2f}-{max(s['to_targets']):.2f})"
        epochs = f"{len(rounds[0]['ours']['curve'])} / {len(rounds[0]['theirs']['curve'])}"
        lines.append(
            f"| {dataset} | `{recipe}` vs `plain/{script}` | {len(rounds)} | {epochs} | {label} | "
            f"{s['target']:{fmt}} | {reached} | {s['whole']:.1f} s | **{ratio}** | {s['theirs']:.1f} s | "
            f"{to_target} | {FINAL[key]} {finals['ours']:{fmt}} | {finals['theirs']:{fmt}} | {ours_whole:.0f} s |"
        )
    loads = [r["load"] for result in results for r in result["rounds"]]
    cold = [
        f"{r['recipe']} on {r['dataset']} {summary_of(r['recipe'], r['rounds'][0])['ratio'] or 0:.2f}x"
        for r in results
        if r["recipe"] in JUDGED and len(r["rounds"]) > 1
    ]
    if cold:
        lines += ["", f"Round 1 alone, where the judge is trained before the first epoch: {', '.join(cold)}."]
    lines += [
        "",
        f"Geometric mean of the ratios: **{geometric_mean(ratios):.2f}x** over {len(ratios)} pairs (both to the "
        f"target: {geometric_mean(to_targets):.2f}x). Times and finals are medians over the rounds (ratios: "
        f"median, and the range); a pair's curves below are its first round. "
        f"{describe_machine()}; load average after each round {min(loads):.1f}-{max(loads):.1f}; "
        f"{', '.join(sorted({r.get('package') or package_version() for r in results}))}.",
    ]
    (out / "time_to_accuracy.md").write_text("\n".join(lines) + "\n")
    plot(results, out / "time_to_accuracy.png")
    return "\n".join(lines)


def geometric_mean(ratios):
    """0 when a pair never reached its target."""
    return math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios and all(ratios) else 0.0


def package_version():
    """`recipes at <commit>`, `+ changes` when the package differs from it."""
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    changed = subprocess.run([*git, "status", "--porcelain", "recipes"], capture_output=True, text=True).stdout
    return f"recipes at {commit or '?'}" + (" + changes" if changed.strip() else "")


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 3
    rows = math.ceil(len(results) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    for ax, result in zip(axes.flat, results):
        recipe, first = result["recipe"], result["rounds"][0]
        script, *_, label = PAIRS[recipe]
        for side, name, colour in (
            ("ours", f"recipes train {recipe}", "tab:blue"),
            ("theirs", f"plain/{script}", "tab:orange"),
        ):
            seconds, values = zip(*first[side]["curve"])
            ax.plot(seconds, values, marker="o", markersize=3, color=colour, label=name)
        target = summary_of(recipe, first)["target"]
        ax.axhline(target, color="grey", linestyle="--", linewidth=0.8, label="target")
        ax.axvline(first["theirs"]["seconds"], color="tab:orange", linestyle=":", linewidth=1, label="script done")
        ax.set_title(f"{result['dataset']}: {recipe}", fontsize=10)
        ax.set_xlabel("seconds from process start")
        ax.set_ylabel(label, fontsize=8)
        values = [v for side in ("ours", "theirs") for _, v in first[side]["curve"]]
        if PAIRS[recipe][4]:
            ax.set_ylim(max(0.0, min(target - 0.3, min(values))), 1.0)
        else:  # lower is better: from the best value to three times its distance to the target above it
            low = min(values)
            ax.set_ylim(low - 0.05 * abs(low), target + 3 * max(target - low, 0.05 * abs(target)))
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(results) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", nargs="+", choices=list(PAIRS), default=list(PAIRS))
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--epochs", type=int, help="for both sides of every pair (default: PAIRS and CAPS)")
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/time_to_accuracy"))
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "results")
    parser.add_argument("--report", action="store_true", help="only redraw from --work/results.json")
    parser.add_argument("--limit", type=int, default=3600, help="seconds a side may run")
    parser.add_argument("--rounds", type=int, help="rounds per pair (default: ROUNDS)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    kept = args.work / "results.json"
    if args.report and not kept.exists():  # the figures the README shows
        kept = args.out / "time_to_accuracy.json"
    results = {tuple(k.split("/")): v for k, v in json.loads(kept.read_text()).items()} if kept.exists() else {}
    if not args.report:
        for dataset in args.datasets:
            for recipe in args.recipes:
                if dataset == "shapes" and recipe not in ON_SHAPES:
                    continue
                results[(dataset, recipe)] = bench_pair(
                    recipe, dataset, args.work, args.epochs, args.limit, args.rounds
                )
                kept.write_text(json.dumps({"/".join(k): v for k, v in results.items()}, indent=1))
        shutil.copyfile(kept, args.out / "time_to_accuracy.json")
    order = [(d, r) for d in DATASETS for r in PAIRS if (d, r) in results]
    print(report([results[k] for k in order], args.out))


if __name__ == "__main__":
    main()
