"""A run's model for serving: TensorFlow SavedModel, ONNX, LiteRT or OpenVINO, each verified as written.

```python
from recipes.trained import export_run
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

import importlib.util
import os
import pathlib

import numpy as np

from recipes._checks import is_real
from recipes._log import forwarded_to, logger
from recipes.errors import ConfigError, TrainingError, user_errors
from recipes.recipe import held_out_data, run_vocabulary
from recipes.registry import get_spec
from recipes.run_directory import stored_config
from recipes.trained._runtimes import (
    BATCH,
    FORMATS,
    Exported,
    ExportError,
    _keras_outputs,
    _largest_difference,
    _move,
    _raw_image_checks,
    _remove,
    _signature,
    _temporary,
    _write,
    as_float32,
    run_exported,
    with_preprocessing,
)
from recipes.trained.loaded import load_run

TOLERANCE = 1e-4  # float32 graphs in another runtime differ from Keras's by ~1e-7..1e-5 on these models
INSTALL = 'pip install -e ".[export]"'


def export_run(run_dir, format, out, *, include_preprocessing=False, tolerance=TOLERANCE, log=None):
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
        log: called with each line it says instead of the `recipes` logger's console
            (one per file written). Defaults to `None`: the console.

    Returns:
        A list of `Exported`, one per file.

    Raises:
        ConfigError: for an unknown format, an `out` that exists or does not suit the
            format, a missing package, or a run that cannot be exported this way.
        ExportError: when the exported model's outputs differ from Keras's by more than
            `tolerance` (nothing is left at `out`).
    """
    with forwarded_to(log):
        return _export(run_dir, _check_format(format), out, include_preprocessing, _check_tolerance(tolerance))


def _export(run_dir, format, out, include_preprocessing, tolerance):
    _check_packages(format)
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"Export runs on Keras's TensorFlow backend (KERAS_BACKEND=tensorflow); this process runs "
            f"{keras.backend.backend()}. Received: backend={keras.backend.backend()!r}"
        )
    config_model = _run_model_name(run_dir)
    task = get_spec(config_model).task
    if include_preprocessing and config_model == "dcgan":
        raise ConfigError(
            "--include-preprocessing does not apply to a dcgan run: its generator takes latent vectors, not "
            "images. Received: include_preprocessing=True"
        )
    targets = _targets(out, format, config_model)
    run = load_run(run_dir)
    pre = run.preprocessing
    if include_preprocessing and pre.kind != "image":
        raise ConfigError(
            f"--include-preprocessing takes images; run {str(run_dir)!r} trained on "
            f"{'token ids' if pre.kind == 'tokens' else 'feature rows'}. Received: include_preprocessing=True"
        )
    parts = _parts(run.model, config_model, task)
    samples = _samples(run, task)
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
        logger.info(
            f"{r.part}: {r.path}  (input {r.inputs}; largest difference from Keras {r.largest_difference:.3g} "
            f"on {r.checked}, tolerance {tolerance:g})"
        )
    return results


def export_command(run_dir, format, out, *, include_preprocessing=False, tolerance=None):
    """What `recipes export` does: `export_run`, with an `ExportError` as a training-style failure."""
    try:
        return export_run(
            run_dir,
            format,
            out,
            include_preprocessing=include_preprocessing,
            tolerance=TOLERANCE if tolerance is None else tolerance,
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
    return stored_config(run_dir)["model"]


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


def _samples(run, task):
    """`part -> (inputs, description)`: a batch of the run's held-out data in the model's form
    (random inputs in range if the data set cannot be read), fixed latent vectors."""
    rng = np.random.default_rng(0)
    if task == "generation":
        latent = rng.standard_normal((BATCH, run.model.latent_dim)).astype(np.float32)
        checked = f"{BATCH} latent vectors"
        if run.config["model"] == "dcgan":
            return {"generator": (latent, checked)}
        images, described = _held_out(run, rng)
        return {"encoder": (images, described), "decoder": (latent, checked)}
    x, described = _held_out(run, rng)
    return {"model": (x, described)}


def _held_out(run, rng):
    try:
        with user_errors():
            name, ds, _, _ = held_out_data(run.config, vocabulary=run_vocabulary(run.path))
        batches = []
        for batch in ds:
            batches.append(np.asarray(batch[0] if isinstance(batch, tuple) else batch))
            if sum(len(b) for b in batches) >= BATCH:
                break
        x = np.concatenate(batches)[:BATCH]
        return x, f"{len(x)} {name} examples of {run.preprocessing.dataset}"
    except ConfigError as e:
        logger.warning(f"the run's data set cannot be read ({e}); verifying on random inputs instead")
    pre = run.preprocessing
    shape = (BATCH, *pre.input_shape)
    if pre.kind == "tokens":
        return rng.integers(0, pre.vocab_size, size=shape).astype(np.int32), f"{BATCH} random token sequences"
    if pre.kind == "image":
        low, high = pre.value_range
        return rng.uniform(low, high, size=shape).astype(np.float32), f"{BATCH} random images"
    return rng.standard_normal(shape).astype(np.float32), f"{BATCH} random feature rows"
