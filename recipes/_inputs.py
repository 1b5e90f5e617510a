"""Raw inputs read from files for a run's model (`read_inputs`), made into what it takes by the
run's `recipes.preprocessing.Preprocessing`.

Readers: image files (.png, .jpg, .jpeg, .bmp, .gif, 8-bit, any size), folders of them
(searched recursively, in sorted order), `.npz` files (`x_test`, else `x`; in the units of
the run's data, 0..`raw_max`) and `.csv` files of features (one example a row; a `label`
column, or a last column beyond the run's features, is ignored).

A run trained on texts (`pre.kind == "text"`) takes texts instead (`_read_texts`): `.csv`, `.tsv`
and `.jsonl` files (one text a record, named `<path>:<line>`, read by `datasets._text`'s readers with
the run's text column, else one found as training finds it; a label column is ignored), `.txt` files
(one text each), folders of `.txt` files (recursively, in sorted order), and raw texts: an argument
that is not a path, unless it looks like one (a known suffix, or a path separator and no spaces),
which fails as a missing file does, so a mistyped file name is never classified as a sentence.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import sys

import numpy as np

from recipes._optional import has_tensorflow
from recipes.errors import first_line

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # as datasets._pipelines.IMAGE_FORMATS
IMAGE_RAW_MAX = 255.0  # image files are decoded to 8 bits


@dataclasses.dataclass
class Inputs:
    """Raw inputs read from files: `names[i]` labels the example `x[i]` in the output."""

    names: list
    x: np.ndarray


def read_inputs(paths, pre, *, progress=None) -> Inputs:
    """Reads every input path and makes it into the model's input with `pre`.

    Args:
        paths: image files, folders of images, `.npz` or `.csv` files (a list; at least one); for a
            run trained on texts, `.csv`/`.tsv`/`.jsonl`/`.txt` files, folders of `.txt` files and
            raw texts (see the module's docstring).
        pre: the run's `Preprocessing`.
        progress: a callable `(done, total, where)` told after each image (or `.txt` file) of a folder.

    Raises:
        ValueError: one line naming the path and what is wrong with it.
    """
    if isinstance(paths, (str, pathlib.Path)):
        paths = [paths]
    if not paths:
        raise ValueError("inputs must name at least one file or folder. Received: inputs=[]")
    if pre.kind == "text":
        return _read_texts(paths, pre, progress=progress)
    names, parts = [], []
    for raw in paths:
        path = _existing(raw)
        if path is None:
            raise ValueError(f"Input {str(raw)!r} does not exist. Received: inputs={str(raw)!r}")
        suffix = path.suffix.lower()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_FORMATS)
            if not files:
                raise ValueError(
                    f"Input folder {str(raw)!r} holds no images ({', '.join(IMAGE_FORMATS)}). "
                    f"Received: inputs={str(raw)!r}"
                )
            _needs_images(pre, raw)
            for i, f in enumerate(files, start=1):
                names.append(str(f))
                parts.append(_image_file(f, pre))
                if progress is not None:
                    progress(i, len(files), str(raw))
        elif suffix in IMAGE_FORMATS:
            _needs_images(pre, raw)
            names.append(str(path) if str(raw) == str(path) else str(raw))
            parts.append(_image_file(path, pre))
        elif suffix == ".npz":
            x = _npz(path)
            names += [f"{raw}[{i}]" for i in range(len(x))]
            parts.append(_named(pre.transform, x, raw))
        elif suffix == ".csv":
            x = _csv(path, pre)
            names += [f"{raw}:{row}" for row in x[1]]
            parts.append(_named(pre.transform, x[0], raw))
        else:
            raise ValueError(
                f"Cannot read input {str(raw)!r}: expected an image ({', '.join(IMAGE_FORMATS)}), a folder of "
                f"images, a .npz or a .csv. Received: suffix {path.suffix!r}"
            )
    return Inputs(names, np.concatenate(parts) if parts else np.zeros((0, *pre.input_shape), np.float32))


def _existing(raw) -> pathlib.Path | None:
    """`raw` as an existing path (`~` expanded), else `None`: also for what no file can be named
    (too long a name, a NUL byte, `~user` of no user), which a raw text may be."""
    try:
        path = pathlib.Path(raw).expanduser()
        return path if path.exists() else None
    except (OSError, ValueError, RuntimeError):
        return None


def _named(fn, x, source):
    try:
        return fn(x)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def _needs_images(pre, raw):
    if pre.kind != "image":
        raise ValueError(
            f"The run trained on {'token ids' if pre.kind == 'tokens' else 'feature rows'} ({pre.dataset}), "
            f"not images: give a .npz or .csv. Received: inputs={str(raw)!r}"
        )


def _image_file(path, pre) -> np.ndarray:
    """One image file -> the model's input `(1, ...)`, decoded as the training folders are: with
    TensorFlow where it is installed, else with Pillow (as the PyDataset engine decodes them)."""
    colour_only = path.suffix.lower() in (".gif", ".bmp") and pre.channels == 1
    # decoded to the run's channels as image_dataset_from_directory does; GIF/BMP decode
    # in colour only, so they are converted to grey by the transform
    channels = 3 if colour_only else pre.channels
    if has_tensorflow():
        from recipes.datasets._pipelines import _decode

        image = _decode(path, channels).numpy()
    else:
        from recipes.datasets._images import decode

        image = decode(path, channels)
    return _named(lambda x: pre.transform(x, raw_max=IMAGE_RAW_MAX), image[None], str(path))


def _npz(path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            key = "x_test" if "x_test" in keys else "x" if "x" in keys else None
            if key is None:
                raise ValueError(
                    f"{path} has no x_test or x array to predict on. Found: {', '.join(keys) or 'no arrays'}"
                )
            return data[key]
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"Could not read {path} as .npz: {first_line(e)[:200]}") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"Could not read {path} as .npz: {e}") from None


def _csv(path, pre):
    """Feature rows of a CSV: a header row is skipped, a `label` column (or a last column
    beyond the run's features) dropped. Returns `(x, line numbers)`."""
    import csv

    if pre.kind != "table":
        raise ValueError(
            f"The run trained on {'images' if pre.kind == 'image' else 'token ids'} ({pre.dataset}); a .csv holds "
            f"feature rows. Received: inputs={str(path)!r}"
        )
    features = int(np.prod(pre.input_shape))
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(i, row) for i, row in enumerate(csv.reader(f), start=1) if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"Could not read {path}: {e}") from None
    if not rows:
        raise ValueError(f"{path} has no rows.")
    header = None
    if not all(_is_number(c) for c in rows[0][1]):
        header, rows = [c.strip() for c in rows[0][1]], rows[1:]
    if not rows:
        raise ValueError(f"{path} has no data rows.")
    width = len(header or rows[0][1])
    drop = header.index("label") if header and "label" in header else width - 1 if width == features + 1 else None
    if width - (drop is not None) != features:
        raise ValueError(
            f"{path} has {width} columns; the run takes {features} features a row (and an optional label "
            f"column). Received: {width} columns"
        )
    from recipes.datasets._readers import numeric_table

    table = numeric_table(path, rows, width)
    if drop is not None:
        table = np.delete(table, drop, axis=1)
    return table, [line for line, _ in rows]


def _is_number(text) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# ----------------------------------------------------------------------------- texts

# Arguments of these endings name files, whether they exist or not: a missing one is a mistyped file
# name, never a text to classify.
PATH_SUFFIXES = (".csv", ".tsv", ".jsonl", ".txt", ".npz", *IMAGE_FORMATS)
TEXTS_TAKEN = ".txt files, folders of them, .csv/.tsv/.jsonl files or the texts themselves"


def looks_like_path(text) -> bool:
    """Whether an argument that is not a path names one all the same: it ends in a file suffix
    (`PATH_SUFFIXES`), or holds a path separator and no whitespace."""
    text = str(text).strip()
    if text.lower().endswith(PATH_SUFFIXES):
        return True
    separators = {"/", os.sep, os.altsep} - {None}
    return any(s in text for s in separators) and not any(c.isspace() for c in text)


def _read_texts(paths, pre, *, progress=None) -> Inputs:
    """The inputs of a run trained on texts (see the module's docstring), as its token ids."""
    from recipes.datasets import _text

    names, texts = [], []
    for raw in map(str, paths):
        if not raw.strip():
            raise ValueError(
                f"Input {raw!r} is an empty text; give a text to classify, or {TEXTS_TAKEN}. Received: inputs={raw!r}"
            )
        path = _existing(raw)
        if path is None:
            if looks_like_path(raw):
                raise ValueError(f"Input {raw!r} does not exist. Received: inputs={raw!r}")
            names.append(raw)
            texts.append(raw)
            continue
        suffix = path.suffix.lower()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".txt")
            if not files:
                raise ValueError(
                    f"Input folder {raw!r} holds no .txt files; the run trained on texts ({pre.dataset}) and takes "
                    f"{TEXTS_TAKEN}. Received: inputs={raw!r}"
                )
            for i, f in enumerate(files, start=1):
                names.append(str(f))
                texts.append(_text.read_text_file(f))
                if progress is not None:
                    progress(i, len(files), raw)
        elif suffix == ".txt":
            names.append(raw)
            texts.append(_text.read_text_file(path))
        elif suffix in _text.TEXT_SUFFIXES:
            records = _jsonl_texts(path, pre) if suffix == ".jsonl" else _table_texts(path, pre)
            names += [f"{raw}:{line}" for line, _ in records]
            texts += [text for _, text in records]
        else:
            what = "images" if suffix in IMAGE_FORMATS else "arrays" if suffix == ".npz" else f"{suffix or 'no'} files"
            raise ValueError(
                f"Cannot read input {raw!r}: the run trained on texts ({pre.dataset}), not {what}; it takes "
                f"{TEXTS_TAKEN}. Received: suffix {path.suffix!r}"
            )
    return Inputs(names, _named(pre.transform, texts, "texts"))


def _table_texts(path, pre):
    """A CSV/TSV file's texts, `[(line, text)]`, read as training reads one: the run's text column
    when the file has it, else one by name (`TEXT_NAMES`), else the column of the longest texts; a
    label column is ignored. A file of one column whose first row names no known column has no header
    (a list of texts keeps its first one)."""
    from recipes.datasets import _text

    chosen = _text.column_setting(pre.text_from)
    every = _text.read_rows(path)
    header, rows = _text.split_header(every)
    known = {n.lower() for n in (*_text.TEXT_NAMES, *_text.LABEL_NAMES, *([chosen] if isinstance(chosen, str) else []))}
    if header is not None and len(header) == 1 and header[0].lower() not in known:
        header, rows = None, every
    if not rows:
        raise ValueError(f"{path} has no data rows.")
    width = _text.row_width(path, header, rows)
    if isinstance(chosen, str) and header is not None and chosen in header:
        text = header.index(chosen)
    elif isinstance(chosen, int) and header is None and 1 <= chosen <= width:
        text = chosen - 1
    else:
        text = _text.find_column(path, header, width, None, "text_column", _text.TEXT_NAMES)
    if text is None:
        label = _text.find_column(path, header, width, None, "label_column", _text.LABEL_NAMES)
        wordy = _text.wordy_columns(rows, width, label)
        if not wordy:
            found = ", ".join(repr(h) for h in header) if header else f"{width} column{'s' * (width > 1)} of numbers"
            raise ValueError(
                f"{path} holds no column of text; the run trained on texts ({pre.dataset}). Found: {found}"
            )
        text = _text.longest_column(rows, wordy)
    return _text.column_texts(path, header, rows, text)


def _jsonl_texts(path, pre):
    """A JSON Lines file's texts, `[(line, text)]`: the run's key when the file has it, else one by
    name (`TEXT_NAMES`), else the key of the longest strings; checked as training checks them."""

    from recipes.datasets import _text

    records = _text.json_records(path)
    keys = list(dict.fromkeys(k for _, record in records for k in record))
    chosen = _text.column_setting(pre.text_from)
    text = chosen if isinstance(chosen, str) and chosen in keys else None
    text = text or _text.find_key(path, keys, None, "text_column", _text.TEXT_NAMES)
    if text is None:
        label = _text.find_key(path, keys, None, "label_column", _text.LABEL_NAMES)
        strings = [k for k in keys if k != label and any(isinstance(r.get(k), str) for _, r in records)]
        if not strings:
            raise ValueError(f"{path}: no key holds text. Found: {', '.join(map(repr, keys))}")
        text = max(strings, key=lambda k: sum(len(r.get(k) or "") for _, r in records if isinstance(r.get(k), str)))
    out = []
    for number, record in records:
        value = record.get(text)
        if not isinstance(value, str) or not value.strip():
            what = "missing" if value is None else "empty" if isinstance(value, str) else f"not a string ({value!r})"
            raise ValueError(f"{path}, line {number}: the text ({text!r}) is {what}.")
        out.append((number, value))
    return out


def terminal_progress(stream=sys.stderr):
    """A `progress` callable for `read_inputs` drawing a bar on a terminal (nothing elsewhere)."""

    def show(done, total, where):
        if not stream.isatty():
            return
        width = 30
        filled = width * done // total
        stream.write(f"\rreading {where} [{'=' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show
