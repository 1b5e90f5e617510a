"""Real text corpora for the text benchmark, built from what a Debian machine already holds.

    python scripts/bench/_corpora.py /tmp/textbench/corpora            # both, seed 0
    python scripts/bench/_corpora.py OUT --corpora debian --seed 1

Each corpus is a folder holding `train.csv` and `test.csv` (columns `text,label`, string
labels, UTF-8, written with the csv module), an 80/20 split stratified by class, the same
from the seed every time. Texts are whitespace-collapsed; identical texts are kept once.

- `fortunes`: Debian's `fortunes` package (/usr/share/games/fortunes/<category>; the `.dat`
  and `.u8` files and `off/` are skipped); one fortune per `%`-separated entry, the category
  file is the class. Entries over 600 characters (long poems, ASCII art, transcripts) are
  dropped; the 8 largest categories of what is left are kept (`FORTUNE_CLASSES`, all with
  at least ~500), each capped at 1,500. Short, humorous, topically overlapping texts: a
  hard task (people / politics / work / men-women quips read much alike).
- `debian`: package synopses by archive section, from `apt-cache dumpavail`. The lists on
  this machine carry only the one-line synopsis (the long descriptions live in
  Translation-en, which is not downloaded), so the text is the synopsis alone (~6 words):
  short texts. Sections (`DEBIAN_SECTIONS`) are eight topical ones; the language sections
  (python, perl, rust, golang, haskell, javascript, java, ruby) and libs/libdevel/doc are
  left out because their synopses are templated ("Rust crate ...", "development files for
  ...", "documentation for ...") and nearly give the label away. One entry per package
  name; up to 1,500 per class.
"""

from __future__ import annotations

import argparse
import collections
import csv
import pathlib
import random
import re
import subprocess

FORTUNES_DIR = pathlib.Path("/usr/share/games/fortunes")
MAX_FORTUNE_CHARS = 600
CAP = 1500
N_CLASSES = 8
DEBIAN_SECTIONS = ("admin", "devel", "games", "net", "science", "sound", "text", "utils")


def _clean(text):
    return re.sub(r"\s+", " ", text).strip()


def fortune_texts(directory=FORTUNES_DIR, max_chars=MAX_FORTUNE_CHARS):
    """{category: [fortune, ...]} for every category file, entries over max_chars dropped."""
    out = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.suffix in (".dat", ".u8") or path.name.endswith(".u8"):
            continue
        raw = path.read_text(encoding="utf-8", errors="replace")
        entries = re.split(r"^%\s*$", raw, flags=re.M)
        texts = [_clean(e) for e in entries]
        out[path.name] = [t for t in texts if t and len(t) <= max_chars]
    return out


def debian_texts(sections=DEBIAN_SECTIONS):
    """{section: [synopsis (+ long description when present), ...]}, one per package name."""
    dump = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    seen = set()
    out = collections.defaultdict(list)
    for stanza in dump.split("\n\n"):
        package = section = None
        desc, in_desc = [], False
        for line in stanza.splitlines():
            if line.startswith(" ") and in_desc:
                if line.strip() != ".":
                    desc.append(line)
                continue
            in_desc = False
            if line.startswith("Package:"):
                package = line.split(":", 1)[1].strip()
            elif line.startswith("Section:"):
                section = line.split(":", 1)[1].strip().split("/")[-1]
            elif line.startswith("Description:"):
                desc, in_desc = [line.split(":", 1)[1]], True
        if not package or package in seen or section not in sections or not desc:
            continue
        seen.add(package)
        out[section].append(_clean(" ".join(desc)))
    return dict(out)


def _balance(by_class, classes, cap, seed):
    rng = random.Random(seed)
    used, rows = set(), []
    for label in classes:
        texts = []
        for t in by_class[label]:
            if t not in used:  # identical texts once, across classes too
                used.add(t)
                texts.append(t)
        rng.shuffle(texts)
        rows += [(t, label) for t in texts[:cap]]
    return rows


def _split_write(rows, folder, seed, test_fraction=0.2):
    rng = random.Random(seed + 1)
    by_label = collections.defaultdict(list)
    for text, label in rows:
        by_label[label].append(text)
    train, test = [], []
    for label in sorted(by_label):
        texts = by_label[label]
        rng.shuffle(texts)
        n_test = round(len(texts) * test_fraction)
        test += [(t, label) for t in texts[:n_test]]
        train += [(t, label) for t in texts[n_test:]]
    rng.shuffle(train)
    rng.shuffle(test)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in (("train.csv", train), ("test.csv", test)):
        with open(folder / name, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(part)
    return folder


def fortunes(folder, seed=0, n_classes=N_CLASSES, cap=CAP):
    by_class = fortune_texts()
    classes = sorted(by_class, key=lambda c: (-len(set(by_class[c])), c))[:n_classes]
    return _split_write(_balance(by_class, sorted(classes), cap, seed), folder, seed)


def debian(folder, seed=0, cap=CAP):
    by_class = debian_texts()
    return _split_write(_balance(by_class, sorted(by_class), cap, seed), folder, seed)


CORPORA = {"fortunes": fortunes, "debian": debian}


def describe(folder):
    """Class counts and the median length in words, per split."""
    out = {}
    for split in ("train", "test"):
        with open(pathlib.Path(folder) / f"{split}.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        lengths = sorted(len(r["text"].split()) for r in rows)
        out[split] = {
            "n": len(rows),
            "median_words": lengths[len(lengths) // 2],
            "classes": dict(sorted(collections.Counter(r["label"] for r in rows).items())),
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--corpora", nargs="+", choices=list(CORPORA), default=list(CORPORA))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.corpora:
        folder = CORPORA[name](args.out / name, seed=args.seed)
        print(name, folder, describe(folder))


if __name__ == "__main__":
    main()
