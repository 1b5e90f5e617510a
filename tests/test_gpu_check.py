"""scripts/gpu_check.py: its FLOP count, and the whole check on this machine's CPU (the fallback a
machine without a GPU takes: quick sizes, every recipe, the MFU line, the input pipeline's verdict)."""

import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.py"


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports no Keras, sets no environment: main() does
    return module


gpu_check = _script()


def test_forward_flops_are_twice_the_multiply_adds_of_the_convolutions_and_dense_layers():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8x8x4 outputs of 3x3x3: 64 * 4 * 27 = 6,912 MACs
    x = keras.layers.Conv2D(6, 3, strides=2, groups=2)(x)  # 3x3x6 outputs of 3x3x(4/2): 54 * 18 = 972 MACs
    x = keras.layers.BatchNormalization()(x)  # not counted, nor pooling or activations
    x = keras.layers.MaxPooling2D()(x)  # 1x1x6
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)  # 6 * 10 = 60 MACs
    model = keras.Model(inputs, outputs)
    assert gpu_check.forward_flops(model) == 2 * (6912 + 972 + 60)

    # a nested model's layers count; a Dense over a sequence counts at every step
    sequence = keras.Input((5, 7))
    nested = keras.Model(sequence, keras.layers.Dense(3)(sequence))  # 5 steps of 7 -> 3
    assert gpu_check.forward_flops(nested) == 2 * 5 * 7 * 3
    outer_in = keras.Input((5, 7))
    outer = keras.Model(outer_in, keras.layers.Dense(2)(nested(outer_in)))  # and 5 steps of 3 -> 2
    assert gpu_check.forward_flops(outer) == 2 * 5 * (7 * 3 + 3 * 2)


@pytest.mark.full_model
def test_vgg16_at_224_counts_the_papers_15_47_billion_multiply_adds():
    from recipes import build_vgg16

    model = build_vgg16(input_shape=(224, 224, 3), num_classes=1000, compile=False)
    convs = sum(side * side * out * 9 * cin for side, cin, out in _VGG16_CONVS)
    dense = 7 * 7 * 512 * 4096 + 4096 * 4096 + 4096 * 1000
    assert convs + dense == 15_470_264_320  # the 15.47 G multiply-adds reported for VGG16
    assert gpu_check.forward_flops(model) == 2 * (convs + dense)


_VGG16_CONVS = [
    (224, 3, 64), (224, 64, 64), (112, 64, 128), (112, 128, 128),
    (56, 128, 256), (56, 256, 256), (56, 256, 256), (28, 256, 512), (28, 512, 512), (28, 512, 512),
    (14, 512, 512), (14, 512, 512), (14, 512, 512),
]  # fmt: skip


def test_the_pipeline_keeps_up_when_training_with_it_runs_at_90_percent_of_training_fed_from_memory():
    row = {"samples_s": 950.0, "from_memory_s": 1000.0, "pipeline_decode_s": 500.0, "pipeline_cached_s": 9000.0}
    assert gpu_check.pipeline_verdict(row) == "keeps up (95%); alone 9.00x, decoding 0.50x what training consumes"
    slow = gpu_check.pipeline_verdict({**row, "samples_s": 600.0})
    assert slow.startswith("bottleneck beside training, though alone it delivers enough (60%)")
    short = gpu_check.pipeline_verdict({**row, "samples_s": 600.0, "pipeline_cached_s": 700.0})
    assert short.startswith("bottleneck: it delivers less than training consumes (60%); alone 0.70x")


@pytest.mark.process
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_the_check_falls_back_to_the_cpu_and_reports_every_recipe(tmp_path):
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    environ.pop("KERAS_BACKEND", None)  # the script sets it from --backend
    results = tmp_path / "jax.json"
    args = ["--backend", "jax", "--work-dir", str(tmp_path), "--json", str(results), "--out", str(tmp_path / "gpu.md")]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=environ, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    out = done.stdout
    assert "No GPU found for jax: falling back to the CPU, at the quick sizes" in out, out[:2000]

    from recipes import list_models

    table = out[out.index("### Samples/s per recipe") : out.index("### Model FLOPs")]
    for name in list_models():
        row = re.search(rf"^\| {name} \| [^|]+ \| \d+ \| \w+: ([\d,]+) \| cpu", table, re.M)
        assert row and float(row[1].replace(",", "")) > 0, f"{name}:\n{table}"
    assert json.loads(results.read_text())["recipes"].keys() == set(list_models())
    assert all(row["samples_s"] > 0 for row in json.loads(results.read_text())["recipes"].values())

    assert re.search(r"^\| vgg16 \| jax \| float32 \| [\d.]+ \| [\d,]+ \| [\d.e-]+ \| \d+\.\d% \|", out, re.M), out
    assert re.search(
        r"^VGG16 MFU, the best run: \d+\.\d% \(jax\); the goal of 35% is not reached \(on the CPU", out, re.M
    )
    for name in ("alexnet", "vgg16"):
        assert re.search(
            rf"^\| {name} \| jax \| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d,]+ \| (keeps up|bottleneck)[^|]*\(\d+%\)",
            out,
            re.M,
        )
    assert (tmp_path / "gpu.md").read_text().strip() == out[out.index("## GPU check") :].strip()
