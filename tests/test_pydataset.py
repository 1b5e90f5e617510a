"""The PyDataset engine (`recipes.datasets._pydataset`): the same split, shapes, dtypes and values
as the tf.data engine, each epoch's order a function of the seed and the epoch, a job's shares,
bounded memory on a folder larger than the budget, `fit()`, and what is refused without TensorFlow.

Runs with and without TensorFlow installed (the comparisons with tf.data are skipped without it):
`KERAS_BACKEND=jax .venv-notf/bin/python -m pytest tests/test_pydataset.py`.
"""

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import tracemalloc

import keras
import numpy as np
import pytest
from PIL import Image

from recipes._optional import MissingDependency, has_tensorflow
from recipes.datasets import _pydataset as engine
from recipes.datasets import data_engine, load_dataset, open_source, set_epoch
from recipes.datasets._batches import batches
from recipes.datasets._images import UnreadableImage
from recipes.datasets._pipelines import _split

needs_tf = pytest.mark.skipif(not has_tensorflow(), reason="compares with the tf.data engine")
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(source, **options):
    return load_dataset(source, engine="pydataset", **options)


def _arrays(ds):
    """Every batch of `ds`, concatenated: `(x, y)`, or `x` alone."""
    read = list(batches(ds))
    if isinstance(read[0], tuple):
        return tuple(np.concatenate(parts) for parts in zip(*read))
    return np.concatenate(read)


def _jpeg_folder(root, classes=3, per_class=8, size=(96, 128), seed=0):
    """Smooth colour JPEGs (gradients and a little noise), as photos compress."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = np.stack([(xx * 2 + 40 * c) % 256, (yy * 2 + 20 * i) % 256, (xx + yy) % 256], -1)
            image = (image + rng.normal(0, 8, image.shape)).clip(0, 255).astype(np.uint8)
            Image.fromarray(image).save(root / f"c{c}" / f"{i}.jpg", quality=90)
    return root


# ----------------------------------------------------------------------------- the engine chosen


def test_the_engine_is_tf_data_where_tensorflow_is_installed_else_pydataset(monkeypatch):
    monkeypatch.delenv("RECIPES_DATA_ENGINE", raising=False)
    if has_tensorflow():
        # each backend and source where it was measured faster (scripts/bench/data_engines.py)
        assert data_engine(backend="tensorflow", form="arrays") == (
            "tf.data",
            "the TensorFlow backend: tf.data, measured faster there",
        )
        assert data_engine(backend="jax", form="arrays") == (
            "pydataset",
            "data in memory on jax: PyDataset measured faster than tf.data",
        )
        assert data_engine(backend="torch", form="folder") == (
            "tf.data",
            "image files on torch: tf.data measured decoding faster",
        )
        assert data_engine(backend="jax", form="text")[0] == "tf.data"
        assert data_engine(backend="jax", form="shards")[0] == "tf.data"
        assert data_engine(backend="jax") == (
            "pydataset",
            "data in memory on jax: PyDataset measured faster than tf.data; tf.data for image files, texts and "
            "packed shards",
        )
        assert data_engine("tf.data")[0] == "tf.data"
    else:
        assert data_engine() == ("pydataset", "TensorFlow is not installed")
        with pytest.raises(MissingDependency, match=r"tf.data data engine .*pip install 'keras-recipes\[tensorflow\]'"):
            data_engine("tf.data")
    assert data_engine("pydataset") == ("pydataset", "engine='pydataset'")
    monkeypatch.setenv("RECIPES_DATA_ENGINE", "pydataset")
    assert data_engine() == ("pydataset", "RECIPES_DATA_ENGINE=pydataset")
    assert data_engine("pydataset")[1] == "engine='pydataset'"  # asked for by name: the variable is not read
    assert _load("digits", splits=["val"]).info.engine == "pydataset"
    monkeypatch.setenv("RECIPES_DATA_ENGINE", "grain")
    with pytest.raises(ValueError, match=r"^RECIPES_DATA_ENGINE must be .*Received: RECIPES_DATA_ENGINE='grain'$"):
        data_engine()
    with pytest.raises(ValueError, match=r"^engine must be .*Received: engine='tfdata'$"):
        load_dataset("digits", engine="tfdata")


# ----------------------------------------------------------------------------- what is read


def test_digits_have_the_tf_data_split_shapes_dtypes_and_values():
    data = _load("digits", batch_size=64, return_test=True, seed=3)
    raw = open_source("digits").arrays
    train_idx, val_idx = _split(len(raw.x_train), 0.1, 3, "digits")
    assert (data.info.num_train, data.info.num_val, data.info.num_test) == (len(train_idx), len(val_idx), 359)
    assert data.info.engine == "pydataset" and data.info.cache.startswith("memory: ")
    x, y = _arrays(data.val)
    assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape == (len(val_idx), 8, 8, 1)
    np.testing.assert_array_equal(y, raw.y_train[val_idx])  # the validation split, in file order
    np.testing.assert_allclose(x, raw.x_train[val_idx] / 16.0, atol=1e-6)
    first = next(batches(data.train))
    assert first[0].shape == (64, 8, 8, 1) and len(data.train) == -(-len(train_idx) // 64)
    assert 0.0 <= x.min() and x.max() <= 1.0


@needs_tf
@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(image_size=(16, 12), channels=3, value_range=(-1.0, 1.0)),
        dict(as_sequence=True),
        dict(image_size=(12, 12), cache_budget=0),  # transformed batch by batch
        dict(labels=False),
    ],
    ids=["native", "resized-rgb", "rows", "uncached", "no-labels"],
)
def test_digits_read_as_tf_data_reads_them(options):
    ours = _load("digits", batch_size=64, return_test=True, **options)
    theirs = load_dataset("digits", engine="tf.data", batch_size=64, return_test=True, **options)
    assert ours.info == dataclasses.replace(theirs.info, engine="pydataset", engine_reason=ours.info.engine_reason)
    for split in ("val", "test"):
        mine, other = _arrays(getattr(ours, split)), _arrays(getattr(theirs, split))
        for a, b in zip(mine, other) if isinstance(mine, tuple) else [(mine, other)]:
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(a, b, atol=1e-5)
    # the training split: the same examples, each epoch, in another order
    mine, other = _arrays(ours.train), _arrays(theirs.train)
    x_mine, x_other = (mine[0], other[0]) if isinstance(mine, tuple) else (mine, other)
    assert x_mine.shape == x_other.shape and x_mine.dtype == x_other.dtype
    key = lambda x: np.sort(x.reshape(len(x), -1).round(4), axis=0)  # noqa: E731
    np.testing.assert_allclose(key(x_mine), key(x_other), atol=1e-4)


@needs_tf
def test_tokens_and_tables_read_as_tf_data_reads_them(tmp_path):
    rng = np.random.default_rng(0)
    tokens = tmp_path / "tokens.npz"
    np.savez(tokens, x_train=rng.integers(1, 50, (40, 12)), y_train=rng.integers(0, 2, 40))
    table = tmp_path / "table.csv"
    rows = [",".join(["a", "b", "c", "d", "label"])]
    rows += [",".join(f"{v:.3f}" for v in rng.normal(size=4)) + f",{i % 3}" for i in range(30)]
    table.write_text("\n".join(rows) + "\n")
    for source, options in ((tokens, dict(vocab_size=50, sequence_length=16)), (table, dict(sequence_length=2))):
        ours = _load(source, batch_size=8, **options)
        theirs = load_dataset(source, engine="tf.data", batch_size=8, **options)
        assert ours.info.input_shape == theirs.info.input_shape and ours.info.num_val == theirs.info.num_val
        for a, b in zip(_arrays(ours.val), _arrays(theirs.val)):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def test_labels_false_yields_images_alone():
    data = _load("digits", labels=False, batch_size=32, value_range=(-1, 1))
    batch = next(batches(data.train))
    assert isinstance(batch, np.ndarray) and batch.shape == (32, 8, 8, 1)
    assert batch.min() >= -1.0 and batch.max() <= 1.0


@needs_tf
@pytest.mark.parametrize("options", [dict(image_size=(48, 64)), dict(), dict(image_size=(40, 40), channels=1)])
def test_a_jpeg_folder_reads_as_tf_data_reads_it(tmp_path, options):
    root = _jpeg_folder(tmp_path / "photos")
    ours = _load(root, batch_size=8, **options)
    theirs = load_dataset(root, engine="tf.data", batch_size=8, **options)
    assert ours.info.input_shape == theirs.info.input_shape and ours.info.cache == theirs.info.cache
    (x, y), (x_tf, y_tf) = _arrays(ours.val), _arrays(theirs.val)
    assert x.shape == x_tf.shape and x.dtype == x_tf.dtype == np.float32 and y.dtype == y_tf.dtype == np.int32
    np.testing.assert_array_equal(y, y_tf)
    # libjpeg's DCT-scaled decodes agree exactly; at full size Pillow's and TensorFlow's IDCTs differ a little
    difference = np.abs(x - x_tf)
    assert difference.mean() < 0.01 and difference.max() < 0.05, (difference.mean(), difference.max())
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_a_folder_is_read_at_the_size_and_channels_asked(tmp_path):
    root = _jpeg_folder(tmp_path / "photos", per_class=4)
    data = _load(root, batch_size=4, image_size=(24, 32), channels=1, value_range=(-1, 1), as_sequence=True)
    x, y = next(batches(data.train))
    assert data.info.input_shape == (24, 32) and x.shape == (4, 24, 32) and x.dtype == np.float32
    assert y.dtype == np.int32 and set(y) <= {0, 1, 2} and -1.0 <= x.min() and x.max() <= 1.0


# ----------------------------------------------------------------------------- orders and shares


def _epoch_of(ds):
    """One pass as fit() reads it: begun, every batch, ended (which moves the epoch on)."""
    ds.on_epoch_begin()
    x, _ = _arrays(ds)
    ds.on_epoch_end()
    return x


def test_each_epochs_order_is_a_function_of_the_seed_and_the_epoch():
    one, other = _load("digits", seed=5).train, _load("digits", seed=5).train
    passes = [_epoch_of(one) for _ in range(4)]
    assert one.epoch == 4  # each full pass moved it on
    assert not np.array_equal(passes[0], passes[1])
    np.testing.assert_array_equal(np.sort(passes[0], axis=0), np.sort(passes[3], axis=0))  # the same examples
    assert set_epoch(other, 3) and other.epoch == 3
    np.testing.assert_array_equal(_epoch_of(other), passes[3])  # a resumed run reads what an uninterrupted one did
    assert not np.array_equal(_epoch_of(_load("digits", seed=6).train), passes[0])
    # a pass broken off (fit() reads one batch to build a model) is not an epoch
    other.set_epoch(1)
    other.on_epoch_begin(), other[0], other.on_epoch_end()
    assert other.epoch == 1
    val = _load("digits", seed=5).val
    assert not set_epoch(val, 2)
    np.testing.assert_array_equal(_epoch_of(val), _epoch_of(val))  # in file order, every time


def test_a_jobs_processes_read_disjoint_shares_of_every_global_batch_in_as_many_steps():
    whole = _load("digits", batch_size=60, seed=1).train
    shares = [_load("digits", batch_size=60, seed=1, process_share=(3, i)).train for i in range(3)]
    steps = whole.num_examples // 60
    assert [len(s) for s in shares] == [steps] * 3 and all(s.batch_size == 20 for s in shares)
    for epoch in (0, 2):
        rows = [s.rows[s.order(epoch)] for s in shares]
        assert all(len(r) == steps * 20 for r in rows)
        assert len(set(np.concatenate(rows))) == steps * 60  # disjoint
        for k in range(steps):  # together, each global batch (the last, partial one left out)
            together = np.sort(np.concatenate([r[k * 20 : (k + 1) * 20] for r in rows]))
            np.testing.assert_array_equal(together, np.sort(whole.rows[whole.positions(k, epoch)]))
    x, y = shares[1][0]
    assert x.shape == (20, 8, 8, 1) and y.shape == (20,)


def test_a_folders_process_decodes_only_its_own_files(tmp_path, monkeypatch):
    root = _jpeg_folder(tmp_path / "photos", per_class=8, size=(16, 16))
    decoded = []
    real = engine._images.decode_resized
    monkeypatch.setattr(engine._images, "decode_resized", lambda path, shape: decoded.append(path) or real(path, shape))
    for i in range(2):
        decoded.clear()
        train = _load(root, batch_size=8, process_share=(2, i), cache_budget=0, validation_split=0).train
        _epoch_of(train)
        paths = np.asarray(train.reader.paths)
        own = {e: set(paths[train.ids[train.order(e)]]) for e in (0, 1)}
        assert len(own[0]) == len(train) * 4 == 12  # 3 steps of 4: a partial global batch left out
        for ahead in list(train._pending.values()):  # the next epoch's first batches, decoded ahead
            ahead.result()
        assert own[0] <= set(decoded) <= own[0] | own[1]


# ----------------------------------------------------------------------------- memory, errors


def test_a_folder_larger_than_the_budget_is_streamed_in_bounded_memory(tmp_path):
    root = tmp_path / "noise"
    rng = np.random.default_rng(0)
    for c in range(2):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(150):
            Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(root / f"c{c}" / f"{i}.jpg")
    data = _load(root, batch_size=10, cache_budget="1MiB", validation_split=0)
    assert data.info.cache.startswith("none: ")
    train, epoch_size = data.train, 300 * 96 * 128 * 3 * 4  # an epoch's images as float32: 44 MB
    tracemalloc.start()  # numpy's buffers, whatever thread made them (the RSS would count the allocator's caches)
    try:
        for _ in range(2):  # as fit() reads: each batch let go once the step has it
            train.on_epoch_begin()
            for batch in batches(train):
                del batch
            train.on_epoch_end()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    batch_size = epoch_size // 30
    assert held < (train.ahead + 1) * batch_size and peak < epoch_size / 4, (held, peak, epoch_size)  # a few batches
    assert train.reader._filled is None and len(train._pending) <= train.ahead
    assert train.decoded >= 600  # every epoch decoded again: nothing kept


def test_a_folder_within_the_budget_is_decoded_once(tmp_path):
    root = _jpeg_folder(tmp_path / "photos", per_class=4, size=(16, 16))
    train = _load(root, batch_size=4, validation_split=0).train
    first, second = _epoch_of(train), _epoch_of(train)
    assert train.decoded == 12  # the second epoch read the cache
    np.testing.assert_array_equal(np.sort(first, axis=0), np.sort(second, axis=0))


def test_an_image_that_cannot_be_decoded_is_named(tmp_path):
    root = _jpeg_folder(tmp_path / "photos", per_class=4, size=(16, 16))
    cut = root / "c1" / "2.jpg"
    cut.write_bytes(cut.read_bytes()[:200])  # cut short: found before any batch
    with pytest.raises(
        ValueError, match=rf"^Could not decode the image {re.escape(str(cut))}: .*Remove or replace it\.$"
    ):
        _load(root, batch_size=4)
    cut.unlink()
    broken = root / "c0" / "1.png"  # a PNG's first and last bytes around a broken middle: found when read
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + b"IEND\xaeB`\x82")
    data = _load(root, batch_size=4, validation_split=0)
    with pytest.raises(UnreadableImage, match=rf"^Could not decode the image {re.escape(str(broken))}: "):
        _arrays(data.train)


def test_fit_reads_every_batch_of_every_epoch_once_in_order():
    """On this process's backend: Keras's own workers would serve stale batches (see `_pydataset`)."""
    data = _load("digits", batch_size=128, seed=2)
    train, read = data.train, []
    reading = type(train).__getitem__

    def recorded(self, index):
        if self is train:
            read.append((self.epoch, int(index)))
        return reading(self, index)

    type(train).__getitem__ = recorded
    try:
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(train, validation_data=data.val, epochs=3, shuffle=False, verbose=0)
    finally:
        type(train).__getitem__ = reading
    n = len(train)
    assert read[-3 * n :] == [(e, i) for e in range(3) for i in range(n)] and train.epoch == 3
    assert history.history["loss"][-1] < history.history["loss"][0]


# ----------------------------------------------------------------------------- in processes


def _python(code, backend="jax", timeout=240):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("RECIPES_DATA_ENGINE", None)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.process
def test_a_model_learns_from_a_pydataset_on_jax():
    out = _python(
        """
        import keras
        from recipes.datasets import load_dataset
        data = load_dataset("digits", engine="pydataset", batch_size=64)
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
        model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        history = model.fit(data.train, validation_data=data.val, epochs=8, shuffle=False, verbose=0)
        print(keras.backend.backend(), data.train.epoch, *history.history["loss"][::7],
              history.history["val_accuracy"][-1])
        """
    )
    backend, epoch, first, last, accuracy = out.split()
    assert backend == "jax" and epoch == "8"
    assert float(last) < 0.5 * float(first) and float(accuracy) > 0.8


@pytest.mark.process
def test_without_tensorflow_what_needs_it_is_refused_in_one_line(tmp_path):
    (tmp_path / "reviews.csv").write_text("text,label\n" + "a fine film indeed,pos\nawful and dull,neg\n" * 10)
    shards = tmp_path / "photos.shards"
    shards.mkdir()
    (shards / "manifest.json").write_text(json.dumps({"format": "recipes-shards", "version": 1}))
    _jpeg_folder(tmp_path / "photos", per_class=4, size=(16, 16))
    out = _python(
        f"""
        import sys
        sys.modules["tensorflow"] = None  # as if not installed: find_spec finds nothing
        import numpy as np
        from recipes._optional import MissingDependency, has_tensorflow
        from recipes import datasets
        from recipes.datasets import _vocabulary, data_engine, load_dataset, pack
        assert not has_tensorflow()
        print(data_engine()[1])
        print(load_dataset("digits").info.engine, load_dataset({str(tmp_path / "photos")!r}).info.engine)
        refused = [
            lambda: load_dataset("digits", engine="tf.data"),
            lambda: load_dataset({str(tmp_path / "reviews.csv")!r}),
            lambda: load_dataset(({{"x_train": np.array(["a b", "c d"] * 5), "y_train": np.arange(10) % 2}})),
            lambda: load_dataset({str(shards)!r}),
            lambda: pack({str(tmp_path / "photos")!r}, {str(tmp_path / "out")!r}, image_size=(8, 8)),
            lambda: _vocabulary.vectorize(["a text"], _vocabulary.Vocabulary(("a",), 4)),
        ]
        for refuse in refused:
            try:
                refuse()
                print("not refused")
            except MissingDependency as e:
                print(str(e))
        print("tensorflow" in sys.modules and sys.modules["tensorflow"] is not None)
        """
    )
    lines = out.splitlines()
    assert lines[:2] == ["TensorFlow is not installed", "pydataset pydataset"]
    assert lines[-1] == "False" and not (tmp_path / "out").exists()
    refusals = lines[2:-1]
    assert len(refusals) == 6 and all(
        r.endswith("needs TensorFlow, which is not installed: pip install 'keras-recipes[tensorflow]'")
        for r in refusals
    ), refusals
    assert "tf.data data engine (engine='tf.data')" in refusals[0]
    assert "reviews.csv" in refusals[1] and "photos.shards" in refusals[3] and "recipes pack" in refusals[4]
