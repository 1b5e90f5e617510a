"""Data sets opened once (`open_source`): a named data set's or a file's arrays read and checked,
or a folder's classes and first image found, or a pack's manifest read; `load_dataset` makes
the `Source` into pipelines in the form its first look showed was needed.

Where TensorFlow is not installed, what needs it is refused here, in one line and before the data is
read when a first look can tell: texts (Keras's TextVectorization) and packs of TFRecord shards."""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np

from recipes import _checks as c
from recipes._optional import has_tensorflow, require_tensorflow
from recipes.datasets import _files, _named, _readers, _shard_reader, _text
from recipes.datasets._pipelines import not_applicable

NAMED_DATASETS = ("cifar10", "cifar100", "digits", "fashion_mnist", "imdb", "mnist")
IMDB_VOCAB_SIZE = 20000
IMDB_SEQUENCE_LENGTH = 200


@dataclasses.dataclass(frozen=True)
class Source:
    """A data set opened but not yet made into pipelines (see `open_source`): enough to
    decide how to load it (its kind and the shape of one example) without reading it twice.

    Attributes:
        name: the data set's name, as `DatasetInfo.name`.
        kind: `"image"`, `"sequence"`, `"table"` or `"text"`.
        shape: shape of one example as stored (images: `(H, W, C)`, the first image of a folder;
            texts: `()`).
        vocab_size: token ids are in `[0, vocab_size)`; `None` unless tokens (texts have theirs
            once `load_dataset` has learned it from the training split).
        has_test: whether the source holds a test split.
        sequence_length: the token sequence length to pad or cut to (`None` unless tokens).
    """

    name: str
    kind: str
    shape: tuple
    vocab_size: int | None
    has_test: bool
    sequence_length: int | None = None
    arrays: object = dataclasses.field(default=None, repr=False)
    folder: object = dataclasses.field(default=None, repr=False)  # a folder's `_files.Listing`
    shards: object = dataclasses.field(default=None, repr=False)  # the folder of a pack of shards
    max_tokens: int | None = None  # texts: the most token ids their vocabulary may give (vocab_size)


def open_source(
    name_or_path,
    *,
    labels: bool = True,
    vocab_size: int | None = None,
    sequence_length: int | None = None,
    cache_dir=None,
    text_column=None,
    label_column=None,
) -> Source:
    """Opens a data set once: reads (and checks) its arrays, or finds a folder's classes and
    first image. `load_dataset` accepts the result in place of a name or path.

    `text_column`, `label_column`: the CSV/TSV column (a header name, or a number from 1) or JSON Lines
    key of the texts and of the labels; `None` finds them by name, else by what they hold.

    Raises: as `load_dataset`.
    """
    if sequence_length is not None:
        sequence_length = c.check_int("sequence_length", sequence_length)
    if vocab_size is not None:
        vocab_size = c.check_int("vocab_size", vocab_size, minimum=2)
    if isinstance(name_or_path, str) and name_or_path in NAMED_DATASETS:
        text = name_or_path == "imdb" and _named.imdb_text_path(cache_dir) is not None
        if text:
            _texts_need_tensorflow("'imdb', its reviews as text: aclImdb")
        if name_or_path == "imdb" and not text:  # token ids, not text
            vocab_size = vocab_size or IMDB_VOCAB_SIZE
            sequence_length = sequence_length or IMDB_SEQUENCE_LENGTH
        elif vocab_size is not None and name_or_path != "imdb":
            not_applicable("vocab_size", vocab_size, name_or_path, "image")
        arrays = _named.read_named(
            name_or_path, cache_dir=cache_dir, vocab_size=vocab_size, sequence_length=sequence_length
        )
        return _arrays_source(arrays, sequence_length, vocab_size)
    if isinstance(name_or_path, (tuple, list, dict, np.ndarray)):
        arrays = _readers.read_arrays(name_or_path, vocab_size=vocab_size, labels=labels)
        if arrays.kind == "text":
            _texts_need_tensorflow("arrays of str")
        return _arrays_source(arrays, sequence_length, vocab_size)
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"name_or_path must be a data set name, a path or arrays. Received: name_or_path={name_or_path!r}"
        )
    path = pathlib.Path(name_or_path).expanduser()
    columns = dict(text_column=text_column, label_column=label_column)
    if path.is_dir() and not _shard_reader.is_shards(path) and _text.is_text_folder(path):
        _texts_need_tensorflow(path.name)
        if _text.split_files(path):
            arrays = _text.read_split_files(path, labels=labels, **columns)
        else:
            _columns_not_applicable(columns, path.name, "a folder of .txt files")
            arrays = _text.read_text_folder(path, labels=labels)
        return _arrays_source(_tokens_not_applicable(arrays, vocab_size), sequence_length, vocab_size)
    if path.is_dir():
        _columns_not_applicable(columns, path.name, "images")
        if vocab_size is not None:
            not_applicable("vocab_size", vocab_size, path.name, "image")
        if _shard_reader.is_shards(path):
            require_tensorflow(f"A pack of TFRecord shards ({path.name}, written by recipes pack)")
            manifest = _shard_reader._read_manifest(path)
            return Source(
                name=path.name,
                kind="image",
                shape=(*manifest["image_size"], manifest["channels"]),
                vocab_size=None,
                has_test="test" in manifest["splits"],
                sequence_length=sequence_length,
                shards=path,
            )
        listing = _files.open_folder(path)
        native = 1 if listing.first.shape[-1] < 3 else 3
        return Source(
            name=path.name,
            kind="image",
            shape=(*(int(d) for d in listing.first.shape[:2]), native),
            vocab_size=None,
            has_test=listing.test_paths is not None,
            sequence_length=sequence_length,
            folder=listing,
        )
    if not path.exists():
        raise ValueError(
            f"Unknown data set {str(name_or_path)!r}: neither a named data set "
            f"({', '.join(NAMED_DATASETS)}) nor an existing file or folder."
        )
    suffix = path.suffix.lower()
    if suffix == ".npz":
        _columns_not_applicable(columns, path.name, "arrays")
        arrays = _readers.read_npz(path, vocab_size=vocab_size, labels=labels)
        if arrays.kind == "text":
            _texts_need_tensorflow(path.name)
            return _arrays_source(arrays, sequence_length, vocab_size)
    elif suffix in _text.TEXT_SUFFIXES:
        if not has_tensorflow() and _text.peek_form(path, text_column=text_column) == "text":  # before reading it all
            _texts_need_tensorflow(path.name)
        arrays = _tokens_not_applicable(_text.read_file(path, labels=labels, **columns), vocab_size)
        if arrays.kind == "text":
            _texts_need_tensorflow(path.name)
            return _arrays_source(arrays, sequence_length, vocab_size)
    else:
        raise ValueError(
            f"Unsupported data file {path}: expected a .npz, .csv, .tsv or .jsonl file, or a "
            f"folder of images or texts. Received: suffix {path.suffix!r}"
        )
    return _arrays_source(arrays, sequence_length)


def _texts_need_tensorflow(what):
    """Texts become token ids with Keras's TextVectorization, which runs on TensorFlow alone."""
    require_tensorflow(f"Text data ({what}; Keras's TextVectorization)")


def _tokens_not_applicable(arrays, vocab_size):
    if arrays.kind != "text" and vocab_size is not None:
        not_applicable("vocab_size", vocab_size, pathlib.Path(arrays.source).name, arrays.kind)
    return arrays


def _columns_not_applicable(columns, name, holds):
    for arg, value in columns.items():
        if value is not None:
            raise ValueError(
                f"{arg} applies to CSV, TSV and JSON Lines files; {name!r} holds {holds}. Received: {arg}={value!r}"
            )


def _arrays_source(arrays, sequence_length, max_tokens=None) -> Source:
    return Source(
        name=arrays.name,
        kind=arrays.kind,
        shape=tuple(int(d) for d in arrays.x_train.shape[1:]),
        vocab_size=arrays.vocab_size,
        has_test=arrays.x_test is not None,
        sequence_length=sequence_length,
        arrays=arrays,
        max_tokens=max_tokens if arrays.kind == "text" else None,
    )
