"""A run's model for serving: TensorFlow SavedModel, ONNX, LiteRT or OpenVINO, each verified as written.

```python
from recipes.export import export_run
export_run("runs/mlp1", "onnx", "mlp.onnx")               # -> [Exported(path, largest_difference, ...)]
export_run("runs/vgg1", "tf_saved_model", "vgg_sm", include_preprocessing=True)
```

Each export is Keras's own `model.export` (on TensorFlow), in float32 (a run trained in
mixed precision keeps float32 weights; its exported graph computes in float32), with a
batch axis of any size. A classifier exports as itself, a DCGAN as its generator (latent
vectors -> images in [-1, 1]), a VAE as its encoder (images -> z_mean, z_log_var) and its
decoder (codes -> images in [0, 1]), written to `<stem>-encoder<ext>` and
`<stem>-decoder<ext>`. Every file is written under a temporary name, loaded back in its
own runtime (TensorFlow, onnxruntime, LiteRT's interpreter, OpenVINO in f32), run on a
batch of the run's test data (generative: fixed latent vectors) and compared with Keras;
only when the largest difference is within the tolerance is it moved to its path.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pathlib
import shutil
import sys
import tempfile

import numpy as np

from recipes._checks import is_real
from recipes.config import ConfigError

FORMATS = {"tf_saved_model": "", "onnx": ".onnx", "litert": ".tflite", "openvino": ".xml"}
TOLERANCE = 1e-4  # float32 graphs in another runtime differ from Keras's by ~1e-7..1e-5 on these models
BATCH = 32  # examples compared
INSTALL = 'pip install -e ".[export]"'


class ExportError(RuntimeError):
    """An export was written but does not give Keras's outputs (nothing is left at its path)."""


@dataclasses.dataclass(frozen=True)
class Exported:
    """One file (or SavedModel folder) written and verified."""

    part: str  # "model", "generator", "encoder", "decoder"
    path: pathlib.Path
    largest_difference: float
    checked: str  # what it was compared on
    inputs: str  # input name, shape and dtype, for serving


def export_run(run_dir, format, out, *, include_preprocessing=False, tolerance=TOLERANCE, log=print):
    """Exports a run's model (see the module docstring) and verifies every file written.

    Args:
        run_dir: a run directory (best.keras, else last.keras).
        format: `"tf_saved_model"`, `"onnx"`, `"litert"` or `"openvino"`.
        out: the path to write: a folder for a SavedModel, else a `.onnx`, `.tflite` or
            `.xml` file (OpenVINO writes its `.bin` beside it). It must not exist.
        include_preprocessing: the export takes raw `uint8` images `(batch, H, W, C)` of
            any height and width and resizes and scales them as training did (image
            classifiers and the VAE's encoder). Defaults to `False`: it takes what the
            model takes (float32 in the run's value range).
        tolerance: the largest absolute difference from Keras's outputs allowed.
            Defaults to `1e-4`.

    Returns:
        A list of `Exported`, one per file.

    Raises:
        ConfigError: for an unknown format, an `out` that exists or does not suit the
            format, a missing package, or a run that cannot be exported this way.
        ExportError: when the exported model's outputs differ from Keras's by more than
            `tolerance` (nothing is left at `out`).
    """
    format = _check_format(format)
    tolerance = _check_tolerance(tolerance)
    _check_packages(format)
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"Export runs on Keras's TensorFlow backend (KERAS_BACKEND=tensorflow); this process runs "
            f"{keras.backend.backend()}. Received: backend={keras.backend.backend()!r}"
        )
    from recipes.predict import load_run
    from recipes.registry import get_spec

    config_model = _run_model_name(run_dir)
    task = get_spec(config_model).task
    if include_preprocessing and config_model == "dcgan":
        raise ConfigError(
            "--include-preprocessing does not apply to a dcgan run: its generator takes latent vectors, not "
            "images. Received: include_preprocessing=True"
        )
    targets = _targets(out, format, config_model)
    run = load_run(run_dir, log=lambda line: print(line, file=sys.stderr))
    pre = run.preprocessing
    if include_preprocessing and pre.kind != "image":
        raise ConfigError(
            f"--include-preprocessing takes images; run {str(run_dir)!r} trained on "
            f"{'token ids' if pre.kind == 'tokens' else 'feature rows'}. Received: include_preprocessing=True"
        )
    parts = _parts(run.model, config_model, task)
    samples = _samples(run, task, log)
    written, results = [], []
    try:
        for (part, net), target in zip(parts, targets):
            net = as_float32(net)
            wrapped = with_preprocessing(net, pre) if include_preprocessing and part in ("model", "encoder") else net
            x, checked = samples[part]
            if wrapped is not net:
                checks = _raw_image_checks(x, pre, net)
                checked = f"{checked} as uint8 images at {pre.image_size[0]}x{pre.image_size[1]} and another size"
            else:
                checks = [(x, _keras_outputs(net, x))]
            wrapped(checks[0][0][:1])  # Keras exports only a model that has been called
            tmp = _temporary(target, format)
            written.append((tmp, target))
            _write(wrapped, tmp, format, preprocessing=wrapped is not net)
            difference = 0.0
            for inputs, expected in checks:
                got = run_exported(format, tmp, inputs)
                difference = max(difference, _largest_difference(part, expected, got))
            if not difference <= tolerance:
                raise ExportError(
                    f"The {format} export of the {part} differs from Keras by {difference:.3g}, over the tolerance "
                    f"{tolerance:g} (on {checked}); nothing was written to {target}."
                )
            results.append(Exported(part, target, difference, checked, _signature(wrapped)))
        for tmp, target in written:
            _move(tmp, target, format)
        written = []
    finally:
        for tmp, _ in written:
            _remove(tmp, format)
    for r in results:
        log(
            f"{r.part}: {r.path}  (input {r.inputs}; largest difference from Keras {r.largest_difference:.3g} "
            f"on {r.checked}, tolerance {tolerance:g})"
        )
    return results


def export_command(run_dir, format, out, *, include_preprocessing=False, tolerance=None, log=print):
    """What `recipes export` does: `export_run`, with an `ExportError` as a training-style failure."""
    from recipes.training import TrainingError

    try:
        return export_run(
            run_dir,
            format,
            out,
            include_preprocessing=include_preprocessing,
            tolerance=TOLERANCE if tolerance is None else tolerance,
            log=log,
        )
    except ExportError as e:
        raise TrainingError(str(e)) from None


# ------------------------------------------------------------------------- checks


def _check_format(format) -> str:
    if format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}. Received: format={format!r}")
    return format


def _check_tolerance(tolerance) -> float:
    if not is_real(tolerance) or not np.isfinite(tolerance) or tolerance <= 0:
        raise ConfigError(f"tolerance must be a positive number. Received: tolerance={tolerance!r}")
    return float(tolerance)


def _check_packages(format) -> None:
    needed = {"onnx": ("tf2onnx", "onnxruntime"), "openvino": ("openvino",)}.get(format, ())
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"format={format!r} needs {' and '.join(missing)}, not installed: {INSTALL}. Received: format={format!r}"
        )


def _run_model_name(run_dir) -> str:
    from recipes.runs import open_run

    return open_run(run_dir)["model"]


def _targets(out, format, model_name) -> list[pathlib.Path]:
    """The paths to write, checked before anything is loaded: new, in an existing folder, the format's suffix."""
    out = pathlib.Path(out)
    suffix = FORMATS[format]
    if suffix and out.suffix.lower() != suffix:
        raise ConfigError(f"--out must end in {suffix} for format={format!r}. Received: out={str(out)!r}")
    if not suffix and out.suffix.lower() in (".onnx", ".tflite", ".xml", ".keras"):
        raise ConfigError(f"--out names a folder for format='tf_saved_model'. Received: out={str(out)!r}")
    if not out.parent.is_dir():
        raise ConfigError(
            f"--out must be in an existing folder; {str(out.parent)!r} does not exist. Received: out={str(out)!r}"
        )
    parts = ["encoder", "decoder"] if model_name == "vae" else [None]
    targets = [out if p is None else out.with_name(f"{out.stem if suffix else out.name}-{p}{suffix}") for p in parts]
    for target in targets:
        for path in [target] + ([target.with_suffix(".bin")] if format == "openvino" else []):
            if os.path.lexists(path):
                raise ConfigError(
                    f"--out {str(path)!r} exists; export never overwrites: choose a new path or remove it. "
                    f"Received: out={str(out)!r}"
                )
    return targets


# -------------------------------------------------------------------------- models


def _parts(model, model_name, task):
    import keras

    if task == "classification":
        return [("model", model)]
    if model_name == "dcgan":
        return [("generator", model.generator)]
    encoder = model.encoder
    # the sampled code is random; the encoder's outputs are the code's mean and log-variance
    means = keras.Model(encoder.input, encoder.outputs[:2], name="encoder")
    return [("encoder", means), ("decoder", model.decoder)]


def as_float32(model):
    """`model` with every layer computing in float32 (a copy with the same weights), or itself."""
    import keras

    layers = [model, *model._flatten_layers(include_self=False)]
    if all(getattr(layer, "dtype_policy", None) is None or layer.dtype_policy.name == "float32" for layer in layers):
        return model

    def walk(value):
        if isinstance(value, dict):
            if value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(value.get("config"), dict):
                return {**value, "class_name": "DTypePolicy", "config": {**value["config"], "name": "float32"}}
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    copy = keras.saving.deserialize_keras_object(walk(keras.saving.serialize_keras_object(model)))
    copy.set_weights(model.get_weights())
    return copy


def with_preprocessing(net, pre):
    """`net` behind layers taking raw uint8 images of any size: resize (bilinear, as training's
    `tf.image.resize`), scale 0..255 to the run's value range, rows for the LSTM."""
    import keras

    h, w = pre.image_size
    low, high = pre.value_range
    images = keras.Input(shape=(None, None, pre.channels), dtype="uint8", name="images")
    x = keras.layers.Resizing(h, w, interpolation="bilinear", name="resize")(images)
    x = keras.layers.Rescaling((high - low) / 255.0, offset=low, name="scale")(x)
    if pre.as_sequence:
        x = keras.layers.Reshape((h, w * pre.channels), name="rows")(x)
    # training=False fixed in the graph: the export's own call leaves it unset, which reached the
    # nested model's dropout and batch norm as training
    return keras.Model(images, net(x, training=False), name=f"{net.name}_with_preprocessing")


def _signature(model) -> str:
    tensor = model.inputs[0]
    shape = "x".join("N" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(tensor.shape))
    return f"{shape} {tensor.dtype}"


# ---------------------------------------------------------------------- verification


def _samples(run, task, log):
    """`part -> (inputs, description)`: a batch of the run's held-out data in the model's form
    (random inputs in range if the data set cannot be read), fixed latent vectors."""
    rng = np.random.default_rng(0)
    if task == "generation":
        latent = rng.standard_normal((BATCH, run.model.latent_dim)).astype(np.float32)
        checked = f"{BATCH} latent vectors"
        if run.config["model"] == "dcgan":
            return {"generator": (latent, checked)}
        images, described = _held_out(run, rng, log)
        return {"encoder": (images, described), "decoder": (latent, checked)}
    x, described = _held_out(run, rng, log)
    return {"model": (x, described)}


def _held_out(run, rng, log):
    from recipes.runs import held_out
    from recipes.training import load_data, open_data, user_errors

    try:
        with user_errors():
            source = open_data(run.config)
            split = "test" if source.has_test else "val" if run.config["validation_split"] else "train"
            data = load_data(run.config, splits=[split], source=source)
        name, ds = held_out(data.test, data.val, data.train)
        batches = []
        for batch in ds:
            batches.append(np.asarray(batch[0] if isinstance(batch, tuple) else batch))
            if sum(len(b) for b in batches) >= BATCH:
                break
        x = np.concatenate(batches)[:BATCH]
        return x, f"{len(x)} {name} examples of {run.preprocessing.dataset}"
    except ConfigError as e:
        log(f"the run's data set cannot be read ({e}); verifying on random inputs instead")
    pre = run.preprocessing
    shape = (BATCH, *pre.input_shape)
    if pre.kind == "tokens":
        return rng.integers(0, pre.vocab_size, size=shape).astype(np.int32), f"{BATCH} random token sequences"
    if pre.kind == "image":
        low, high = pre.value_range
        return rng.uniform(low, high, size=shape).astype(np.float32), f"{BATCH} random images"
    return rng.standard_normal(shape).astype(np.float32), f"{BATCH} random feature rows"


def _raw_image_checks(x, pre, net):
    """Inputs and Keras's outputs for an export with preprocessing: the batch as uint8 images at
    the model's size and at another size, preprocessed in Python (`Preprocessing.transform`)."""
    import tensorflow as tf

    low, high = pre.value_range
    h, w = pre.image_size
    images = np.asarray(x, np.float32).reshape(len(x), h, w, pre.channels)
    raw = np.clip(np.round((images - low) / (high - low) * 255.0), 0, 255).astype(np.uint8)
    other = tf.image.resize(raw, (h + h // 2 + 3, w * 2 + 1)).numpy().round().clip(0, 255).astype(np.uint8)
    return [(r, _keras_outputs(net, pre.transform(r, raw_max=255.0))) for r in (raw, other)]


def _keras_outputs(net, x) -> list:
    out = net.predict(x, batch_size=BATCH, verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def _largest_difference(part, expected, got) -> float:
    if len(got) != len(expected):
        raise ExportError(f"The exported {part} gives {len(got)} outputs where Keras gives {len(expected)}.")
    worst = 0.0
    for e, g in zip(expected, got):
        g = np.asarray(g).reshape(e.shape) if np.asarray(g).size == e.size else None
        if g is None:
            raise ExportError(f"The exported {part} gives outputs of another shape than Keras's {e.shape}.")
        worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - e.astype(np.float64)))) if e.size else 0.0)
    return worst


def run_exported(format, path, x) -> list:
    """Runs an exported model in its own runtime on the batch `x`; its outputs, in Keras's order."""
    path = os.fspath(path)
    if format == "tf_saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # held: its functions need the object's variables
        out = loaded.serve(tf.constant(x))
        return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})
    if format == "litert":
        runner = litert_interpreter(path)
        return runner(x)
    import openvino

    compiled = openvino.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(x)
    return [result[o] for o in compiled.outputs]


def litert_interpreter(path, num_threads=None):
    """A callable `x -> [outputs]` running a .tflite file with LiteRT's interpreter
    (`ai-edge-litert`, else TensorFlow's own `tf.lite.Interpreter`); outputs in the model's order."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=os.fspath(path), num_threads=num_threads)
    runner = interpreter.get_signature_runner()
    name = next(iter(runner.get_input_details()))

    def run(x):  # the signature runner resizes its input to each batch
        out = runner(**{name: x})
        return [out[k] for k in sorted(out, key=_natural)]

    return run


def _natural(name):
    digits = "".join(ch for ch in name if ch.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits else -1)


# ------------------------------------------------------------------------- files


def _write(model, path, format, preprocessing=False) -> None:
    if format == "openvino" and preprocessing:
        # Keras's OpenVINO export (3.15, TensorFlow) lists the resize layer's shape slices as
        # six extra outputs; OpenVINO's own converter reads the SavedModel's signature instead
        import openvino

        with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.stem}.saved.") as saved:
            model.export(saved, format="tf_saved_model", verbose=False)
            openvino.save_model(openvino.convert_model(saved), os.fspath(path), compress_to_fp16=False)
        return
    model.export(os.fspath(path), format=format, verbose=False)


def _temporary(target: pathlib.Path, format) -> pathlib.Path:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{FORMATS[format]}")
    os.close(fd)
    os.remove(tmp)  # Keras writes the file (or the SavedModel folder) itself
    return pathlib.Path(tmp)


def _move(tmp, target, format) -> None:
    if format == "openvino":
        os.replace(tmp.with_suffix(".bin"), target.with_suffix(".bin"))
    os.replace(tmp, target)


def _remove(tmp, format) -> None:
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    for path in [tmp] + ([tmp.with_suffix(".bin")] if format == "openvino" else []):
        if path.exists() and not path.is_dir():
            path.unlink()
