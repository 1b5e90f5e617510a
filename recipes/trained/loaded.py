"""A trained run, loaded: its best model (else its last), its configuration and its preprocessing.

```python
from recipes.trained import load_run
run = load_run("runs/mlp-digits-20261121-221500")
probs = run.predict(images)               # raw images as the data set stores them (digits: 0..16)
result = run.predict_files(["cat.png", "more/"])   # image files (8-bit), folders, .npz, .csv
result.top_k(3)
```
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import pathlib

import numpy as np

from recipes import preprocessing
from recipes._log import logger
from recipes.errors import ConfigError, user_errors
from recipes.preprocessing import Preprocessing
from recipes.recipe import load_data, open_data
from recipes.registry import get_spec
from recipes.run_directory import load_model_file, model_path, stored_config


@dataclasses.dataclass
class Predictions:
    """`probabilities[i]` over `class_names` for the input named `names[i]`."""

    names: list
    probabilities: np.ndarray
    class_names: tuple

    NAME_WIDTH = 60  # characters of an input's name in `table` (not a field: no annotation)

    def top_k(self, k: int):
        """For each input, `[(class name, probability), ...]`, the `k` most probable first."""
        k = min(k, len(self.class_names))
        order = np.argsort(-self.probabilities, axis=1, kind="stable")[:, :k]
        return [[(self.class_names[j], float(p[j])) for j in row] for row, p in zip(order, self.probabilities)]

    def table(self, k: int = 1) -> str:
        """A text table: the input, then the top `k` classes with their probabilities.

        An input's name longer than `NAME_WIDTH` characters (a long text, a deep path) is shown with
        its middle cut out ("…"), its line breaks and tabs as spaces; `to_csv`/`to_json` keep it whole."""
        tops = self.top_k(k)
        heads = ["input"] + [h for i in range(1, len(tops[0]) + 1 if tops else 2) for h in (f"top{i}", "prob")]
        rows = [
            [self._clip(name)] + [v for c, p in top for v in (c, f"{p:.4f}")] for name, top in zip(self.names, tops)
        ]
        widths = [max(len(str(r[i])) for r in [heads, *rows]) for i in range(len(heads))]
        lines = ["  ".join(_cell(v, w, i) for i, (v, w) in enumerate(zip(r, widths))) for r in [heads, *rows]]
        return "\n".join(line.rstrip() for line in lines)

    @classmethod
    def _clip(cls, name) -> str:
        """`name` on one line, at most `NAME_WIDTH` characters: its start and end kept (a text's first
        words, a file's name and line), the middle replaced by "…"."""
        name = "".join(" " if c in "\r\n\t\v\f" else c for c in str(name))
        if len(name) <= cls.NAME_WIDTH:
            return name
        tail = (cls.NAME_WIDTH - 1) // 3
        return name[: cls.NAME_WIDTH - 1 - tail] + "…" + name[-tail:]

    def to_csv(self, k: int = 1) -> str:
        """One row an input: input, predicted, probability, top-k columns, then one column per class."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        kk = min(k, len(self.class_names))
        extra = [h for i in range(2, kk + 1) for h in (f"top{i}", f"top{i}_probability")]
        writer.writerow(["input", "predicted", "probability", *extra, *(f"p_{c}" for c in self.class_names)])
        for name, top, p in zip(self.names, self.top_k(kk), self.probabilities):
            cells = [v for c, q in top[1:] for v in (c, _num(q))]
            writer.writerow([name, top[0][0], _num(top[0][1]), *cells, *map(_num, p)])
        return buffer.getvalue()

    def to_json(self, k: int = 1) -> str:
        items = [
            {
                "input": name,
                "predicted": top[0][0],
                "probability": top[0][1],
                "top_k": [{"class": c, "probability": q} for c, q in top],
                "probabilities": {c: float(q) for c, q in zip(self.class_names, p)},
            }
            for name, top, p in zip(self.names, self.top_k(k), self.probabilities)
        ]
        return json.dumps({"class_names": list(self.class_names), "predictions": items}, indent=2) + "\n"


def _cell(value, width, i):
    return str(value).ljust(width) if i == 0 or i % 2 else str(value).rjust(width)


def _num(p) -> str:
    return f"{float(p):.6g}"


@dataclasses.dataclass
class TrainedRun:
    """A trained run, ready to predict: its model, configuration and preprocessing.

    Attributes:
        path: the run directory.
        model: the Keras model of `model_file`.
        model_file: best.keras, else last.keras.
        config: the run's resolved configuration (config.yaml).
        preprocessing: what raw inputs go through (`recipes.preprocessing.Preprocessing`).
        class_names: names of the classes, index = class (`None` for generative runs).
    """

    path: pathlib.Path
    model: object
    model_file: pathlib.Path
    config: dict
    preprocessing: Preprocessing

    @property
    def class_names(self):
        pre = self.preprocessing
        if pre.class_names is not None:
            return tuple(pre.class_names)
        if not self.is_classifier:
            return None
        return tuple(str(i) for i in range(self.num_classes))

    @property
    def is_classifier(self) -> bool:
        return get_spec(self.config["model"]).task == "classification"

    @property
    def num_classes(self) -> int:
        units = int(self.model.output_shape[-1])
        return 2 if units == 1 else units

    def check_classifier(self, command="predict") -> None:
        if not self.is_classifier:
            raise ConfigError(
                f"Run {str(self.path)!r} trained {self.config['model']!r}, a generative model; {command} needs a "
                f"classifier run: use `recipes sample {self.path}` for images or `recipes export {self.path}` for "
                f"its generator/encoder and decoder."
            )

    def predict(self, x, *, batch_size: int = 256, raw_max=None) -> np.ndarray:
        """Class probabilities of raw inputs, preprocessed as the run's training data was.

        Args:
            x: a batch of raw inputs in the units of the run's data set (see
                `Preprocessing.transform`): images `(N, H, W[, C])` of any size with values
                in `[0, raw_max]`, feature rows `(N, F)` or token ids `(N, T)`.
            batch_size: examples per forward pass. Defaults to `256`.
            raw_max: the raw value that means "white" in `x`. Defaults to `None`: the run's
                (16 for the digits, 255 for 8-bit data).

        Returns:
            float32 `(N, num_classes)`: `model.predict` of the preprocessed inputs; for a
            binary (sigmoid) model the two columns are `1 - p` and `p`.
        """
        self.check_classifier()
        return self.predict_preprocessed(self.preprocessing.transform(x, raw_max=raw_max), batch_size=batch_size)

    def predict_preprocessed(self, x, *, batch_size: int = 256) -> np.ndarray:
        """`predict` of inputs already in the model's form."""
        if len(x) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        p = np.asarray(self.model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)
        return np.concatenate([1.0 - p, p], axis=-1) if p.shape[-1] == 1 else p

    def predict_files(self, paths, *, batch_size: int = 256, progress=None) -> Predictions:
        """Predicts every image file, image in a folder, `.npz` row and `.csv` row of `paths`; for a run
        trained on texts, every text: of a `.csv`/`.tsv`/`.jsonl` record, a `.txt` file (or one in a
        folder) or a raw text given as it is (see `recipes.preprocessing.read_inputs`)."""
        self.check_classifier()
        inputs = preprocessing.read_inputs(paths, self.preprocessing, progress=progress)
        return Predictions(inputs.names, self.predict_preprocessed(inputs.x, batch_size=batch_size), self.class_names)


def load_run(run_dir) -> TrainedRun:
    """Opens a finished (or checkpointed) run: its best model, else its last, and its preprocessing.

    The preprocessing is read from `preprocessing.json`; a run without it (trained before
    it was recorded) re-reads its data set's description (and says so), which needs
    the data set where config.yaml says it is.

    Raises:
        ConfigError: for a folder that is not a run, a run without a model file, a
            damaged model file, or a run whose data set is needed and missing.
    """
    config = stored_config(run_dir)
    path = pathlib.Path(run_dir)
    file = model_path(path)
    model = load_model_file(file)
    try:
        pre = preprocessing.read(path)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if pre is None:
        pre = derive(path, config)
    _check_matches(path, pre, model, config)
    return TrainedRun(path, model, file, config, pre)


def derive(run_dir, config) -> Preprocessing:
    """The preprocessing of a run without `preprocessing.json`, from its data set's description."""
    logger.warning(
        f"{run_dir} has no {preprocessing.FILE}; reading its data set {config['dataset']!r} for its preprocessing"
    )
    try:
        with user_errors():
            source = open_data(config)
            info = load_data(config, splits=["test"], source=source).info  # the description alone: no split read
    except ConfigError as e:
        raise ConfigError(
            f"Run {str(run_dir)!r} has no {preprocessing.FILE} and its data set cannot be read to find its "
            f"preprocessing: {e}"
        ) from None
    channels = source.shape[-1] if source.kind == "image" else None
    return preprocessing.record_for(info, config["model"], raw_channels=channels)


def _check_matches(run_dir, pre, model, config):
    takes = _input_shape(model, config)
    if takes is not None and tuple(takes) != tuple(pre.input_shape):
        raise ConfigError(
            f"{run_dir}: the model takes inputs of shape {tuple(takes)} but the run's preprocessing gives "
            f"{tuple(pre.input_shape)}; {preprocessing.FILE} does not belong to this model."
        )


def _input_shape(model, config):
    """The shape one example has for the model (no batch axis), or `None` if unknown."""
    net = model
    if get_spec(config["model"]).task == "generation":
        net = getattr(model, "encoder", None) or getattr(model, "discriminator", None)
    try:
        return tuple(int(d) if d is not None else None for d in net.input_shape[1:])
    except (AttributeError, TypeError, ValueError):
        return None
