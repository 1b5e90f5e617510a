"""Training throughput fed by `load_dataset` versus numpy arrays already in memory.

    python scripts/bench/input_pipeline.py                          # defaults below, table to stdout
    python scripts/bench/input_pipeline.py --out bench/input_pipeline.md
    python scripts/bench/input_pipeline.py --repeat-data 60 --batch-size 128 --epochs 4 --repeats 9

What is measured: the same model (recipes' MLP, 2 x Dense 512) is trained on the same
data, side by side in one process, fed two ways:
- numpy: `model.fit(x, y, batch_size=...)` with `x` already float32 in [0, 1] (and
  already resized) in memory: the best case, Keras's own array adapter;
- load_dataset: `model.fit(train)` with `train` from `recipes.datasets.load_dataset`,
  which reads the .npz and scales (and resizes) the images once, cached inside tf.data.
The data is the bundled digits, the training split repeated `--repeat-data` times so an
epoch lasts long enough to time, written to a temporary .npz. Two rows: the native 8x8x1
images, and images resized to `--image-size` with 3 channels. Each fit runs 1 + `--epochs`
epochs; the first (tracing, cache filling) is excluded and the median epoch is kept; the
two feeds alternate `--repeats` times and the table shows the median. samples/s =
training examples / epoch wall time. The last two columns are the loader relative to
numpy (1.00 = no overhead): by wall time, and by CPU time (examples per CPU-second of the
whole process), the steadier figure on a machine shared with other jobs.
"pipeline alone" iterates the loader's dataset without training.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))  # run from a checkout

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from recipes import build_mlp  # noqa: E402
from recipes.datasets import load_dataset  # noqa: E402
from recipes.datasets._named import bundled_path  # noqa: E402
from recipes.hardware import describe_machine  # noqa: E402

DEFAULTS = dict(
    repeat_data=30,  # 1,438 digits x 30 = 43,140 examples an epoch
    batch_size=64,
    epochs=2,  # timed epochs per fit, after one warm-up epoch
    repeats=5,  # fits per feed; the table shows the median
    image_size=(16, 16),
)


class EpochTimer(keras.callbacks.Callback):
    """Wall time and CPU time (all threads of this process) of every epoch."""

    def on_train_begin(self, logs=None):
        self.wall, self.cpu = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.wall.append(time.perf_counter() - self._start[0])
        self.cpu.append(time.process_time() - self._start[1])


def timed_fit(input_shape, data, epochs, batch_size):
    """Returns the median (wall, CPU) epoch time of a fresh MLP trained 1 + `epochs` epochs."""
    keras.utils.set_random_seed(0)
    model = build_mlp(input_shape=input_shape, num_classes=10)
    timer = EpochTimer()
    if isinstance(data, tf.data.Dataset):
        model.fit(data, epochs=1 + epochs, verbose=0, callbacks=[timer], shuffle=False)  # shuffled already
    else:
        x, y = data
        model.fit(x, y, batch_size=batch_size, epochs=1 + epochs, verbose=0, callbacks=[timer])
    return statistics.median(timer.wall[1:]), statistics.median(timer.cpu[1:])


def pipeline_alone(ds, epochs):
    for _ in ds:  # warm-up: fills the cache
        pass
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _ in ds:
            pass
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_row(label, path, n, args, image_size=None, channels=None):
    train, _, _, info = load_dataset(
        path, batch_size=args.batch_size, validation_split=0, image_size=image_size, channels=channels, seed=0
    )
    # numpy feed: the same examples, transformed once, up front
    x = np.concatenate([x for x, _ in train.unbatch().batch(8192)])
    y = np.concatenate([y for _, y in train.unbatch().batch(8192)])
    assert x.shape == (n, *info.input_shape) and x.dtype == np.float32
    times = {"numpy": [], "load_dataset": []}
    for r in range(args.repeats):
        order = ("numpy", "load_dataset") if r % 2 == 0 else ("load_dataset", "numpy")
        for feed in order:
            data = (x, y) if feed == "numpy" else train
            times[feed].append(timed_fit(info.input_shape, data, args.epochs, args.batch_size))
    alone = pipeline_alone(train, args.epochs)
    median = {feed: [statistics.median(t[i] for t in times[feed]) for i in (0, 1)] for feed in times}
    rows = []
    for feed in ("numpy", "load_dataset"):
        (wall, cpu), (base_wall, base_cpu) = median[feed], median["numpy"]
        rows.append(
            f"| {label} | {feed} | {n / wall:,.0f} | {wall:.2f} | {cpu:.2f} | "
            f"{base_wall / wall:.3f} | {base_cpu / cpu:.3f} |"
        )
    rows.append(f"| {label} | pipeline alone (no training) | {n / alone:,.0f} | {alone:.2f} | | | |")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat-data", type=int, default=DEFAULTS["repeat_data"])
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    parser.add_argument("--repeats", type=int, default=DEFAULTS["repeats"])
    parser.add_argument("--image-size", type=int, nargs=2, default=DEFAULTS["image_size"])
    parser.add_argument("--out", help="also write the markdown table to this file")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with np.load(bundled_path()) as f:
        x, y = f["x_train"], f["y_train"]
    n = len(x) * args.repeat_data
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits_repeated.npz")
        np.savez(path, x_train=np.tile(x, (args.repeat_data, 1, 1)), y_train=np.tile(y, args.repeat_data))
        rows = bench_row("digits 8x8x1 (scale, cached)", path, n, args)
        h, w = args.image_size
        rows += bench_row(f"digits -> {h}x{w}x3 (resize, cached)", path, n, args, image_size=(h, w), channels=3)

    lines = [
        f"Input pipeline: MLP (2 x Dense 512) on {n:,} digits an epoch, batch {args.batch_size}, "
        f"median epoch of {args.epochs} (after 1 warm-up) and of {args.repeats} alternating fits.",
        f"{describe_machine()}, Python {sys.version.split()[0]}; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after.",
        "",
        "| data | feed | samples/s | epoch s | CPU s/epoch | speed vs numpy | CPU-efficiency vs numpy |",
        "|---|---|---:|---:|---:|---:|---:|",
        *rows,
    ]
    table = "\n".join(lines)
    print(table)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
