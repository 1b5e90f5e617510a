"""The tf.data side of `load_dataset`: arrays or an image folder -> batched pipelines.

Built the way the TensorFlow data-performance guide says: images are decoded, resized
and scaled once and cached (in memory, up to CACHE_BYTES) before the shuffle; the
training pipeline is shuffled with a seed and reshuffled on every epoch, each epoch's
order a function of the seed and the epoch alone (`reshuffled`), so a resumed run reads
what an uninterrupted one would; maps are vectorised (one call per batch) and parallel;
every pipeline ends in prefetch.
Each builder returns its datasets and the fields of a `DatasetInfo`.
"""

from __future__ import annotations

import math
import re

import keras
import numpy as np
import tensorflow as tf

from recipes import _checks as c

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what image_dataset_from_directory reads
# Images are transformed once and cached (float32) when they take at most this much memory;
# larger ones are transformed batch by batch on every epoch instead.
CACHE_BYTES = 2 * 1024**3
_CHUNK = 1024  # images transformed at once when filling the cache
# batch_size="auto": about this many steps an epoch, in a power of two from the smallest to the largest
AUTO_STEPS, AUTO_BATCH_RANGE = 20, (32, 128)
# The functions the pipelines map are straight-line TensorFlow (their `if`s test Python
# values): AutoGraph's conversion of them cost 0.15-0.4 s of a run's start, for nothing.
_graph_as_written = tf.autograph.experimental.do_not_convert


def not_applicable(arg, value, name, kind):
    hint = " (as_sequence=True reads images as sequences)" if kind == "image" else ""
    raise ValueError(f"{arg} does not apply to {name!r}, which holds {kind} data{hint}. Received: {arg}={value!r}")


def _check_options(name, kind, *, image_size, channels, as_sequence, sequence_length):
    if kind != "image":
        for arg, value in (("image_size", image_size), ("channels", channels), ("as_sequence", as_sequence or None)):
            if value is not None:
                not_applicable(arg, value, name, kind)
    elif sequence_length is not None:
        not_applicable("sequence_length", sequence_length, name, kind)


def _split(n, fraction, seed, source):
    """Train and validation indices (each in file order), the validation ones drawn with `seed`."""
    if fraction == 0:
        return np.arange(n), None
    n_val = int(round(n * fraction))
    if not 0 < n_val < n:
        raise ValueError(
            f"validation_split={fraction} of the {n} training examples of {source} "
            f"leaves {'no validation' if n_val == 0 else 'no training'} examples."
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _image_transform(raw_max, value_range, native_channels, *, image_size, channels, as_sequence):
    """Returns a function mapping raw images (a batch or one: (..., H, W, C), values in
    [0, raw_max]) to float32 images in `value_range`, resized, with `channels` channels."""
    low, high = value_range
    scale = (high - low) / raw_max

    @_graph_as_written
    def fn(x):
        x = tf.cast(x, tf.float32)
        if channels != native_channels:
            x = tf.image.grayscale_to_rgb(x) if channels == 3 else tf.image.rgb_to_grayscale(x)
        if image_size is not None:
            x = tf.image.resize(x, image_size)
        x = tf.clip_by_value(x * scale + low, low, high)
        if as_sequence:  # rows become time steps: (..., H, W, C) -> (..., H, W*C)
            h, w, ch = x.shape[-3:]
            x = tf.reshape(x, [-1, h, w * ch] if x.shape.rank == 4 else [h, w * ch])
        return x

    return fn


def reshuffled(ds, n: int, seed: int):
    """`ds` (of `n` elements) in a new order on every pass: pass `e` (0, 1, ...) is
    shuffled with a seed made of `seed` and `e`, whatever process reads it.

    `tf.data`'s own `reshuffle_each_iteration` draws each order from the one before, so
    a new process starts again at the first order: a run resumed at epoch 5 would read
    epoch 1's order. Here the pass number lives in a variable that each pass advances,
    and that `set_epoch` sets (a resumed run sets it to the epoch it resumes at).

    Returns:
        `(dataset, counter)`: the counter is the `tf.Variable` holding the next pass's number.
    """
    counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")

    @_graph_as_written
    def next_pass(_):
        return counter.assign_add(1) - 1

    @_graph_as_written
    def shuffled(epoch):
        # Traced in a graph of its own: its seed (set here, not the process's global one)
        # makes the order depend on `seed` and `epoch` alone. TensorFlow also fails to
        # take a tensor seed while the global seed is 0 (it tests `(0, 0) == seeds`).
        tf.random.set_seed(1)
        op_seed = (tf.constant(seed, tf.int64) * 1_000_003 + epoch) % (2**31 - 1)
        return ds.shuffle(n, seed=op_seed, reshuffle_each_iteration=False)

    passes = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(next_pass).flat_map(shuffled)
    return passes.apply(tf.data.experimental.assert_cardinality(n)), counter


def with_epoch_counter(ds, counter):
    """Attaches `counter` (from `reshuffled`) to the final pipeline, for `set_epoch`."""
    ds.data_epoch = counter
    return ds


def auto_batch_size(num_train: int) -> int:
    """The batch size `batch_size="auto"` gives `num_train` training examples: the power of two
    nearest to `num_train / 20` (about 20 steps an epoch), from 32 to 128. Small data sets
    learn more per second from more steps an epoch, larger ones from bigger batches: the MLP
    on 1,294 digits reached 0.965 sooner at 64 than at 32 or 128, on 5,400 32x32 shapes
    twice as soon at 128 as at 32 (`scripts/bench/time_to_accuracy.py`)."""
    num_train = c.check_int("num_train", num_train, minimum=0)
    low, high = AUTO_BATCH_RANGE
    nearest = 2 ** round(math.log2(max(num_train, 1) / AUTO_STEPS))
    return min(high, max(low, nearest))


def _batch_size(batch_size, num_train):
    return auto_batch_size(num_train) if batch_size == "auto" else batch_size


def _pipeline(x, y, transform, *, batch_size, seed, cache):
    """`x` (and labels `y`) in memory -> batches. `seed=None`: no shuffling."""
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))

    @_graph_as_written
    def with_labels(x, y):
        return transform(x), y

    fn = None if transform is None else (transform if y is None else with_labels)
    if cache and fn is not None:
        # transform once, in big vectorised chunks, and keep the result in memory
        ds = ds.batch(_CHUNK).map(fn, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(x))).cache()  # unbatch forgets it
    counter = None
    if seed is not None:
        ds, counter = reshuffled(ds, len(x), seed)
    ds = ds.batch(batch_size)
    if fn is not None and not cache:
        ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE)  # vectorised: one call per batch
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds if counter is None else with_epoch_counter(ds, counter)


def _reshape_table(x, sequence_length, source):
    if sequence_length is None:
        return x
    features = x.shape[1]
    if features % sequence_length:
        raise ValueError(
            f"{source}: the {features} features cannot be split into sequence_length="
            f"{sequence_length} steps. Received: sequence_length={sequence_length}"
        )
    return x.reshape(len(x), sequence_length, features // sequence_length)


SPLITS = ("train", "val", "test")


def from_arrays(
    a,
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
    splits=SPLITS,
):
    """An `_readers.Arrays` -> `(train, val, test, info fields)`; only the pipelines named in
    `splits` are built (the others are `None`); `test` is `None` unless `return_test`."""
    _check_options(
        a.name,
        a.kind,
        image_size=image_size,
        channels=channels,
        as_sequence=as_sequence,
        sequence_length=sequence_length,
    )
    if return_test is True and a.x_test is None:
        raise ValueError(f"{a.source} has no test split (x_test, y_test). Received: return_test=True")
    if labels and a.y_train is None:
        raise ValueError(f"{a.source} has no labels (y_train). Pass labels=False to read images alone.")
    if labels:
        _check_classes(a.source, a.class_names)
    x_train, x_test = a.x_train, a.x_test
    transform, info_range = None, None
    if a.kind == "image":
        native = x_train.shape[-1]
        h, w = image_size or x_train.shape[1:3]
        out_channels = channels or native
        input_shape = (h, w * out_channels) if as_sequence else (h, w, out_channels)
        transform = _image_transform(
            a.raw_max, value_range, native, image_size=image_size, channels=out_channels, as_sequence=as_sequence
        )
        info_range = value_range
    elif a.vocab_size is not None:  # token ids
        if sequence_length is not None and sequence_length != x_train.shape[1]:

            def pad(x):  # like keras.datasets.imdb: pad and truncate at the front
                return (
                    None
                    if x is None
                    else keras.utils.pad_sequences(
                        x, maxlen=sequence_length, dtype="int32", padding="pre", truncating="pre"
                    )
                )

            x_train, x_test = pad(x_train), pad(x_test)
        input_shape = x_train.shape[1:]
    else:
        x_train = _reshape_table(x_train.astype(np.float32), sequence_length, a.source)
        if x_test is not None:
            x_test = _reshape_table(x_test.astype(np.float32), sequence_length, a.source)
        input_shape = x_train.shape[1:]
    kind = "sequence" if a.kind == "sequence" or as_sequence or sequence_length else a.kind

    train_idx, val_idx = _split(len(x_train), validation_split, seed, a.source)
    batch_size = _batch_size(batch_size, len(train_idx))
    y_train, y_test = (a.y_train, a.y_test) if labels else (None, None)
    # Caching the float32 images costs 4x the memory of uint8 but makes an epoch a plain
    # cache -> shuffle -> batch, the cheapest pipeline (see scripts/bench/input_pipeline.py).
    cache = transform is not None and len(x_train) * 4 * int(np.prod(input_shape)) <= CACHE_BYTES

    def build(x, y, idx, shuffle_seed):
        if idx is not None:
            x, y = x[idx], None if y is None else y[idx]
        return _pipeline(x, y, transform, batch_size=batch_size, seed=shuffle_seed, cache=cache)

    train = build(x_train, y_train, train_idx, seed) if "train" in splits else None
    val = None if val_idx is None or "val" not in splits else build(x_train, y_train, val_idx, None)
    test = None if x_test is None or not return_test or "test" not in splits else build(x_test, y_test, None, None)
    info = dict(
        name=a.name,
        kind=kind,
        input_shape=tuple(int(d) for d in input_shape),
        num_classes=a.num_classes,
        class_names=a.class_names,
        value_range=info_range,
        num_train=len(train_idx),
        batch_size=batch_size,
        num_val=0 if val_idx is None else len(val_idx),
        num_test=0 if x_test is None else len(x_test),
        vocab_size=a.vocab_size,
        sequence_length=input_shape[0] if kind == "sequence" else None,
        source=a.source,
        raw_max=a.raw_max,
    )
    return train, val, test, info


def from_folder(
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
    splits=SPLITS,
    first=None,
):
    """A folder of class sub-folders of images, through image_dataset_from_directory ->
    `(train, val, test, info fields)`, as `from_arrays`. `first`: `_first_image` of its
    training folder, when the caller already has it."""
    _check_options(
        root.name,
        "image",
        image_size=image_size,
        channels=channels,
        as_sequence=as_sequence,
        sequence_length=sequence_length,
    )
    subfolders = sorted(p.name for p in root.iterdir() if p.is_dir())
    split_layout = subfolders == ["test", "train"]
    train_root = root / "train" if split_layout else root
    if return_test is True and not split_layout:
        raise ValueError(
            f"{root} has no test split: lay it out as {root}/train/<class>/ and "
            f"{root}/test/<class>/. Received: return_test=True"
        )
    first, count = first or _first_image(train_root)
    if validation_split and int(validation_split * count) == 0:  # Keras would say "No training images"
        raise ValueError(
            f"validation_split={validation_split} of the {count} training examples of "
            f"{train_root} leaves no validation examples."
        )
    native = 1 if first.shape[-1] < 3 else 3  # gray+alpha -> gray, RGBA -> RGB
    out_channels = channels or native
    size = image_size or tuple(int(d) for d in first.shape[:2])

    def read(folder, **kwargs):
        return keras.utils.image_dataset_from_directory(
            folder,
            labels="inferred",
            label_mode="int",
            batch_size=None,
            image_size=size,
            color_mode="rgb" if out_channels == 3 else "grayscale",
            seed=seed,
            verbose=False,
            **kwargs,
        )

    if validation_split:
        train, val = read(train_root, shuffle=True, validation_split=validation_split, subset="both")
    else:
        train, val = read(train_root, shuffle=True), None
    class_names = tuple(train.class_names)
    if labels:
        _check_classes(root, class_names, folders=True)
    test = read(root / "test", shuffle=False, class_names=list(class_names)) if return_test and split_layout else None
    counts = [int(ds.cardinality()) if ds is not None else 0 for ds in (train, val, test)]
    batch_size = _batch_size(batch_size, counts[0])
    train, val, test = [ds if name in splits else None for name, ds in zip(SPLITS, (train, val, test))]
    # every file now, not at the first epoch, where TensorFlow's error names none
    _check_images([f for ds in (train, val, test) if ds is not None for f in ds.file_paths], out_channels)

    transform = _image_transform(
        255.0, value_range, out_channels, image_size=None, channels=out_channels, as_sequence=as_sequence
    )

    @_graph_as_written
    def with_labels(x, y):
        return transform(x), y

    @_graph_as_written
    def without_labels(x, y):
        return transform(x)

    fn = with_labels if labels else without_labels

    def build(ds, shuffle):
        # decode + resize happen once: the cache keeps the decoded, scaled images
        ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE).cache()
        if not shuffle:
            return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
        ds, counter = reshuffled(ds, int(ds.cardinality()), seed)
        return with_epoch_counter(ds.batch(batch_size).prefetch(tf.data.AUTOTUNE), counter)

    h, w = size
    info = dict(
        name=root.name,
        kind="sequence" if as_sequence else "image",
        input_shape=(h, w * out_channels) if as_sequence else (h, w, out_channels),
        num_classes=len(class_names),
        class_names=class_names,
        value_range=value_range,
        num_train=counts[0],
        batch_size=batch_size,
        num_val=counts[1],
        num_test=counts[2],
        sequence_length=h if as_sequence else None,
        source=str(root),
        raw_max=255.0,
    )
    return (
        None if train is None else build(train, True),
        None if val is None else build(val, False),
        None if test is None else build(test, False),
        info,
    )


def _first_image(root):
    """Decodes the first image (in sorted order) under `root`'s class folders; returns it
    and the number of images."""
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    files = [f for d in classes for f in sorted(d.rglob("*")) if f.suffix.lower() in IMAGE_FORMATS]
    if not files:
        where = "its class sub-folders" if classes else "class sub-folders (there are none)"
        raise ValueError(
            f"No images found in {root}: expected {', '.join(IMAGE_FORMATS)} files in "
            f"{where}, one sub-folder per class."
        )
    return _decode(files[0]), len(files)


def _decode(path, channels=0):
    """Decodes an image file as image_dataset_from_directory does, or raises one line naming it."""
    try:
        return tf.io.decode_image(tf.io.read_file(str(path)), channels=channels, expand_animations=False)
    except tf.errors.OpError as e:
        # "{{function_node __wrapped__DecodeImage_device_...}} Invalid PNG data, size 1586 [Op:DecodeImage]"
        reason = " ".join(re.sub(r"\{\{.*?\}\}|\[Op:.*", "", e.message).split()).rstrip(".")
        colour_only = re.search(r"for (GIF|BMP)\b", reason)
        if colour_only:
            raise ValueError(
                f"Could not decode the image {path}: {reason}. {colour_only[1]} files are read "
                f"in colour only: pass channels=3, or convert it to PNG."
            ) from None
        raise ValueError(
            f"Could not decode the image {path}: {reason or type(e).__name__}. Remove or replace it."
        ) from None


def _check_images(paths, channels):
    """Decodes every image once, as the pipeline will (about 0.1 ms a small PNG), so a
    random, truncated or unreadable file is reported now, by name, not in an epoch."""
    for path in paths:
        _decode(path, channels)


def _check_classes(source, class_names, folders=False):
    if class_names is not None and len(class_names) == 1:
        what = f"label 0, the folder {class_names[0]!r}" if folders else "label 0"
        raise ValueError(
            f"{source}: the data holds one class ({what}); a classifier needs at least 2. "
            f"Pass labels=False to read the data without labels."
        )
