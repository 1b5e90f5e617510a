"""What `time_to_accuracy.py` adds to each plain Keras script, and nothing else.

Each script here is a Keras example as it is written, with two changes: it reads the
bench's data splits from an `.npz` (in place of `keras.datasets`), and it passes
`EpochClock` to `fit()`. After every epoch the clock appends one JSON line to `--log`:
the epoch, the wall time (`time.time()`), the logs, and what its probe measured (for the
generative scripts: the negative ELBO or the judge's scores, which `fit()` does not log).
The probe's own seconds are taken out of every later time, so measuring costs the plain
script nothing; the recipes pay for their own per-epoch work.
"""

import argparse
import json
import os
import pathlib
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def arguments(epochs, judge=False):
    """The scripts' three flags (and `--judge` for the GAN): data file, epochs, log file."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help=".npz with x_train, y_train, x_val, y_val, x_test, y_test")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--log", required=True, help="JSON lines, one per epoch")
    if judge:
        parser.add_argument("--judge", required=True, help="the recipe run whose judge.keras scores the samples")
    return parser.parse_args()


def load(path):
    with np.load(path) as f:
        return {key: f[key] for key in f.files}


class EpochClock(keras.callbacks.Callback):
    def __init__(self, path, probe=None):
        super().__init__()
        self.path, self.probe, self.probing = pathlib.Path(path), probe, 0.0

    def on_epoch_end(self, epoch, logs=None):
        now = time.time()
        row = {"epoch": epoch + 1, "time": now - self.probing, **{k: float(v) for k, v in (logs or {}).items()}}
        if self.probe:
            row.update(self.probe(self.model))
        self.probing += time.time() - now
        self.write(row)

    def finish(self, **final):
        """The held-out figures at the end, and the time the script's work ended."""
        self.write({"final": {k: float(v) for k, v in final.items()}, "time": time.time() - self.probing})

    def write(self, row):
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
