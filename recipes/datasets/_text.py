"""Text data sets, read and checked: CSV/TSV files, JSON Lines, folders of `.txt` files per class and
folders of split files; class labels as names or integers.

Every reader returns an `_readers.Arrays` of kind `"text"`: `x_*` are object arrays of `str`, one
example each, and `y_*` int32 labels into `class_names`. A bad file fails here, before any pipeline
exists, with one line naming the file and the line (a folder's file by its path), and nothing is
written anywhere. What a text becomes for the model (its vocabulary and length) is decided later, on
the training split alone (`_vocabulary`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import pathlib

import numpy as np

from recipes.datasets._readers import Arrays, is_number, labels_to_ids, numeric_table

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
TEXT_SUFFIXES = (*TABLE_SUFFIXES, ".jsonl")
# One example's line (or a folder's one file) is at most this long: a corpus whose "line" runs to
# gigabytes is not lines of examples, and reading it whole would take the machine's memory first.
MAX_LINE = 1_000_000  # characters (CSV, JSON Lines)
MAX_FILE = 16 * 2**20  # bytes (a .txt file of a class folder)
# Columns (or JSON keys) found by name when not chosen with text_column / label_column, in this order.
TEXT_NAMES = (
    "text",
    "review",
    "sentence",
    "content",
    "body",
    "message",
    "comment",
    "document",
    "tweet",
    "description",
    "abstract",
    "question",
    "title",
)
LABEL_NAMES = ("label", "labels", "class", "category", "target", "sentiment", "y")
SPLIT_NAMES = {"train": ("train", "training"), "test": ("test", "testing")}
UNUSED_SPLITS = ("val", "valid", "validation", "dev")


@contextlib.contextmanager
def _field_limit(limit):
    """The csv module's field size limit raised for one read (it is process-wide)."""
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def checked_lines(path, f):
    """The lines of a binary file as text, each checked: UTF-8, at most `MAX_LINE` characters.

    Read with a limit, so a 2 GB line is found after reading `MAX_LINE` of it, not all of it."""
    number = 0
    while True:
        raw = f.readline(4 * MAX_LINE + 4)
        if not raw:
            return
        number += 1
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # Excel writes a byte-order mark
            raw = raw[3:]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"{path}, line {number}: not UTF-8 text; save the file as UTF-8. Received: byte "
                f"{raw[e.start : e.start + 1].hex()} at column {len(raw[: e.start].decode('utf-8', 'replace')) + 1}"
            ) from None
        if len(line.rstrip("\r\n")) > MAX_LINE:
            raise ValueError(
                f"{path}, line {number}: longer than {MAX_LINE:,} characters, too long for one example "
                f"(a file without line breaks, or not {path.suffix.lstrip('.').upper() or 'text'}?)"
            )
        yield line


def read_rows(path, limit=None):
    """A CSV or TSV file's non-empty records: `[(first line number, cells)]`, quoted fields
    that span lines included (the first `limit` only, when given). Broken quoting fails with the
    line its record starts on."""
    path = pathlib.Path(path)
    delimiter = TABLE_SUFFIXES.get(path.suffix.lower(), ",")
    rows = []
    try:
        with open(path, "rb") as f, _field_limit(MAX_LINE):
            reader = csv.reader(checked_lines(path, f), delimiter=delimiter, strict=True)
            start = 1
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    reason = str(e)
                    if "field larger than field limit" in reason:
                        reason = f"a field runs past {MAX_LINE:,} characters: a quote opened here is never closed"
                    elif "unexpected end of data" in reason:
                        reason = "a quote opened here is never closed"
                    raise ValueError(
                        f"{path}, line {start}: broken CSV quoting ({reason}); a field that holds the delimiter, "
                        f'quotes or line breaks must be in double quotes, with its own quotes doubled ("").'
                    ) from None
                if any(cell.strip() for cell in row):
                    rows.append((start, row))
                    if limit is not None and len(rows) >= limit:
                        break
                start = reader.line_num + 1
    except OSError as e:
        raise ValueError(f"Could not read {path}: {e.strerror or e}.") from None
    return rows


def split_header(rows):
    """`(header or None, data rows)`: the first row is a header when none of its cells is a number."""
    if rows and not any(is_number(cell) for cell in rows[0][1]):
        return [cell.strip() for cell in rows[0][1]], rows[1:]
    return None, rows


def find_column(path, header, width, chosen, setting, names):
    """The index of the column chosen by `setting` (a header name, or a number from 1), else the
    first of `names` in the header, else `None`."""
    if chosen is not None:
        if header is not None and chosen in header:
            return header.index(chosen)
        if isinstance(chosen, int) and not isinstance(chosen, bool) and 1 <= chosen <= width:
            return chosen - 1
        found = ", ".join(repr(h) for h in header) if header else f"no header: columns 1..{width}"
        raise ValueError(f"{path} has no column {chosen!r} ({setting}). Found: {found}")
    if header is not None:
        lowered = [h.lower() for h in header]
        for name in names:
            if name in lowered:
                return lowered.index(name)
    return None


def column_label(header, index):
    return repr(header[index]) if header is not None else f"column {index + 1}"


def row_width(path, header, rows) -> int:
    """The number of columns every record has (the header's, else the first record's), or one line
    naming the first record of another width."""
    width = len(header or rows[0][1])
    for line, row in rows:
        if len(row) != width:
            raise ValueError(
                f"{path}, line {line}: expected {width} columns{', as the header has' if header else ''} (a field "
                f"that holds the delimiter must be in double quotes). Received: {len(row)}"
            )
    return width


def wordy_columns(rows, width, label=None) -> list:
    """The columns (but `label`) that hold text: most of their cells are not numbers (a typo in a
    column of numbers does not make it text)."""
    return [i for i in range(width) if i != label and 2 * sum(not is_number(row[i]) for _, row in rows) > len(rows)]


def longest_column(rows, columns) -> int:
    """Of `columns`, the one of the longest texts in all (the first, on a tie): the text column found by type."""
    return max(columns, key=lambda i: (sum(len(row[i]) for _, row in rows), -i))


def column_texts(path, header, rows, text) -> list:
    """`[(line, text)]` of column `text`, each checked not empty (one line naming the line)."""
    out = []
    for line, row in rows:
        if not row[text].strip():
            raise ValueError(f"{path}, line {line}: the text ({column_label(header, text)}) is empty.")
        out.append((line, row[text]))
    return out


def read_table_or_text(
    path, *, text_column=None, label_column=None, labels=True, limit=None, class_names=None
) -> Arrays:
    """A CSV/TSV file as a table of numbers or as text (see `load_dataset`'s sources); its first
    `limit` records only, when given."""
    path = pathlib.Path(path)
    header, rows = split_header(read_rows(path, limit))
    if not rows:
        raise ValueError(f"{path} has no data rows.")
    width = row_width(path, header, rows)
    label = find_column(path, header, width, label_column, "label_column", LABEL_NAMES)
    text = find_column(path, header, width, text_column, "text_column", TEXT_NAMES)
    if label is not None and label == text:
        raise ValueError(
            f"{path}: the text and the label cannot be one column. Received: {column_label(header, label)}"
        )
    wordy = wordy_columns(rows, width, label)
    if text is None and not [i for i in wordy if i != (width - 1 if label is None else label)]:
        return _table(path, header, rows, width, label, labels, class_names)  # numbers, labels (by name, else last)
    if text is None:
        text = longest_column(rows, wordy)
    if label is None and labels:
        others = [i for i in range(width) if i != text]
        if not others:
            raise ValueError(
                f"{path} has one column, the text; it needs a label column too (or labels=False). "
                f"Received: {column_label(header, text)}"
            )
        label = min(others, key=lambda i: (len({row[i].strip() for _, row in rows}), -i))  # fewest values; last
    texts = [t for _, t in column_texts(path, header, rows, text)]
    y = None
    if labels:
        y = _label_cells(
            path, [(line, row[label]) for line, row in rows], column_label(header, label), class_names=class_names
        )
    unused = [column_label(header, i) for i in range(width) if i not in (text, label)]
    return _text_arrays(
        path, texts, y, text_from=column_label(header, text), label_from=column_label(header, label), unused=unused
    )


def _table(path, header, rows, width, label, labels, class_names=None):
    """A CSV of numbers, its label column holding integers or names."""
    if width < 2 and labels:
        raise ValueError(f"{path} needs at least 2 columns (features and a label). Received: {width} column")
    if label is None:
        label = width - 1
    label_cells = [(line, row[label]) for line, row in rows]
    features = [(line, [c for i, c in enumerate(row) if i != label]) for line, row in rows]
    x = numeric_table(path, features, width - 1)
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    bad = np.argwhere(~np.isfinite(x32))  # in float32: 1e40 overflows to inf
    if len(bad):
        row_index, column = bad[0]
        column = column + (column >= label)
        line, cells = rows[row_index]
        raise ValueError(
            f"{path}, line {line}, {'column ' + repr(header[column]) if header else f'column {column + 1}'}: "
            f"features must be finite numbers. Received: {cells[column].strip()!r} ({len(bad)} non-finite "
            f"cells in all)"
        )
    y = (
        _label_cells(path, label_cells, column_label(header, label), one_class=not labels, class_names=class_names)
        if width > 1
        else None
    )
    return Arrays(
        name=path.stem,
        source=str(path),
        kind="table",
        x_train=x32,
        y_train=None if y is None else y[0],
        class_names=None if y is None else y[1],
        text_from=None,
        label_from=None if y is None else column_label(header, label),
    )


def _label_cells(path, cells, column, one_class=False, class_names=None):
    """`(labels int32, class names)` of `[(line, cell)]`: integers 0..K-1 as they are, names sorted
    (one class of names only with `one_class`); with `class_names` (a test file's), indices into them."""
    values = []
    for line, cell in cells:
        value = cell.strip() if isinstance(cell, str) else cell
        if value is None or value == "":
            raise ValueError(f"{path}, line {line}: the label ({column}) is missing.")
        values.append(value)
    return labels_to_ids(
        path, values, where=[line for line, _ in cells], column=column, one_class=one_class, class_names=class_names
    )


def json_records(path) -> list:
    """A JSON Lines file's objects, `[(line number, dict)]`, blank lines skipped; one line naming the
    file and the line for anything else."""
    records = []
    try:
        with open(path, "rb") as f:
            for number, line in enumerate(checked_lines(path, f), start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}, line {number}: not valid JSON ({e.msg}, column {e.colno}).") from None
                if not isinstance(record, dict):
                    raise ValueError(
                        f"{path}, line {number}: each line must be a JSON object. Received: {type(record).__name__}"
                    )
                records.append((number, record))
    except OSError as e:
        raise ValueError(f"Could not read {path}: {e.strerror or e}.") from None
    if not records:
        raise ValueError(f"{path} has no records.")
    return records


def read_jsonl(path, *, text_column=None, label_column=None, labels=True, class_names=None) -> Arrays:
    """JSON Lines: one object a line, its text and label found by key (see `TEXT_NAMES`)."""
    path = pathlib.Path(path)
    records = json_records(path)
    keys = list(dict.fromkeys(k for _, record in records for k in record))
    text = find_key(path, keys, text_column, "text_column", TEXT_NAMES)
    if text is None:
        strings = [k for k in keys if k != label_column and any(isinstance(r.get(k), str) for _, r in records)]
        if not strings:
            raise ValueError(f"{path}: no key holds text. Found: {', '.join(map(repr, keys))}")
        text = max(strings, key=lambda k: sum(len(r.get(k) or "") for _, r in records if isinstance(r.get(k), str)))
    label = find_key(path, keys, label_column, "label_column", LABEL_NAMES) if labels else None
    if labels and label is None:
        others = [k for k in keys if k != text]
        if len(others) != 1:
            raise ValueError(
                f"{path}: no label key ({', '.join(LABEL_NAMES)}); choose one with label_column. "
                f"Found: {', '.join(map(repr, keys))}"
            )
        label = others[0]
    texts, cells = [], []
    for number, record in records:
        value = record.get(text)
        if not isinstance(value, str) or not value.strip():
            what = "missing" if value is None else "empty" if isinstance(value, str) else f"not a string ({value!r})"
            raise ValueError(f"{path}, line {number}: the text ({text!r}) is {what}.")
        texts.append(value)
        if labels:
            cell = record.get(label)
            if isinstance(cell, (dict, list)) or isinstance(cell, float) and not cell.is_integer():
                raise ValueError(
                    f"{path}, line {number}: the label ({label!r}) must be a name or an integer. Received: {cell!r}"
                )
            cells.append((number, str(cell) if isinstance(cell, (bool, int, float)) else cell))
    y = _label_cells(path, cells, repr(label), class_names=class_names) if labels else None
    unused = [repr(k) for k in keys if k not in (text, label)]
    return _text_arrays(path, texts, y, text_from=repr(text), label_from=repr(label) if labels else None, unused=unused)


def find_key(path, keys, chosen, setting, names):
    if chosen is not None:
        if chosen not in keys:
            raise ValueError(f"{path} has no key {chosen!r} ({setting}). Found: {', '.join(map(repr, keys))}")
        return chosen
    lowered = {k.lower(): k for k in keys}
    return next((lowered[n] for n in names if n in lowered), None)


def _text_arrays(path, texts, y, *, text_from, label_from, unused) -> Arrays:
    return Arrays(
        name=path.stem,
        source=str(path),
        kind="text",
        x_train=strings(texts),
        y_train=None if y is None else y[0],
        class_names=None if y is None else y[1],
        text_from=text_from,
        label_from=label_from,
        unused=tuple(unused),
    )


def strings(texts) -> np.ndarray:
    out = np.empty(len(texts), dtype=object)
    out[:] = texts
    return out


# ----------------------------------------------------------------------------- folders


def is_text_folder(root) -> bool:
    """Whether `root` holds text: split files (`train.csv`, ...), or `.txt` files in class folders."""
    root = pathlib.Path(root)
    if split_files(root):
        return True
    tops = [p for p in root.iterdir() if p.is_dir()]
    if sorted(p.name for p in tops) == ["test", "train"]:
        tops = [p for p in (root / "train").iterdir() if p.is_dir()]
    from recipes.datasets._pipelines import IMAGE_FORMATS

    for folder in tops:  # the first class folder with files decides: .txt files, and no image among them
        suffixes = {f.suffix.lower() for f in folder.iterdir() if f.is_file()}
        if suffixes:
            return ".txt" in suffixes and not suffixes & set(IMAGE_FORMATS)
    return False


def split_files(root) -> dict:
    """`{"train": path, "test": path}` of a folder holding `train.csv` (or .tsv, .jsonl) and optionally
    `test` of the same kind; `{}` when it holds no training file."""
    files = {}
    for split, names in SPLIT_NAMES.items():
        for name in names:
            for suffix in TEXT_SUFFIXES:
                path = pathlib.Path(root) / f"{name}{suffix}"
                if path.is_file():
                    files.setdefault(split, path)
    return files if "train" in files else {}


def read_split_files(root, *, text_column=None, label_column=None, labels=True) -> Arrays:
    """A folder of `train.<ext>` and `test.<ext>`: each read as its own file, the test file's labels
    taken by the training file's class names."""
    root = pathlib.Path(root)
    files = split_files(root)
    options = dict(text_column=text_column, label_column=label_column, labels=labels)
    train = read_file(files["train"], **options)
    test = None
    if "test" in files:
        if train.kind == "text":
            options["text_column"] = _unquoted(train.text_from)
        options["label_column"] = _unquoted(train.label_from)
        if labels:  # the test file's labels read as the training file's classes, each checked by its line
            options["class_names"] = train.class_names
        test = read_file(files["test"], **options)
        if test.kind != train.kind:
            raise ValueError(f"{files['test']} holds {test.kind} where {files['train']} holds {train.kind}.")
        if train.kind == "table" and test.x_train.shape[1] != train.x_train.shape[1]:
            raise ValueError(
                f"{files['test']}: expected {train.x_train.shape[1]} features, as {files['train'].name} has. "
                f"Received: {test.x_train.shape[1]}"
            )
    ignored = [p.name for p in root.iterdir() if p.is_file() and p.stem.lower() in UNUSED_SPLITS]
    y_test = None if test is None else test.y_train
    return Arrays(
        name=root.name,
        source=str(root),
        kind=train.kind,
        x_train=train.x_train,
        y_train=train.y_train,
        x_test=None if test is None else test.x_train,
        y_test=y_test,
        class_names=train.class_names,
        text_from=train.text_from,
        label_from=train.label_from,
        unused=train.unused + tuple(f"{name} (the validation split is drawn from train)" for name in ignored),
    )


def column_setting(found):
    """The `text_column`/`label_column` setting that finds again what `Arrays.text_from` (or
    `label_from`) names: a header name, a column number or a key; `None` for other sources."""
    if found is None or not (found[:1] in "'\"" or found.startswith("column ")):
        return None
    return _unquoted(found)


def _unquoted(name):
    if name is None:
        return None
    if name.startswith("column ") and name[7:].isdigit():
        return int(name[7:])
    return name[1:-1] if name[:1] in "'\"" else name


def read_file(path, **options) -> Arrays:
    """A `.csv`, `.tsv` or `.jsonl` file."""
    if pathlib.Path(path).suffix.lower() == ".jsonl":
        return read_jsonl(path, **options)
    return read_table_or_text(path, **options)


def read_text_folder(root, *, labels=True) -> Arrays:
    """A folder of class folders of `.txt` files (one example a file), or of `train/` and `test/`
    laid out that way (aclImdb); a class folder of `train/` with none in `test/` (aclImdb's
    unlabelled `unsup`) is left out and named in `unused`."""
    root = pathlib.Path(root)
    if split_files(root):
        return read_split_files(root, labels=labels)
    tops = sorted(p.name for p in root.iterdir() if p.is_dir())
    split_layout = tops == ["test", "train"]
    train_root = root / "train" if split_layout else root
    classes = sorted(p.name for p in train_root.iterdir() if p.is_dir() and any(p.glob("*.txt")))
    unused = []
    if split_layout:
        tested = {p.name for p in (root / "test").iterdir() if p.is_dir()}
        unused = [f"train/{c} (no test/{c})" for c in classes if c not in tested]
        classes = [c for c in classes if c in tested]
    if not classes:
        raise ValueError(f"No .txt files found in {train_root}'s class sub-folders, one sub-folder per class.")
    x_train, y_train = _read_classes(train_root, classes)
    x_test = y_test = None
    if split_layout:
        x_test, y_test = _read_classes(root / "test", classes)
    return Arrays(
        name=root.name,
        source=str(root),
        kind="text",
        x_train=x_train,
        y_train=y_train if labels else None,
        x_test=x_test,
        y_test=y_test if labels else None,
        class_names=tuple(classes),
        text_from=".txt files, one example each",
        label_from="class folders",
        unused=tuple(unused),
    )


def _read_classes(folder, classes):
    texts, y = [], []
    for label, name in enumerate(classes):
        for path in sorted((folder / name).glob("*.txt")):
            texts.append(read_text_file(path))
            y.append(label)
    return strings(texts), np.array(y, np.int32)


def read_text_file(path) -> str:
    """One `.txt` file's text, checked: UTF-8, not empty, at most `MAX_FILE` bytes."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE:
            raise ValueError(
                f"{path}: {size:,} bytes, too long for one example (at most {MAX_FILE:,}); a class folder holds "
                f"one .txt file per example."
            )
        raw = path.read_bytes()
    except OSError as e:
        raise ValueError(f"Could not read {path}: {e.strerror or e}.") from None
    return decoded(raw, str(path))


def decoded(raw: bytes, where: str) -> str:
    """One example's bytes (a file's, an archive member's) as text, checked: UTF-8 (a byte-order
    mark dropped), not empty; `where` names it in the one-line error."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{where}, line {line}: not UTF-8 text; save the file as UTF-8. Received: byte "
            f"{raw[e.start : e.start + 1].hex()}"
        ) from None
    if not text.strip():
        raise ValueError(f"{where}: the text is empty.")
    return text


def peek_form(path, *, text_column=None) -> str | None:
    """`"text"`, `"table"`, `"image"` or `None` (cannot tell) for a file or folder, from its first
    records or its listing; nothing is checked (loading does that)."""
    path = pathlib.Path(path).expanduser()
    try:
        if path.is_dir():
            files = split_files(path)
            if files:
                return peek_form(files["train"], text_column=text_column)
            return "text" if is_text_folder(path) else "image"
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            return "text"
        if suffix in TABLE_SUFFIXES:
            return read_table_or_text(path, text_column=text_column, labels=False, limit=200).kind
    except (OSError, ValueError):
        return None
    return None
