"""The tf.data side of `load_dataset` for arrays in memory, and what every source's pipelines share.

Built the way the TensorFlow data-performance guide says: images are resized and scaled
once and cached (in memory, within the cache budget) before the shuffle; the
training pipeline is shuffled with a seed and reshuffled on every epoch, each epoch's
order a function of the seed and the epoch alone (`reshuffled`), so a resumed run reads
what an uninterrupted one would; maps are vectorised (one call per batch) and parallel;
every pipeline ends in prefetch. Image folders stream instead (`_files`), packed shards
too (`_shards`). Each builder returns its datasets and the fields of a `DatasetInfo`.

What both engines share is here too and imports no TensorFlow: the validation split (`_split`),
`auto_batch_size`, the process share's checks, and `prepare_arrays`, which reads arrays into
what the pipelines of either engine batch (`_pydataset` is the other engine). TensorFlow is
imported by the functions that build tf.data pipelines, when they are called.
"""

from __future__ import annotations

import dataclasses
import math
import re

import keras
import numpy as np

from recipes import _checks as c
from recipes._checks import format_bytes

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what image_dataset_from_directory reads
_CHUNK = 1024  # images transformed at once when filling the cache
# batch_size="auto": about this many steps an epoch, in a power of two from the smallest to the largest
AUTO_STEPS, AUTO_BATCH_RANGE = 20, (32, 128)


def _graph_as_written(fn):
    """`fn` as tf.data traces it, unconverted: the functions the pipelines map are straight-line
    TensorFlow (their `if`s test Python values), and AutoGraph's conversion of them cost 0.15-0.4 s
    of a run's start, for nothing."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(fn)


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
    import tensorflow as tf

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
    import tensorflow as tf

    @_graph_as_written
    def shuffled(epoch):
        # Traced in a graph of its own: its seed (set here, not the process's global one)
        # makes the order depend on `seed` and `epoch` alone. TensorFlow also fails to
        # take a tensor seed while the global seed is 0 (it tests `(0, 0) == seeds`).
        tf.random.set_seed(1)
        op_seed = (tf.constant(seed, tf.int64) * 1_000_003 + epoch) % (2**31 - 1)
        return ds.shuffle(n, seed=op_seed, reshuffle_each_iteration=False)

    passes, counter = by_epoch(shuffled)
    return passes.apply(tf.data.experimental.assert_cardinality(n)), counter


def by_epoch(one_pass):
    """A pipeline whose every pass is `one_pass(epoch)` (a function of the epoch number, an int64
    tensor, to a dataset), the number kept in a variable that each pass advances and that
    `set_epoch` sets: `(dataset, counter)`. Every reshuffling pipeline of `load_dataset` is one."""
    import tensorflow as tf

    counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")

    @_graph_as_written
    def next_pass(_):
        return counter.assign_add(1) - 1

    passes = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(next_pass)
    return passes.flat_map(_graph_as_written(one_pass)), counter


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


def check_share(process_share, batch_size):
    """`(num_processes, process_id)` checked against the global batch, or `None`."""
    if process_share is None:
        return None
    if (
        not isinstance(process_share, (tuple, list))
        or len(process_share) != 2
        or not all(c.is_int(v) for v in process_share)
        or not 0 <= process_share[1] < process_share[0]
    ):
        raise ValueError(
            f"process_share must be (num_processes, process_id) with 0 <= process_id < num_processes. "
            f"Received: process_share={process_share!r}"
        )
    count = int(process_share[0])
    if batch_size % count:
        raise ValueError(
            f"batch_size is the global batch, split evenly among the {count} processes. "
            f"Received: batch_size={batch_size}"
        )
    return count, int(process_share[1])


def share(ds, batch_size, num_train, process_share):
    """This process's share of every global batch of a batched training pipeline: the last,
    partial global batch is left out, so that every process takes the same steps."""
    import tensorflow as tf

    count, index = process_share
    counter = getattr(ds, "data_epoch", None)
    ds = ds.rebatch(batch_size, drop_remainder=True).rebatch(batch_size // count).shard(count, index)
    ds = ds.apply(tf.data.experimental.assert_cardinality(num_train // batch_size))  # rebatch forgets it
    ds.process_share = process_share
    return ds if counter is None else with_epoch_counter(ds, counter)


def _pipeline(x, y, transform, *, batch_size, seed, cache):
    """`x` (and labels `y`) in memory -> batches. `seed=None`: no shuffling."""
    import tensorflow as tf

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


@dataclasses.dataclass
class PreparedArrays:
    """Arrays read into what the pipelines of either engine batch (`prepare_arrays`).

    Attributes:
        x_train, y_train, x_test, y_test: the examples as the pipelines take them (token ids
            int32, tables float32 and reshaped, images as stored: the engine transforms them);
            labels int32, or `None` without labels (`x_test` `None` unless returned).
        train_idx, val_idx: the validation split (`_split`): positions in `x_train`.
        seed: the seed of the split and of the training order.
        batch_size: examples per global batch; `process_share`: checked, or `None`.
        image: the keyword arguments of `_image_transform` (and of `_images.image_transform`),
            or `None` for data with nothing to transform.
        cache: transform the images once, up front, and keep them (float32): they fit the budget.
        want: which of `SPLITS` to build.
        info: the fields of the `DatasetInfo`.
    """

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    train_idx: np.ndarray
    val_idx: np.ndarray | None
    seed: int
    batch_size: int
    process_share: tuple[int, int] | None
    image: dict | None
    cache: bool
    want: dict
    info: dict


def prepare_arrays(
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
    cache_budget,
    process_share=None,
    max_tokens=None,
    vocabulary=None,
) -> PreparedArrays:
    """An `_readers.Arrays` -> `PreparedArrays`: the arguments checked, texts made into token ids,
    tokens padded, tables reshaped, the validation split drawn, the batch size and the cache chosen.
    Imports no TensorFlow (but for texts, see below).

    Texts become token ids once, before any pipeline (`_vocabulary`, TensorFlow's TextVectorization):
    the vocabulary and the sequence length are learned from the training split (the validation split
    drawn first), or are `vocabulary`'s (a run's own, read back). `max_tokens` caps the ids learned.

    Images are to be transformed (resized, scaled) once and cached when the float32 result fits
    `cache_budget`, else transformed batch by batch in every epoch. The cache holds float32,
    not uint8 as a folder's does: the arrays are in memory already, and small value ranges
    (the digits' 0..16) would lose their levels if rounded to uint8 after a resize."""
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
    image, info_range = None, None
    text = {}
    if a.kind == "text":
        from recipes.datasets import _vocabulary

        if vocabulary is None:
            train_idx, _ = _split(len(x_train), validation_split, seed, a.source)  # as below: the same draw
            vocabulary = _vocabulary.learn(x_train[train_idx], max_tokens=max_tokens, sequence_length=sequence_length)
        elif sequence_length is not None and sequence_length != vocabulary.sequence_length:
            raise ValueError(
                f"sequence_length must be the vocabulary's, {vocabulary.sequence_length}. "
                f"Received: sequence_length={sequence_length}"
            )
        if "train" in splits or "val" in splits:
            x_train = _vocabulary.vectorize(x_train, vocabulary)
        else:  # a finished run's test split alone (evaluate, export): the training texts are not read
            x_train = np.zeros((len(x_train), vocabulary.sequence_length), np.int32)
        x_test = None if x_test is None or not return_test else _vocabulary.vectorize(x_test, vocabulary)
        sequence_length = None
        text = dict(
            vocabulary=vocabulary,
            text_from=a.text_from,
            label_from=a.label_from if labels else None,
            unused=a.unused,
        )
        a = dataclasses.replace(a, vocab_size=vocabulary.size)
    if a.kind == "image":
        native = x_train.shape[-1]
        h, w = image_size or x_train.shape[1:3]
        out_channels = channels or native
        input_shape = (h, w * out_channels) if as_sequence else (h, w, out_channels)
        image = dict(
            raw_max=a.raw_max,
            value_range=value_range,
            native_channels=native,
            image_size=image_size,
            channels=out_channels,
            as_sequence=as_sequence,
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
    if a.kind == "text":
        kind = "text"

    train_idx, val_idx = _split(len(x_train), validation_split, seed, a.source)
    batch_size = _batch_size(batch_size, len(train_idx))
    y_train, y_test = (a.y_train, a.y_test) if labels else (None, None)
    process_share = check_share(process_share, batch_size)
    # A float32 cache makes an epoch a plain cache -> shuffle -> batch, the cheapest pipeline
    # (scripts/bench/input_pipeline.py); the budget bounds it.
    need = sum(len(x) for x in (x_train, x_test) if x is not None) * 4 * int(np.prod(input_shape))
    cache = image is not None and need <= cache_budget
    plan = None
    if image is not None:
        size = f"{format_bytes(need)} of float32 images"
        plan = (
            f"memory: {size}, within the cache budget of {format_bytes(cache_budget)}"
            if cache
            else f"none: {size}, more than the cache budget of {format_bytes(cache_budget)}; transformed every epoch"
        )
    want = {
        "train": "train" in splits,
        "val": val_idx is not None and "val" in splits,
        "test": x_test is not None and bool(return_test) and "test" in splits,
    }
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
        num_test=0 if a.x_test is None else len(a.x_test),
        vocab_size=a.vocab_size,
        sequence_length=input_shape[0] if kind in ("sequence", "text") else None,
        source=a.source,
        raw_max=a.raw_max,
        cache=plan,
        **text,
    )
    return PreparedArrays(
        x_train, y_train, x_test, y_test, train_idx, val_idx, seed, batch_size, process_share, image, cache, want, info
    )


def from_arrays(a, **options):
    """An `_readers.Arrays` -> `(train, val, test, info fields)` of tf.data pipelines; only the
    pipelines named in `splits` are built (the others are `None`); `test` is `None` unless
    `return_test`. `options` are `prepare_arrays`'s, which says what is read and cached how."""
    p = prepare_arrays(a, **options)
    transform = None if p.image is None else _image_transform(**p.image)

    def build(x, y, idx, shuffle_seed):
        if idx is not None:
            x, y = x[idx], None if y is None else y[idx]
        return _pipeline(x, y, transform, batch_size=p.batch_size, seed=shuffle_seed, cache=p.cache)

    train = build(p.x_train, p.y_train, p.train_idx, p.seed) if p.want["train"] else None
    if train is not None and p.process_share is not None:
        train = share(train, p.batch_size, len(p.train_idx), p.process_share)
    val = build(p.x_train, p.y_train, p.val_idx, None) if p.want["val"] else None
    test = build(p.x_test, p.y_test, None, None) if p.want["test"] else None
    return train, val, test, p.info


def _decode(path, channels=0):
    """Decodes an image file as image_dataset_from_directory does, or raises one line naming it."""
    import tensorflow as tf

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


def _check_classes(source, class_names, folders=False):
    if class_names is not None and len(class_names) == 1:
        what = f"label 0, the folder {class_names[0]!r}" if folders else "label 0"
        raise ValueError(
            f"{source}: the data holds one class ({what}); a classifier needs at least 2. "
            f"Pass labels=False to read the data without labels."
        )
