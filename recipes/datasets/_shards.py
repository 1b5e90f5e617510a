"""Packed shards of images: a folder of images packed once into TFRecord shards, and the
pipelines that read them.

```
recipes pack photos/ --image-size 224 224 --out photos.shards/
recipes train vgg16 --dataset photos.shards/
```

`pack` decodes every image once, resizes it and stores it re-encoded as JPEG, in shards
that each hold a seeded mix of the classes. Each shard is written under a temporary name
and renamed when whole; `progress.json` records the finished ones, so a second run with
the same arguments continues where the first stopped; `manifest.json` comes last.
`from_shards` (in `_shard_reader`) streams the shards (memory bounded whatever their size),
each training pass in an order that is a function of the seed and the pass alone; each
process of a job reads its own shards.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pathlib

import numpy as np
from keras.src.utils.dataset_utils import index_directory

from recipes import _atomic
from recipes import _checks as c
from recipes._optional import require_tensorflow
from recipes.datasets import _pipelines as p
from recipes.datasets._image_cache import CachePlan, ImageReader
from recipes.datasets._shard_reader import (
    CYCLE_LENGTH,  # noqa: F401
    FORMAT,
    MANIFEST,
    SHUFFLE_BUFFER,  # noqa: F401
    VERSION,
    _read_manifest,
    from_shards,  # noqa: F401
    is_shards,  # noqa: F401
)


def __getattr__(name):
    if name == "_FEATURES":  # moved with the reader, made when asked for: it needs TensorFlow
        from recipes.datasets._shard_reader import _features

        return _features()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


PROGRESS = "progress.json"
# About 100 MB a shard at 224x224 (~50 KB a JPEG at quality 95): large enough to read at
# disk speed, small enough that an ImageNet-sized set gives each process of a job many.
IMAGES_PER_SHARD = 2048


def pack(folder, out, *, image_size, channels=None, images_per_shard=IMAGES_PER_SHARD, quality=95, seed=0, log=print):
    """Packs a folder of images into TFRecord shards of resized, JPEG-encoded images.

    Each record holds `image` (JPEG bytes), `label`, `index` (the file's position in the
    sorted listing of its split, from which `from_shards` draws the validation split) and
    `path` (relative to `folder`). Shard `j` of a split holds positions
    `[j * images_per_shard, (j + 1) * images_per_shard)` of an order drawn with `seed`
    (kept in `<split>-order.npy`), so every shard mixes the classes.

    Args:
        folder: a folder of class sub-folders of images (.bmp .gif .jpeg .jpg .png), or a
            folder holding just `train/` and `test/`, each laid out that way (both are
            packed; the test split takes the training split's class names).
        out: the folder to write: new, empty, or a partial pack of the same source with
            the same arguments (continued: finished shards whose sha256 matches are kept).
        image_size: `(height, width)` the images are resized to (bilinear).
        channels: `1` or `3`. Defaults to `None`: those of the first image.
        images_per_shard: records a shard holds. Defaults to `2048` (~100 MB at 224x224).
        quality: JPEG quality, 1 to 100. Defaults to `95`.
        seed: seed of the order that mixes the images into shards. Defaults to `0`.
        log: called with a line after each shard. Defaults to `print`.

    Returns:
        The manifest, as written to `out/manifest.json`.

    Raises:
        ValueError: (one line) when `out` holds a finished pack, anything but a partial
            pack, or a partial pack made with other arguments (nothing in `out` is
            changed then); when an image cannot be decoded (finished shards are kept); for
            an invalid argument.
        MissingDependency: where TensorFlow is not installed (TFRecord shards are TensorFlow's).
    """
    require_tensorflow("recipes pack (TFRecord shards)")
    folder, out = pathlib.Path(folder).expanduser(), pathlib.Path(out).expanduser()
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2 or not all(c.is_int(v) for v in image_size):
        raise ValueError(f"image_size must be (height, width), two integers. Received: image_size={image_size!r}")
    image_size = [c.check_int("image_size", v) for v in image_size]
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ValueError(f"channels must be 1, 3 or None. Received: channels={channels!r}")
    if c.check_int("quality", quality) > 100:
        raise ValueError(f"quality must be in [1, 100]. Received: quality={quality!r}")
    if not folder.is_dir() or out.resolve().is_relative_to(folder.resolve()):
        raise ValueError(
            f"folder must be a folder of images and out a folder outside it. "
            f"Received: folder={str(folder)!r}, out={str(out)!r}"
        )
    progress = _partial(out)
    listing, class_names, first = _listing(folder)
    arguments = dict(
        source=str(folder.resolve()),
        image_size=image_size,
        channels=channels or (1 if first.shape[-1] < 3 else 3),  # gray+alpha -> gray, RGBA -> RGB
        images_per_shard=c.check_int("images_per_shard", images_per_shard),
        quality=quality,
        seed=c.check_int("seed", seed, minimum=0),
        listing={k: hashlib.sha256("\n".join(lines).encode()).hexdigest() for k, (*_, lines) in listing.items()},
    )
    if progress is not None and progress["arguments"] != arguments:
        before = progress["arguments"]
        differ = ", ".join(
            "the source's files (changed since)" if k == "listing" else f"{k}={before.get(k)!r} there, {v!r} here"
            for k, v in arguments.items()
            if before.get(k) != v
        )
        raise ValueError(
            f"{out} holds a partial pack made with other arguments ({differ}); rerun with the same ones to "
            f"continue it, or choose another --out. Received: out={str(out)!r}"
        )
    out.mkdir(parents=True, exist_ok=True)
    if progress is None:  # first, so that a run killed at any point leaves a pack it can continue
        progress = dict(format=FORMAT, version=VERSION, arguments=arguments, orders={}, shards={})
        _atomic.atomic_write_text(out / PROGRESS, json.dumps(progress, indent=1))
    for stale in out.iterdir():  # what a killed run was writing
        if _atomic.TEMPORARY.fullmatch(stale.name):
            stale.unlink()
    splits, shards = {}, []
    for split, files in listing.items():
        splits[split], plan = _pack_split(out, split, files, arguments, progress, log)
        shards += plan
    manifest = dict(format=FORMAT, version=VERSION, class_names=class_names, image_size=image_size)
    manifest.update(channels=arguments["channels"], encoding="jpeg", splits=splits, shards=shards, arguments=arguments)
    _atomic.atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))
    (out / PROGRESS).unlink()
    counts = ", ".join(f"{s['num_examples']} {k}" for k, s in splits.items())
    log(f"Packed {counts} images into {len(shards)} shards")
    return manifest


def _pack_split(out, split, files, arguments, progress, log):
    """Writes the shards of one split not finished yet; returns the split's and its shards' manifest entries."""
    import tensorflow as tf

    paths, labels, lines = files
    n, order_path, size = len(paths), out / f"{split}-order.npy", arguments["images_per_shard"]
    if not (order_path.is_file() and _sha256(order_path) == progress["orders"].get(split)):
        # kept, not drawn again on resuming: another NumPy may draw another order
        order = np.random.default_rng(arguments["seed"]).permutation(n)
        _atomic.atomic_write(order_path, lambda tmp: np.save(tmp, order))
        progress["orders"][split] = _sha256(order_path)
        progress["shards"] = {k: v for k, v in progress["shards"].items() if not k.startswith(f"{split}-")}
        _atomic.atomic_write_text(out / PROGRESS, json.dumps(progress, indent=1))
    order, total, done = np.load(order_path, allow_pickle=False), math.ceil(n / size), progress["shards"]
    plan = [
        dict(file=f"{split}-{j:05d}-of-{total:05d}.tfrecord", split=split, start=j * size, stop=min(j * size + size, n))
        for j in range(total)
    ]
    todo = [s for s in plan if s["file"] not in done or _sha256_or_none(out / s["file"]) != done[s["file"]]["sha256"]]
    if todo:
        ids = np.concatenate([order[s["start"] : s["stop"]] for s in todo])
        records = _encoded(paths[ids], labels[ids], ids, arguments)
    for s in todo:
        count = s["stop"] - s["start"]
        try:
            _write_shard(out / s["file"], (_example(*next(records), lines) for _ in range(count)))
        except tf.errors.OpError as e:
            for i in order[s["start"] : s["stop"]]:
                p._decode(paths[i])  # raises the one-line error naming the file
            raise ValueError(f"Could not pack {s['file']}: {' '.join(e.message.split())}") from None
        done[s["file"]] = dict(count=count, sha256=_sha256(out / s["file"]))
        _atomic.atomic_write_text(out / PROGRESS, json.dumps(progress, indent=1))
        log(f"{out / s['file']}: {count} images")
    entry = dict(num_examples=n, order=order_path.name, order_sha256=progress["orders"][split])
    return entry, [{**s, **done[s["file"]]} for s in plan]


def verify(out) -> dict:
    """Checks a finished pack: each shard's sha256 and record count, each order file's sha256.

    Returns:
        The manifest.

    Raises:
        ValueError: (one line) naming the first file missing, changed or unreadable.
        MissingDependency: where TensorFlow is not installed.
    """
    require_tensorflow("recipes pack --verify (TFRecord shards)")
    import tensorflow as tf

    out = pathlib.Path(out).expanduser()
    manifest = _read_manifest(out)
    orders = [(s["order"], s["order_sha256"], None) for s in manifest["splits"].values()]
    for name, sha, count in orders + [(s["file"], s["sha256"], s["count"]) for s in manifest["shards"]]:
        path = out / name
        if _sha256_or_none(path) != sha:
            what = "is missing" if not path.is_file() else "is corrupt: its sha256 differs from the manifest's"
            raise ValueError(f"{path} {what}. Pack {manifest['arguments']['source']} again into a new folder.")
        if count is not None:
            try:
                found = int(tf.data.TFRecordDataset(str(path)).reduce(np.int64(0), lambda n, _: n + 1))
            except tf.errors.OpError as e:
                raise ValueError(f"{path} cannot be read: {' '.join(e.message.split())}") from None
            if found != count:
                raise ValueError(f"{path} holds {found} records; the manifest says {count}. Pack it again.")
    return manifest


def _listing(folder):
    """`{split: (paths, labels, "path<TAB>label" lines)}` in sorted order, the class names, the first image."""
    layout = sorted(q.name for q in folder.iterdir() if q.is_dir()) == ["test", "train"]
    roots = {"train": folder / "train", "test": folder / "test"} if layout else {"train": folder}
    listing, class_names = {}, None
    for split, root in roots.items():
        paths, labels, names = index_directory(
            str(root), "inferred", p.IMAGE_FORMATS, class_names=class_names, shuffle=False, verbose=False
        )
        if not paths:
            raise ValueError(
                f"No images found in {root}: expected {', '.join(p.IMAGE_FORMATS)} files in class folders."
            )
        class_names = class_names or list(names)
        rel = [f"{os.path.relpath(path, folder)}\t{y}" for path, y in zip(paths, labels)]
        listing[split] = (np.array(paths), np.asarray(labels, np.int64), rel)
    return listing, class_names, p._decode(listing["train"][0][0])


def _encoded(paths, labels, ids, arguments):
    """`(jpeg bytes, label, index)` of each file, decoded and resized in parallel, in order, as a
    streamed folder decodes them (`_image_cache.ImageReader`, with libjpeg's DCT scaling for large JPEGs)."""
    import tensorflow as tf

    shape, quality = (*arguments["image_size"], arguments["channels"]), arguments["quality"]
    reader = ImageReader(paths, shape, CachePlan("none", "packing"), dct_scaling=True)

    @p._graph_as_written
    def encode(position, label, index):
        return tf.io.encode_jpeg(tf.cast(reader.read(position), tf.uint8), quality=quality), label, index

    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), labels, ids))
    return ds.map(encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(64).as_numpy_iterator()


def _example(image, label, index, rel):
    import tensorflow as tf

    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    values = dict(image=image, label=label, index=index, path=rel[index].split("\t")[0].encode())
    return tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in values.items()}))


def _write_shard(path, examples):
    """Writes `tf.train.Example`s to `path` under a temporary name, renamed when whole."""
    import tensorflow as tf

    def write(tmp):
        with tf.io.TFRecordWriter(tmp) as writer:
            for example in examples:
                writer.write(example.SerializeToString(deterministic=True))  # map order varies by process

    _atomic.atomic_write(path, write)


def _partial(out):
    """The progress of a partial pack in `out`; `None` when `out` is new or empty. Raises otherwise."""
    if not out.exists():
        return None
    received = f"Received: out={str(out)!r}"
    if (out / MANIFEST).exists():
        raise ValueError(f"{out} holds a finished pack already; choose another --out or remove it. {received}")
    if out.is_dir() and all(_atomic.TEMPORARY.fullmatch(q.name) for q in out.iterdir()):
        return None  # empty, or killed while writing its first progress file
    try:
        progress = json.loads((out / PROGRESS).read_text())
        if progress.get("format") == FORMAT and progress.get("version") == VERSION:
            return progress
    except (OSError, ValueError, AttributeError):
        pass
    raise ValueError(
        f"{out} is not empty and holds no partial pack to continue; choose a new or empty --out. {received}"
    )


def _sha256_or_none(path):
    return _sha256(path) if path.is_file() else None


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
