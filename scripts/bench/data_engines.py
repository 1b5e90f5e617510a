"""The two data engines side by side: tf.data and Keras's PyDataset (`load_dataset(engine=...)`).

    KERAS_BACKEND=jax python scripts/bench/data_engines.py              # defaults below
    KERAS_BACKEND=jax python scripts/bench/data_engines.py --images 4000 --repeats 5

Needs TensorFlow (for the tf.data engine). What is measured, in one process, the engines
alternating `--repeats` times (the median is shown):
- digits, fit: recipes' MLP trained on the bundled digits (batch 64), the median of
  `--epochs` epochs after a warm-up epoch (compiling); samples/s = training examples / epoch;
- digits, read: the training pipeline read through once without a model (batches as numpy);
- folder, read: a generated folder of `--images` JPEGs of 256x192 read at 64x64 without a model,
  decoded every epoch (`cache_budget=0`), then from the in-memory cache (second epoch of a
  budget that holds them); images/s = training images / epoch.
The ratio column is PyDataset / tf.data (above 1: the PyDataset engine is faster).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "jax")
# as `recipes` sets it for PyTorch: spinning OpenMP threads cut its figures 7x beside other work on 2 cores
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))  # run from a checkout

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from recipes import build_mlp  # noqa: E402
from recipes.datasets import load_dataset, set_epoch  # noqa: E402
from recipes.datasets._batches import batches  # noqa: E402

ENGINES = ("tf.data", "pydataset")


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def fit_digits(engine, epochs):
    data = load_dataset("digits", batch_size=64, engine=engine)
    model = build_mlp(input_shape=data.info.input_shape, num_classes=10)
    timer = EpochTimer()
    model.fit(data.train, epochs=1 + epochs, shuffle=False, verbose=0, callbacks=[timer])
    return data.info.num_train / statistics.median(timer.times[1:])


def read(ds, epoch=0):
    set_epoch(ds, epoch)
    start = time.perf_counter()
    for _ in batches(ds):
        pass
    return time.perf_counter() - start


def read_digits(engine):
    data = load_dataset("digits", batch_size=64, engine=engine)
    read(data.train)
    return data.info.num_train / read(data.train, 1)


def folder(root, n):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:192, 0:256]
    for i in range(n):
        c = i % 4
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        image = np.stack([(xx + 30 * c) % 256, (yy + i) % 256, (xx + yy) % 256], -1) + rng.normal(0, 10, (192, 256, 3))
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(root / f"c{c}" / f"{i}.jpg", quality=90)
    return root


def read_folder(root, engine, budget):
    data = load_dataset(root, batch_size=64, image_size=(64, 64), engine=engine, cache_budget=budget)
    first = read(data.train, 0)
    return data.info.num_train / (first if budget == 0 else read(data.train, 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = folder(__import__("pathlib").Path(tmp) / "photos", args.images)
        cases = {
            "digits, fit (samples/s)": lambda e: fit_digits(e, args.epochs),
            "digits, read (samples/s)": read_digits,
            f"folder of {args.images} JPEGs -> 64x64, decoded (images/s)": lambda e: read_folder(root, e, 0),
            f"folder of {args.images} JPEGs -> 64x64, cached (images/s)": lambda e: read_folder(root, e, "1GiB"),
        }
        results = {name: {e: [] for e in ENGINES} for name in cases}
        for _ in range(args.repeats):
            for name, case in cases.items():
                for engine in ENGINES:
                    results[name][engine].append(case(engine))
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}, {os.cpu_count()} cores")
    print(f"| {'case':<52} | {'tf.data':>9} | {'pydataset':>9} | ratio |")
    print(f"|{'-' * 54}|{'-' * 11}|{'-' * 11}|-------|")
    for name, by in results.items():
        tf_data, py = (statistics.median(by[e]) for e in ENGINES)
        print(f"| {name:<52} | {tf_data:>9,.0f} | {py:>9,.0f} | {py / tf_data:5.2f} |")


if __name__ == "__main__":
    main()
