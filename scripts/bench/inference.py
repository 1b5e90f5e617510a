"""Inference speed of a recipe's model in Keras and in what `recipes export` writes, side by side.

    python scripts/bench/inference.py                        # ~3-4 minutes on 2 shared cores
    python scripts/bench/inference.py --rounds 9 --out scripts/bench/results/inference.md

What is measured: the MLP (as `recipes train mlp` builds it for the digits, 8x8x1) and VGG16
small (32x32x1, `preset="small"`), 10 classes, float32, exported once each as a
SavedModel, an ONNX file and a LiteRT file through `recipes.export` (Keras's
`model.export`), then run on the same random batch by: Keras `model.predict`, Keras
`model(x)` (a direct call: what a server that holds the model would do), the SavedModel's
`serve` in TensorFlow, ONNX Runtime (CPU provider) and LiteRT's interpreter (XNNPACK),
at batch 1 and batch 64. The runtimes take turns in `--rounds` interleaved rounds of about
`--seconds` each; latency is the median of every call's wall time, predictions/s is
batch / that median, and "vs Keras predict" is the ratio of the medians. Each runtime's
outputs are compared with Keras's first (largest difference shown).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))  # run from a checkout

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from recipes import build_mlp, build_vgg16  # noqa: E402
from recipes.hardware import describe_machine  # noqa: E402
from recipes.trained import litert_interpreter  # noqa: E402

MODELS = {
    "mlp": lambda: build_mlp(input_shape=(8, 8, 1), num_classes=10),
    "vgg16 small": lambda: build_vgg16(input_shape=(32, 32, 1), num_classes=10, preset="small"),
}
BATCHES = (1, 64)


def runtimes(model, folder):
    """name -> callable `x -> probabilities` for the model and its three exports."""
    import onnxruntime

    paths = {
        fmt: os.path.join(folder, name)
        for fmt, name in (("tf_saved_model", "sm"), ("onnx", "m.onnx"), ("litert", "m.tflite"))
    }
    for fmt, path in paths.items():
        model.export(path, format=fmt, verbose=False)
    served = tf.saved_model.load(paths["tf_saved_model"])
    session = onnxruntime.InferenceSession(paths["onnx"], providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    lite = litert_interpreter(paths["litert"])
    return {
        "Keras model.predict": lambda x: model.predict(x, verbose=0),
        "Keras model(x)": lambda x: model(x, training=False).numpy(),
        "SavedModel (TensorFlow)": lambda x: served.serve(tf.constant(x)).numpy(),
        "ONNX Runtime": lambda x: session.run(None, {name: x})[0],
        "LiteRT (XNNPACK)": lambda x: lite(x)[0],
    }


def measure(fns, x, rounds, seconds):
    times = {name: [] for name in fns}
    for fn in fns.values():  # warm up: tracing, allocation, LiteRT's resize
        for _ in range(3):
            fn(x)
    for _ in range(rounds):
        for name, fn in fns.items():
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                start = time.perf_counter()
                fn(x)
                times[name].append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4, help="per runtime per round")
    parser.add_argument("--out", help="also write the table (Markdown) here")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    started = time.perf_counter()
    rows = []
    for model_name, build in MODELS.items():
        keras.utils.set_random_seed(0)
        model = build()
        with tempfile.TemporaryDirectory() as folder:
            fns = runtimes(model, folder)
            for batch in BATCHES:
                x = np.random.default_rng(0).random((batch, *model.input_shape[1:]), dtype=np.float32)
                expected = model.predict(x, verbose=0)
                differences = {n: float(np.max(np.abs(fn(x) - expected))) for n, fn in fns.items()}
                times = measure(fns, x, args.rounds, args.seconds)
                base = statistics.median(times["Keras model.predict"])
                for name, t in times.items():
                    median = statistics.median(t)
                    rows.append(
                        f"| {model_name} | {batch} | {name} | {batch / median:,.0f} | {median * 1e3:.3f} | "
                        f"{base / median:.2f}x | {differences[name]:.1e} | {len(t)} |"
                    )
    header = (
        f"Inference per runtime. {describe_machine()}; "
        f"{_versions()}.\n{args.rounds} interleaved rounds of ~{args.seconds} s per runtime; float32 models with "
        f"random weights; load average (1, 5, 15 min) at start: {', '.join(f'{v:.2f}' for v in load)}.\n\n"
        "| model | batch | runtime | predictions/s | latency ms (median) | vs Keras predict | largest difference "
        "| calls |\n|---|---:|---|---:|---:|---:|---:|---:|"
    )
    footer = (
        f"\nLoad average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}; "
        f"total {time.perf_counter() - started:.0f} s."
    )
    table = "\n".join([header, *rows, footer])
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")


def _versions():
    import importlib.metadata as md

    found = []
    for name in ("onnxruntime", "tf2onnx", "ai-edge-litert"):
        try:
            found.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            found.append(f"{name} absent")
    return ", ".join(found)


if __name__ == "__main__":
    main()
