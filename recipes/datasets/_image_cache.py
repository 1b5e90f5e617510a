"""Decoded images of a listing and where they are kept: `plan_cache` decides once, against a
budget, between memory, a disk folder and nothing; `ImageReader` decodes the listed files to
uint8 at one size through the cache its plan chose (see `_files` for the pipelines around it).
The plan imports no TensorFlow; `ImageReader`, the tf.data engine's, imports it when made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib

import numpy as np

from recipes._checks import format_bytes

DEFAULT_CACHE_BUDGET = 2 * 1024**3  # bytes of decoded images kept in memory; see plan_cache


# ------------------------------------------------------------------------- the cache plan


@dataclasses.dataclass(frozen=True)
class CachePlan:
    """Where the decoded images of a listing are kept: `"memory"`, `"disk"` or `"none"`, and why."""

    kind: str
    reason: str
    folder: str | None = None

    def describe(self) -> str:
        where = f" ({self.folder})" if self.folder else ""
        return f"{self.kind}{where}: {self.reason}"


def plan_cache(num_images: int, shape, budget: int, disk_cache=None, key: str = "") -> CachePlan:
    """Decides once where `num_images` decoded images of `shape` (uint8) are kept.

    In memory when they fit `budget`; else in `disk_cache` (a folder, one sub-folder per
    listing and size, named by `key`) when one is given; else nowhere."""
    need = num_images * int(np.prod(shape))
    size = f"{num_images:,} images of {'x'.join(map(str, shape))} uint8 take {format_bytes(need)}"
    if budget and need <= budget:
        return CachePlan("memory", f"{size}, within the cache budget of {format_bytes(budget)}")
    over = "the cache budget is 0" if not budget else f"more than the cache budget of {format_bytes(budget)}"
    if disk_cache is not None:
        folder = pathlib.Path(disk_cache).expanduser() / key
        return CachePlan("disk", f"{size}, {over}; decoded once, then read from disk", str(folder))
    keep = "--cache DIR, disk_cache= in Python, keeps them on disk"
    return CachePlan("none", f"{size}, {over}; decoded every epoch ({keep})")


def listing_key(paths, shape) -> str:
    """A name for a listing at one size: the disk cache of other files or sizes is never read."""
    digest = hashlib.sha256(f"{shape}".encode())
    for p in paths:
        digest.update(p.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------- decoding


class ImageReader:
    """Decodes listed files to uint8 images of one size, through the cache its plan chose.

    Attributes:
        decoded: `tf.Variable`, the number of images decoded from their files so far
            (reads from the cache are not counted).
    """

    def __init__(self, paths, shape, plan: CachePlan, dct_scaling: bool = False):
        import tensorflow as tf

        self.paths = list(paths)
        self.shape = tuple(int(d) for d in shape)
        self.plan = plan
        self.dct_scaling = dct_scaling
        self._paths = tf.constant(self.paths) if self.paths else tf.constant([], tf.string)
        self.decoded = tf.Variable(0, dtype=tf.int64, trainable=False, name="images_decoded")
        self._filled = None  # which images the cache holds
        if plan.kind != "none":
            self._filled = tf.Variable(tf.zeros([len(self.paths)], tf.bool), trainable=False, name="cached")
        if plan.kind == "memory":
            # allocated (and its pages touched) once: growing a table image by image cost a
            # large allocation and its page faults per image in the first epoch
            self._images = tf.Variable(tf.zeros([len(self.paths), *self.shape], tf.uint8), trainable=False)
        if plan.kind == "disk":
            self._record = len(tf.io.serialize_tensor(tf.zeros(self.shape, tf.uint8)).numpy())
            self._folder = pathlib.Path(plan.folder)
            self._folder.mkdir(parents=True, exist_ok=True)
            done = [
                int(e.name[:-4])
                for e in os.scandir(self._folder)
                if e.name.endswith(".u8t") and e.name[:-4].isdigit() and e.stat().st_size == self._record
            ]
            done = [i for i in done if i < len(self.paths)]
            if done:
                self._filled.scatter_update(tf.IndexedSlices(tf.ones([len(done)], tf.bool), tf.constant(done)))

    def read(self, i):
        """The image at position `i` of the listing: float32 `(H, W, C)` of whole values 0..255,
        the same bits whether decoded now or read from a cache (which holds them as uint8)."""
        import tensorflow as tf

        i = tf.cast(i, tf.int64)
        if self._filled is None:
            return self._decode(i)
        cached = self._from_memory if self.plan.kind == "memory" else self._from_disk
        # gathers, not slices: a slice would hold the whole variable and make every write copy it
        return tf.cond(tf.gather(self._filled, i), lambda: cached(i), lambda: self._keep(i))

    def _from_memory(self, i):
        import tensorflow as tf

        return tf.cast(tf.gather(self._images, i), tf.float32)

    def _parse(self, record):
        import tensorflow as tf

        return tf.cast(tf.ensure_shape(tf.io.parse_tensor(record, tf.uint8), self.shape), tf.float32)

    def _file(self, i):
        import tensorflow as tf

        return tf.strings.join([str(self._folder) + os.sep, tf.strings.as_string(i), ".u8t"])

    def _keep(self, i):
        import tensorflow as tf

        image = self._decode(i)
        pixels = tf.cast(image, tf.uint8)
        if self.plan.kind == "memory":
            kept = self._images.scatter_update(tf.IndexedSlices(pixels[None], i[None]))
        else:
            kept = tf.io.write_file(self._file(i), tf.io.serialize_tensor(pixels))
        with tf.control_dependencies([kept]):
            done = self._filled.scatter_update(tf.IndexedSlices(tf.constant([True]), i[None]))
        with tf.control_dependencies([done]):
            return tf.identity(image)

    def _from_disk(self, i):
        import tensorflow as tf

        record = tf.io.read_file(self._file(i))
        # a file another process of a job is rewriting is read short: decode the image instead
        return tf.cond(tf.strings.length(record) == self._record, lambda: self._parse(record), lambda: self._decode(i))

    def _decode(self, i):
        """Decodes file `i` as image_dataset_from_directory would, resized (bilinear) to the
        run's size and rounded to whole values (what a uint8 cache keeps). A JPEG much larger
        than that is decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling): faster,
        and less aliased than a resize."""
        import tensorflow as tf

        h, w, channels = self.shape
        raw = tf.io.read_file(self._paths[i])

        def any_format():  # one op that tells the formats apart itself
            if channels == 3:
                return tf.io.decode_image(raw, channels=3, expand_animations=False)

            def colour():  # GIF and BMP decode in colour only
                return tf.image.rgb_to_grayscale(tf.io.decode_image(raw, channels=3, expand_animations=False))

            is_gray_kind = tf.logical_or(
                tf.equal(tf.strings.substr(raw, 0, 3), b"\xff\xd8\xff"),
                tf.equal(tf.strings.substr(raw, 0, 4), b"\x89PNG"),
            )
            return tf.cond(is_gray_kind, lambda: tf.io.decode_image(raw, channels=1, expand_animations=False), colour)

        def jpeg_scaled():
            size = tf.image.extract_jpeg_shape(raw)
            fits = tf.stack([tf.reduce_all(size[:2] // r >= [h, w]) for r in (8, 4, 2)])
            branch = tf.reduce_min(tf.where(tf.concat([fits, [True]], 0))[:, 0])  # largest ratio that fits
            decoders = [lambda r=r: tf.io.decode_jpeg(raw, channels=channels, ratio=r) for r in (8, 4, 2)]
            return tf.switch_case(tf.cast(branch, tf.int32), decoders, default=any_format)

        if self.dct_scaling:  # each branch costs a function call per image: only for large images
            is_jpeg = tf.equal(tf.strings.substr(raw, 0, 3), b"\xff\xd8\xff")
            image = tf.cond(is_jpeg, jpeg_scaled, any_format)
        else:
            image = any_format()
        image = tf.ensure_shape(image, [None, None, channels])
        image = tf.round(tf.image.resize(image, [h, w]))  # bilinear stays in 0..255
        with tf.control_dependencies([self.decoded.assign_add(1)]):
            return tf.ensure_shape(tf.identity(image), self.shape)
