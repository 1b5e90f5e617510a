"""What each of `recipes train`'s callbacks costs per epoch, recipe by recipe.

    python scripts/bench/callback_costs.py                        # mlp, lstm, vae on the digits (~3 min)
    python scripts/bench/callback_costs.py --recipes vgg16 --epochs 3

Runs `recipes.run.train` on each recipe's default configuration, with every callback
the run builds wrapped so that the seconds spent in each of its hooks are added up. Prints,
per recipe, the mean seconds per epoch of each callback (all hooks but the first epoch's,
which also builds and traces), the whole epoch (from `on_epoch_begin` to the end of the
last callback's `on_epoch_end`), and the share of the epoch the callbacks take.
"""

from __future__ import annotations

import argparse
import collections
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from recipes import config as config_lib  # noqa: E402
from recipes import run as run_lib  # noqa: E402
from recipes.run import fit as run_fit  # noqa: E402

HOOKS = ("on_epoch_begin", "on_epoch_end", "on_test_begin", "on_test_end", "on_train_batch_end")


def timed_callbacks(costs, clock):
    """Wraps `recipes.run.fit.callbacks` so each callback's hooks add their seconds to `costs`,
    between `clock`'s two callbacks."""
    build = run_fit.callbacks

    def wrapped(*args, **kwargs):
        callbacks = build(*args, **kwargs)
        for callback in callbacks:
            name = type(callback).__name__
            for hook in HOOKS:
                original = getattr(callback, hook, None)
                if original is None:
                    continue

                def timed(*a, _original=original, _name=name, **k):
                    start = time.perf_counter()
                    try:
                        return _original(*a, **k)
                    finally:
                        if clock.epoch > 1:  # the first epoch builds and traces
                            costs[_name] += time.perf_counter() - start

                setattr(callback, hook, timed)
        return [clock.begin, *callbacks, clock.end]

    run_fit.callbacks = wrapped
    return build


class EpochWall:
    """Two callbacks, first and last: epoch wall time from the first's begin to the last's end."""

    def __init__(self):
        import keras

        self.epoch, self.walls, self.start = 0, [], None
        outer = self

        class Begin(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.epoch = epoch + 1
                outer.start = time.perf_counter()

        class End(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch > 0:
                    outer.walls.append(time.perf_counter() - outer.start)

        self.begin, self.end = Begin(), End()


def measure(recipe, epochs, work):
    costs, clock = collections.defaultdict(float), EpochWall()
    original = timed_callbacks(costs, clock)
    try:
        config = config_lib.resolve(recipe, flags={"epochs": epochs})
        run_lib.train(config, pathlib.Path(work) / recipe, verbose=0, log=lambda *a, **k: None)
    finally:
        run_fit.callbacks = original
    walls = clock.walls
    per_epoch = {name: seconds / len(walls) for name, seconds in costs.items()}
    return per_epoch, sum(walls) / len(walls)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["mlp", "lstm", "vae"])
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    lines = ["| recipe | epoch (s) | callbacks (s) | share | the costliest, s per epoch |", "|---|---:|---:|---:|---|"]
    with tempfile.TemporaryDirectory() as work:
        for recipe in args.recipes:
            per_epoch, epoch = measure(recipe, args.epochs, work)
            total = sum(per_epoch.values())
            top = sorted(per_epoch.items(), key=lambda kv: -kv[1])[:6]
            lines.append(
                f"| {recipe} | {epoch:.3f} | {total:.3f} | {total / epoch:.0%} | "
                + ", ".join(f"{name} {seconds:.3f}" for name, seconds in top)
                + " |"
            )
            print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
