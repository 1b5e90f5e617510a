"""Raw inputs read from files for a run's model (`read_inputs`), made into what it takes by the
run's `recipes.preprocessing.Preprocessing`.

Readers: image files (.png, .jpg, .jpeg, .bmp, .gif, 8-bit, any size), folders of them
(searched recursively, in sorted order), `.npz` files (`x_test`, else `x`; in the units of
the run's data, 0..`raw_max`) and `.csv` files of features (one example a row; a `label`
column, or a last column beyond the run's features, is ignored).
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys

import numpy as np

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
        paths: image files, folders of images, `.npz` or `.csv` files (a list; at least one).
        pre: the run's `Preprocessing`.
        progress: a callable `(done, total, where)` told after each image of a folder.

    Raises:
        ValueError: one line naming the path and what is wrong with it.
    """
    if isinstance(paths, (str, pathlib.Path)):
        paths = [paths]
    if not paths:
        raise ValueError("inputs must name at least one file or folder. Received: inputs=[]")
    names, parts = [], []
    for raw in paths:
        path = pathlib.Path(raw).expanduser()
        if not path.exists():
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
    """One image file -> the model's input `(1, ...)`, decoded as the training folders are."""
    from recipes.datasets._pipelines import _decode

    colour_only = path.suffix.lower() in (".gif", ".bmp") and pre.channels == 1
    # decoded to the run's channels as image_dataset_from_directory does; GIF/BMP decode
    # in colour only, so they are converted to grey by the transform
    image = _decode(path, 3 if colour_only else pre.channels).numpy()
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
