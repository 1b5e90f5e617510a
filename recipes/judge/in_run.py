"""The judge in a generative run: which judge it uses, the real images it compares with, its scores.

`RunJudge.plan` checks `--judge` before the run directory is touched; `ready` trains or
loads the judge inside it (`judge.keras`); `quality_of` and `evaluate_quality` score a
model's samples on the held-out split. The judge itself is `recipes.judge.classifier`, the
maths `recipes.quality`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib

import keras
import numpy as np

from recipes._log import logger
from recipes.datasets import _batches
from recipes.errors import ConfigError
from recipes.judge.classifier import JUDGE_FILE, NUM_SAMPLES, SAMPLE_SEED, Judge, cached_judge, judge_from_run
from recipes.quality import sample_quality
from recipes.recipe import held_out, load_data, open_data
from recipes.registry import get_spec


@dataclasses.dataclass(frozen=True)
class RealImages:
    """A generative run's real images in the generator's form (shape, value range), as arrays.

    Attributes:
        train, train_labels: the training split (labels `None` when the data has none).
        val: the validation split, or `None`.
        held, held_labels, held_split: the split the final metrics are measured on
            (test, else validation, else train, as `runs.held_out`).
        num_classes: classes of the labels, or `None`.
    """

    train: np.ndarray
    train_labels: np.ndarray | None
    val: np.ndarray | None
    held: np.ndarray
    held_labels: np.ndarray | None
    held_split: str
    num_classes: int | None

    @property
    def reference(self) -> np.ndarray:
        """Up to `NUM_SAMPLES` training images: the real side of the floor `frechet_distance_real`."""
        return self.train[:NUM_SAMPLES]

    @property
    def epoch_reference(self) -> np.ndarray:
        """What each epoch's samples are compared with: the validation split, else `reference`
        (the test split stays out of choosing `best.keras`)."""
        return self.val if self.val is not None else self.reference


_READ_BATCH = 256  # reading the splits into arrays: the same arrays as the run's batch size gives, in fewer steps


def _arrays(dataset):
    """A pipeline of either engine read into arrays: `(x, y)`, `y` `None` without labels."""
    if dataset is None:
        return None, None
    batches = list(_batches.batches(dataset))
    if batches and isinstance(batches[0], tuple):
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    return np.concatenate(batches), None


def _canonical(x, y):
    """The examples ordered by a hash of their bytes: the same order (and so the same judge and the
    same `reference` subset) in every process, whatever order the shuffled pipeline gave."""
    keys = [
        (hashlib.blake2b(row.tobytes(), digest_size=8).digest(), 0 if y is None else int(y[i]))
        for i, row in enumerate(x)
    ]
    order = np.asarray(sorted(range(len(x)), key=keys.__getitem__), dtype="int64")
    return x[order], None if y is None else y[order]


def real_images(config: dict):
    """The run's real images with their labels when the data has labels; `None` unless images."""
    try:
        source, labelled = open_data(config, labels=True), True
    except ValueError:  # no labels in the file: the judge must come from --judge
        source, labelled = open_data(config), False
    if source.kind != "image":
        return None
    # read in big batches: the arrays are the same (the training split is put in canonical order)
    data = load_data({**config, "batch_size": max(config["batch_size"], _READ_BATCH)}, source=source, labels=labelled)
    (train, train_labels), (val, _) = _canonical(*_arrays(data.train)), _arrays(data.val)
    split, held = held_out(data.test, data.val, data.train)
    held, held_labels = _arrays(held)
    return RealImages(train, train_labels, val, held, held_labels, split, data.info.num_classes if labelled else None)


def quality_of(model, judge: Judge, images: RealImages) -> dict:
    """`sample_quality` of `NUM_SAMPLES` images of `model.generate` on the held-out split, with the floor."""
    samples = model.generate(NUM_SAMPLES, seed=SAMPLE_SEED)
    return sample_quality(judge, samples, images.held, labels=images.held_labels, reference=images.reference)


class RunJudge:
    """The judge of one generative run: checked before the run directory is touched (`plan`),
    trained or loaded once inside it (`ready`), saved there as `judge.keras`."""

    def __init__(self, config, images: RealImages, judge: Judge | None):
        self.config, self.images, self.given = config, images, judge

    @classmethod
    def plan(cls, config: dict, run_dir=None):
        """`None` for a classifier run, or data without images or labels (and no --judge).

        Raises:
            ConfigError: for an unusable `--judge` (see `judge_from_run`).
        """
        spec = get_spec(config["model"])
        if spec.task != "generation":
            return None
        images = real_images(config)
        if images is None:
            if config["judge"]:
                raise ConfigError(f"--judge scores images; dataset {config['dataset']!r} holds none.")
            return None
        given = None
        if config["judge"] and not (run_dir is not None and (pathlib.Path(run_dir) / JUDGE_FILE).exists()):
            given = judge_from_run(
                config["judge"], image_shape=images.train.shape[1:], value_range=spec.value_range, generator=spec.name
            )
        if not config["judge"] and images.train_labels is None:
            logger.info(
                f"Dataset {config['dataset']!r} has no labels to train a judge on: sample quality is not measured."
            )
            return None
        return cls(config, images, given)

    def ready(self, run_dir) -> Judge:
        """The run's `judge.keras` if it has one (a resumed run), else the judge given, or trained (or
        the one trained on the same images before: `cached_judge`), saved there.

        Reseeds afterwards, so a new run and a resumed one go on from the same random state."""
        path = pathlib.Path(run_dir) / JUDGE_FILE
        if path.exists():
            judge = Judge.load(path)
        else:
            judge = self.given
            if judge is None:
                judge = cached_judge(
                    self.images.train,
                    self.images.train_labels,
                    value_range=get_spec(self.config["model"]).value_range,
                    num_classes=self.images.num_classes,
                    seed=self.config["seed"],
                    log=logger.info,
                )
            judge.save(path)
        keras.utils.set_random_seed(self.config["seed"])
        return judge


def evaluate_quality(run_dir, config: dict, model) -> dict:
    """`quality_of` a finished run's model with its `judge.keras`; `{}` when it has none."""
    path = pathlib.Path(run_dir) / JUDGE_FILE
    if not path.exists():
        return {}
    images = real_images(config)
    return quality_of(model, Judge.load(path), images) if images is not None else {}
