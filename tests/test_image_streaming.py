"""Image folders streamed with bounded memory: the cache plan, exact epoch orders whatever is
cached, a job's processes decoding disjoint shares, unreadable files named in one line."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf

from recipes.config import ConfigError, resolve
from recipes.datasets import load_dataset, parse_bytes, set_epoch


def _folder(root, classes=3, per_class=10, size=(12, 10), fmt="png"):
    """Images whose every pixel says which file they are: value 8 * class + index."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.full((*size, 3), 8 * c + i, np.uint8)
            if fmt == "jpg":
                pixels = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
            encode = tf.io.encode_png if fmt == "png" else tf.io.encode_jpeg
            tf.io.write_file(str(root / f"c{c}" / f"{i}.{fmt}"), encode(pixels))
    return root


def _epoch(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_a_folder_larger_than_the_budget_is_streamed_not_cached(tmp_path):
    root = _folder(tmp_path / "imgs")  # 30 images of 12x10x3: 10,800 bytes decoded
    train, val, _, info = load_dataset(root, batch_size=8, validation_split=0.2, cache_budget=10_000)
    assert info.cache.startswith(
        "none: 30 images of 12x10x3 uint8 take 10.5 KiB, more than the cache budget of 9.8 KiB"
    )
    assert train.files.reader.plan.kind == "none" and train.files.reader._filled is None  # nothing to fill
    _epoch(train), _epoch(train)
    assert int(train.decoded.numpy()) == 2 * 24  # every epoch decodes again

    train, val, _, info = load_dataset(root, batch_size=8, validation_split=0.2, cache_budget="11KiB")
    assert info.cache.startswith("memory: 30 images") and train.files.reader.plan.kind == "memory"
    first, _ = _epoch(train), _epoch(val)
    assert int(train.decoded.numpy()) == 30
    second = _epoch(train)
    assert int(train.decoded.numpy()) == 30  # the second epoch reads the cache
    assert not np.array_equal(first[1], second[1])  # in another order
    np.testing.assert_array_equal(np.sort(first[1]), np.sort(second[1]))


def test_every_epoch_reads_the_same_whether_streamed_cached_or_on_disk(tmp_path):
    root = _folder(tmp_path / "imgs", size=(20, 16))
    kinds = {
        "none": dict(cache_budget=0),
        "memory": dict(),
        "disk": dict(cache_budget=0, disk_cache=tmp_path / "cache"),
    }
    epochs = {}
    for kind, options in kinds.items():
        train, _, _, info = load_dataset(root, batch_size=4, image_size=(8, 8), seed=3, **options)
        assert info.cache.startswith(kind)
        epochs[kind] = [_epoch(train) for _ in range(3)]
        # a resumed run: a new pipeline (another process) set to epoch 2 reads what the first read
        resumed, *_ = load_dataset(root, batch_size=4, image_size=(8, 8), seed=3, **options)
        assert set_epoch(resumed, 2)
        x, y = _epoch(resumed)
        np.testing.assert_array_equal(x, epochs[kind][2][0])
        np.testing.assert_array_equal(y, epochs[kind][2][1])
    for kind in ("memory", "disk"):
        for (x, y), (x0, y0) in zip(epochs[kind], epochs["none"]):
            np.testing.assert_array_equal(y, y0)
            np.testing.assert_array_equal(x, x0)
    assert x.shape == (27, 8, 8, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1


def test_the_disk_cache_is_filled_once_and_read_by_the_next_run(tmp_path):
    root = _folder(tmp_path / "imgs")
    options = dict(batch_size=8, validation_split=0, cache_budget=0, disk_cache=tmp_path / "cache")
    train, _, _, info = load_dataset(root, **options)
    folder = pathlib.Path(train.files.reader.plan.folder)
    assert info.cache == (
        f"disk ({folder}): 30 images of 12x10x3 uint8 take 10.5 KiB, the cache budget is 0; decoded once, "
        f"then read from disk"
    )
    first = _epoch(train)
    assert int(train.decoded.numpy()) == 30 and len(list(folder.iterdir())) == 30
    (folder / "4.u8t").write_bytes(b"torn")  # a file cut short is decoded again, not read
    again, *_ = load_dataset(root, **options)
    set_epoch(again, 0)
    np.testing.assert_array_equal(_epoch(again)[0], first[0])
    assert int(again.decoded.numpy()) == 1
    # another size is another sub-folder: never read at the wrong size
    other, _, _, info = load_dataset(root, image_size=(6, 6), **options)
    assert pathlib.Path(other.files.reader.plan.folder) != folder


def test_a_jobs_processes_decode_disjoint_shares_of_every_global_batch(tmp_path):
    root = _folder(tmp_path / "imgs", per_class=11)  # 33 images: 4 global batches of 8, 1 left out
    whole, *_ = load_dataset(root, batch_size=8, validation_split=0, seed=1, cache_budget=0)
    shares = [
        load_dataset(root, batch_size=8, validation_split=0, seed=1, cache_budget=0, process_share=(2, i))[0]
        for i in (0, 1)
    ]
    for epoch in range(2):
        x, _ = _epoch(whole)
        parts = [_epoch(ds)[0] for ds in shares]
        assert [int(ds.cardinality()) for ds in shares] == [4, 4]
        assert [p.shape[0] for p in parts] == [16, 16]
        for step in range(4):  # process i holds the i-th half of every global batch
            np.testing.assert_array_equal(parts[0][4 * step : 4 * step + 4], x[8 * step : 8 * step + 4])
            np.testing.assert_array_equal(parts[1][4 * step : 4 * step + 4], x[8 * step + 4 : 8 * step + 8])
        # each image decoded once per epoch between the two processes
        assert sum(int(ds.decoded.numpy()) for ds in shares) == 32 * (epoch + 1)
    assert shares[0].process_share == (2, 0)
    with pytest.raises(ValueError, match=r"split evenly among the 3 processes\. Received: batch_size=8"):
        load_dataset(root, batch_size=8, process_share=(3, 0))
    with pytest.raises(ValueError, match=r"process_share must be .*Received: process_share=\(2, 2\)"):
        load_dataset(root, batch_size=8, process_share=(2, 2))


def test_arrays_follow_the_budget_too(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (40, 6, 6, 3), dtype=np.uint8)
    data = (x, np.arange(40) % 2)
    *_, info = load_dataset(data, batch_size=8)
    assert info.cache.startswith("memory: 16.9 KiB of float32 images, within the cache budget of 2 GiB")
    train, _, _, info = load_dataset(data, batch_size=8, cache_budget="1KiB", process_share=(2, 1))
    assert info.cache.startswith("none: 16.9 KiB of float32 images, more than the cache budget of 1 KiB")
    assert int(train.cardinality()) == 36 // 8 and next(iter(train))[0].shape == (4, 6, 6, 3)


def test_cache_budget_values():
    assert parse_bytes("cache_budget", "2GiB") == 2 * 1024**3
    assert parse_bytes("cache_budget", "512 MB") == 512 * 1000**2
    assert parse_bytes("cache_budget", 0) == 0 and parse_bytes("cache_budget", "1.5k") == 1536
    for bad in ("lots", -1, "2 parsecs", True):
        with pytest.raises((TypeError, ValueError), match=r"cache_budget must be a size such as 2GiB, 512MiB or 0\."):
            parse_bytes("cache_budget", bad)
    with pytest.raises(ConfigError, match=r"^cache_budget must be a size .* Received: cache_budget='big'$"):
        resolve("mlp", sets={"cache_budget": "big"})
    assert resolve("mlp", sets={"cache_budget": "64MiB", "cache": "/tmp/c"})["cache"] == "/tmp/c"


def test_a_truncated_jpeg_is_named_up_front_with_nothing_from_libjpeg(tmp_path, capfd):
    root = _folder(tmp_path / "imgs", fmt="jpg")
    bad = root / "c1" / "3.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    capfd.readouterr()
    with pytest.raises(ValueError) as e:
        load_dataset(root)
    assert str(e.value).startswith(f"Could not decode the image {bad}: ") and "\n" not in str(e.value)
    assert capfd.readouterr().err == ""
    # bytes after the end-of-image marker are allowed: such a file is decoded, and loads
    bad.write_bytes((root / "c1" / "4.jpg").read_bytes() + b"\0" * 2000)
    assert load_dataset(root, validation_split=0)[3].num_train == 30


def test_a_file_that_fails_mid_epoch_is_named_and_the_run_resumes_once_it_is_removed(recipes_main, tmp_path):
    root = _folder(tmp_path / "imgs", per_class=16)
    bad = root / "c2" / "9.png"
    data = bytearray(bad.read_bytes())
    data[45:60] = b"\x07" * 15  # inside the image data: its start and end look whole
    bad.write_bytes(bytes(data))
    run = tmp_path / "run"
    args = ["train", "mlp", "--dataset", root, "--epochs", 2, "--run-dir", run, "--quiet", "--set", "hidden_units=[8]"]
    done = recipes_main(*args)
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"recipes train: error: Could not decode the image {bad}: Invalid PNG data, size {len(data)}. Remove or "
        f"replace it. Training stopped in epoch 1; the epochs before it are kept: resume with "
        f"`recipes train --resume {run}`."
    ]
    bad.unlink()
    resumed = recipes_main("train", "--resume", run, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (run / "metrics.json").exists()


def test_a_damaged_shard_met_in_training_is_one_line_that_says_how_to_find_it(recipes_main, tmp_path):
    from recipes.datasets import pack

    shards = tmp_path / "imgs.shards"
    pack(_folder(tmp_path / "imgs", per_class=16), shards, image_size=(8, 8), images_per_shard=16, log=lambda _: None)
    damaged = shards / "train-00001-of-00003.tfrecord"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    run = tmp_path / "run"
    args = ["train", "mlp", "--dataset", shards, "--epochs", 1, "--run-dir", run, "--quiet"]
    args += ["--set", "hidden_units=[8]"]
    done = recipes_main(*args)
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"recipes train: error: A shard of {shards} cannot be read (")
    assert f"`recipes pack --verify --out {shards}` names it" in lines[0]
