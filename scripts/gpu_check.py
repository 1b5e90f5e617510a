"""The first run on a real GPU: every recipe trains there, how fast, and whether the data keeps up.

    python scripts/gpu_check.py --backend jax --json out/jax.json     # one backend a process
    python scripts/gpu_check.py --backend torch --json out/torch.json
    python scripts/gpu_check.py --report out/jax.json out/torch.json --out out/gpu.md   # both in one table
    python scripts/gpu_check.py --backend jax --quick                  # small sizes (automatic without a GPU)

`scripts/gpu_check.sh` runs these on the GPU machine (docs/benchmarks/gpu.md says how). Keras reads
KERAS_BACKEND once, when it is imported, so each backend trains in its own process, with the
environment `recipes train` gives that backend (JAX allocates GPU memory as it needs it and runs
XLA's deterministic GPU ops; PyTorch deterministic cuBLAS): the figures are what a user of
`recipes train` gets. `--no-deterministic` measures without the determinism.

For each backend it prints, as Markdown:

- the hardware plan `recipes.hardware.configure` chose (devices, precision, jit, memory), and proof
  that the GPU did the work: the device of a trained weight, the GPU memory the backend took, the
  GPU's utilisation while the second epoch trained (NVML, where it is installed);
- samples/s of every recipe over its second epoch (the first includes compiling): the bundled
  digits for the MLP, LSTM, DCGAN and VAE; made 224x224 JPEGs in class folders for AlexNet and
  VGG16 (the paper's VGG16, preset "imagenet", in mixed_bfloat16);
- VGG16's and AlexNet's training FLOPs per image (3 x the forward pass's 2 x multiply-adds of
  their Conv2D and Dense layers, counted from the layer shapes: the usual convention, where the
  backward pass costs twice the forward one; pooling, normalisation, activations and the
  optimizer's update are left out), the TFLOP/s achieved and their fraction of the GPU's peak
  (`--peak-tflops`, the H200's bf16 matrix rate: model FLOPs utilisation, MFU);
- the input pipeline: images/s that `load_dataset`'s training pipeline delivers alone (no model;
  a first pass that decodes the JPEGs, a second served from its cache when the images fit its
  budget) against images/s the training consumes when fed one batch from memory over and over;
  with the pipeline, training "keeps up" when it reaches 90% of that.

Why `recipes.run.prepare` and not the `recipes train` command: it is the command's own code path
(the configuration `recipes train` resolves, the hardware plan, the `load_dataset` pipelines, the
recipe's builder, compiled as the plan says), and leaves the model in this process, where its
weights' device, the GPU memory and the epochs can be timed. The run directory's callbacks
(checkpoints, TensorBoard, plots, the judge of samples) are left out: they run between epochs.

Without a GPU it says so in one line, trains on the CPU at small sizes (32 images of 32x32, 64
digits; every recipe at the plan's precision) and finishes in a minute or two: a check of the
script itself, not of any speed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import gc
import json
import math
import multiprocessing
import os
import pathlib
import platform
import sys
import tempfile
import threading
import time

# Defaults, in one place.
PEAK_TFLOPS = 790.0  # H200, dense bf16: an 8192^3 matmul measured 769-798 TFLOP/s there (the datasheet: ~990)
GOAL_MFU = 0.35  # VGG16 at 224x224 in bf16, on its faster backend
KEEPS_UP = 0.9  # training with the pipeline at >= 90% of the rate fed from memory: the pipeline keeps up
IMAGE_RECIPES = ("alexnet", "vgg16")  # trained on the made JPEGs; the others on the digits
SIZES = {
    # 8,192 images: a VGG16 epoch of a few seconds on an H200, decoded images (1.2 GB) within the cache's 2 GiB
    "gpu": {"image_size": 224, "images": 8192, "classes": 10, "digits": None},
    # a check of the script on a CPU: every code path, small (32x32 is VGG16's smallest input)
    "quick": {"image_size": 32, "images": 32, "classes": 4, "digits": 64},
}
# Each recipe trains with its own configuration (`recipes train <name>`'s) but for 2 epochs, no validation split
# (training alone is timed), and these. On a GPU the MFU figure is for bf16; the other recipes, and every recipe
# on a CPU, train at the plan's precision.
GPU_PRECISION = {"vgg16": "mixed_bfloat16"}
MODEL_ARGS = {"vgg16": {"preset": "imagenet"}}  # the paper's VGG16 (configuration D), not the small preset
# --quick: narrow layers (the same layers and code paths), so a shared 2-core CPU checks the script in a minute or two
QUICK_MODEL_ARGS = {
    "alexnet": {"filters": (8, 16, 16, 16, 16), "fc_units": (64, 64)},
    "vgg16": {"preset": "imagenet", "filters": (8, 16, 16, 32, 32), "fc_units": (64, 64)},
    "dcgan": {"base_filters": 8, "latent_dim": 16},
    "lstm": {"units": (8, 8)},
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("jax", "torch", "tensorflow"), help="the Keras backend to check")
    parser.add_argument("--recipes", nargs="+", help="recipes to train (default: every one)")
    parser.add_argument("--quick", action="store_true", help="small sizes (automatic where no GPU is found)")
    parser.add_argument("--full", action="store_true", help="the GPU's sizes even without a GPU")
    parser.add_argument(
        "--peak-tflops", type=float, default=PEAK_TFLOPS, help=f"the GPU's peak (default {PEAK_TFLOPS})"
    )
    parser.add_argument("--images", type=int, help="made images to train AlexNet and VGG16 on")
    parser.add_argument("--work-dir", help="where the made images are kept (default: a folder in the temp dir)")
    parser.add_argument("--no-deterministic", dest="deterministic", action="store_false", help="fastest kernels")
    parser.add_argument("--json", help="write the results here (after every recipe)")
    parser.add_argument("--out", help="write the Markdown report here as well")
    parser.add_argument("--report", nargs="+", metavar="JSON", help="combine results written by --json into one report")
    args = parser.parse_args(argv)
    if args.report:
        results = [json.loads(pathlib.Path(p).read_text()) for p in args.report if pathlib.Path(p).is_file()]
        missing = [p for p in args.report if not pathlib.Path(p).is_file()]
        text = report(results, missing=missing)
    elif args.backend:
        text = report([check(args)])
    else:
        parser.error("give --backend, or --report")
    print(text, flush=True)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")
    return 0


# ------------------------------------------------------------------ one backend


def check(args) -> dict:
    """Trains every recipe on one backend; returns the results (and writes them to `args.json` as it goes)."""
    set_environment(args.backend, args.deterministic)
    gpu = gpu_found(args.backend)
    size = "quick" if args.quick or (gpu is None and not args.full) else "gpu"
    sizes = dict(SIZES[size], images=args.images or SIZES[size]["images"], name=size)
    if gpu is None:
        print(f"No GPU found for {args.backend}: falling back to the CPU, at the {size} sizes ({_sizes(sizes)}).")
    else:
        print(f"GPU: {gpu} ({args.backend}), sizes: {size} ({_sizes(sizes)})")
    work = pathlib.Path(args.work_dir or pathlib.Path(tempfile.gettempdir(), "recipes-gpu-check"))
    started = time.perf_counter()
    folder = make_images(work / f"images-{sizes['image_size']}-{sizes['images']}x{sizes['classes']}", **sizes)
    made_in = time.perf_counter() - started
    digits = digits_subset(work / f"digits-{sizes['digits']}.npz", sizes["digits"]) if sizes["digits"] else "digits"

    import keras  # after set_environment: Keras reads the backend when imported

    import recipes

    result = {
        "backend": args.backend,
        "date": datetime.date.today().isoformat(),
        "gpu": gpu,
        "sizes": size,
        "deterministic": args.deterministic,
        "peak_tflops": args.peak_tflops,
        "machine": describe_machine(),
        "versions": versions(args.backend, keras, recipes),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "images": {"folder": str(folder), "count": sizes["images"], "side": sizes["image_size"], "made_s": made_in},
        "recipes": {},
    }
    print(f"recipes {recipes.__version__} from {pathlib.Path(recipes.__file__).parent}; {result['versions']}")
    print(f"Made {sizes['images']} JPEGs of {sizes['image_size']}x{sizes['image_size']} in {made_in:.1f} s: {folder}")
    # VGG16 and AlexNet first: the MFU and the pipeline are the point, and a run out of time keeps what it finished
    names = sorted(args.recipes or recipes.list_models(), key=lambda n: (n != "vgg16", n not in IMAGE_RECIPES, n))
    for name in names:
        data = str(folder) if name in IMAGE_RECIPES else digits
        print(f"--- {name} on {args.backend} ({'made JPEGs' if name in IMAGE_RECIPES else 'digits'})", flush=True)
        try:
            row = train_recipe(name, data, sizes, args, gpu)
        except Exception as e:  # one recipe's failure is a finding too: the others still run
            import traceback

            traceback.print_exc()
            row = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]}
        result["recipes"][name] = row
        if "plan" in row and "plan" not in result:  # the first recipe's: the others differ in precision at most
            result["plan"], result["reasons"] = row["plan"], row["reasons"]
        print(json.dumps({name: {k: v for k, v in row.items() if k not in ("plan", "reasons")}}), flush=True)
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps(result, indent=1))
        keras.backend.clear_session()
        gc.collect()
        _free_gpu_memory(args.backend)
    return result


def set_environment(backend: str, deterministic: bool = True) -> None:
    """The environment `recipes train --backend <backend>` sets before Keras starts (recipes/cli.py)."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend == "jax":
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # memory as needed, as TF's growth
        flags = os.environ.get("XLA_FLAGS", "")
        if deterministic and "xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()
    if backend == "torch":
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def gpu_found(backend: str) -> str | None:
    """The first GPU's name as the backend sees it, or `None` (the backend's package imported, not Keras)."""
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"] if jax.default_backend() == "gpu" else []
        return f"{gpus[0].device_kind} (x{len(gpus)})" if gpus else None
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return None
        return f"{torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"{gpus[0].name} (x{len(gpus)})" if gpus else None


def train_recipe(name: str, data: str, sizes: dict, args, gpu=None) -> dict:
    """One recipe, as `recipes train` prepares it, 2 epochs: samples/s, device, memory, FLOPs, the pipeline."""
    import keras

    from recipes import config as config_lib
    from recipes import run as run_lib

    image = name in IMAGE_RECIPES
    precision = GPU_PRECISION.get(name) if gpu else None
    flags = {"dataset": data, "epochs": 2, "validation_split": 0.0, "precision": precision}
    if image:
        flags["image_size"] = [sizes["image_size"]] * 2
    model_args = (QUICK_MODEL_ARGS if sizes["name"] == "quick" else MODEL_ARGS).get(name)
    config = config_lib.resolve(name, flags=flags, sets=model_args)
    _reset_peak_memory(args.backend)
    run = run_lib.prepare(config, verbose=0)
    if not args.deterministic:
        _fastest_kernels(args.backend)
    model, info, plan = run.model, run.data.info, run.plan
    row = {
        "plan": plan.describe(),
        "reasons": list(plan.reasons),
        "precision": plan.precision,
        "batch_size": run.config["batch_size"],
        "input_shape": list(info.input_shape),
        "examples": info.num_train,
        "params": int(model.count_params()),
    }
    if image:
        # the pipeline alone first, from a pipeline of its own: its first pass decodes every JPEG
        fresh = _fresh_training_pipeline(run)
        row["pipeline_decode_s"], row["pipeline_cached_s"] = pipeline_rates(fresh, passes=2)
        del fresh
        row["forward_flops"] = forward_flops(model)
    timer = epoch_timer(args.backend)
    with Utilisation() as busy:
        model.fit(run.data.train, epochs=2, shuffle=False, verbose=0, callbacks=[timer, busy.epoch_marker(1)])
    row["epoch_s"] = timer.seconds
    row["samples_s"] = info.num_train / timer.seconds[1]
    row["gpu_busy"] = busy.mean
    row["weights_on"] = weight_device(model)
    row["memory"], row["memory_process_peak"] = memory_used(args.backend)
    if image:
        # the same training fed one batch from memory over and over: what the model consumes
        batch = next(iter(_numpy_batches(run.data.train)))
        steps = max(2, math.ceil(info.num_train / run.config["batch_size"]))
        timer = epoch_timer(args.backend)
        model.fit(repeat(batch, steps), epochs=2, shuffle=False, verbose=0, callbacks=[timer])
        row["from_memory_s"] = steps * len(batch[0]) / timer.seconds[1]
        row["train_flops"] = 3 * row["forward_flops"]
    print(
        f"{name}: {row['samples_s']:.0f} samples/s (epochs {', '.join(f'{s:.1f}' for s in row['epoch_s'])} s), "
        f"weights on {row['weights_on']}, memory {_gib(row['memory'])}",
        flush=True,
    )
    del model, run
    keras.backend.clear_session()
    return row


def epoch_timer(backend: str):
    """A callback: wall time of each epoch in `.seconds`, the device's work finished at its end (JAX and
    PyTorch run ahead of Python)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self._begin = [], None

        def on_epoch_begin(self, epoch, logs=None):
            _synchronize(backend, self.model)
            self._begin = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            _synchronize(backend, self.model)
            self.seconds.append(time.perf_counter() - self._begin)

    return EpochTimer()


def _synchronize(backend, model) -> None:
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    elif backend == "jax":
        import jax

        jax.block_until_ready([v.value for v in model.variables])


class Utilisation:
    """The GPU's mean utilisation (NVML, every 0.1 s) over the epochs `epoch_marker` marks; `None` without NVML."""

    def __init__(self):
        self.samples, self.mean, self._on, self._stop, self._handle = [], None, False, threading.Event(), None

    def __enter__(self):
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle, self._nvml = pynvml.nvmlDeviceGetHandleByIndex(0), pynvml
        except Exception:  # no NVML, no GPU: no utilisation figure
            return self
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.1):
            if self._on:
                self.samples.append(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)

    def epoch_marker(self, epoch: int):
        import keras

        outer = self

        class _Marker(keras.callbacks.Callback):
            def on_epoch_begin(self, e, logs=None):
                outer._on = e == epoch

            def on_epoch_end(self, e, logs=None):
                outer._on = False

        return _Marker()

    def __exit__(self, *exc):
        self._stop.set()
        if self._handle is not None:
            self._thread.join()
            self.mean = sum(self.samples) / len(self.samples) if self.samples else None
        return False


def repeat(batch, steps: int):
    """A `keras.utils.PyDataset` of `steps` batches, each `batch` (already in memory)."""
    import keras

    class Repeat(keras.utils.PyDataset):
        def __len__(self):
            return steps

        def __getitem__(self, i):
            return batch

    return Repeat()


def _numpy_batches(dataset):
    """The batches of a training pipeline as `fit()` reads them (Keras's own data adapter, either engine)."""
    from keras.src.trainers.data_adapters import get_data_adapter

    adapter = get_data_adapter(dataset)
    adapter.on_epoch_begin()
    try:
        yield from adapter.get_numpy_iterator()
    finally:
        adapter.on_epoch_end()


def pipeline_rates(dataset, passes: int = 2) -> list[float]:
    """Images/s the pipeline delivers alone, per pass over the training split (no model)."""
    rates = []
    for _ in range(passes):
        count, start = 0, time.perf_counter()
        for batch in _numpy_batches(dataset):
            count += len(batch[0] if isinstance(batch, (tuple, list)) else batch)
        rates.append(count / (time.perf_counter() - start))
    return rates


def _fresh_training_pipeline(run):
    """The run's training pipeline made again, with a cache of its own (nothing decoded yet)."""
    from recipes.recipe import load_data

    return load_data(run.config, splits=["train"], source=run.source).train


def forward_flops(model) -> int:
    """FLOPs of one example's forward pass: 2 x the multiply-adds of every Conv2D and Dense layer.

    Counted from the layers' input and output shapes in a functional model (nested ones too);
    pooling, normalisation and activations are left out (under 1% of VGG16's or AlexNet's).

    Raises:
        ValueError: for a layer whose shapes are not known (a subclassed model's inner layers).
    """
    import keras

    total = 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            first = layer.data_format == "channels_first"
            try:
                inputs, outputs = layer.input.shape, layer.output.shape
            except (AttributeError, ValueError):
                raise ValueError(f"Layer {layer.name!r} has no known shapes: count a functional model.") from None
            channels_in = inputs[1] if first else inputs[-1]
            spatial = outputs[2:] if first else outputs[1:-1]
            kh, kw = layer.kernel_size
            total += 2 * math.prod(spatial) * layer.filters * kh * kw * channels_in // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            try:
                inputs, outputs = layer.input.shape, layer.output.shape
            except (AttributeError, ValueError):
                raise ValueError(f"Layer {layer.name!r} has no known shapes: count a functional model.") from None
            total += 2 * math.prod(outputs[1:-1]) * inputs[-1] * layer.units
    return int(total)


def _layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _layers(layer)
        else:
            yield layer


def weight_device(model) -> str:
    """The device holding the model's first weight, as the backend names it (`cuda:0`, `cpu`, ...)."""
    value = model.weights[0].value
    if hasattr(value, "devices"):  # JAX
        return ", ".join(sorted(str(d) for d in value.devices()))
    if hasattr(value, "device"):  # PyTorch (and TensorFlow)
        return str(value.device)
    return "?"


def memory_used(backend: str) -> tuple[int | None, int | None]:
    """GPU bytes: `(this recipe's, the process's peak)`, `(None, None)` on a CPU. PyTorch: the peak
    allocated since the recipe began. JAX, whose peak cannot be reset: what it holds at the end of
    training (the model, its optimizer state, the buffers still alive; XLA_PYTHON_CLIENT_PREALLOCATE=false)."""
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return None, None
        return int(torch.cuda.max_memory_allocated()), None
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        stats = (device.memory_stats() or {}) if device.platform == "gpu" else {}
        return stats.get("bytes_in_use"), stats.get("peak_bytes_in_use")
    return None, None


def _reset_peak_memory(backend: str) -> None:
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()


def _free_gpu_memory(backend: str) -> None:
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _fastest_kernels(backend: str) -> None:
    """Undoes the determinism `prepare` turned on (`--no-deterministic`); JAX's is in XLA_FLAGS, not set."""
    if backend == "torch":
        import torch

        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = True


# ------------------------------------------------------------------ data


def make_images(folder: pathlib.Path, *, image_size: int, images: int, classes: int, **_) -> pathlib.Path:
    """`images` JPEGs of `image_size` squared in `classes` class folders, made once (in parallel) and kept.

    Each is smooth colour from a random 7x7 pattern with the class's tint, plus mild noise: about the
    bytes of a photo of that size, quicker to decode than most photos."""
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [
        (folder / f"class_{i % classes:02d}" / f"{i:06d}.jpg", i, i % classes, classes, image_size)
        for i in range(images)
    ]
    for c in range(classes):
        (folder / f"class_{c:02d}").mkdir(exist_ok=True)
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    chunks = [jobs[i::workers] for i in range(workers)]
    # spawned, not forked: JAX or PyTorch may have started threads in this process already
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_write_images, chunks))
    (folder / ".complete").write_text(f"{images}\n")
    return folder


def _write_images(jobs) -> None:
    import numpy as np
    from PIL import Image

    for path, seed, label, classes, side in jobs:
        rng = np.random.default_rng(seed)
        tint = np.array([label / classes, 1 - label / classes, 0.5]) * 160
        small = rng.uniform(0, 95, size=(7, 7, 3)) + tint
        image = Image.fromarray(small.clip(0, 255).astype(np.uint8)).resize((side, side), Image.BICUBIC)
        pixels = np.asarray(image, dtype=np.int16) + rng.integers(-8, 9, size=(side, side, 3))
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, quality=90)


def digits_subset(path: pathlib.Path, count: int) -> str:
    """The first `count` bundled digits (and their test split) as a .npz, values 0..1 (quick sizes)."""
    if not path.exists():
        import numpy as np

        from recipes.datasets._named import bundled_path

        digits = np.load(bundled_path())
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "x_train": digits["x_train"][:count].astype("float32") / 16,
            "y_train": digits["y_train"][:count],
            "x_test": digits["x_test"][: count // 4].astype("float32") / 16,
            "y_test": digits["y_test"][: count // 4],
        }
        np.savez(path, **arrays)
    return str(path)


# ------------------------------------------------------------------ the report


def describe_machine() -> str:
    try:
        from recipes import hardware

        return hardware.describe_machine()
    except Exception as e:  # the header is no reason to fail the check
        return f"{platform.processor() or platform.machine()} ({type(e).__name__} from describe_machine)"


def versions(backend: str, keras, recipes) -> str:
    found = [f"Python {platform.python_version()}", f"Keras {keras.__version__}", f"recipes {recipes.__version__}"]
    if backend == "jax":
        import jax
        import jaxlib

        found.append(f"jax {jax.__version__} (jaxlib {jaxlib.__version__})")
    elif backend == "torch":
        import torch

        found.append(f"torch {torch.__version__} (CUDA {torch.version.cuda})")
    else:
        import tensorflow as tf

        found.append(f"TensorFlow {tf.__version__}")
    return ", ".join(found)


def report(results: list[dict], missing=()) -> str:
    """The Markdown report of one or more runs' results (a column each), dated, with the machine."""
    if not results:
        return "No results: " + ", ".join(missing)
    first, labels = results[0], [_label(r) for r in results]
    lines = [f"## GPU check, {first['date']}", ""]
    for r, label in zip(results, labels):
        lines.append(f"- **{label}** on {r['gpu'] or 'no GPU: the CPU, quick sizes'}: {r['versions']}")
    lines.append(f"- machine: {first['machine']}; {first['cores']} cores for the input pipeline")
    if any(r["sizes"] == "quick" for r in results):
        lines.append("- quick sizes: an epoch is a step or two, so the figures check the script and measure nothing")
    lines += [f"- no results (skipped, out of time, or failed): {m}" for m in missing]
    lines += ["", "### Hardware plan", ""]
    shown = set()
    for r in results:
        plan = (r.get("plan", _label(r) + ": no recipe trained"), *r.get("reasons", []))
        if plan not in shown:  # a second run of a backend, with the same plan: once is enough
            shown.add(plan)
            lines += [f"- {plan[0]}", *(f"  - {reason}" for reason in plan[1:])]

    lines += ["", "### Samples/s per recipe (second epoch; the first includes compiling)", ""]
    header = ["recipe", "input", "batch", *(f"{label}: precision, samples/s" for label in labels)]
    ratio = len(results) > 1 and first["recipes"] and results[1]["recipes"]
    if ratio:
        header.append(f"{labels[1]} / {labels[0]}")
    header += ["weights on", "GPU memory", "GPU busy"]
    lines += [_row(header), _row(["---"] * len(header))]
    for name in sorted({name for r in results for name in r["recipes"]}):
        rows = [r["recipes"].get(name) for r in results]
        done = [row for row in rows if row and "error" not in row]
        cells = [
            name,
            "x".join(map(str, done[0]["input_shape"])) if done else "",
            done[0]["batch_size"] if done else "",
        ]
        cells += [_samples(row) for row in rows]
        if ratio:
            a, b = rows[0], rows[1]
            both = a and b and "error" not in a and "error" not in b
            cells.append(f"{b['samples_s'] / a['samples_s']:.2f}x" if both else "")
        cells.append(" / ".join((row or {}).get("weights_on", "-") for row in rows))
        cells.append(" / ".join(_gib((row or {}).get("memory")) for row in rows))
        cells.append(" / ".join(_percent((row or {}).get("gpu_busy")) for row in rows))
        lines.append(_row(cells))
    lines += [
        "",
        "GPU memory: PyTorch's peak during the recipe; what JAX held at the end of its training (its peak "
        "cannot be reset: the process's is in the JSON). GPU busy: NVML's utilisation over the second epoch."
        + (" Several values: the runs in the order of the columns." if len(results) > 1 else ""),
    ]

    lines += ["", "### Model FLOPs utilisation (training FLOPs = 3 x the forward pass's Conv2D and Dense FLOPs)", ""]
    header = ["recipe", "run", "precision", "GFLOP/image", "images/s", "TFLOP/s", "MFU", "fed from memory: img/s, MFU"]
    lines += [_row(header), _row(["---"] * len(header))]
    vgg = {}
    for name in IMAGE_RECIPES:
        for r, label in zip(results, labels):
            row = r["recipes"].get(name, {})
            if "train_flops" not in row:
                continue
            peak = r["peak_tflops"] * 1e12
            achieved, fed = row["samples_s"] * row["train_flops"], row["from_memory_s"] * row["train_flops"]
            if name == "vgg16":
                vgg[label] = (achieved / peak, r.get("deterministic", True))
            cells = [name, label, row["precision"], f"{row['train_flops'] / 1e9:.3g}", f"{row['samples_s']:,.0f}"]
            cells += [
                f"{achieved / 1e12:.3g}",
                f"{achieved / peak:.1%}",
                f"{row['from_memory_s']:,.0f}, {fed / peak:.1%}",
            ]
            lines.append(_row(cells))
    lines += ["", f"MFU: of {first['peak_tflops']:g} TFLOP/s (`--peak-tflops`)."]
    if vgg:
        label, (mfu, _) = max(vgg.items(), key=lambda kv: kv[1][0])
        on = "on the GPU" if any(r["gpu"] for r in results) else "on the CPU, which it is not meant for"
        verdict = "reached" if mfu >= GOAL_MFU else "not reached"
        line = f"VGG16 MFU, the best run: {mfu:.1%} ({label}); the goal of {GOAL_MFU:.0%} is {verdict} ({on})."
        as_trained = {k: v for k, (v, deterministic) in vgg.items() if deterministic}
        if as_trained and label not in as_trained:
            best = max(as_trained, key=as_trained.get)
            line += f" As `recipes train` runs it (deterministic): {as_trained[best]:.1%} ({best})."
        lines.append(line)

    lines += ["", "### Input pipeline: images/s delivered (no model) against consumed (training)", ""]
    header = ["recipe", "run", "pipeline alone: decoding", "pipeline alone: cached", "training fed from memory"]
    header += ["training with the pipeline", "verdict"]
    lines += [_row(header), _row(["---"] * len(header))]
    for name in IMAGE_RECIPES:
        for r, label in zip(results, labels):
            row = r["recipes"].get(name, {})
            if "from_memory_s" not in row:
                continue
            cells = [name, label, f"{row['pipeline_decode_s']:,.0f}", f"{row['pipeline_cached_s']:,.0f}"]
            cells += [f"{row['from_memory_s']:,.0f}", f"{row['samples_s']:,.0f}", pipeline_verdict(row)]
            lines.append(_row(cells))
    lines += [
        "",
        f"Keeps up: training with the pipeline runs at >= {KEEPS_UP:.0%} of the rate fed from memory. The second "
        "epoch reads the images decoded in the first from the cache when they fit its budget; decoding alone "
        "is what data larger than the cache gets every epoch. Made JPEGs decode faster than most photos.",
    ]
    return "\n".join(lines)


def _label(result: dict) -> str:
    return result["backend"] + ("" if result.get("deterministic", True) else " (no determinism)")


def _samples(row) -> str:
    if row is None:
        return "-"
    if "error" in row:
        return f"failed: {row['error']}"
    return f"{row['precision']}: {row['samples_s']:,.0f}"


def pipeline_verdict(row: dict) -> str:
    """ "keeps up" or "bottleneck": training with the pipeline against training fed from memory, and why.

    Below `KEEPS_UP` the pipeline is the bottleneck either because it delivers less than training
    consumes even alone, or because beside training it does not (the two share the cores)."""
    consumed = row["from_memory_s"]
    ratio, alone, decoding = (
        row["samples_s"] / consumed,
        row["pipeline_cached_s"] / consumed,
        row["pipeline_decode_s"] / consumed,
    )
    if ratio >= KEEPS_UP:
        verdict = "keeps up"
    elif alone < 1:
        verdict = "bottleneck: it delivers less than training consumes"
    else:
        verdict = "bottleneck beside training, though alone it delivers enough"
    return f"{verdict} ({ratio:.0%}); alone {alone:.2f}x, decoding {decoding:.2f}x what training consumes"


def _row(cells) -> str:
    return "| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |"


def _gib(value) -> str:
    return "-" if value is None else f"{value / 2**30:.2f} GiB"


def _percent(value) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _sizes(sizes: dict) -> str:
    digits = f"{sizes['digits']} digits" if sizes["digits"] else "the digits"
    side = sizes["image_size"]
    return f"{sizes['images']} images of {side}x{side} in {sizes['classes']} classes, {digits}"


if __name__ == "__main__":
    sys.exit(main())
