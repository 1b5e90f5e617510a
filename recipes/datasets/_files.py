"""Image files streamed from a folder: list the names, shuffle the names, decode as the step needs.

The pipeline holds file names and labels, never a whole data set of pixels. An epoch is an
order of names (a stateless shuffle seeded by the seed and the epoch alone, so a resumed
run reads what an uninterrupted one would), decoded in parallel as the training step pulls
batches, resized to the run's size and rounded to whole values (kept as uint8 by a cache);
scaling to the model's value range comes after any cache, image by image. What is cached
is decided once, by `plan_cache` (`_image_cache`), against a budget that does not grow with the
number of files:
- `memory`: the decoded uint8 images of the listing fit the budget; each image is decoded
  once, in the first epoch that meets it, and read from one preallocated variable after that;
- `disk`: they do not, and a cache folder was given: each decoded image is written there
  (one file per image, reused by later runs on the same files and size);
- `none`: every epoch decodes again (the budget is 0, or the set is larger than it).
In a job, each process takes its share of every global batch by file name and decodes only
those: N processes decode each image once per epoch between them.

A file that is not an image or is cut short is found before the first step by looking at
its first and last bytes (a thread pool; about 60 us a file); one that only fails when
decoded stops the pipeline, and `FileStream.unreadable` finds which it was (`recipes train`
then names it in one line).

Listing, checking, the cache plan, `plan_folder` and the numpy orders (`epoch_permutation`,
`share_positions`) import no TensorFlow: the PyDataset engine (`_pydataset`) streams folders with
them. The tf.data pipelines import it when they are built.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import pathlib

import numpy as np

from recipes._optional import has_tensorflow
from recipes.datasets._image_cache import (
    DEFAULT_CACHE_BUDGET,  # noqa: F401  (re-exported: moved with the cache)
    CachePlan,
    ImageReader,
    listing_key,
    plan_cache,
)
from recipes.datasets._pipelines import IMAGE_FORMATS, _decode, _graph_as_written, by_epoch, with_epoch_counter

# ------------------------------------------------------------------------- listing


def list_images(root, class_names=None):
    """Image files under `root`'s class folders, in sorted order: `(paths, labels, class_names)`.

    Keras's own lister (the one `image_dataset_from_directory` uses): it walks the class
    folders in parallel threads and reads no file."""
    from keras.src.utils import dataset_utils

    paths, labels, names = dataset_utils.index_directory(
        str(root), "inferred", IMAGE_FORMATS, class_names=class_names, shuffle=False, verbose=False
    )
    return list(paths), np.asarray(labels, np.int32), tuple(names)


def _looks_whole(path):
    """`None` if the file starts and ends as a JPEG, PNG, GIF or BMP does, else what is wrong."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - 1024))
            tail = f.read()
    except OSError as e:
        return e.strerror or type(e).__name__
    if head[:3] == b"\xff\xd8\xff":
        return None if b"\xff\xd9" in tail else "no end-of-image marker"  # bytes after it are allowed
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return None if b"IEND" in tail[-64:] else "no IEND chunk"
    if head[:4] == b"GIF8":
        return None if tail.rstrip(b"\x00")[-1:] == b";" else "no GIF trailer"
    if head[:2] == b"BM":
        return None if int.from_bytes(head[2:6], "little") <= size else "shorter than its header says"
    return "not a JPEG, PNG, GIF or BMP file"


def check_files(paths, *, workers=16, decode=None):
    """Reports the first file that is not a whole image, in one line naming it, before any step.

    Only the first and last bytes of each file are read (in a thread pool); a file that
    looks wrong is then decoded (with `decode`, a function of the path that raises a one-line
    `ValueError`; defaults to the engine's own: TensorFlow's where installed, else Pillow's), with
    libjpeg's own messages silenced, so a valid image with unusual endings passes and a broken one
    is named with the decoder's reason."""
    decode = decode or _decoder()
    if not paths:
        return
    with concurrent.futures.ThreadPoolExecutor(min(workers, len(paths))) as pool:
        suspects = [p for p, problem in zip(paths, pool.map(_looks_whole, paths, chunksize=256)) if problem]
    for path in suspects:
        with _quiet_stderr():
            try:
                decode(path)  # at its native channels: GIF and BMP decode in colour only
                continue
            except ValueError as e:
                error = e
        raise error


def _decoder():
    """Decodes a file at its native size and channels: TensorFlow's decoder where it is installed
    (what the tf.data pipelines decode with), else Pillow's (the PyDataset engine's)."""
    if has_tensorflow():
        return _decode
    from recipes.datasets import _images

    return _images.decode


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 sent to /dev/null: libjpeg writes its warnings there, not to Python."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# ------------------------------------------------------------------------- orders


def epoch_order(n: int, seed: int, epoch):
    """The order of `n` examples in epoch `epoch` of a tf.data pipeline (a tensor; `epoch` may be
    one): a function of `seed` and `epoch` alone."""
    import tensorflow as tf

    return tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    )


def share_of(order, batch_size: int, process_share):
    """This process's share of every global batch of `order`; partial global batches are left
    out so that every process takes the same number of steps."""
    import tensorflow as tf

    count, index = process_share
    per = batch_size // count
    steps = tf.shape(order, out_type=tf.int64)[0] // batch_size
    grid = tf.reshape(order[: steps * batch_size], [steps, count, per])
    return tf.reshape(grid[:, index], [-1])


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of `n` examples in epoch `epoch` of a PyDataset (numpy, int64): a function of
    `seed` and `epoch` alone, on every machine and process. (Not tf.data's order: each engine
    draws its own.)"""
    return np.random.default_rng([seed, epoch]).permutation(n)


def share_positions(order: np.ndarray, batch_size: int, process_share) -> np.ndarray:
    """`share_of` in numpy: this process's share of every global batch of `order`, in order;
    the last, partial global batch is left out, so every process takes the same number of steps."""
    count, index = process_share
    steps = len(order) // batch_size
    return order[: steps * batch_size].reshape(steps, count, batch_size // count)[:, index].reshape(-1)


@dataclasses.dataclass
class FileStream:
    """What a file pipeline reads, kept so a failed read can be traced to its file."""

    reader: ImageReader
    ids: np.ndarray  # positions in the listing, in the split's order
    seed: int | None
    batch_size: int
    process_share: tuple[int, int] | None = None

    def order(self, epoch: int) -> np.ndarray:
        import tensorflow as tf

        if self.seed is None:
            return self.ids
        order = tf.gather(tf.constant(self.ids, tf.int64), epoch_order(len(self.ids), self.seed, epoch))
        if self.process_share:
            order = share_of(order, self.batch_size, self.process_share)
        return order.numpy()

    def unreadable(self, epoch: int, step: int, window: int = 64):
        """The first file from batch `step` of `epoch` on (and on into the next epoch) that
        cannot be decoded, as a one-line message; `None` if none in reach."""
        per = self.batch_size // (self.process_share[0] if self.process_share else 1)
        ahead = self.order(epoch)[max(0, step - 1) * per :]
        if self.seed is not None:
            ahead = np.concatenate([ahead, self.order(epoch + 1)[: window * per]])
        for i in ahead[: (window + 1) * per * 2]:
            path = self.reader.paths[int(i)]
            with _quiet_stderr():
                try:
                    _decode(path)
                except ValueError as e:
                    return str(e)
        return None


def scaler(value_range, as_sequence):
    """Maps images of whole values 0..255 (float32) to `value_range` with one multiply (and an add
    unless it starts at 0): each pass over the pixels counts, they are most of the work after decoding."""
    low, high = value_range
    scale = np.float32((high - low) / 255.0)
    exact = np.float32(255) * scale + np.float32(low) <= np.float32(high)  # else rounding could pass high
    import tensorflow as tf

    def fn(x):
        x = x * scale
        if low:  # (0, 1): the multiply alone
            x = x + low
        if not exact:
            x = tf.minimum(x, high)
        if as_sequence:  # rows become time steps: (H, W, C) -> (H, W*C)
            h, w, c = x.shape
            x = tf.reshape(x, [h, w * c])
        return x

    return fn


def image_info(root, shape, *, as_sequence, class_names, value_range, batch_size, train_idx, val_idx, num_test, cache):
    """The `DatasetInfo` fields of 8-bit image files under `root` (a folder, or a pack of shards)
    read as `shape` `(h, w, channels)` images, or as their rows with `as_sequence`."""
    h, w, channels = shape
    return dict(
        name=root.name,
        kind="sequence" if as_sequence else "image",
        input_shape=(h, w * channels) if as_sequence else shape,
        num_classes=len(class_names),
        class_names=class_names,
        value_range=value_range,
        num_train=len(train_idx),
        batch_size=batch_size,
        num_val=0 if val_idx is None else len(val_idx),
        num_test=num_test,
        sequence_length=h if as_sequence else None,
        source=str(root),
        raw_max=255.0,
        cache=cache,
    )


def pipeline(stream: FileStream, transform, labels):
    """Batches of `transform(images)` (and labels) read through `stream.reader`.

    With `stream.seed`, the training pipeline: each pass reads the order of its epoch
    (`_pipelines.by_epoch`, whose counter `set_epoch` sets). Without, the files are read in
    `stream.ids` order."""
    import tensorflow as tf

    reader = stream.reader
    label_of = None if labels is None else tf.constant(labels, tf.int32)
    n = len(stream.ids)
    ids = tf.constant(stream.ids, tf.int64)
    per, steps = stream.batch_size, -(-n // stream.batch_size)
    counter = None
    if stream.seed is None:
        ds = tf.data.Dataset.from_tensor_slices(ids)
    else:
        seed, share = stream.seed, stream.process_share

        def one_pass(epoch):
            order = tf.gather(ids, epoch_order(n, seed, epoch))
            return tf.data.Dataset.from_tensor_slices(order if share is None else share_of(order, per, share))

        ds, counter = by_epoch(one_pass)
        if share is not None:
            per, steps = per // share[0], n // per

    @_graph_as_written
    def load(i):
        x = transform(reader.read(i))  # image by image, in the parallel map
        return x if label_of is None else (x, tf.gather(label_of, i))

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(per)
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(tf.data.AUTOTUNE)
    ds.files = stream
    ds.decoded = reader.decoded
    return ds if counter is None else with_epoch_counter(ds, counter)


# ------------------------------------------------------------------------- a folder


@dataclasses.dataclass(frozen=True)
class Listing:
    """A folder of class folders, listed once: what `open_source` found and `from_folder` reads."""

    root: pathlib.Path
    paths: list  # the training folder's images, sorted
    labels: np.ndarray
    class_names: tuple
    first: object  # the first image, decoded at its native size and channels
    test_paths: list | None = None  # the test folder's, when the folder holds train/ and test/
    test_labels: np.ndarray | None = None

    @property
    def train_root(self) -> pathlib.Path:
        return self.root / "train" if self.test_paths is not None else self.root


def open_folder(root) -> Listing:
    """Lists a folder of class sub-folders of images (or of `train/` and `test/`, each laid
    out that way) and decodes its first image; reads no other file."""
    root = pathlib.Path(root)
    split_layout = sorted(p.name for p in root.iterdir() if p.is_dir()) == ["test", "train"]
    train_root = root / "train" if split_layout else root
    paths, labels, class_names = list_images(train_root)
    if not paths:
        classes = [p for p in train_root.iterdir() if p.is_dir()]
        where = "its class sub-folders" if classes else "class sub-folders (there are none)"
        raise ValueError(
            f"No images found in {train_root}: expected {', '.join(IMAGE_FORMATS)} files in "
            f"{where}, one sub-folder per class."
        )
    test_paths = test_labels = None
    if split_layout:
        test_paths, test_labels, _ = list_images(root / "test", class_names=list(class_names))
    with _quiet_stderr():
        first = _decoder()(paths[0])
    return Listing(root, paths, labels, class_names, first, test_paths, test_labels)


@dataclasses.dataclass(frozen=True)
class FolderPlan:
    """What `plan_folder` decided for a listed folder, for the pipelines of either engine.

    Attributes:
        shape: `(h, w, channels)` the images are decoded and resized to (uint8).
        train_idx, val_idx: the validation split (`_split`): positions in the listing.
        seed, batch_size, process_share: as checked (`batch_size` is the global batch).
        want: which of `SPLITS` to build.
        cache: where the training listing's decoded images are kept (`plan_cache`).
        dct_scaling: the first image is at least twice the size asked (the tf.data engine decodes
            JPEGs at a reduced scale then).
        info: the fields of the `DatasetInfo`.
    """

    shape: tuple
    train_idx: np.ndarray
    val_idx: np.ndarray | None
    seed: int
    batch_size: int
    process_share: tuple[int, int] | None
    want: dict
    cache: CachePlan
    dct_scaling: bool
    info: dict


def plan_folder(
    listing: Listing,
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
    splits,
    cache_budget,
    disk_cache=None,
    process_share=None,
    decode=None,
) -> FolderPlan:
    """A listed folder -> `FolderPlan`: the arguments checked, the validation split drawn from the
    sorted file names with `seed`, the files read (and checked, with `decode`, see `check_files`)
    by their first and last bytes, the cache planned. Imports no TensorFlow."""
    from recipes.datasets import _pipelines as p

    root = listing.root
    options = dict(image_size=image_size, channels=channels, as_sequence=as_sequence, sequence_length=sequence_length)
    p._check_options(root.name, "image", **options)
    if return_test is True and listing.test_paths is None:
        raise ValueError(
            f"{root} has no test split: lay it out as {root}/train/<class>/ and "
            f"{root}/test/<class>/. Received: return_test=True"
        )
    count = len(listing.paths)
    if validation_split and int(validation_split * count) == 0:
        raise ValueError(
            f"validation_split={validation_split} of the {count} training examples of "
            f"{listing.train_root} leaves no validation examples."
        )
    if labels:
        p._check_classes(root, listing.class_names, folders=True)
    native = 1 if listing.first.shape[-1] < 3 else 3  # gray+alpha -> gray, RGBA -> RGB
    out_channels = channels or native
    h, w = image_size or tuple(int(d) for d in listing.first.shape[:2])
    shape = (h, w, out_channels)
    train_idx, val_idx = p._split(count, validation_split, seed, listing.train_root)
    batch_size = p._batch_size(batch_size, len(train_idx))
    process_share = p.check_share(process_share, batch_size)
    want = {name: name in splits for name in p.SPLITS}
    want["val"] &= val_idx is not None
    want["test"] &= bool(return_test) and listing.test_paths is not None
    used = np.concatenate([idx for name, idx in (("train", train_idx), ("val", val_idx)) if want[name]] or [[]])
    check_files([listing.paths[i] for i in np.sort(used).astype(int)], decode=decode)
    if want["test"]:
        check_files(listing.test_paths, decode=decode)

    if len(used):  # the cache covers the training folder's listing: training and validation images
        plan = plan_cache(len(listing.paths), shape, cache_budget, disk_cache, key=listing_key(listing.paths, shape))
    else:
        plan = CachePlan("none", "neither the training nor the validation split is read")
    # libjpeg's DCT scaling pays for its per-image branch when the images are large: judged by the first
    dct = all(int(d) >= 2 * t for d, t in zip(listing.first.shape[:2], (h, w)))
    info = image_info(
        root,
        shape,
        as_sequence=as_sequence,
        class_names=listing.class_names,
        value_range=value_range,
        batch_size=batch_size,
        train_idx=train_idx,
        val_idx=val_idx,
        num_test=0 if listing.test_paths is None else len(listing.test_paths),
        cache=plan.describe(),
    )
    return FolderPlan(shape, train_idx, val_idx, seed, batch_size, process_share, want, plan, dct, info)


def from_folder(listing: Listing, *, value_range, labels, as_sequence, **options):
    """A listed folder -> `(train, val, test, info fields)` of tf.data pipelines, as
    `_pipelines.from_arrays`: planned by `plan_folder` (`options` are its other arguments), then
    streamed through the cache it chose."""
    f = plan_folder(listing, value_range=value_range, labels=labels, as_sequence=as_sequence, **options)
    reader = ImageReader(listing.paths, f.shape, f.cache, dct_scaling=f.dct_scaling)
    transform = scaler(value_range, as_sequence)
    y = listing.labels if labels else None
    train = val = test = None
    if f.want["train"]:
        train = pipeline(FileStream(reader, f.train_idx, f.seed, f.batch_size, f.process_share), transform, y)
        if f.process_share is not None:
            train.process_share = f.process_share
    if f.want["val"]:
        val = pipeline(FileStream(reader, f.val_idx, None, f.batch_size), transform, y)
    if f.want["test"]:  # read once, at the end: never cached
        test_reader = ImageReader(
            listing.test_paths, f.shape, CachePlan("none", "the test split is read once"), f.dct_scaling
        )
        ids = np.arange(len(listing.test_paths))
        test_labels = listing.test_labels if labels else None
        test = pipeline(FileStream(test_reader, ids, None, f.batch_size), transform, test_labels)
    return train, val, test, f.info
