"""The PyDataset engine: `load_dataset`'s pipelines as `keras.utils.PyDataset`s, which `fit()`
reads on every Keras backend, with no TensorFlow (the engine of JAX and PyTorch installs).

What it reads is what the tf.data engine reads: the same checks, validation split, batch sizes,
shapes, dtypes and value ranges (`_pipelines.prepare_arrays`, `_files.plan_folder`). Arrays are
transformed (channels, bilinear resize, scaling: `_images`, numpy) once, up front, when the float32
result fits the cache budget, else batch by batch; a folder's images are decoded with Pillow and
resized to uint8 as the batches need them (a large JPEG decoded at 1/2, 1/4 or 1/8 scale first),
kept in memory when they fit the budget (or in `disk_cache`), and scaled per batch: memory holds
the cache the plan allows and a few batches, whatever the number of files.

Each training epoch reads its own order, a function of the seed and the epoch alone
(`_files.epoch_permutation`): `epoch` says which, a full pass moves it on (`on_epoch_end`), and
`set_epoch` sets it, so a resumed run reads what an uninterrupted one would. Validation and test
batches are in file order. With `process_share`, each process reads its share of every global
batch and decodes only those files.

Why `PyDataset` and not Grain: nothing more to install (and carry to an accelerator machine), and
what Grain would add, the order and the sharding, are already pure functions of the seed, the epoch
and the process. Why threads, not processes: Pillow's decoders and numpy's loops release the GIL,
so threads decode in parallel without pickling anything or forking a process that holds a backend.

Why each dataset decodes ahead itself, in a thread pool keyed by (epoch, batch), and `fit()` reads
it with one worker: Keras's own workers (`OrderedEnqueuer`, workers > 1) keep the batches queued
when an epoch stops early, as `fit()` does when it reads one batch to build an unbuilt model, and
hand them out first in the next epoch: on Keras 3.15 the first epoch of 8 batches read batches
1-5, 0, 1, 2 and every later one a rotation. Here a batch decoded ahead for another epoch or
position is never served.
"""

from __future__ import annotations

import math
import os
import pathlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np

from recipes.datasets import _files, _images
from recipes.datasets import _pipelines as p
from recipes.datasets._image_cache import CachePlan

MAX_THREADS = 8  # decoding threads: past 8 a training step rarely waits on them, and they take cores from it
AHEAD = 3  # batches decoded ahead of the one read: enough to overlap a step, few enough to keep memory small
_CHUNK = 1024  # arrays transformed at once when filling the cache (as the tf.data engine's)


def default_threads() -> int:
    """Threads that decode: the cores this process may use, at most `MAX_THREADS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_THREADS))


_pool_lock = threading.Lock()
_pool_state = {}


def _pool() -> ThreadPoolExecutor:
    """The process's decoding threads, shared by its datasets (made anew in a forked child)."""
    with _pool_lock:
        if _pool_state.get("pid") != os.getpid():
            _pool_state.update(pid=os.getpid(), pool=ThreadPoolExecutor(default_threads(), "recipes-data"))
        return _pool_state["pool"]


class _Done:
    """A batch made in the reading thread: the handle of a batch needing no worker."""

    def __init__(self, make):
        self._make = make

    def result(self):
        return self._make()

    def cancel(self):
        pass


class _Parts:
    """A batch whose parts (chunks of images) workers write into `out`; `result()` waits for them all."""

    def __init__(self, futures, out, y):
        self.futures, self.out, self.y = futures, out, y

    def result(self):
        for f in self.futures:
            f.result()  # a worker's error (an image that cannot be decoded) is raised here
        return self.out if self.y is None else (self.out, self.y)

    def cancel(self):
        for f in self.futures:
            f.cancel()


class Batches(keras.utils.PyDataset):
    """Batches of one split, read by index, decoded ahead in threads; the base of this engine's datasets.

    Attributes:
        epoch: the training epoch whose order the batches follow (0-based). A full pass
            (`on_epoch_end` once every batch was read) moves it on; `set_epoch` sets it.
            Validation and test batches (no `seed`) are in file order, whatever it says.
        seed: the seed of the training order, or `None` (file order).
        batch_size: examples a batch yields (this process's share with `process_share`).
        process_share: `(num_processes, process_id)`, or `None`.
        num_examples: examples of the split (all processes').
    """

    def __init__(self, num_examples: int, batch_size: int, *, seed=None, process_share=None, ahead=AHEAD):
        # fit() reads one batch at a time, in order (see the module's docstring); ours decode ahead
        super().__init__(workers=1, use_multiprocessing=False, max_queue_size=ahead)
        self.num_examples, self.seed, self.process_share = int(num_examples), seed, process_share
        self.global_batch = int(batch_size)
        if process_share is None:
            self.batch_size, self._steps = self.global_batch, math.ceil(self.num_examples / self.global_batch)
        else:
            self.batch_size, self._steps = self.global_batch // process_share[0], self.num_examples // batch_size
        self.epoch = 0
        self.ahead = int(ahead)
        self._lock = threading.Lock()
        self._pending = {}  # (epoch, index) -> handle of a batch decoded ahead
        self._orders = {}  # epoch -> positions in the split, the last two epochs read
        self._last = None  # the index read last: decoding ahead follows reading in order
        self._in_epoch, self._read = False, 0

    def __len__(self) -> int:
        return self._steps

    # ------------------------------------------------------------------ orders

    def order(self, epoch: int | None = None) -> np.ndarray:
        """Positions in the split (0..num_examples-1) in the order epoch `epoch` reads them (this
        process's share only); file order without a seed. Defaults to `None`: the current epoch."""
        if self.seed is None:
            return np.arange(self.num_examples)
        epoch = self.epoch if epoch is None else int(epoch)
        with self._lock:
            order = self._orders.get(epoch)
        if order is None:
            order = _files.epoch_permutation(self.num_examples, self.seed, epoch)
            if self.process_share is not None:
                order = _files.share_positions(order, self.global_batch, self.process_share)
            with self._lock:
                self._orders = {e: o for e, o in self._orders.items() if e in (epoch - 1, epoch)}
                self._orders[epoch] = order
        return order

    def positions(self, index: int, epoch: int | None = None) -> np.ndarray:
        """The positions in the split of batch `index` of epoch `epoch` (default: the current one)."""
        return self.order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]

    def set_epoch(self, epoch: int) -> bool:
        """Makes the next batches follow epoch `epoch`'s order; `False` (and nothing set) without a seed."""
        if self.seed is None:
            return False
        self.epoch = int(epoch)
        return True

    # ------------------------------------------------------------------ reading

    def __getitem__(self, index):
        index = int(index)
        if index < 0:
            index += self._steps
        if not 0 <= index < self._steps:
            raise IndexError(f"batch {index} of a dataset of {self._steps} batches")
        epoch = self.epoch if self.seed is not None else 0
        with self._lock:
            handle = self._pending.pop((epoch, index), None)
            in_order = self._last is None or index in (0, self._last + 1)
            self._last = index
            window = self._window(epoch, index) if in_order else []
            for key in [k for k in self._pending if k not in window]:  # another epoch's, or skipped
                self._pending.pop(key).cancel()
        if handle is None:
            handle = self._start(epoch, index)
        for key in window:
            if key not in self._pending:
                started = self._start(*key)
                with self._lock:
                    self._pending[key] = started
        batch = handle.result()
        if self._in_epoch:
            self._read += 1
        return batch

    def _window(self, epoch, index):
        """The batches to decode ahead of `index`: the next `ahead`, into the next epoch's for training."""
        keys = [(epoch, j) for j in range(index + 1, min(index + 1 + self.ahead, self._steps))]
        if self.seed is not None:
            keys += [(epoch + 1, j) for j in range(min(index + 1 + self.ahead - self._steps, self._steps))]
        return keys

    def _start(self, epoch, index):
        """Starts making batch `index` of `epoch`; returns its handle (`result()`, `cancel()`)."""
        raise NotImplementedError

    def on_epoch_begin(self):
        self._in_epoch, self._read = True, 0

    def on_epoch_end(self):
        # a pass fit() broke off (the batch it reads to build a model) does not count as an epoch
        if self._in_epoch and self._read >= self._steps and self.seed is not None:
            self.epoch += 1
        self._in_epoch, self._read = False, 0

    def close(self):
        """Cancels the batches decoded ahead (their memory is freed as their workers finish)."""
        with self._lock:
            pending, self._pending, self._last = list(self._pending.values()), {}, None
        for handle in pending:
            handle.cancel()


class ArrayBatches(Batches):
    """Batches of arrays in memory: `x[rows[positions]]` (and labels), transformed per batch by
    `transform` unless the arrays are the transformed ones already."""

    def __init__(self, x, y, rows, batch_size, *, transform=None, **options):
        super().__init__(len(rows), batch_size, **options)
        self.x, self.y, self.rows, self.transform = x, y, np.asarray(rows, np.int64), transform

    def _make(self, epoch, index):
        rows = self.rows[self.positions(index, epoch)]
        x = self.x[rows]
        if self.transform is not None:
            x = self.transform(x)
        return x if self.y is None else (x, self.y[rows])

    def _start(self, epoch, index):
        if self.transform is None:  # a gather: cheaper here than a thread's hand-over
            return _Done(lambda: self._make(epoch, index))
        return _pool().submit(self._make, epoch, index)


class FileBatches(Batches):
    """Batches of image files: each decoded (or read from the cache) by `reader`, then scaled by
    `scale` into the batch, a chunk of each batch a worker."""

    def __init__(self, reader, ids, labels, batch_size, *, scale, out_shape, **options):
        super().__init__(len(ids), batch_size, **options)
        self.reader, self.ids, self.labels = reader, np.asarray(ids, np.int64), labels
        self.scale, self.out_shape = scale, tuple(out_shape)

    @property
    def decoded(self) -> int:
        """Images decoded from their files so far (by any dataset sharing the reader)."""
        return self.reader.decoded

    def _start(self, epoch, index):
        ids = self.ids[self.positions(index, epoch)]
        out = np.empty((len(ids), *self.out_shape), np.float32)
        per = max(1, math.ceil(len(ids) / default_threads()))
        futures = [_pool().submit(self._fill, out, ids, s, min(s + per, len(ids))) for s in range(0, len(ids), per)]
        return _Parts(futures, out, None if self.labels is None else self.labels[ids])

    def _fill(self, out, ids, start, stop):
        for j in range(start, stop):
            out[j] = self.scale(self.reader.read(int(ids[j])))


class FileReader:
    """Decodes listed image files to uint8 `shape` (Pillow, `_images.decode_resized`) through the
    cache its plan chose: `"memory"` (a preallocated array, filled as images are first read),
    `"disk"` (one raw file an image, written once, read by later runs) or `"none"`.

    Attributes:
        decoded: images decoded from their files so far (reads from the cache not counted).
    """

    def __init__(self, paths, shape, plan: CachePlan):
        self.paths, self.shape, self.plan = list(paths), tuple(int(d) for d in shape), plan
        self.decoded = 0
        self._lock = threading.Lock()
        self._busy = {}  # image -> the event set once the thread decoding it for the cache is done
        self._filled = np.zeros(len(self.paths), bool) if plan.kind != "none" else None
        if plan.kind == "memory":
            self._images = np.zeros((len(self.paths), *self.shape), np.uint8)  # pages taken as filled
        if plan.kind == "disk":
            self._size = int(np.prod(self.shape))
            self._folder = pathlib.Path(plan.folder)
            self._folder.mkdir(parents=True, exist_ok=True)
            for entry in os.scandir(self._folder):
                stem = entry.name[:-3]
                if entry.name.endswith(".u8") and stem.isdigit() and int(stem) < len(self.paths):
                    self._filled[int(stem)] = entry.stat().st_size == self._size

    def read(self, i: int) -> np.ndarray:
        """Image `i` of the listing, uint8 `shape`, the same pixels whether decoded now or cached."""
        if self._filled is None:
            return self._decode(i)
        if not self._filled[i]:
            with self._lock:  # one thread decodes an image the cache will keep; another waits for it
                busy = self._busy.get(i)
                if busy is None:
                    mine = self._busy[i] = threading.Event()
            if busy is None:
                try:
                    return self._keep(i, self._decode(i))
                finally:
                    mine.set()
                    with self._lock:
                        del self._busy[i]
            busy.wait()
            if not self._filled[i]:  # its decoding failed: fail here too
                return self._decode(i)
        if self.plan.kind == "memory":
            return self._images[i]
        image = np.fromfile(self._file(i), np.uint8)
        if image.size != self._size:  # being rewritten by another process of a job: decode it
            return self._decode(i)
        return image.reshape(self.shape)

    def _decode(self, i):
        image = _images.decode_resized(self.paths[i], self.shape)
        with self._lock:
            self.decoded += 1
        return image

    def _keep(self, i, image):
        if self.plan.kind == "memory":
            self._images[i] = image
        else:
            tmp = self._folder / f".{i}.{uuid.uuid4().hex}.tmp"
            image.tofile(tmp)
            os.replace(tmp, self._file(i))
        self._filled[i] = True
        return image

    def _file(self, i):
        return self._folder / f"{i}.u8"  # raw pixels (the tf.data engine's .u8t are serialised tensors)


# ------------------------------------------------------------------------- builders


def from_arrays(a, **options):
    """An `_readers.Arrays` -> `(train, val, test, info fields)` of `Batches`, as
    `_pipelines.from_arrays` (`options` are `prepare_arrays`'s)."""
    prep = p.prepare_arrays(a, **options)
    x_train, x_test, transform = prep.x_train, prep.x_test, None
    if prep.image is not None:
        transform = _images.image_transform(**prep.image)
        if prep.cache:  # once, up front, in parallel chunks
            x_train = _transformed(x_train, transform)
            x_test = None if x_test is None or not prep.want["test"] else _transformed(x_test, transform)
            transform = None
    y_train = None if prep.y_train is None else np.asarray(prep.y_train, np.int32)
    y_test = None if prep.y_test is None else np.asarray(prep.y_test, np.int32)

    def build(x, y, rows, **more):
        return ArrayBatches(x, y, rows, prep.batch_size, transform=transform, **more)

    train = val = test = None
    if prep.want["train"]:
        train = build(x_train, y_train, prep.train_idx, seed=prep.seed, process_share=prep.process_share)
    if prep.want["val"]:
        val = build(x_train, y_train, prep.val_idx)
    if prep.want["test"]:
        test = build(x_test, y_test, np.arange(len(x_test)))
    return train, val, test, prep.info


def _transformed(x, transform):
    first = transform(x[:1])
    out = np.empty((len(x), *first.shape[1:]), np.float32)

    def chunk(start):
        out[start : start + _CHUNK] = transform(x[start : start + _CHUNK])

    list(_pool().map(chunk, range(0, len(x), _CHUNK)))
    return out


def from_folder(listing, *, value_range, labels, as_sequence, **options):
    """A listed folder (`_files.Listing`) -> `(train, val, test, info fields)` of `FileBatches`, as
    `_files.from_folder`: planned by `_files.plan_folder`, files checked with Pillow."""
    f = _files.plan_folder(
        listing, value_range=value_range, labels=labels, as_sequence=as_sequence, decode=_images.decode, **options
    )
    h, w, c = f.shape
    out_shape = (h, w * c) if as_sequence else f.shape
    scale = _images.scaler(value_range, as_sequence)
    y = np.asarray(listing.labels, np.int32) if labels else None

    def build(reader, ids, y, **more):
        return FileBatches(reader, ids, y, f.batch_size, scale=scale, out_shape=out_shape, **more)

    reader = FileReader(listing.paths, f.shape, f.cache)
    train = val = test = None
    if f.want["train"]:
        train = build(reader, f.train_idx, y, seed=f.seed, process_share=f.process_share)
    if f.want["val"]:
        val = build(reader, f.val_idx, y)
    if f.want["test"]:  # read once, at the end: never cached
        test_reader = FileReader(listing.test_paths, f.shape, CachePlan("none", "the test split is read once"))
        test_labels = np.asarray(listing.test_labels, np.int32) if labels else None
        test = build(test_reader, np.arange(len(listing.test_paths)), test_labels)
    return train, val, test, f.info
