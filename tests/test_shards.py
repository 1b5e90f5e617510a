"""recipes.datasets._shards: packing a folder into TFRecord shards, resuming, verifying, and reading them."""

import json
import math
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from recipes.datasets import _shards, set_epoch
from recipes.datasets._pipelines import _split

CLASSES, PER_CLASS, TEST_PER_CLASS = ("cat", "dog", "emu"), 8, 2


def _folder(root, per_class=PER_CLASS):
    """Images of one flat value each: the k-th file of the sorted listing is 8k + 4, so a value names its image."""
    for i, name in enumerate(CLASSES):
        for j in range(per_class):
            (root / name).mkdir(parents=True, exist_ok=True)
            pixels = np.full((8, 8, 3), 8 * (i * per_class + j) + 4, dtype=np.uint8)
            tf.io.write_file(str(root / name / f"{j}.png"), tf.io.encode_png(pixels))
    return root


def _ids(x):
    """The listing index of each image (batch, H, W, C) in [0, 255], checked within JPEG's error."""
    ids = np.rint((x.mean(axis=(1, 2, 3)) - 4) / 8).astype(int)
    assert np.abs(x - (8 * ids + 4)[:, None, None, None]).max() <= 3
    return ids


def _read(ds):
    """(ids, labels, number of batches) of a pipeline."""
    batches = list(ds.as_numpy_iterator())
    return _ids(np.concatenate([x for x, _ in batches])), np.concatenate([y for _, y in batches]), len(batches)


def _load(root, **overrides):
    options = dict(
        batch_size=4,
        image_size=None,
        channels=None,
        value_range=(0.0, 255.0),
        validation_split=0.25,
        seed=3,
        labels=True,
        as_sequence=False,
        sequence_length=None,
        return_test=False,
    )
    return _shards.from_shards(root, **{**options, **overrides})


def _pack(src, out, **kwargs):
    return _shards.pack(src, out, image_size=(8, 8), images_per_shard=5, log=lambda line: None, **kwargs)


def _snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A folder with train/ (3 classes x 8) and test/ (3 x 2), packed 5 images a shard."""
    src = tmp_path_factory.mktemp("photos")
    _folder(src / "train")
    _folder(src / "test", per_class=TEST_PER_CLASS)
    out = src.parent / "photos.shards"
    return src, out, _pack(src, out)


def test_pack_holds_every_image_once_in_shards_that_mix_classes(packed):
    src, out, manifest = packed
    assert manifest["class_names"] == list(CLASSES) and manifest["image_size"] == [8, 8] and manifest["channels"] == 3
    assert {k: s["num_examples"] for k, s in manifest["splits"].items()} == {"train": 24, "test": 6}
    names = [s["file"] for s in manifest["shards"]]
    assert names[0] == "train-00000-of-00005.tfrecord" and names[-1] == "test-00001-of-00002.tfrecord"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        names + ["manifest.json", "train-order.npy", "test-order.npy"]
    )  # no progress file, no temporaries
    assert _shards.verify(out) == manifest and _shards.is_shards(out)
    assert not _shards.is_shards(src) and not _shards.is_shards(src / "missing")
    features = {**_shards._FEATURES, "path": tf.io.FixedLenFeature([], tf.string)}
    for split, n, per_class in (("train", 24, PER_CLASS), ("test", 6, TEST_PER_CLASS)):
        files = [str(out / s["file"]) for s in manifest["shards"] if s["split"] == split]
        records = [tf.io.parse_single_example(r, features) for r in tf.data.TFRecordDataset(files)]
        index = np.array([int(r["index"]) for r in records])
        label = np.array([int(r["label"]) for r in records])
        assert sorted(index) == list(range(n))
        np.testing.assert_array_equal(label, index // per_class)
        assert [r["path"].numpy().decode() for r in records] == [
            f"{split}/{CLASSES[k // per_class]}/{k % per_class}.png" for k in index
        ]
        images = np.stack([tf.io.decode_jpeg(r["image"]).numpy() for r in records]).astype(np.float32)
        np.testing.assert_array_equal(_ids(images), index)
        assert any(len(set(label[j : j + 5])) > 1 for j in range(0, n, 5))  # a shard mixes classes


def test_validation_split_is_disjoint_complete_and_drawn_by_index(packed):
    _, out, _ = packed
    train, val, test, info = _load(out, return_test=True)
    assert (info["num_train"], info["num_val"], info["num_test"]) == (18, 6, 6)
    assert info["input_shape"] == (8, 8, 3) and info["class_names"] == CLASSES and info["raw_max"] == 255.0
    assert int(train.cardinality()) == math.ceil(18 / 4) and int(val.cardinality()) == 2
    (train_ids, train_y, _), (val_ids, val_y, _) = _read(train), _read(val)
    np.testing.assert_array_equal(val_y, val_ids // PER_CLASS)
    assert len(train_ids) == 18 and len(val_ids) == 6 and not set(train_ids) & set(val_ids)
    assert sorted(val_ids) == list(_split(24, 0.25, 3, out)[1])
    np.testing.assert_array_equal(train_y, train_ids // PER_CLASS)
    test_ids, test_y, _ = _read(test)
    assert sorted(test_ids) == list(range(6))
    np.testing.assert_array_equal(test_y, test_ids // TEST_PER_CLASS)
    np.testing.assert_array_equal(_read(val)[0], val_ids)  # a fixed order

    _, small, _, info = _load(out, image_size=(4, 4), channels=1, value_range=(0.0, 1.0), splits=("val",))
    x, _ = next(iter(small))
    assert x.shape == (4, 4, 4, 1) and info["input_shape"] == (4, 4, 1) and float(tf.reduce_max(x)) <= 1.0


def test_each_epochs_order_depends_on_the_seed_and_epoch_alone(packed):
    _, out, _ = packed
    train, *_ = _load(out, splits=("train",))
    epochs = [_read(train)[0] for _ in range(3)]
    assert len({e.tobytes() for e in epochs}) == 3
    assert all(sorted(e) == sorted(epochs[0]) for e in epochs)
    keras.utils.set_random_seed(7)  # another process, another global seed
    resumed, *_ = _load(out, splits=("train",))  # another pipeline, as a resumed run builds
    _read(resumed)  # read before, as batch-norm calibration does
    assert set_epoch(resumed, 2) is True
    np.testing.assert_array_equal(_read(resumed)[0], epochs[2])


def test_each_process_reads_its_own_shards_in_as_many_steps(packed):
    _, out, manifest = packed
    order = np.load(out / "train-order.npy")
    shards = [s for s in manifest["shards"] if s["split"] == "train"]
    seen = []
    for process in (0, 1):
        train, _, _, info = _load(out, process_share=(2, process), splits=("train",))
        assert train.process_share == (2, process) and info["batch_size"] == 4
        ids, _, steps = _read(train)
        assert int(train.cardinality()) == steps and len(ids) == 2 * steps
        assert set(ids) <= {int(k) for s in shards[process::2] for k in order[s["start"] : s["stop"]]}
        seen.append((set(ids), steps))
    assert not seen[0][0] & seen[1][0] and seen[0][1] == seen[1][1]
    with pytest.raises(ValueError, match=r"5 training shards, fewer than the 8 processes .*process_share=\(8, 0\)"):
        _load(out, batch_size=8, process_share=(8, 0))


def test_pack_refuses_a_finished_pack_and_a_foreign_folder(packed, tmp_path):
    src, out, _ = packed
    before = _snapshot(out)
    with pytest.raises(ValueError, match=r"holds a finished pack already; choose another --out") as e:
        _pack(src, out)
    assert "\n" not in str(e.value) and _snapshot(out) == before
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    before = _snapshot(foreign)
    with pytest.raises(ValueError, match=r"is not empty and holds no partial pack"):
        _pack(src, foreign)
    assert _snapshot(foreign) == before


def test_a_killed_pack_resumes_to_the_shards_of_an_uninterrupted_one(tmp_path, monkeypatch):
    src = _folder(tmp_path / "src")
    whole = _pack(src, tmp_path / "whole")
    with pytest.raises(ValueError, match=r"has no test split: pack a folder holding train/ and test/"):
        _load(tmp_path / "whole", return_test=True)
    write, calls = _shards._write_shard, []

    def dies_at_the_third(path, examples):
        calls.append(path.name)
        if len(calls) == 3:
            next(examples)
            raise KeyboardInterrupt  # killed while writing
        write(path, examples)

    monkeypatch.setattr(_shards, "_write_shard", dies_at_the_third)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        _pack(src, out)
    assert not (out / "manifest.json").exists()
    assert sorted(json.loads((out / "progress.json").read_text())["shards"]) == calls[:2]
    (out / ".train-00002-of-00005.abcd_123.tmp.tfrecord").write_bytes(b"half")  # what SIGKILL leaves
    with pytest.raises(ValueError, match=r"partial pack made with other arguments \(quality=95 there, 80 here\)"):
        _pack(src, out, quality=80)

    calls.clear()
    monkeypatch.setattr(
        _shards, "_write_shard", lambda path, examples: calls.append(path.name) or write(path, examples)
    )
    assert _pack(src, out)["shards"] == whole["shards"]
    assert calls == [f"train-0000{j}-of-00005.tfrecord" for j in (2, 3, 4)]
    assert not [p for p in out.iterdir() if ".tmp" in p.name or p.name == "progress.json"]
    _shards.verify(out)


def test_verify_names_a_shard_with_a_flipped_byte(packed, tmp_path):
    _, out, _ = packed
    copy = shutil.copytree(out, tmp_path / "copy")
    shard = copy / "train-00001-of-00005.tfrecord"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 1
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"train-00001-of-00005\.tfrecord is corrupt") as e:
        _shards.verify(copy)
    assert "\n" not in str(e.value)


def test_an_undecodable_image_is_named_and_the_shards_before_it_kept(tmp_path, monkeypatch):
    src = _folder(tmp_path / "src")
    good = (src / "dog" / "3.png").read_bytes()
    (src / "dog" / "3.png").write_bytes(b"not an image at all")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"^Could not decode the image .*dog/3\.png: .*Remove or replace it\.$") as e:
        _pack(src, out)
    assert "\n" not in str(e.value) and e.value.__suppress_context__
    failing = int(np.flatnonzero(np.load(out / "train-order.npy") == PER_CLASS + 3)[0]) // 5
    kept = sorted(json.loads((out / "progress.json").read_text())["shards"])
    assert kept == [f"train-0000{j}-of-00005.tfrecord" for j in range(failing)]

    (src / "dog" / "3.png").write_bytes(good)
    write, calls = _shards._write_shard, []
    monkeypatch.setattr(
        _shards, "_write_shard", lambda path, examples: calls.append(path.name) or write(path, examples)
    )
    _pack(src, out)
    assert len(calls) == 5 - failing


def test_gray_gif_bmp_and_rgba_images_pack_to_one_channel(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    for name, value in (("a", 60), ("b", 200)):
        (tmp_path / "src" / name).mkdir(parents=True)
        for file, shape in (("0.png", (9, 9)), ("1.gif", (9, 9, 3)), ("2.bmp", (9, 9, 3)), ("3.png", (9, 9, 4))):
            Image.fromarray(np.full(shape, value, np.uint8)).save(tmp_path / "src" / name / file)
    manifest = _pack(tmp_path / "src", tmp_path / "out")  # the first image is gray: one channel
    assert manifest["channels"] == 1 and manifest["splits"]["train"]["num_examples"] == 8
    train, _, _, info = _load(tmp_path / "out", validation_split=0, batch_size=8, labels=False, image_size=(4, 4))
    x = next(iter(train)).numpy()
    assert x.shape == (8, 4, 4, 1) and info["input_shape"] == (4, 4, 1) and info["num_val"] == 0
    assert sorted(np.rint(x.mean(axis=(1, 2, 3)))) == [60.0] * 4 + [200.0] * 4


@pytest.mark.process
def test_a_pack_killed_in_another_process_resumes_to_the_same_shards(tmp_path):
    """A real SIGKILL, in a process with another hash seed (protobuf's map order once varied with it)."""
    src = _folder(tmp_path / "src")
    code = (
        "import sys, time; from recipes.datasets import _shards\n"
        "def log(line):\n"
        "    print(line, flush=True)\n"
        "    if '00001-of' in line: time.sleep(60)\n"
        "_shards.pack(sys.argv[1], sys.argv[2], image_size=(8, 8), images_per_shard=5, log=log)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(pathlib.Path(__file__).parents[1])}
    out = tmp_path / "out"
    with subprocess.Popen(
        [sys.executable, "-c", code, str(src), str(out)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    ) as proc:
        for line in proc.stdout:
            if b"00001-of" in line:
                proc.send_signal(signal.SIGKILL)
                break
    assert proc.returncode == -signal.SIGKILL and not (out / "manifest.json").exists()
    assert _pack(src, out)["shards"] == _pack(src, tmp_path / "whole")["shards"]
