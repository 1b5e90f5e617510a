"""The named data sets: the bundled digits, MNIST, Fashion-MNIST, CIFAR-10/100 and IMDB,
read from the files `keras.datasets` caches (or downloads), checked like every other source."""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import pathlib
import site
import sys
import sysconfig
import tarfile
import zlib

import keras
import numpy as np

from recipes.datasets import _readers, _remote, _text
from recipes.datasets._npz import _load_npz, _unpickle
from recipes.datasets._readers import Arrays, _checked

DIGITS = "digits.npz"
# The raw value that maps to the top of `value_range`, per named image data set.
RAW_MAX = {"digits": 16.0, "mnist": 255.0, "fashion_mnist": 255.0, "cifar10": 255.0, "cifar100": 255.0}
IMDB_START, IMDB_OOV, IMDB_INDEX_FROM = 1, 2, 3  # the keras.datasets.imdb conventions
IMDB_CLASSES = ("neg", "pos")  # aclImdb's class folders: label 0 is negative

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def bundled_path(fname: str = DIGITS) -> pathlib.Path:
    """Finds a file shipped in `data/`: `$RECIPES_DATA_DIR`, the source checkout, then
    the `share/recipes/data` folders a (non-editable, or `--user`) install writes."""
    folders = [pathlib.Path(os.environ["RECIPES_DATA_DIR"])] if os.environ.get("RECIPES_DATA_DIR") else []
    folders.append(pathlib.Path(__file__).resolve().parents[2] / "data")
    for prefix in (sys.prefix, sysconfig.get_path("data"), site.USER_BASE):
        if prefix:
            folders.append(pathlib.Path(prefix) / "share" / "recipes" / "data")
    folders = list(dict.fromkeys(folders))
    for folder in folders:
        if (folder / fname).is_file():
            return folder / fname
    raise FileNotFoundError(
        f"The bundled data file {fname} was not found. Looked in: {', '.join(map(str, folders))}. "
        f"Reinstall recipes, or set RECIPES_DATA_DIR to a folder holding {fname} "
        f"(the source repository has it in data/)."
    )


def read_named(name, *, cache_dir, vocab_size, sequence_length) -> Arrays:
    if name == "digits":
        path = bundled_path()
        return _readers.read_npz(
            path,
            name="digits",
            class_names=tuple(map(str, range(10))),
            raw_max=RAW_MAX["digits"],
            image_shape=(8, 8, 1),
        )
    if name in ("cifar10", "cifar100"):
        # the archive, checked; else a folder Keras extracted (never checked, by Keras either)
        archive = _remote.REMOTE_FILES[name][0]
        extracted = None if _remote.find(archive, cache_dir) else _cifar_extracted(name, cache_dir)
        return _read_cifar(name, extracted or _remote.fetch(name, archive, cache_dir))
    if name == "imdb":
        text = imdb_text_path(cache_dir)
        if text is not None:
            return _read_imdb_text(text)
    files = [_remote.fetch(name, remote, cache_dir) for remote in _remote.REMOTE_FILES[name]]
    if name == "mnist":
        return _readers.read_npz(
            files[0], name=name, class_names=tuple(map(str, range(10))), raw_max=RAW_MAX[name], image_shape=(28, 28, 1)
        )
    if name == "fashion_mnist":
        return _read_fashion(files)
    return _read_imdb(files[0], vocab_size=vocab_size, sequence_length=sequence_length)


def _read_fashion(files):
    arrays = {}
    for key, path in zip(("y_train", "x_train", "y_test", "x_test"), files):
        images = key.startswith("x")
        try:
            with gzip.open(path, "rb") as f:
                raw = f.read()
        except (OSError, EOFError) as e:
            raise ValueError(f"Could not read {path}: not a valid gzip file ({e}).") from None
        magic, header = (2051, 16) if images else (2049, 8)
        if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
            raise ValueError(
                f"{path} is not an IDX {'image' if images else 'label'} file (expected magic number {magic})."
            )
        data = np.frombuffer(raw, np.uint8, offset=header)
        arrays[key] = data.reshape(-1, 28, 28, 1) if images else data
    return _checked(
        path.parent,
        "fashion_mnist",
        "image",
        **arrays,
        class_names=FASHION_CLASSES,
        raw_max=RAW_MAX["fashion_mnist"],
        image_shape=(28, 28, 1),
    )


_CIFAR = {  # name -> (top folder, training batches, test batch, meta file, label key, names key)
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        "test_batch",
        "batches.meta",
        b"labels",
        b"label_names",
    ),
    "cifar100": ("cifar-100-python", ["train"], "test", "meta", b"fine_labels", b"fine_label_names"),
}


def _cifar_extracted(name, cache_dir):
    """A folder of CIFAR batches extracted by tf.keras / Keras < 3.6 (`<top>/`) or by
    later Keras (`<top>-target/<top>/`), or `None`."""
    top, train, test, meta, *_ = _CIFAR[name]
    for folder in (_remote.datasets_dir(cache_dir) / top, _remote.datasets_dir(cache_dir) / f"{top}-target" / top):
        if all((folder / m).is_file() for m in (*train, test, meta)):
            return folder
    return None


def _read_cifar(name, source):
    """Reads the CIFAR python pickles from the .tar.gz archive or an extracted folder."""
    top, train_parts, test_part, meta_part, label_key, names_key = _CIFAR[name]
    members = (*train_parts, test_part, meta_part)
    try:
        if source.is_dir():
            blobs = {m: (source / m).read_bytes() for m in members}
        else:
            with tarfile.open(source, "r:gz") as tar:
                blobs = {m: tar.extractfile(f"{top}/{m}").read() for m in members}
    except (tarfile.TarError, KeyError, OSError, EOFError) as e:
        raise ValueError(f"Could not read {source}: not a complete CIFAR archive ({e}).") from None
    pickles = {m: _unpickle(io.BytesIO(blob), f"{source}:{m}") for m, blob in blobs.items()}
    train, test, meta = [pickles[m] for m in train_parts], pickles[test_part], pickles[meta_part]

    def xy(batches):
        try:
            x = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32)
            y = np.concatenate([np.asarray(b[label_key]) for b in batches])
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(f"{source} does not hold CIFAR batches ({e}).") from None
        return x.transpose(0, 2, 3, 1), y

    names = meta.get(names_key) if isinstance(meta, dict) else None
    class_names = (
        CIFAR10_CLASSES
        if name == "cifar10" or not names
        else tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    )
    (x_train, y_train), (x_test, y_test) = xy(train), xy([test])
    return _checked(
        source,
        name,
        "image",
        x_train,
        y_train,
        x_test,
        y_test,
        class_names=class_names,
        raw_max=RAW_MAX[name],
        image_shape=(32, 32, 3),
    )


# What zipfile, zlib, lzma and np.lib.format raise for a damaged archive or member: a
# CRC mismatch, a broken deflate stream, a cut file, an unsupported compression method
# (NotImplementedError), an encrypted member (RuntimeError), a name that is not UTF-8 ...
def _read_imdb(path, *, vocab_size, sequence_length):
    try:
        f = _load_npz(path, objects=True)
        raw = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as e:
        raise ValueError(f"Could not read {path}: not a valid imdb.npz (no array {e}).") from None

    def tokens(reviews):
        # Keras's layout: 1 starts a review, 2 is out of vocabulary, word i is i + 3.
        out = []
        for review in reviews:
            t = np.asarray(review, dtype=np.int64) + IMDB_INDEX_FROM
            t[t >= vocab_size] = IMDB_OOV
            out.append(np.concatenate([[IMDB_START], t]))
        return keras.utils.pad_sequences(out, maxlen=sequence_length, dtype="int32", padding="pre", truncating="pre")

    return _checked(
        path,
        "imdb",
        "sequence",
        tokens(raw["x_train"]),
        raw["y_train"],
        tokens(raw["x_test"]),
        raw["y_test"],
        class_names=("negative", "positive"),
        vocab_size=vocab_size,
    )


# ----------------------------------------------------------------------------- IMDB as text


def imdb_text_path(cache_dir) -> pathlib.Path | None:
    """The aclImdb archive (or a folder extracted from it) that `"imdb"` reads as text, or `None`:
    only when no `imdb.npz` (token ids, what `"imdb"` has always read) is cached; the archive
    before a folder (an extraction may have been cut short, the download is whole)."""
    if _remote.find(_remote.REMOTE_FILES["imdb"][0], cache_dir) is not None:
        return None
    archive = _remote.find(_remote.IMDB_ARCHIVE, cache_dir)
    if archive is not None:
        return archive
    root = _remote.datasets_dir(cache_dir)
    for folder in _remote.IMDB_FOLDERS:
        if all((root / folder / split / label).is_dir() for split in ("train", "test") for label in IMDB_CLASSES):
            return root / folder
    return None


def _read_imdb_text(source) -> Arrays:
    """The reviews of `aclImdb/{train,test}/{neg,pos}/*.txt`, from the archive (streamed) or an
    extracted folder, as texts: `train/unsup` (unlabelled) and the other files are left out."""
    if source.is_dir():
        arrays = _text.read_text_folder(source)
        if arrays.class_names != IMDB_CLASSES:
            raise ValueError(
                f"{source}: expected the aclImdb classes {', '.join(IMDB_CLASSES)} in train/ and test/. "
                f"Received: {', '.join(arrays.class_names)}"
            )
        return dataclasses.replace(arrays, name="imdb")
    reviews = {(split, label): [] for split in ("train", "test") for label in IMDB_CLASSES}
    unused = set()
    try:
        # gzip's own reader, read to its end: a download cut at a member's boundary ends the tar stream
        # quietly, but not the gzip stream (EOFError), and a damaged one fails its CRC
        with gzip.open(source, "rb") as compressed, tarfile.open(fileobj=compressed, mode="r|") as tar:
            for member in tar:
                parts = member.name.split("/")
                if not member.isfile() or len(parts) != 4 or not parts[3].endswith(".txt"):
                    continue  # imdb.vocab, README, train/*.feat, train/urls_*.txt, ...
                key = (parts[1], parts[2])
                if key not in reviews:
                    unused.add(f"{parts[1]}/{parts[2]} (not {' or '.join(IMDB_CLASSES)})")
                    continue
                if member.size > _text.MAX_FILE:
                    raise ValueError(
                        f"{source}: {member.name}: {member.size:,} bytes, too long for one review "
                        f"(at most {_text.MAX_FILE:,})."
                    )
                reviews[key].append(
                    (parts[3], _text.decoded(tar.extractfile(member).read(), f"{source}: {member.name}"))
                )
            while compressed.read(1 << 20):
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ValueError(f"Could not read {source}: not a complete aclImdb archive ({reason}).") from None
    for (split, label), found in reviews.items():
        if not found:
            raise ValueError(f"{source} holds no aclImdb/{split}/{label}/*.txt reviews: not the aclImdb archive.")

    def split_arrays(split):
        texts, y = [], []
        for i, label in enumerate(IMDB_CLASSES):  # in file-name order, as an extracted folder is read
            texts += [text for _, text in sorted(reviews[(split, label)])]
            y += [i] * len(reviews[(split, label)])
        return _text.strings(texts), np.array(y, np.int32)

    (x_train, y_train), (x_test, y_test) = split_arrays("train"), split_arrays("test")
    return Arrays(
        name="imdb",
        source=str(source),
        kind="text",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=IMDB_CLASSES,
        text_from=".txt files, one example each",
        label_from="class folders",
        unused=tuple(sorted(unused)),
    )
