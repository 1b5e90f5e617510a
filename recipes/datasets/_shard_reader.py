"""Reading a pack of shards written by `_shards.pack`: its manifest (`is_shards`, `_read_manifest`)
and the pipelines `from_shards` builds, streaming the shards (memory bounded whatever their size),
each training pass in an order that is a function of the seed and the pass alone; each process
of a job reads its own shards. Reading the manifest needs no TensorFlow; the pipelines import it.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np

from recipes.datasets import _files
from recipes.datasets import _pipelines as p

FORMAT, VERSION = "recipes-shards", 1
MANIFEST = "manifest.json"
SHUFFLE_BUFFER = 2048  # records, held encoded (~100 MB at 224x224): decoding comes after
CYCLE_LENGTH = 4  # shards a training pass reads at once


def _features():
    """What a record holds, as `tf.io.parse_single_example` reads it."""
    import tensorflow as tf

    return {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "index": tf.io.FixedLenFeature([], tf.int64),
    }


def is_shards(path) -> bool:
    """Whether `path` is a folder holding a finished pack of `pack` (its `manifest.json`)."""
    try:
        return bool(_read_manifest(pathlib.Path(path).expanduser()))
    except (ValueError, OSError, TypeError):
        return False


def from_shards(
    root,
    *,
    batch_size,
    image_size,
    channels,
    value_range,
    validation_split,
    seed,
    labels,
    as_sequence,
    sequence_length,
    return_test,
    splits=p.SPLITS,
    process_share=None,
    cache_budget=None,
    first=None,
):
    """A pack of `pack` -> `(train, val, test, info fields)`, as `_files.from_folder`.

    The validation split is drawn from the training records by their `index` (`_split`, as
    for a folder) and filtered in the pipeline. Training pass `e` reads the shards in an
    order drawn with `(seed, e)`, `CYCLE_LENGTH` at a time interleaved, through a buffer
    of `SHUFFLE_BUFFER` encoded records shuffled with a seed of `seed` and `e`, then
    decodes, batches and scales; the pass number is a variable that `set_epoch` sets.
    `val` and `test` are read in shard order. An `image_size` or `channels` other than the
    packed ones is converted per batch (a resize of the packed images).

    Args:
        root: the folder `pack` wrote.
        process_share: `(num_processes, process_id)`: this process's training pipeline
            reads shards `process_id`, `process_id + num_processes`, ... in batches of
            `batch_size // num_processes`, as many a pass as every process has (the
            examples beyond are left out). `val` and `test` are whole. Defaults to `None`.
        cache_budget, first: unused (shards are streamed; the manifest has the shape).
        others: as `load_dataset`.

    Raises:
        ValueError: (one line) for a folder that holds no finished pack, `return_test=True`
            without a test split, or a `process_share` the pack or batch size cannot serve.
    """
    import tensorflow as tf

    root = pathlib.Path(root).expanduser()
    options = dict(image_size=image_size, channels=channels, as_sequence=as_sequence, sequence_length=sequence_length)
    p._check_options(root.name, "image", **options)
    manifest = _read_manifest(root)
    class_names = tuple(manifest["class_names"])
    if labels:
        p._check_classes(root, class_names, folders=True)
    if return_test is True and "test" not in manifest["splits"]:
        raise ValueError(
            f"{root} has no test split: pack a folder holding train/ and test/. Received: return_test=True"
        )
    n = manifest["splits"]["train"]["num_examples"]
    train_idx, val_idx = p._split(n, validation_split, seed, root)
    is_val = np.zeros(n, bool)
    if val_idx is not None:
        is_val[val_idx] = True
    batch_size = p._batch_size(batch_size, len(train_idx))
    process_share = p.check_share(process_share, batch_size)
    packed = (*manifest["image_size"], manifest["channels"])
    out_channels = channels or packed[2]
    h, w = image_size or packed[:2]
    if (h, w, out_channels) == packed:  # as packed: one multiply and one add per image
        transform = _files.scaler(value_range, as_sequence)
    else:
        transform = p._image_transform(
            255.0, value_range, packed[2], image_size=(h, w), channels=out_channels, as_sequence=as_sequence
        )
    files = {k: [str(root / s["file"]) for s in manifest["shards"] if s["split"] == k] for k in manifest["splits"]}
    lookup = tf.constant(is_val)
    features = _features()

    @p._graph_as_written
    def parse(record):
        return tf.io.parse_single_example(record, features)

    def held_out(in_val):
        return p._graph_as_written(lambda r: tf.equal(tf.gather(lookup, r["index"]), in_val))

    @p._graph_as_written
    def decode(r):  # decoded and scaled image by image, in the parallel map
        x = tf.cast(tf.ensure_shape(tf.io.decode_jpeg(r["image"], channels=packed[2]), packed), tf.float32)
        return (transform(x), tf.cast(r["label"], tf.int32)) if labels else transform(x)

    def batches(records, count, batch, drop=False):
        ds = records.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.apply(tf.data.experimental.assert_cardinality(count)).batch(batch, drop_remainder=drop)

    def in_order(names, in_val=None):
        ds = tf.data.TFRecordDataset(names).map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return (ds if in_val is None else ds.filter(held_out(in_val))).prefetch(tf.data.AUTOTUNE)

    train = val = test = None
    if "train" in splits:
        records, count, batch, steps, counter = _training(
            root, manifest, files["train"], is_val, batch_size, seed, process_share, parse, held_out
        )
        train = batches(records, count, batch, drop=process_share is not None).take(steps)
        train = p.with_epoch_counter(train.prefetch(tf.data.AUTOTUNE), counter)
        if process_share is not None:
            train.process_share = process_share
    if val_idx is not None and "val" in splits:
        val = batches(in_order(files["train"], True), len(val_idx), batch_size).prefetch(tf.data.AUTOTUNE)
    num_test = manifest["splits"].get("test", {}).get("num_examples", 0)
    if return_test and num_test and "test" in splits:
        test = batches(in_order(files["test"]), num_test, batch_size).prefetch(tf.data.AUTOTUNE)
    for ds in (train, val, test):
        if ds is not None:
            ds.shards_root = root  # where a record that fails to read came from
    info = _files.image_info(
        root,
        (h, w, out_channels),
        as_sequence=as_sequence,
        class_names=class_names,
        value_range=value_range,
        batch_size=batch_size,
        train_idx=train_idx,
        val_idx=val_idx,
        num_test=num_test,
        cache="none: packed shards are streamed and decoded every epoch",
    )
    return train, val, test, info


def _training(root, manifest, files, is_val, batch_size, seed, process_share, parse, held_out):
    """The training records, a pass at a time, and how to batch them:
    `(records, count, batch, steps, counter)`."""
    import tensorflow as tf

    processes, process_id = process_share or (1, 0)
    if len(files) < processes:
        raise ValueError(
            f"{root} has {len(files)} training shards, fewer than the {processes} processes that would each "
            f"read their own: pack it with a smaller images_per_shard. Received: process_share={process_share!r}"
        )
    batch, count = batch_size // processes, int((~is_val).sum())
    steps = math.ceil(count / batch)
    if process_share is not None:
        order = np.load(root / manifest["splits"]["train"]["order"], allow_pickle=False)
        shards = [s for s in manifest["shards"] if s["split"] == "train"]
        counts = [
            sum(int((~is_val[order[s["start"] : s["stop"]]]).sum()) for s in shards[q::processes])
            for q in range(processes)
        ]
        count, steps = counts[process_id], min(counts) // batch  # every process steps together
        if steps == 0:
            raise ValueError(f"{root}: a process has fewer than {batch} training examples. Received: {process_share=}")
        files = files[process_id::processes]
    names = tf.constant(files)

    def one_pass(epoch):
        tf.random.set_seed(1)  # as in `_pipelines.reshuffled`: the op seeds alone decide
        shard_order = tf.random.experimental.stateless_shuffle(names, tf.stack([tf.constant(seed, tf.int64), epoch]))
        records = tf.data.Dataset.from_tensor_slices(shard_order).interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(CYCLE_LENGTH, len(files)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        records = records.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).filter(held_out(False))
        op_seed = (tf.constant(seed, tf.int64) * 1_000_003 + epoch) % (2**31 - 1)
        return records.shuffle(SHUFFLE_BUFFER, seed=op_seed, reshuffle_each_iteration=False)

    passes, counter = p.by_epoch(one_pass)
    return passes, count, batch, steps, counter


def _read_manifest(root):
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{root} holds no finished pack of shards: {path} is missing (pack writes it last).") from None
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} cannot be read: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not the manifest of a pack of recipes shards.")
    if manifest.get("version") != VERSION:
        raise ValueError(f"{path} is of version {manifest.get('version')!r}; this recipes reads {VERSION}. Pack again.")
    return manifest
