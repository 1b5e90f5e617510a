"""An exported model in its own runtime (TensorFlow, onnxruntime, LiteRT, OpenVINO), and what export
writes and compares: the float32 copy, the preprocessing layers (images) or the SavedModel that
vectorises raw strings first (texts), a text run's vocabulary file, the files under temporary names.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import tempfile

import numpy as np

FORMATS = {"tf_saved_model": "", "onnx": ".onnx", "litert": ".tflite", "openvino": ".xml"}
BATCH = 32  # examples compared


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
    vocabulary: pathlib.Path | None = None  # a text run's token-id export: its words, one a line (id 2 first)


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


TEXTS = "texts"  # the input of a text SavedModel's `serve`
TEXT_SIGNATURE = f"{TEXTS}: N string (raw texts)"


def write_text_saved_model(net, pre, path) -> None:
    """A SavedModel whose `serve` takes raw strings `(batch,)` and returns `net`'s outputs: Keras's
    `ExportArchive` tracking the run's `TextVectorization` (its words, standardisation, split and
    length, as training read the texts) and the token-id model, behind one function that vectorises
    first (KERAS3-FACTS.md, "Text"). TensorFlow backend."""
    import keras
    import tensorflow as tf

    from recipes.datasets._vocabulary import vectorizer

    vectorize = vectorizer(pre.vocabulary, pre.sequence_length)
    vectorize(tf.constant([""]))  # built: ExportArchive tracks only built layers
    archive = keras.export.ExportArchive()
    archive.track(vectorize)  # its lookup table
    archive.track(net)

    def serve(texts):
        # training=False fixed in the graph, as `with_preprocessing` does
        return net(vectorize(texts), training=False)

    archive.add_endpoint("serve", serve, input_signature=[tf.TensorSpec((None,), tf.string, name=TEXTS)])
    archive.write_out(os.fspath(path), verbose=False)


def vocabulary_path(target: pathlib.Path, format) -> pathlib.Path:
    """Where a text run's token-id export puts its vocabulary: inside a SavedModel folder
    (`served/vocabulary.txt`), else beside the file (`m.onnx` -> `m.vocabulary.txt`)."""
    if not FORMATS[format]:
        return target / "vocabulary.txt"
    return target.with_name(f"{target.stem}.vocabulary.txt")


def write_vocabulary(path, pre) -> None:
    """The run's words, one a line, id 2 first (as the run's own `vocabulary.txt`)."""
    with open(path, "x", encoding="utf-8", newline="\n") as f:
        f.write("".join(f"{word}\n" for word in pre.vocabulary))


def _signature(model) -> str:
    tensor = model.inputs[0]
    shape = "x".join("N" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(tensor.shape))
    return f"{shape} {tensor.dtype}"


# ---------------------------------------------------------------------- verification


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


def _raw_text_checks(texts, pre, net):
    """Inputs and Keras's outputs for a text SavedModel: the raw strings, and `net` on their token ids
    as training made them (`Preprocessing.transform`)."""
    texts = [str(t) for t in texts]
    return [(texts, _keras_outputs(net, pre.transform(texts)))]


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


def _write(model, path, format, via_saved_model=False) -> None:
    if format == "openvino" and via_saved_model:
        # Keras's OpenVINO export (3.15, TensorFlow) lists the resize layer's shape slices, and an
        # LSTM's masked-sequence internals behind an Embedding(mask_zero=True), as extra outputs
        # (six of them); OpenVINO's own converter reads the SavedModel's signature instead
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
