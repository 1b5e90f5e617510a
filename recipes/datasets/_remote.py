"""Finds the files of the named data sets in the Keras cache, or downloads them there.

The cache is the one `keras.datasets` uses (`$KERAS_HOME/datasets`, else
`~/.keras/datasets`), with the same file names, so files a user already has are reused.
Files are checked against the hashes `keras.datasets` uses (Fashion-MNIST, which Keras
does not check, against the MD5s its authors publish).

Unlike `keras.utils.get_file`, a cached file whose hash does not match is reported and
left as it is, never downloaded over; and a download goes to a hidden staging folder
first, so a failed or interrupted one leaves nothing behind in the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import shutil
import tempfile

import keras

from recipes._home import keras_home


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One file of a named data set.

    Attributes:
        fname: its name in the cache, as `keras.datasets` names it.
        origin: the URL it is downloaded from.
        file_hash: sha256 (64 hex digits) or md5 (32), or `None` to skip the check.
        subdir: folder under `<cache>/datasets/` that holds it.
        aliases: names other Keras versions gave the same file; found, never written.
    """

    fname: str
    origin: str
    file_hash: str | None
    subdir: str = ""
    aliases: tuple[str, ...] = ()


_GCS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FASHION_MD5 = {  # published in github.com/zalandoresearch/fashion-mnist
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
}

# Data set name -> its files. Tests replace entries (hashes, origins) with monkeypatch.
REMOTE_FILES: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": (
        RemoteFile("mnist.npz", _GCS + "mnist.npz", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),
    ),
    "fashion_mnist": tuple(RemoteFile(f, _GCS + f, md5, subdir="fashion-mnist") for f, md5 in _FASHION_MD5.items()),
    # tf.keras and Keras < 3.6 saved the archive as `<dir>.tar.gz`, later Keras as `<dir>-target_archive`.
    "cifar10": (
        RemoteFile(
            "cifar-10-batches-py.tar.gz",
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            aliases=("cifar-10-batches-py-target_archive",),
        ),
    ),
    "cifar100": (
        RemoteFile(
            "cifar-100-python.tar.gz",
            "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
            "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
            aliases=("cifar-100-python-target_archive",),
        ),
    ),
    "imdb": (
        RemoteFile("imdb.npz", _GCS + "imdb.npz", "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"),
    ),
}


# IMDB as text: the archive keras-io's text classification examples download with
# `keras.utils.get_file("aclImdb_v1.tar.gz", IMDB_ARCHIVE.origin, untar=True)` (no hash published, none
# checked), or the folder extracted from it: Keras 3.6+ extracts to `aclImdb_v1_extracted/`, tf.keras
# (which saved the archive as `aclImdb_v1.tar.gz.tar.gz`) into the cache itself. Found, never downloaded:
# `"imdb"` downloads `imdb.npz`.
IMDB_ARCHIVE = RemoteFile(
    "aclImdb_v1.tar.gz",
    "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    None,
    aliases=("aclImdb_v1.tar.gz.tar.gz",),
)
IMDB_FOLDERS = ("aclImdb", "aclImdb_v1/aclImdb", "aclImdb_v1_extracted/aclImdb")


def datasets_dir(cache_dir=None) -> pathlib.Path:
    """`<cache_dir>/datasets`; `cache_dir` defaults to `$KERAS_HOME`, else `~/.keras`."""
    return keras_home(cache_dir) / "datasets"


def file_hash(path, algorithm: str) -> str:
    hasher = hashlib.sha256() if algorithm == "sha256" else hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _mismatch(path, remote: RemoteFile) -> str | None:
    """Returns a description of the hash mismatch of `path`, or `None` if it matches."""
    if remote.file_hash is None:
        return None
    algorithm = "sha256" if len(remote.file_hash) == 64 else "md5"
    actual = file_hash(path, algorithm)
    if actual == remote.file_hash.lower():
        return None
    return f"its {algorithm} is {actual}, expected {remote.file_hash}"


def fetch(dataset: str, remote: RemoteFile, cache_dir=None) -> pathlib.Path:
    """Returns the path of `remote` in the cache, downloading it if it is not there.

    Raises:
        ValueError: if the cached (or the downloaded) file does not match its hash.
            A cached file is left untouched; a downloaded one is not kept.
        FileNotFoundError: if the file is not cached and cannot be downloaded.
    """
    path = find(remote, cache_dir)
    if path is None:
        return _download(dataset, remote, datasets_dir(cache_dir) / remote.subdir)
    problem = _mismatch(path, remote)
    if problem:
        raise ValueError(
            f"The cached file {path} of the {dataset!r} data set is corrupted or "
            f"incomplete: {problem}. It was left as it is; move or delete it to "
            f"download it again from {remote.origin}."
        )
    return path


def find(remote: RemoteFile, cache_dir=None) -> pathlib.Path | None:
    """The cached copy of `remote` (under any of its names), unchecked, or `None`."""
    folder = datasets_dir(cache_dir) / remote.subdir
    for name in (remote.fname, *remote.aliases):
        if (folder / name).is_file():
            return folder / name
    return None


def _download(dataset, remote, folder):
    target = folder / remote.fname

    def not_found(reason):
        return FileNotFoundError(
            f"The {dataset!r} data set needs {remote.fname}, which is not in {folder}, and "
            f"downloading it failed ({reason}). Download {remote.origin} and save it as "
            f"{target}, or point cache_dir= (or KERAS_HOME) at the folder holding datasets/."
        )

    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{remote.fname}.", suffix=".part", dir=folder)
    except OSError as e:
        raise not_found(f"cannot write to the cache: {e}") from None
    try:
        try:
            staged = keras.utils.get_file(remote.fname, origin=remote.origin, cache_dir=staging, cache_subdir=".")
        except Exception as e:  # get_file wraps urllib's errors in a bare Exception
            raise not_found(" ".join(str(e).split()) or type(e).__name__) from None
        problem = _mismatch(staged, remote)
        if problem:
            raise ValueError(
                f"The file downloaded from {remote.origin} for the {dataset!r} "
                f"data set is corrupted: {problem}. It was not kept; try again."
            )
        os.replace(staged, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
