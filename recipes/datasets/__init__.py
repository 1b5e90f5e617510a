"""Data sets as pipelines of batches: the named Keras data sets, the bundled digits, local files.

```python
from recipes.datasets import load_dataset
train, val, test, info = load_dataset("cifar10", batch_size=64, image_size=(32, 32), return_test=True)
info.num_classes, info.input_shape, info.class_names, info.engine
```

Two engines build the pipelines (`data_engine` says which, and why): tf.data (`tf.data.Dataset`s,
where TensorFlow is installed) and Keras's own `PyDataset` (`_pydataset`, no TensorFlow: the
engine of JAX and PyTorch installs). Both give the same batches of the same split; importing this
package imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
import typing

import numpy as np

from recipes import _checks as c
from recipes._checks import parse_bytes
from recipes._optional import has_tensorflow, require_tensorflow
from recipes.datasets import _files, _pipelines, _shard_reader, _text
from recipes.datasets._image_cache import DEFAULT_CACHE_BUDGET
from recipes.datasets._pipelines import auto_batch_size, not_applicable  # noqa: F401  (not_applicable: importable from here before)
from recipes.datasets._shards import pack
from recipes.datasets._shards import verify as verify_pack
from recipes.datasets._source import (
    IMDB_SEQUENCE_LENGTH,  # noqa: F401  (re-exported: moved with open_source)
    IMDB_VOCAB_SIZE,  # noqa: F401
    NAMED_DATASETS,
    Source,
    open_source,
)
from recipes.datasets._text import LABEL_NAMES, TEXT_NAMES
from recipes.datasets._vocabulary import Vocabulary

__all__ = [
    "DEFAULT_CACHE_BUDGET",
    "DatasetInfo",
    "DatasetSplits",
    "NAMED_DATASETS",
    "Source",
    "ENGINES",
    "auto_batch_size",
    "data_engine",
    "load_dataset",
    "open_source",
    "pack",
    "parse_bytes",
    "peek_form",
    "set_epoch",
    "verify_pack",
    "Vocabulary",
    "TEXT_NAMES",
    "LABEL_NAMES",
]


ENGINES = ("tf.data", "pydataset")
ENGINE_VARIABLE = "RECIPES_DATA_ENGINE"  # the engine "auto" gives, where set


def data_engine(engine: str = "auto", *, form: str | None = None, backend: str | None = None) -> tuple[str, str]:
    """The engine `load_dataset(engine=engine)` builds its pipelines with, and why: `(engine, reason)`.

    `"auto"` is `$RECIPES_DATA_ENGINE` where set; else the one measured faster for the backend and
    the data (`scripts/bench/data_engines.py`, docs/benchmarks/data_engines.md):
    - TensorFlow not installed: pydataset, the only one;
    - the TensorFlow backend: tf.data (the PyDataset engine trained the MLP on digits at 0.67x);
    - JAX or PyTorch with TensorFlow installed: pydataset for data held in memory (arrays, .npz,
      tables: the MLP on digits trained 3.2x as fast on JAX, 2.1x on PyTorch, as tf.data hands each
      batch over as a TensorFlow tensor), tf.data for image files (it decoded JPEGs 1.7x as fast),
      texts and packed shards (tf.data alone reads them).

    Args:
        engine: `"auto"`, `"tf.data"` or `"pydataset"`. Defaults to `"auto"`.
        form: what is read: `"arrays"`, `"folder"`, `"text"` or `"shards"`, or `None` (the rule,
            for `recipes info`). Defaults to `None`.
        backend: the Keras backend. Defaults to `None`: Keras's.

    Returns:
        `(engine, reason)`: `"tf.data"` or `"pydataset"`, and a few words for the log. With
        `form=None` on JAX or PyTorch with TensorFlow installed, the engine is `"pydataset"` for
        data in memory and the reason says which forms tf.data reads.

    Raises:
        ValueError: for another value (of `engine`, or of `RECIPES_DATA_ENGINE`).
        MissingDependency: for tf.data where TensorFlow is not installed.
    """
    if engine not in ("auto", *ENGINES):
        raise ValueError(f"engine must be 'auto', 'tf.data' or 'pydataset'. Received: engine={engine!r}")
    reason = f"engine={engine!r}"
    if engine == "auto":
        chosen = os.environ.get(ENGINE_VARIABLE, "").strip()
        if chosen:
            if chosen not in ENGINES:
                raise ValueError(
                    f"{ENGINE_VARIABLE} must be 'tf.data' or 'pydataset'. Received: {ENGINE_VARIABLE}={chosen!r}"
                )
            engine, reason = chosen, f"{ENGINE_VARIABLE}={chosen}"
        elif not has_tensorflow():
            return "pydataset", "TensorFlow is not installed"
        else:
            if backend is None:
                import keras

                backend = keras.backend.backend()
            if backend == "tensorflow":
                return "tf.data", "the TensorFlow backend: tf.data, measured faster there"
            if form in ("text", "shards"):
                return "tf.data", f"{'texts' if form == 'text' else 'packed shards'} are read by tf.data alone"
            if form == "folder":
                return "tf.data", f"image files on {backend}: tf.data measured decoding faster"
            rest = "" if form else "; tf.data for image files, texts and packed shards"
            return "pydataset", f"data in memory on {backend}: PyDataset measured faster than tf.data{rest}"
    if engine == "tf.data":
        require_tensorflow(f"The tf.data data engine ({reason})")
    return engine, reason


class DatasetSplits(typing.NamedTuple):
    """What `load_dataset` returns: `train, val, test, info = load_dataset(...)`, or by name."""

    train: object
    val: object
    test: object
    info: "DatasetInfo"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What `load_dataset` returned.

    Attributes:
        name: the data set's name (a named data set, or the file or folder name).
        kind: `"image"`, `"sequence"`, `"table"` or `"text"`: what one example is (a text's
            pipelines yield its token ids).
        input_shape: shape of one example as the pipeline yields it (no batch axis).
        num_classes: number of classes (`None` for a file without labels).
        class_names: names of the classes, index = label.
        value_range: `(low, high)` of image values; `None` for sequences and tables.
        num_train, num_val, num_test: examples in each split (`num_test` counts the
            test examples the source holds, 0 if none, whether or not returned).
        batch_size: examples per batch of the pipelines (what `batch_size="auto"` chose).
        vocab_size: token ids are in `[0, vocab_size)`; `None` unless tokens.
        sequence_length: time steps of a sequence example; `None` for images and tables.
        source: the file or folder read.
        raw_max: the raw image value mapped to `value_range[1]` (16 for the digits).
        cache: where the images' decoded or transformed form is kept and why: `"memory: ..."`,
            `"disk (FOLDER): ..."` or `"none: ..."` (see `cache_budget`); `None` for data
            with nothing to transform (tokens, tables).
        vocabulary: texts: the `Vocabulary` (words, sequence length, how they were chosen)
            that made them into token ids; give it back to `load_dataset` to read other
            texts the same way.
        text_from, label_from: texts: where the texts and the labels were found (a column,
            a key, class folders), for the log.
        unused: texts: what the source holds that is not read (columns, keys, folders).
        engine: what built the pipelines: `"tf.data"` (`tf.data.Dataset`s) or `"pydataset"`
            (`keras.utils.PyDataset`s); see `data_engine`. `engine_reason` says why.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    num_classes: int | None
    class_names: tuple[str, ...] | None
    value_range: tuple[float, float] | None
    num_train: int
    num_val: int
    num_test: int
    batch_size: int = 32
    vocab_size: int | None = None
    sequence_length: int | None = None
    source: str = ""
    raw_max: float | None = None
    cache: str | None = None
    vocabulary: Vocabulary | None = dataclasses.field(default=None, repr=False)
    text_from: str | None = None
    label_from: str | None = None
    unused: tuple = ()
    engine: str = "tf.data"
    engine_reason: str | None = None


def load_dataset(
    name_or_path,
    *,
    batch_size: int | str = 32,
    image_size=None,
    channels: int | None = None,
    value_range=(0.0, 1.0),
    validation_split: float = 0.1,
    seed: int = 0,
    labels: bool = True,
    as_sequence: bool = False,
    sequence_length: int | None = None,
    vocab_size: int | None = None,
    return_test: bool | str = False,
    cache_dir=None,
    splits=None,
    cache_budget=DEFAULT_CACHE_BUDGET,
    disk_cache=None,
    process_share=None,
    text_column=None,
    label_column=None,
    vocabulary: Vocabulary | None = None,
    engine: str = "auto",
) -> DatasetSplits:
    """Loads a data set as pipelines of batches (`tf.data.Dataset`s, or `keras.utils.PyDataset`s
    without TensorFlow: see `engine`) and a `DatasetInfo`.

    Sources:
    - A named data set: `"digits"` (bundled with recipes, 8x8x1, values 0..16, 10 classes,
      1,438 train / 359 test), or, as in `keras.datasets`: `"mnist"`, `"fashion_mnist"`
      (28x28x1), `"cifar10"`, `"cifar100"` (32x32x3, fine labels), `"imdb"` (reviews as
      word ids, 2 classes; as text, classes neg and pos, when no `imdb.npz` is cached but
      `aclImdb_v1.tar.gz` or its extracted `aclImdb/` is). These are read from the Keras cache
      (`<cache_dir>/datasets/`, the files `keras.datasets` downloads, checked against
      its hashes) and downloaded there when missing. A corrupted cached file is
      reported, never replaced.
    - A `.npz` file in the Keras layout: `x_train`, `y_train` and optionally `x_test`,
      `y_test`, `class_names`. Images are (N, H, W) or (N, H, W, 1|3) of non-negative
      numbers, scaled from their own maximum (uint8 data from 255, floats already
      in [0, 1] from 1). A 2-D `x` is a table, or token ids when `vocab_size` is given.
      `y_*` may be left out with `labels=False`. Every array is read and checked at
      once; arrays of Python objects (which need pickle) are refused.
    - A folder with one sub-folder of images per class (listed as
      `keras.utils.image_dataset_from_directory` lists it, class names from the folders). A
      folder holding just `train/` and `test/`, each laid out that way, has a test split.
      The folder is streamed: the pipelines hold file names, shuffle the names and decode
      in parallel as the steps need them, so memory does not grow with the number of
      files (see `cache_budget`). Each file's first and last bytes are read while loading
      (a thread pool, about 60 us a file), so a file that is not an image or is cut short
      is reported by name before any pipeline exists; one that fails only when decoded
      stops the pipeline, and `recipes train` names it. A JPEG at least twice the size
      asked is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) before the resize.
    - A folder of packed shards, written by `recipes pack` (`recipes.datasets.pack`):
      TFRecord shards of images resized and JPEG-encoded once, read shard by shard
      (each process of a job its own shards) through a bounded shuffle buffer (by the
      tf.data engine alone: TensorFlow is needed).
    - A `.csv` (or `.tsv`) of numbers, one example a row: the column named `label` (else
      the last column) holds the labels, the other columns are float32 features. A first
      row without a number in it is a header.
    - Text, one example each (`info.kind == "text"`): a `.csv`/`.tsv` with a column of text
      (chosen by `text_column`, else the first header named as in `TEXT_NAMES`: text,
      review, sentence, ...; else the column of the longest texts) and a label column
      (`label_column`, else named as in `LABEL_NAMES`, else the column with the fewest
      values); JSON Lines (`.jsonl`, one object a line, keys found the same way); a folder
      of class folders of `.txt` files, or of `train/` and `test/` laid out that way (the
      aclImdb download: a class folder of `train/` absent from `test/`, as `unsup`, is left
      out); a `.npz` or arrays whose `x_*` are 1-D arrays of `str`. The texts become token
      ids (int32, `(batch, sequence_length)`) with Keras's `TextVectorization` (see
      `recipes.datasets._vocabulary`: lower case, punctuation stripped, split on whitespace;
      it runs on TensorFlow, which texts need whatever the engine),
      its vocabulary and sequence length learned from the training split alone (after the
      validation split is drawn) unless `vocabulary` is given. Every text is held in memory
      as a Python `str`, and its ids as int32.
    - A folder holding `train.csv` (or `.tsv`, `.jsonl`) and optionally `test.csv` of the
      same kind: the files as the two splits (tables or text); the test file's labels must
      be classes of the training file's.

    Labels may be names (strings, in any source above, `.npz` arrays of `str` included):
    the sorted names are the class names, label i the i-th. A missing label, an empty
    text, a file that is not UTF-8, a line longer than 1,000,000 characters, broken CSV
    quoting or a label column with one class fails with one line naming the file and
    the line.
    - Arrays in memory, as `keras.datasets` returns them: `(x, y)`,
      `((x_train, y_train), (x_test, y_test))`, `x` alone (with `labels=False`), or a
      dict in the .npz layout; read as the .npz would be.

    Labels are integers 0..K-1. Without class names (from the source), K is the largest
    label + 1 and every class must have a training example, so a stray label (100000
    among 0..9) is refused rather than made into 99,991 empty classes; with
    `labels=True` there must be at least 2 classes.

    Every source is checked before a pipeline exists: NaN or inf values (in float32,
    the type training sees) are refused with the file, row or index of the first one.
    Decoded image files are 8-bit, so an image folder cannot hold them. On CPUs with
    AVX-512, TensorFlow's fused kernels can turn NaN inputs into finite outputs, so
    such data would otherwise train without any sign of trouble.

    Arrays are resized and scaled once and cached as float32 when that fits `cache_budget`
    (beyond it, transformed batch by batch); a folder's images are decoded and resized to
    uint8 and cached when they fit it (in memory, or in `disk_cache`), and scaled per batch
    after the cache. The training pipeline is shuffled with `seed`, again on every epoch,
    each epoch's order a function of `seed` and the epoch alone; every pipeline is batched
    and prefetched. CIFAR is also read from a folder Keras extracted when no archive is cached.

    Args:
        name_or_path: a name from `NAMED_DATASETS`, the path of a file or folder,
            arrays (see Sources), or a `Source` from `open_source` (read once, loaded
            in the form its first look showed was needed).
        batch_size: examples per batch, or `"auto"`: from the number of training
            examples, about 20 steps an epoch in a power of two from 32 to 128
            (`auto_batch_size`; `info.batch_size` says which). Defaults to `32`.
        image_size: `(height, width)` to resize images to (bilinear). Defaults to
            `None`: the native size (for a folder, the size of its first image).
        channels: `1` (grayscale) or `3` (RGB); converts between them. Defaults to
            `None`: the native channels.
        value_range: `(low, high)` of the image values returned: `(0, 1)` for the
            classifiers and the VAE, `(-1, 1)` for the DCGAN. Defaults to `(0.0, 1.0)`.
        validation_split: fraction of the training data held out for validation,
            drawn with `seed`, in [0, 1). `0` gives `val=None`. Defaults to `0.1`.
        seed: seed of the validation split and of the shuffling. Defaults to `0`.
        labels: yield `(x, y)` batches; `False` yields `x` alone (generative models).
            Defaults to `True`.
        as_sequence: turn images (H, W, C) into sequences (H, W*C) of rows, for the
            LSTM. Defaults to `False`.
        sequence_length: for token sequences (`"imdb"`, an .npz with `vocab_size`), the
            length reviews are padded or truncated to, at the front (the Keras
            default); for texts, at the end. For a table (.npz or .csv), reshapes its F
            features into `(sequence_length, F // sequence_length)`. Defaults to `None`
            (200 for `"imdb"`, the stored width for .npz tokens, for texts the 95th
            percentile of the training texts' lengths in words, rounded up to a multiple
            of 8, within 16..256).
        vocab_size: number of token ids kept; for `"imdb"` the most frequent words
            (rarer ones become 2, out-of-vocabulary, as in `keras.datasets.imdb`); for
            texts the most ids their vocabulary gives (padding and out-of-vocabulary
            included). Defaults to `None` (20000 for `"imdb"`; for texts every word seen
            at least twice in the training split, up to 20000 ids).
        return_test: also return the test split: `True` (an error if the source has
            none), `"auto"` (`None` if the source has none) or `False`. Defaults to `False`.
        cache_dir: the Keras home holding `datasets/`. Defaults to `None`:
            `$KERAS_HOME`, else `~/.keras`.
        splits: the pipelines to build, from `("train", "val", "test")` (the others are
            `None`; `info` counts them all). Defaults to `None`: all.
        cache_budget: bytes of decoded images the pipelines may keep in memory, an int or a
            size such as `"512MiB"`; `0` caches nothing. A folder whose training and
            validation images (uint8, at `image_size`) fit it is cached in memory as the
            first epoch decodes it; a larger one is streamed from its files every epoch, or
            from `disk_cache`. `info.cache` says which and why. The test split is never
            cached (it is read once). Defaults to `DEFAULT_CACHE_BUDGET` (2 GiB).
        disk_cache: a folder for the decoded images of a folder too large for the budget:
            each is written there (uint8, raw) the first time it is decoded and read from
            there after, by this and later runs on the same files at the same size (a
            sub-folder per listing and size). Defaults to `None`: none.
        process_share: `(num_processes, process_id)` in a job of several processes: the
            training pipeline yields this process's share of every global batch of
            `batch_size` (so `batch_size // num_processes` examples a step, the same number
            of steps on every process, the last partial global batch left out); a folder's
            process decodes only the files of its share. Defaults to `None`: the whole batch.
        text_column, label_column: for a CSV/TSV (a header name, or a column number from 1)
            or JSON Lines (a key): where the texts and the labels are. Defaults to `None`:
            found by name, else by what the columns hold (`info.text_from` says which).
        vocabulary: texts: a `Vocabulary` (`info.vocabulary` of an earlier load) to read the
            texts with, instead of learning one. Defaults to `None`.
        engine: what builds the pipelines: `"tf.data"` (needs TensorFlow), `"pydataset"`
            (Keras's `PyDataset`, threads decoding with Pillow and numpy: no TensorFlow), or
            `"auto"`: `$RECIPES_DATA_ENGINE` where set, else the one measured faster for this
            backend and source (`data_engine`: tf.data on TensorFlow and for image files, texts
            and shards; pydataset for data in memory on JAX and PyTorch, and wherever TensorFlow
            is absent; `info.engine` and `info.engine_reason` say which and why). Both read the
            same split in the same shapes, dtypes and value ranges; each draws its own training
            orders. Texts (TextVectorization) need TensorFlow with either; packed shards are
            read by tf.data alone. Defaults to `"auto"`.

    Returns:
        A `DatasetSplits` `(train, val, test, info)` of `tf.data.Dataset`s (or
        `keras.utils.PyDataset`s: `engine`) and a `DatasetInfo`. `val` is `None` when
        `validation_split=0`; `test` is `None` unless `return_test` is `True` or `"auto"`
        and the source has a test split; a split not named in `splits` is `None`. Each
        element is a batch `(x, y)` (or `x` with `labels=False`):
        - images: `x` float32 (batch, H, W, C) in `value_range`, or (batch, H, W*C)
          with `as_sequence=True`;
        - token sequences: `x` int32 (batch, sequence_length), ids in [0, vocab_size),
          0 is padding;
        - tables: `x` float32 (batch, F), values as stored, or
          (batch, sequence_length, F // sequence_length);
        - `y` int32 (batch,), labels in [0, num_classes).
        `train` is shuffled (reshuffled each epoch); `val` and `test` are in file order.
        Give a PyDataset to `fit()` with `shuffle=False` (its batches are shuffled already).

    Raises:
        ValueError: for an unknown name (the message lists the valid names), a file that
            is corrupted or not in the expected layout, an image that cannot be decoded,
            labels out of range or with classes missing, one class with `labels=True`, an
            empty folder, or an invalid argument; the message, one line, names the file
            or argument.
        TypeError: for an argument of the wrong type.
        FileNotFoundError: when a named data set is not cached and cannot be downloaded
            (the message says which file, where it was looked for, and its URL).
        MissingDependency: (an `ImportError`, one line) for what needs TensorFlow where it is
            not installed: texts, packed shards, `engine="tf.data"`.
    """
    data_engine(engine)  # the argument checked before anything is read
    if isinstance(batch_size, str) and batch_size != "auto":
        raise TypeError(f"batch_size must be an integer or 'auto'. Received: batch_size={batch_size!r}")
    if batch_size != "auto":
        batch_size = c.check_int("batch_size", batch_size)
    image_size = _check_image_size(image_size)
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ValueError(f"channels must be 1, 3 or None. Received: channels={channels!r}")
    value_range = _check_value_range(value_range)
    validation_split = c.check_rate("validation_split", validation_split)
    seed = c.check_int("seed", seed, minimum=0)
    for arg, value in (("labels", labels), ("as_sequence", as_sequence)):
        if not isinstance(value, bool):
            raise TypeError(f"{arg} must be True or False. Received: {arg}={value!r}")
    if not (isinstance(return_test, bool) or return_test == "auto"):
        raise TypeError(f"return_test must be True, False or 'auto'. Received: return_test={return_test!r}")
    if splits is not None:
        if isinstance(splits, str) or not all(name in _pipelines.SPLITS for name in splits):
            raise ValueError(f"splits must be a list of names from {_pipelines.SPLITS}. Received: splits={splits!r}")
    cache_budget = parse_bytes("cache_budget", cache_budget)
    if disk_cache is not None and not isinstance(disk_cache, (str, os.PathLike)):
        raise TypeError(f"disk_cache must be a folder path or None. Received: disk_cache={disk_cache!r}")
    source = (
        name_or_path
        if isinstance(name_or_path, Source)
        else open_source(
            name_or_path,
            labels=labels,
            vocab_size=vocab_size,
            sequence_length=sequence_length,
            cache_dir=cache_dir,
            text_column=text_column,
            label_column=label_column,
        )
    )
    if vocabulary is not None:
        if not isinstance(vocabulary, Vocabulary):
            raise TypeError(f"vocabulary must be a Vocabulary (info.vocabulary). Received: {type(vocabulary).__name__}")
        if source.kind != "text":
            not_applicable("vocabulary", f"<{len(vocabulary.tokens)} words>", source.name, source.kind)
    form = (
        "shards"
        if source.shards is not None
        else "folder"
        if source.folder is not None
        else "text"
        if source.kind == "text"
        else "arrays"
    )
    engine, why = data_engine(engine, form=form)
    options = dict(
        batch_size=batch_size,
        image_size=image_size,
        channels=channels,
        value_range=value_range,
        validation_split=validation_split,
        seed=seed,
        labels=labels,
        as_sequence=as_sequence,
        sequence_length=source.sequence_length,
        return_test=return_test,
        splits=tuple(splits or _pipelines.SPLITS),
        cache_budget=cache_budget,
        process_share=process_share,
    )
    if source.shards is not None and engine == "pydataset":
        raise ValueError(
            f"A pack of shards ({source.name}) is read by the tf.data engine alone. "
            f"Received: engine='pydataset' ({why})"
        )
    if engine == "pydataset":
        from recipes.datasets import _pydataset as built_by
    else:
        built_by = _pipelines
    if source.shards is not None:
        built = _shard_reader.from_shards(source.shards, **options)
    elif source.folder is not None:
        folders = _files if engine == "tf.data" else built_by
        built = folders.from_folder(source.folder, disk_cache=disk_cache, **options)
    else:
        built = built_by.from_arrays(source.arrays, max_tokens=source.max_tokens, vocabulary=vocabulary, **options)
    *datasets, info = built
    return DatasetSplits(*datasets, DatasetInfo(**info, engine=engine, engine_reason=why))


def peek_form(name_or_path, *, text_column=None) -> str | None:
    """The form of a data set's examples from a first look, without reading it all: `"image"`,
    `"table"`, `"text"` or `"tokens"` (a key of `recipes.registry.DATA_FORMS`), or `None` when a
    first look cannot tell (an .npz, a path that does not exist). `load_dataset` decides for good.
    The command uses it to choose a recipe's defaults for the data's form."""
    if isinstance(name_or_path, str) and name_or_path in NAMED_DATASETS:
        if name_or_path == "imdb":
            from recipes.datasets._named import imdb_text_path

            return "text" if imdb_text_path(None) is not None else "tokens"
        return "image"
    if not isinstance(name_or_path, (str, os.PathLike)):
        return None
    if _shard_reader.is_shards(name_or_path):
        return "image"
    return _text.peek_form(name_or_path, text_column=text_column)


def set_epoch(dataset, epoch: int) -> bool:
    """Makes the next pass over a training pipeline of `load_dataset` read epoch `epoch`'s order.

    Each epoch's order is a function of the seed and the epoch (0-based) alone, and each
    pass moves on to the next epoch by itself; this sets where the next pass starts, as a
    resumed run must (`recipes.callbacks.EpochOrder` calls it when each epoch begins).

    Args:
        dataset: a pipeline returned by `load_dataset`.
        epoch: the 0-based epoch whose order the next pass reads.

    Returns:
        `True`, or `False` when `dataset` is not a reshuffling pipeline of `load_dataset`
        (validation and test pipelines are read in file order; nothing to set).
    """
    epoch = c.check_int("epoch", epoch, minimum=0)
    if callable(getattr(dataset, "set_epoch", None)):  # the PyDataset engine's: `_pydataset.Batches`
        return dataset.set_epoch(epoch)
    counter = getattr(dataset, "data_epoch", None)
    if counter is None:
        return False
    counter.assign(epoch)
    return True


# ------------------------------------------------------------------------- checks


def _check_image_size(image_size):
    if image_size is None:
        return None
    if (
        not isinstance(image_size, (list, tuple))
        or len(image_size) != 2
        or any(not c.is_int(v) or v < 1 for v in image_size)
    ):
        raise ValueError(
            f"image_size must be (height, width), two positive integers. Received: image_size={image_size!r}"
        )
    return int(image_size[0]), int(image_size[1])


def _check_value_range(value_range):
    if (
        not isinstance(value_range, (list, tuple))
        or len(value_range) != 2
        or any(not c.is_real(v) for v in value_range)
    ):
        raise TypeError(f"value_range must be a pair of numbers (low, high). Received: value_range={value_range!r}")
    low, high = float(value_range[0]), float(value_range[1])
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"value_range must be finite with low < high. Received: value_range={value_range!r}")
    return low, high
