import json
import math
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from recipes import build_mlp, hardware

HAS_GPU = bool(tf.config.list_physical_devices("GPU"))
cpu_only = pytest.mark.skipif(HAS_GPU, reason="checks the CPU-only plan")
ROOT = pathlib.Path(__file__).resolve().parents[1]


def exactly(message):
    return "^" + re.escape(message) + "$"


@cpu_only
def test_auto_plan_on_a_cpu_machine():
    plan = hardware.configure()
    expected_precision = "float32"  # without a recipe; bf16 is chosen per recipe
    assert plan.strategy is tf.distribute.get_strategy()
    assert plan.strategy_name == "default"
    assert plan.num_replicas == 1
    assert plan.precision == expected_precision
    assert keras.mixed_precision.global_policy().name == expected_precision
    assert plan.jit_compile is False
    assert plan.steps_per_execution == hardware.CPU_STEPS_PER_EXECUTION
    assert plan.memory_growth == "n/a"
    assert re.fullmatch(r"CPU:0 \(\d+ cores; .+\)", plan.devices[0]) and len(plan.devices) == 1
    assert hardware.describe_cpu_extensions() in plan.devices[0]
    assert [r.split(" ")[0] for r in plan.reasons] == [
        "strategy",
        "precision",
        "jit",
        "steps_per_execution",
        "determinism",
    ]
    assert plan.reasons[-1] == "determinism under a seed: tf.config.experimental.enable_op_determinism"


@cpu_only
def test_describe_is_one_line_with_every_field():
    line = hardware.configure(precision="float32", steps_per_execution=8).describe()
    assert re.fullmatch(
        r"backend: tensorflow \| devices: CPU:0 \(\d+ cores; [^|]+\) \| strategy: default \(1 replica\) \| "
        r"precision: float32 "
        r"\| jit: off \| steps_per_execution: 8 \| GPU memory growth: n/a",
        line,
    ), line
    line = hardware.configure(
        strategy="onedevice", precision="mixed_bfloat16", jit=True, steps_per_execution=1
    ).describe()
    assert (
        "| strategy: onedevice (1 replica) | precision: mixed_bfloat16 | jit: on | steps_per_execution: 1 |" in line
        and "\n" not in line
    )


@pytest.mark.parametrize("precision", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_precision_override_sets_the_global_policy(precision):
    plan = hardware.configure(precision=precision)
    assert plan.precision == precision
    assert keras.mixed_precision.global_policy().name == precision
    assert "precision " + precision + ": requested" in plan.reasons
    # conftest's autouse fixture puts the policy back to float32 after each test
    keras.mixed_precision.set_global_policy("float32")


def test_strategy_jit_and_steps_overrides():
    plan = hardware.configure(strategy="none", jit=True, steps_per_execution=3)
    assert plan.strategy is tf.distribute.get_strategy()
    assert (plan.jit_compile, plan.steps_per_execution) == (True, 3)
    plan = hardware.configure(strategy="onedevice", jit=False)
    assert isinstance(plan.strategy, tf.distribute.OneDeviceStrategy)
    assert plan.jit_compile is False and plan.num_replicas == 1
    given = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert hardware.configure(strategy=given).strategy is given


def test_a_plan_builds_compiles_and_trains_a_model():
    plan = hardware.configure(strategy="onedevice", precision="mixed_bfloat16")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("int32")
    with plan.strategy.scope():
        model = build_mlp(
            input_shape=(4,),
            num_classes=2,
            hidden_units=(16,),
            dropout=0.0,
            optimizer="adam",
            learning_rate=0.01,
            compile=False,
        )
        model.compile(
            optimizer="adam",
            loss="binary_crossentropy",
            jit_compile=plan.jit_compile,
            steps_per_execution=plan.steps_per_execution,
        )
    assert model.get_layer("dense1").compute_dtype == "bfloat16"
    assert model.get_layer("predictions").compute_dtype == "float32"
    losses = model.fit(x, y, batch_size=16, epochs=4, verbose=0).history["loss"]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(strategy="mirroredd"),
            "strategy must be one of ('auto', 'default', 'none', 'mirrored', 'onedevice'). "
            "Received: strategy='mirroredd'",
        ),
        (
            dict(strategy=None),
            "strategy must be one of ('auto', 'default', 'none', 'mirrored', 'onedevice'). Received: strategy=None",
        ),
        (
            dict(precision="float16"),
            "precision must be one of ('auto', 'float32', 'mixed_float16', 'mixed_bfloat16'). "
            "Received: precision='float16'",
        ),
        (dict(jit="yes"), "jit must be \"auto\", True or False. Received: jit='yes'"),
        (dict(jit=1), 'jit must be "auto", True or False. Received: jit=1'),
        (
            dict(steps_per_execution=0),
            'steps_per_execution must be "auto" or an integer >= 1. Received: steps_per_execution=0',
        ),
        (
            dict(steps_per_execution="8"),
            "steps_per_execution must be \"auto\" or an integer >= 1. Received: steps_per_execution='8'",
        ),
        (
            dict(steps_per_execution=2.0),
            'steps_per_execution must be "auto" or an integer >= 1. Received: steps_per_execution=2.0',
        ),
        (
            dict(steps_per_execution=True),
            'steps_per_execution must be "auto" or an integer >= 1. Received: steps_per_execution=True',
        ),
    ],
)
def test_bad_arguments_name_the_argument_and_value(kwargs, message):
    with pytest.raises(ValueError, match=exactly(message)):
        hardware.configure(**kwargs)


def test_split_cpu_rejects_bad_counts_and_is_a_no_op_when_unchanged():
    with pytest.raises(ValueError, match=exactly("n must be an integer >= 1. Received: n=0")):
        hardware.split_cpu(0)
    hardware.split_cpu(1)  # TF is initialised by now: the same split is fine, no error
    assert len(tf.config.list_logical_devices("CPU")) == 1
    with pytest.raises(RuntimeError, match=r"split_cpu must be called before TensorFlow initialises"):
        hardware.split_cpu(2)  # another split after initialisation is refused, not ignored


class FakeGPUs:
    """Stands in for TensorFlow's GPU queries, so the GPU decisions run on a CPU machine."""

    def __init__(self, monkeypatch, capabilities, initialised=False):
        self.gpus = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(len(capabilities))]
        self.capabilities = capabilities
        self.initialised = initialised
        self.growth = {}
        self.set_calls = 0
        real_list = tf.config.list_physical_devices
        monkeypatch.setattr(
            tf.config, "list_physical_devices", lambda kind=None: self.gpus if kind == "GPU" else real_list(kind)
        )
        monkeypatch.setattr(tf.config.experimental, "get_memory_growth", lambda d: self.growth.get(d.name, False))
        monkeypatch.setattr(tf.config.experimental, "set_memory_growth", self.set_memory_growth)
        monkeypatch.setattr(tf.config.experimental, "get_device_details", self.details)

    def set_memory_growth(self, device, enable):
        self.set_calls += 1
        if self.initialised:
            raise RuntimeError("Physical devices cannot be modified after being initialized")
        self.growth[device.name] = enable

    def details(self, device):
        cc = self.capabilities[int(device.name.rsplit(":", 1)[1])]
        return {"device_name": "Fake GPU", **({"compute_capability": cc} if cc else {})}


def test_gpu_memory_growth_is_set_once_and_mixed_float16_on_tensor_core_gpus(monkeypatch):
    fake = FakeGPUs(monkeypatch, [(8, 0)])
    plan = hardware.configure(strategy="default")
    assert plan.memory_growth == "on" and fake.set_calls == 1
    assert plan.devices[1:] == ["GPU:0 (Fake GPU, compute 8.0)"]
    assert plan.precision == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    assert (plan.jit_compile, plan.steps_per_execution) == (False, 1)
    assert hardware.configure(strategy="default").memory_growth == "on"
    assert fake.set_calls == 1  # already on: not set again
    assert hardware.configure(strategy="auto").strategy is tf.distribute.get_strategy()  # one GPU


@pytest.mark.parametrize("capabilities", [[(6, 1)], [(8, 6), (6, 0)], [None]])
def test_float32_when_a_gpu_lacks_tensor_cores(monkeypatch, capabilities):
    FakeGPUs(monkeypatch, capabilities)
    assert hardware.configure(strategy="default").precision == "float32"


def test_memory_growth_after_tf_initialised_does_not_crash(monkeypatch):
    FakeGPUs(monkeypatch, [(9, 0)], initialised=True)
    plan = hardware.configure(strategy="default")
    assert plan.memory_growth == "unchanged (TF already initialised)"
    assert plan.describe().endswith("| GPU memory growth: unchanged (TF already initialised)")


@pytest.mark.parametrize("flags", [{"avx512f", "amx_bf16", "amx_tile"}, {"avx2", "avx512f", "avx512_bf16"}])
def test_cpus_with_bf16_units_choose_bfloat16_per_recipe(monkeypatch, flags):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(hardware, "CPU_BF16_RECIPES", frozenset({"vgg16"}))
    if HAS_GPU:
        pytest.skip("GPUs decide the precision")
    assert hardware.has_bf16_units()
    plan = hardware.configure(recipe="vgg16")
    assert plan.precision == "mixed_bfloat16"
    assert "vgg16 measured faster in bf16 at the same quality" in plan.reasons[1]
    assert hardware.configure(recipe="mlp").precision == "float32"
    assert hardware.configure().precision == "float32"
    assert hardware.configure(recipe="vgg16", precision="float32").precision == "float32"


def test_cpus_without_bf16_units_stay_float32_for_every_recipe(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    if HAS_GPU:
        pytest.skip("GPUs decide the precision")
    assert not hardware.has_bf16_units()
    for recipe in ("mlp", "vgg16", "alexnet", "lstm", "dcgan", "vae", None):
        plan = hardware.configure(recipe=recipe)
        assert plan.precision == "float32" and "no bf16 units" in plan.reasons[1]


@pytest.mark.parametrize(
    "flags, expected",
    [
        ({"fpu", "avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}, "AVX2, AVX-512, AVX512-BF16, AMX"),
        ({"fpu", "avx2", "avx512f", "avx512_bf16"}, "AVX2, AVX-512, AVX512-BF16; no AMX"),
        ({"fpu", "avx2"}, "AVX2; no AVX-512, AVX512-BF16, AMX"),
        (set(), "none of AVX2/AVX-512/AVX512-BF16/AMX reported"),
    ],
)
def test_cpu_extensions_are_described(monkeypatch, flags, expected):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
    assert hardware.describe_cpu_extensions() == expected
    assert f"({expected})" in hardware.describe_machine() or f"({expected}" in hardware.describe_machine()


def test_cpu_flags_reads_proc_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16 amx_tile\n\nprocessor\t: 1\n")
    assert hardware.cpu_flags.__wrapped__(str(cpuinfo)) == {"fpu", "avx2", "amx_bf16", "amx_tile"}
    assert hardware.cpu_flags.__wrapped__(str(tmp_path / "missing")) == frozenset()


MIRRORED_SCRIPT = """
import json, math
import numpy as np
from recipes import build_mlp, hardware

hardware.split_cpu(2)
auto = hardware.configure()
plan = hardware.configure(strategy="mirrored")
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 4)).astype("float32")
y = (x.sum(axis=1) > 0).astype("int32")
with plan.strategy.scope():
    model = build_mlp(input_shape=(4,), num_classes=2, hidden_units=(16,), dropout=0.0, compile=False)
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  jit_compile=plan.jit_compile, steps_per_execution=plan.steps_per_execution)
losses = model.fit(x, y, batch_size=32, epochs=4, verbose=0).history["loss"]
try:
    hardware.configure(strategy="mirrored", steps_per_execution=8)
    many_steps = "no error"
except ValueError as e:
    many_steps = str(e)
try:
    hardware.split_cpu(3)
    late_split = "no error"
except RuntimeError as e:
    late_split = str(e)
hardware.split_cpu(2)  # unchanged: no error
print(json.dumps(dict(auto_replicas=auto.num_replicas, auto_strategy=auto.strategy_name,
                      replicas=plan.num_replicas, strategy=plan.strategy_name, describe=plan.describe(),
                      variable_replicas=len(model.trainable_variables[0].value.values), losses=losses,
                      steps_per_execution=plan.steps_per_execution, many_steps=many_steps,
                      late_split=late_split)))
"""


@pytest.mark.process
def test_mirrored_over_two_logical_cpus_in_a_subprocess():
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERAS_BACKEND": "tensorflow",
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (result["auto_strategy"], result["auto_replicas"]) == ("default", 1)  # auto mirrors only GPUs
    assert (result["strategy"], result["replicas"], result["variable_replicas"]) == ("mirrored", 2, 2)
    assert re.search(
        r"devices: CPU:0 \(\d+ cores, 2 logical devices; [^|]+\) \| strategy: mirrored \(2 replicas\)",
        result["describe"],
    ), result["describe"]
    losses = result["losses"]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0], losses
    assert result["steps_per_execution"] == 1
    assert result["many_steps"] == (
        "steps_per_execution > 1 does not work under a MirroredStrategy with this Keras "
        "(keras-team/keras#19246); use 1. Received: steps_per_execution=8"
    )
    assert result["late_split"] == (
        "split_cpu must be called before TensorFlow initialises its devices "
        "(before any tensor or model is created). Received: n=3"
    )


def test_many_steps_per_execution_under_mirrored_fails_early_and_changes_nothing():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with pytest.raises(
        ValueError,
        match=exactly(
            "steps_per_execution > 1 does not work under a MirroredStrategy with this Keras "
            "(keras-team/keras#19246); use 1. Received: steps_per_execution=8"
        ),
    ):
        hardware.configure(strategy=strategy, precision="mixed_float16", steps_per_execution=8)
    assert keras.mixed_precision.global_policy().name == "float32"
    plan = hardware.configure(strategy=strategy)
    assert (plan.strategy_name, plan.num_replicas, plan.steps_per_execution) == ("mirrored", 1, 1)
