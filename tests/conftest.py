"""Shared set-up of the tests: the Keras state per test, the tiers, the `recipes` command in this
process, and the finished tiny runs that the evaluate/sample/predict/export tests share.

Tiers (the markers are registered in setup.cfg's [tool:pytest], each with its meaning): a test
marked `process`, `full_model`, `job` or `long_training` is marked `slow` too, so bare `pytest`
(whose addopts hold `-m "not slow"`) runs the fast tier, and `pytest -m slow` (or `-m process`,
...) the others. A test may also be marked `slow` alone.
"""

import dataclasses
import os
import pathlib
import tempfile
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# the judges' cache (and any other KERAS_HOME file) of this session only, not the user's ~/.keras
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="recipes-tests-keras-home-"))

import keras  # noqa: E402
import pytest  # noqa: E402

# why a test is slow: each of these marks it `slow` too (setup.cfg says what each means)
SLOW_BECAUSE = ("process", "full_model", "job", "long_training")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by the markers
def pytest_collection_modifyitems(items):
    for item in items:
        if any(item.get_closest_marker(name) for name in SLOW_BECAUSE) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Every test starts from the same seed, the float32 policy and an empty graph."""
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")
    # without its gc.collect(), a fifth of a second a test in a process holding TensorFlow: Python's
    # own collections free the same objects a little later
    keras.backend.clear_session(free_memory=False)


# ------------------------------------------------------------ the command in this process


@dataclasses.dataclass
class Done:
    """What `recipes ...` did, as subprocess.CompletedProcess says it: exit status, stdout, stderr."""

    args: list
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def recipes_main(capsys):
    """`recipes_main(*args)` runs `recipes.cli.main(args)` in this process -> Done.

    Where a process is not the point this is the `recipes` command without Python's and
    TensorFlow's start-up: argparse's exits become the exit status, and what the command
    changes in the process (warnings' format and filters, the environment) is put back.
    """
    from recipes import cli

    def run(*args):
        args = [str(a) for a in args]
        capsys.readouterr()  # what came before is not this command's
        environ, formatwarning = dict(os.environ), warnings.formatwarning
        try:
            with warnings.catch_warnings():
                code = cli.main(args)
        except SystemExit as e:  # argparse: --help, or an error in the arguments
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            warnings.formatwarning = formatwarning
            os.environ.clear()
            os.environ.update(environ)
        out, err = capsys.readouterr()
        return Done(args, code, out, err)

    return run


# ------------------------------------------------------------ finished tiny runs, shared


def _train_quietly(model, run_dir, *, flags=None, sets=None):
    import recipes
    from recipes import config as config_lib

    config = config_lib.resolve(model, flags=flags or {}, sets=sets or {})
    run_dir, _ = recipes.train(config, run_dir, verbose=0, log=lambda *a: None)
    return pathlib.Path(run_dir)


@pytest.fixture(scope="session")
def train_quietly():
    """`train_quietly(model, run_dir, flags={...}, sets={...})`: `recipes.train` of `model` (on the
    bundled digits unless flags name a dataset) in this process, without output -> run_dir."""
    return _train_quietly


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished MLP run on the bundled digits (2 epochs, 32 hidden units), trained in this
    process once per session (per xdist worker). Shared: copy it before changing anything."""
    return _train_quietly(
        "mlp", tmp_path_factory.mktemp("tiny") / "mlp", flags={"epochs": 2}, sets={"hidden_units": [32]}
    )


@pytest.fixture(scope="session")
def tiny_dcgan_run(tmp_path_factory, tiny_run):
    """A finished DCGAN run on the digits (1 epoch, 4 base filters, latent size 8), judged by
    `tiny_run` (no judge of its own to train). Shared: copy it before changing anything."""
    return _train_quietly(
        "dcgan",
        tmp_path_factory.mktemp("tiny") / "dcgan",
        flags={"epochs": 1, "judge": str(tiny_run)},
        sets={"base_filters": 4, "latent_dim": 8},
    )


@pytest.fixture(scope="session")
def tiny_vae_run(tmp_path_factory, tiny_run):
    """A finished VAE run on the digits (1 epoch), judged by `tiny_run`. Shared: copy it before
    changing anything."""
    return _train_quietly("vae", tmp_path_factory.mktemp("tiny") / "vae", flags={"epochs": 1, "judge": str(tiny_run)})


# ------------------------------------------------------------ texts


POSITIVE = ("great", "wonderful", "loved", "superb", "moving", "brilliant", "fun", "charming")
NEGATIVE = ("terrible", "boring", "hated", "awful", "dull", "clumsy", "tedious", "weak")
FILLER = ("the", "film", "movie", "plot", "acting", "was", "and", "it", "a", "story", "really", "quite")


def make_reviews(n: int, seed: int = 0, *, unseen: str | None = None) -> list[tuple[str, str]]:
    """`n` made-up reviews `(text, "neg"|"pos")`, each a few filler words around two or three words
    of its class, with commas, quotes and capitals (so CSV quoting and standardisation are exercised).
    `unseen`: a word put in every review (one that training data never holds)."""
    import random

    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 9))]
        for _ in range(rng.randint(2, 3)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label == "pos" else NEGATIVE))
        if unseen:
            words.insert(rng.randrange(len(words) + 1), unseen)
        text = " ".join(words).capitalize() + rng.choice([".", "!", ', "really".', ", I think."])
        out.append((text, label))
    return out


def write_reviews_csv(path, rows, header=("text", "label")):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return pathlib.Path(path)


@pytest.fixture(scope="session")
def reviews_folder(tmp_path_factory):
    """A folder of `train.csv` (240 reviews) and `test.csv` (60, each holding the word "zyzzyva",
    never seen in training), columns `text,label`, labels `neg`/`pos`."""
    folder = tmp_path_factory.mktemp("reviews") / "reviews"
    folder.mkdir()
    write_reviews_csv(folder / "train.csv", make_reviews(240, seed=1))
    write_reviews_csv(folder / "test.csv", make_reviews(60, seed=2, unseen="zyzzyva"))
    return folder


@pytest.fixture(scope="session")
def tiny_text_run(tmp_path_factory, reviews_folder):
    """A finished LSTM run (3 epochs, one LSTM of 8 units, embeddings of 8) on `reviews_folder`.
    Shared: copy it before changing anything."""
    return _train_quietly(
        "lstm",
        tmp_path_factory.mktemp("tiny") / "lstm-text",
        flags={"epochs": 3, "dataset": str(reviews_folder)},
        sets={"units": [8], "embedding_dim": 8, "bidirectional": False},
    )


def py_batches(x, y=None, batch_size=8):
    """Arrays as the PyDataset engine gives them to `fit` (in order, no shuffle): `(x, y)` or `x` batches."""
    import numpy as np

    from recipes.datasets._pydataset import ArrayBatches

    return ArrayBatches(x, y, np.arange(len(x)), batch_size)
