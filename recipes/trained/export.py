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

A text run (an LSTM trained on texts) exports its token-id model (int32 ids `(batch, L)`) with
its vocabulary beside it (`m.onnx` -> `m.vocabulary.txt`; a SavedModel folder holds
`vocabulary.txt`), so another runtime can vectorise; with `include_preprocessing` (SavedModel
only: ONNX, LiteRT and OpenVINO cannot carry the string operations) its `serve` takes raw strings
and vectorises them as training did, verified on the run's held-out texts.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib

import numpy as np

from recipes._checks import is_real
from recipes._log import forwarded_to, logger
from recipes._optional import EXPORT_NEEDS_TENSORFLOW, has_tensorflow
from recipes.errors import ConfigError, TrainingError, user_errors
from recipes.recipe import held_out_data, open_data, run_vocabulary
from recipes.registry import get_spec
from recipes.run_directory import stored_config
from recipes.trained._runtimes import (
    BATCH,
    FORMATS,
    TEXT_SIGNATURE,
    Exported,
    ExportError,
    _keras_outputs,
    _largest_difference,
    _move,
    _raw_image_checks,
    _raw_text_checks,
    _remove,
    _signature,
    _temporary,
    _write,
    as_float32,
    run_exported,
    vocabulary_path,
    with_preprocessing,
    write_text_saved_model,
    write_vocabulary,
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
            classifiers and the VAE's encoder); a text run's SavedModel takes raw strings
            `(batch,)` and vectorises them as training did. Defaults to `False`: it takes
            what the model takes (float32 in the run's value range; a text run's token ids,
            its vocabulary file written beside it).
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
    if not has_tensorflow():
        raise ConfigError(EXPORT_NEEDS_TENSORFLOW)
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
    recorded = _recorded_kind(run_dir)
    if include_preprocessing and recorded == "text" and format != "tf_saved_model":
        raise ConfigError(_NO_STRINGS[format])
    targets = _targets(out, format, config_model, vocabulary=recorded == "text" and not include_preprocessing)
    run = load_run(run_dir)
    pre = run.preprocessing
    text = pre.kind == "text"
    if text and recorded != "text":  # a run whose record could not be read before its model was loaded
        if include_preprocessing and format != "tf_saved_model":
            raise ConfigError(_NO_STRINGS[format])
        targets = _targets(out, format, config_model, vocabulary=not include_preprocessing)
    if include_preprocessing and pre.kind not in ("image", "text"):
        raise ConfigError(
            f"--include-preprocessing takes images or texts; run {str(run_dir)!r} trained on "
            f"{'token ids' if pre.kind == 'tokens' else 'feature rows'}. Received: include_preprocessing=True"
        )
    raw_texts = include_preprocessing and text
    parts = _parts(run.model, config_model, task)
    samples = {"model": _held_out_texts(run)} if raw_texts else _samples(run, task)
    written, results = [], []  # (temporary, target, format) to move into place once every file is verified
    try:
        for (part, net), target in zip(parts, targets):
            net = as_float32(net)
            images = include_preprocessing and not text and part in ("model", "encoder")
            wrapped = with_preprocessing(net, pre) if images else net
            x, checked = samples[part]
            if raw_texts:
                checks = _raw_text_checks(x, pre, net)
            elif images:
                checks = _raw_image_checks(x, pre, net)
                checked = f"{checked} as uint8 images at {pre.image_size[0]}x{pre.image_size[1]} and another size"
            else:
                checks = [(x, _keras_outputs(net, x))]
            if not raw_texts:
                wrapped(checks[0][0][:1])  # Keras exports only a model that has been called
            tmp = _temporary(target, format)
            written.append((tmp, target, format))
            if raw_texts:
                write_text_saved_model(net, pre, tmp)
            else:
                _write(wrapped, tmp, format, via_saved_model=images or pre.kind in ("text", "tokens"))
            words = None
            if text and not raw_texts:  # the token-id model: its vocabulary beside it
                words = vocabulary_path(target, format)
                tmp_words = vocabulary_path(tmp, format)
                if FORMATS[format]:  # a file beside the model's (a SavedModel folder holds it, moved with it)
                    written.append((tmp_words, words, "vocabulary"))
                write_vocabulary(tmp_words, pre)
            difference = 0.0
            for inputs, expected in checks:
                got = run_exported(format, tmp, inputs)
                difference = max(difference, _largest_difference(part, expected, got))
            if not difference <= tolerance:
                raise ExportError(
                    f"The {format} export of the {part} differs from Keras by {difference:.3g}, over the tolerance "
                    f"{tolerance:g} (on {checked}); nothing was written to {target}."
                )
            signature = TEXT_SIGNATURE if raw_texts else _signature(wrapped)
            results.append(Exported(part, target, difference, checked, signature, words))
        for tmp, target, kind in reversed(written):  # a vocabulary file before its model
            _move(tmp, target, kind)
        written = []
    finally:
        for tmp, _, kind in written:
            _remove(tmp, kind)
    for r in results:
        logger.info(
            f"{r.part}: {r.path}  (input {r.inputs}; largest difference from Keras {r.largest_difference:.3g} "
            f"on {r.checked}, tolerance {tolerance:g})"
        )
        if r.vocabulary is not None:
            logger.info(
                f"vocabulary: {r.vocabulary}  (one word a line, the first is id 2; 0 pads, 1 is any other word; "
                f"{pre.describe()})"
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


def _recorded_kind(run_dir) -> str | None:
    """The kind of data the run's `preprocessing.json` records, before its model is loaded (`None`
    without a readable record: `load_run` says why, or re-derives it)."""
    from recipes import preprocessing

    try:
        pre = preprocessing.read(run_dir)
    except ValueError:
        return None
    return None if pre is None else pre.kind


_INSTEAD = (
    "export without --include-preprocessing (the token-id model, its vocabulary file beside it) or use "
    "--format tf_saved_model --include-preprocessing (a SavedModel that takes raw strings)"
)
_NO_STRINGS = {
    format: f"--include-preprocessing cannot go into format={format!r} for a text run: {why}; {_INSTEAD}. "
    f"Received: format={format!r}, include_preprocessing=True"
    for format, why in (
        (
            "onnx",
            "ONNX cannot carry its string operations (standardising, splitting, the vocabulary lookup; tf2onnx#1886)",
        ),
        ("litert", "LiteRT runs its string operations only as TensorFlow Flex ops, which LiteRT's interpreter lacks"),
        ("openvino", "OpenVINO's converter does not take its string operations"),
    )
}


def _targets(out, format, model_name, vocabulary=False) -> list[pathlib.Path]:
    """The paths to write, checked before anything is loaded: new, in an existing folder, the format's suffix
    (and, for a text run's token-id model in a file, its vocabulary file beside it)."""
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
        beside = [target.with_suffix(".bin")] if format == "openvino" else []
        if vocabulary and suffix:
            beside.append(vocabulary_path(target, format))
        for path in [target, *beside]:
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


def _held_out_texts(run):
    """`(texts, description)`: up to `BATCH` raw texts of the run's held-out split (its test split,
    else its training texts), or made-up sentences of its words if the data set cannot be read."""
    pre = run.preprocessing
    try:
        with user_errors():
            arrays = open_data(run.config).arrays
        split, texts = (
            ("test", arrays.x_test) if getattr(arrays, "x_test", None) is not None else ("training", arrays.x_train)
        )
        texts = [str(t) for t in np.asarray(texts, dtype=object).reshape(-1)[:BATCH]]
        if texts:
            return texts, f"{len(texts)} {split} texts of {pre.dataset}, as raw strings"
        logger.warning("the run's data set holds no texts; verifying on made-up sentences instead")
    except ConfigError as e:
        logger.warning(f"the run's data set cannot be read ({e}); verifying on made-up sentences instead")
    rng = np.random.default_rng(0)
    words = list(pre.vocabulary) or ["word"]
    texts = []
    for i in range(BATCH):  # capitals, punctuation, an unknown word, lengths either side of the sequence length
        chosen = [str(w) for w in rng.choice(words, size=int(rng.integers(1, 2 * pre.sequence_length)))]
        chosen.insert(int(rng.integers(len(chosen) + 1)), "Xyzzyq")
        texts.append(" ".join(chosen).capitalize() + ("!" if i % 2 else ", really."))
    return texts, f"{BATCH} made-up sentences of the run's words, as raw strings"
