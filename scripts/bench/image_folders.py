"""Folders of JPEGs: `load_dataset`'s ways of reading them against the plain Keras pipeline.

    python scripts/bench/image_folders.py                                  # 6,000 and 42,000 files
    python scripts/bench/image_folders.py --out scripts/bench/results/image_folders.md
    python scripts/bench/image_folders.py --small 200 --copies 2           # a quick look, every row
    python scripts/bench/image_folders.py --sizes small --variants plain,decode,streaming
    python scripts/bench/image_folders.py --report                          # redraw the last run's table

Data: `--small` JPEGs of 256x256x3 (quality 90, about 15 KB: smooth random colour fields,
a few ellipses and mild noise, the same from the seed every time) in 10 class folders,
made once under `--data-dir` and reused. The large set is `--copies` hard links of each
of them under another root (42,000 files by default): the same inodes, so every variant
reads files already in the OS page cache, on both sizes.

Every variant runs alone in a fresh process (`--child`), so its peak resident memory
(VmHWM) is its own, and iterates its training pipeline with no model for `--epochs`
epochs, batches of `--batch-size` at `--image-size`:
- plain keras: `image_dataset_from_directory(root, image_size, batch_size, shuffle=True,
  seed=0).map(x / 255).prefetch(AUTOTUNE)`, the way the Keras guides read a folder;
- decode only: `tf.io.decode_jpeg(tf.io.read_file(path))` over the files in parallel and
  nothing else (no resize, no shuffle): the limit of any pipeline on this machine;
- load_dataset streaming / cached / disk cache: `load_dataset(root, ...,
  validation_split=0)` with `cache_budget=0`, with `cache_budget=--cache-budget` (the
  cache column shows `info.cache`, the loader's plan), and with `cache_budget=0,
  disk_cache=<a fresh folder>`;
- load_dataset shards: the folder packed first (in this process, timed, its own line
  above the table) by `recipes.datasets._shards.pack`, then `load_dataset(shards)`;
- job of 2: two processes started together, `process_share=(2, i)`, on the same files;
  against the streaming row (one process) in the job table: images decoded in all
  (`train.decoded`, the loader's count of files decoded) and images/s per process.
A variant whose API is missing or raises gets a row saying so.

Figures: first batch = seconds from just before the pipeline is built (after the imports,
shown apart) to the first batch in hand. Epoch 1 counts from the same moment, so work
done while building counts against it; later epochs from their first `iter()`. images/s
= images yielded / wall seconds; CPU s = the process's CPU time in the epoch (all
threads), the steadier figure on a machine shared with other jobs. Ratios are against
the plain keras row of the same size. The goals (`GOALS`) are printed met / not met.
Results are kept in `--data-dir`/results.json; `--report` redraws the table from it.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # a child's imports are timed from here

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
ROOT = pathlib.Path(__file__).resolve().parents[2]  # the checkout whose package is measured
sys.path.insert(0, str(ROOT))

DEFAULTS = dict(
    data_dir=os.path.join(tempfile.gettempdir(), "recipes-bench-image-folders"),
    small=6000,  # JPEGs made
    copies=7,  # hard links of each in the large set: 42,000 files
    classes=10,
    side=256,  # made images are side x side x 3
    quality=90,  # JPEG quality: about 15 KB an image
    sizes="small,large",
    image_size=(224, 224),
    batch_size=128,
    epochs=2,
    cache_budget="2GiB",  # the loader's default
    child_timeout=3600,  # seconds a variant may take
)
VARIANTS = {  # key -> name in the tables, in the order they run
    "plain": "plain keras",
    "decode": "decode only",
    "streaming": "load_dataset streaming",
    "cached": "load_dataset cached",
    "disk": "load_dataset disk cache",
    "shards": "load_dataset shards",
    "job": "load_dataset job of 2",
}
LOADERS = ("streaming", "cached", "disk", "shards")
GOALS = dict(
    first_batch_extra_s=5.0,  # first batch at most plain's + this, on the large set
    first_epoch=0.9,  # epoch 1 at least this x plain's images/s
    cached_epoch=2.0,  # later epochs at least this x plain's when the cache holds the set
    shards=1.5,  # packed shards' epoch 1 at least this x the folder's (streaming)
    # "the same memory as plain" with the cache off, read as within this fraction: an
    # allowance for the allocator, not a measured spread
    memory_slack=0.10,
)
RESULT = "RESULT "  # a child's last stdout line: this, then its figures as JSON
MIB = 2**20


# Data


def render_jpeg(index, seed=0, side=256, quality=90):
    """JPEG bytes (a string tensor) of made image `index`: smooth colour fields, ellipses, noise."""
    import tensorflow as tf

    s = tf.stack([tf.cast(seed, tf.int64), tf.cast(index, tf.int64)])
    field = tf.image.resize(tf.random.stateless_uniform([1, 4, 4, 3], s, 0.0, 255.0), [side, side], "bicubic")[0]
    detail = tf.image.resize(tf.random.stateless_normal([1, 24, 24, 3], s + 1, stddev=20.0), [side, side])[0]
    yy, xx = tf.meshgrid(tf.range(side, dtype=tf.float32), tf.range(side, dtype=tf.float32), indexing="ij")
    image = field + detail
    shapes = tf.random.stateless_uniform([3, 7], s + 2)  # centre y, x, radii y, x, colour
    for p in tf.unstack(shapes):
        inside = ((yy - p[0] * side) / (10 + p[2] * side / 4)) ** 2 + ((xx - p[1] * side) / (10 + p[3] * side / 4)) ** 2
        image = tf.where((inside <= 1.0)[..., None], p[4:] * 255.0 + 0.3 * detail, image)
    image += tf.random.stateless_normal([side, side, 3], s + 3, stddev=4.0)  # sensor noise; sets the file size
    return tf.io.encode_jpeg(tf.cast(tf.clip_by_value(image, 0.0, 255.0), tf.uint8), quality=quality)


def make_folder(root, n, classes=10, seed=0, side=256, quality=90):
    """Writes `n` JPEGs to `root/c{k}/img{i:05d}.jpg`, image i in class i % classes; reuses a
    finished folder of the same recipe. Returns `(root, mean bytes a file)`."""
    root = pathlib.Path(root)
    recipe = dict(n=n, classes=classes, seed=seed, side=side, quality=quality)
    done = root / "made.json"
    if done.exists() and json.loads(done.read_text()).get("recipe") == recipe:
        return root, json.loads(done.read_text())["mean_bytes"]
    import tensorflow as tf

    shutil.rmtree(root, ignore_errors=True)
    for k in range(classes):
        (root / f"c{k}").mkdir(parents=True)
    images = tf.data.Dataset.range(n).map(
        lambda i: render_jpeg(i, seed, side, quality), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    total = 0
    for i, data in enumerate(images.as_numpy_iterator()):
        (root / f"c{i % classes}" / f"img{i:05d}.jpg").write_bytes(data)
        total += len(data)
    mean_bytes = total / max(n, 1)
    done.write_text(json.dumps({"recipe": recipe, "mean_bytes": mean_bytes}))
    return root, mean_bytes


def link_copies(small_root, root, copies):
    """`copies` hard links of every file of `small_root` as `root/<class>/copy{j}_<name>` (plain
    copies where the file system has no hard links); reused when finished. Returns the file count."""
    small_root, root = pathlib.Path(small_root), pathlib.Path(root)
    files = sorted(small_root.glob("*/*.jpg"))
    recipe = dict(source=json.loads((small_root / "made.json").read_text())["recipe"], copies=copies)
    done = root / "made.json"
    if done.exists() and json.loads(done.read_text()).get("recipe") == recipe:
        return len(files) * copies
    shutil.rmtree(root, ignore_errors=True)
    for path in files:
        (root / path.parent.name).mkdir(parents=True, exist_ok=True)
        for j in range(copies):
            target = root / path.parent.name / f"copy{j}_{path.name}"
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
    done.write_text(json.dumps({"recipe": recipe}))
    return len(files) * copies


def folder_bytes(path):
    return sum(p.stat().st_size for p in pathlib.Path(path).rglob("*") if p.is_file())


def parse_bytes(text):
    """`"2GiB"`, `"1.5 GB"`, `"512MiB"`, `"0"` or an int -> bytes."""
    if isinstance(text, (int, float)):
        return int(text)
    units = {"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30}
    units["tib"] = 2**40
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in units:
        raise ValueError(f"A size must be a number of bytes with a unit such as 2GiB or 500MB. Received: {text!r}")
    return int(float(match.group(1)) * units[match.group(2).lower()])


# One variant, in its own process


def peak_rss():
    """Peak resident memory of this process in bytes (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def build(variant, root, args):
    """The variant's training pipeline and facts to report (`cache`, `decoded`: a variable or None)."""
    import keras
    import tensorflow as tf

    size, batch = tuple(args.image_size), args.batch_size
    if variant == "plain":
        ds = keras.utils.image_dataset_from_directory(root, image_size=size, batch_size=batch, shuffle=True, seed=0)
        return ds.map(lambda x, y: (x / 255.0, y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE), {}
    if variant == "decode":
        paths = sorted(str(p) for p in pathlib.Path(root).glob("*/*.jpg"))
        ds = tf.data.Dataset.from_tensor_slices(paths).map(
            lambda p: tf.shape(tf.io.decode_jpeg(tf.io.read_file(p)))[0], num_parallel_calls=tf.data.AUTOTUNE
        )  # the decoded height, so that nothing but the decoding is kept
        return ds.batch(batch).prefetch(tf.data.AUTOTUNE), {}
    from recipes.datasets import load_dataset

    common = dict(batch_size=batch, validation_split=0, seed=0)
    kwargs = {
        "streaming": dict(image_size=size, cache_budget=0),
        "cached": dict(image_size=size, cache_budget=args.cache_budget),
        "disk": dict(image_size=size, cache_budget=0, disk_cache=args.disk_cache),
        "shards": {},
        "job": dict(image_size=size, cache_budget=0, process_share=tuple(args.share or ())),
    }[variant]
    train, _, _, info = load_dataset(root, **common, **kwargs)
    return train, {"cache": getattr(info, "cache", None), "decoded": getattr(train, "decoded", None)}


def child(args):
    """Builds and iterates one variant, then prints its figures as one JSON line."""
    out = {}
    try:
        import keras  # noqa: F401
        import tensorflow as tf  # noqa: F401

        try:
            import recipes.datasets  # noqa: F401
        except Exception:  # reported by build, if the variant needs it
            pass
        t0, cpu0 = time.perf_counter(), time.process_time()
        out["import_s"] = t0 - STARTED
        ds, facts = build(args.child, args.root, args)
        out["build_s"] = time.perf_counter() - t0
        out["cache"] = facts.get("cache")
        decoded = facts.get("decoded")
        read_decoded = (lambda: int(decoded.numpy())) if decoded is not None else (lambda: None)
        out["decoded"] = [read_decoded()]  # after building, then after each epoch
        out["images"], out["seconds"], out["cpu_s"], out["peak_after"] = [], [], [], []
        for epoch in range(args.epochs):
            start, cpu = (t0, cpu0) if epoch == 0 else (time.perf_counter(), time.process_time())
            n = 0
            for element in ds:
                x = element[0] if isinstance(element, (tuple, list)) else element
                if "first_batch_s" not in out:
                    out["first_batch_s"] = time.perf_counter() - t0
                    out["batch"] = f"{'x'.join(map(str, x.shape))} {x.dtype.name}"
                n += int(x.shape[0])
            out["seconds"].append(time.perf_counter() - start)
            out["cpu_s"].append(time.process_time() - cpu)
            out["images"].append(n)
            out["decoded"].append(read_decoded())
            out["peak_after"].append(peak_rss())
    except Exception as e:  # the row says what failed
        out["error"] = one_line(e)
    out["peak_bytes"] = peak_rss()
    print(RESULT + json.dumps(out), flush=True)


def one_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def start_child(variant, root, args, extra=()):
    command = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", variant, "--root", str(root)]
    command += ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--cache-budget", args.cache_budget]
    command += ["--image-size", *map(str, args.image_size), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_child(process, timeout):
    """The child's figures, or `{"error": ...}` when it died, timed out or printed none."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return {"error": f"timed out after {timeout} s"}
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT)]
    if lines:
        return json.loads(lines[-1][len(RESULT) :])
    last = (stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {process.returncode}: {last}"[:300]}


# The run


def run_size(size, root, files, args, log):
    """Every chosen variant on one folder; returns result rows and the pack line (or None)."""
    rows, pack_line = [], None
    for variant in args.variants:
        log(f"{size} ({files:,} files): {VARIANTS[variant]} ...")
        row = dict(size=size, files=files, variant=variant)
        if variant == "job":
            processes = [start_child("job", root, args, ["--share", "2", str(i)]) for i in range(2)]
            results = [finish_child(p, args.child_timeout) for p in processes]
            for i, result in enumerate(results):
                rows.append({**row, "process": i, **result})
                log(f"  process {i}: {summary(rows[-1])}")
            continue
        extra, scratch = [], None
        if variant == "disk":
            scratch = tempfile.mkdtemp(prefix="disk-cache-", dir=args.data_dir)
            extra = ["--disk-cache", scratch]
        source = root
        if variant == "shards":
            scratch = tempfile.mkdtemp(prefix="shards-", dir=args.data_dir)
            try:
                pack_line, source = pack_folder(root, scratch, files, args), scratch
            except Exception as e:
                rows.append({**row, "error": one_line(e)})
                log(f"  {rows[-1]['error']}")
                shutil.rmtree(scratch, ignore_errors=True)
                continue
            log(f"  {pack_line}")
        rows.append({**row, **finish_child(start_child(variant, source, args, extra), args.child_timeout)})
        if variant == "disk":
            rows[-1]["note"] = f"disk cache {folder_bytes(scratch) / MIB:,.0f} MiB"
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        log(f"  {summary(rows[-1])}")
    return rows, pack_line


def pack_folder(root, out, files, args):
    from recipes.datasets._shards import pack

    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # its progress lines, not the report's
        pack(str(root), out, image_size=tuple(args.image_size))
    seconds = time.perf_counter() - start
    return (
        f"packed shards, {files:,} files: {seconds:.1f} s ({files / seconds:,.0f} images/s), "
        f"{folder_bytes(out) / MIB:,.0f} MiB"
    )


def summary(row):
    if "error" in row:
        return f"not available: {row['error']}"
    rates = ", ".join(f"{n / s:,.0f}" for n, s in zip(row["images"], row["seconds"]))
    return f"first batch {row['first_batch_s']:.1f} s, images/s {rates}, peak {row['peak_bytes'] / MIB:,.0f} MiB"


# The tables


def rate(row, epoch):
    """images/s of epoch `epoch` (0-based), None when not measured."""
    if not row or "error" in row or len(row.get("seconds", ())) <= epoch:
        return None
    return row["images"][epoch] / row["seconds"][epoch]


def find(rows, size, variant, process=None):
    for row in rows:
        if (row["size"], row["variant"], row.get("process")) == (size, variant, process) and "error" not in row:
            return row
    return None


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else ""


def results_table(rows):
    """The main table: one row per (files, variant), ratios against plain keras of the same size."""
    lines = [
        "| files | variant | import s | build s | first batch s | epoch 1 images/s | epoch 2 images/s | "
        "CPU s, epoch 1 / 2 | peak MiB | epoch 1 vs plain | epoch 2 vs plain | peak vs plain | "
        "first batch vs plain | batch | cache / note |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        name = VARIANTS[row["variant"]] + (f", process {row['process']}" if "process" in row else "")
        if "error" in row:
            error = row["error"].replace("|", "\\|")  # keeps the columns
            lines.append(f"| {row['files']:,} | {name} | not available: {error} |" + " |" * 12)
            continue
        plain = find(rows, row["size"], "plain")
        r1, r2 = rate(row, 0), rate(row, 1)
        cpu = " / ".join(f"{c:.1f}" for c in row["cpu_s"])
        first = row["first_batch_s"] - plain["first_batch_s"] if plain else None
        note = "; ".join(str(x) for x in (row.get("cache"), row.get("note")) if x)
        lines.append(
            f"| {row['files']:,} | {name} | {row['import_s']:.1f} | {row['build_s']:.1f} | "
            f"{row['first_batch_s']:.1f} | {fmt_rate(r1)} | {fmt_rate(r2)} | {cpu} | "
            f"{row['peak_bytes'] / MIB:,.0f} | {ratio(r1, rate(plain, 0))} | {ratio(r2, rate(plain, 1))} | "
            f"{ratio(row['peak_bytes'], plain and plain['peak_bytes'])} | "
            f"{'' if first is None else f'{first:+.1f} s'} | {row.get('batch', '')} | {note} |"
        )
    return lines


def fmt_rate(value):
    return "" if value is None else f"{value:,.0f}"


def job_table(rows):
    """A job of 2 processes against 1 (the streaming row) on the same files."""
    lines = [
        "| files | processes | batch a process | images/s a process, epoch 1 | epoch 2 | "
        "images yielded in all, epoch 1 / 2 | images decoded in all, epoch 1 / 2 | peak MiB a process |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in dict.fromkeys(row["size"] for row in rows):
        files = next(row["files"] for row in rows if row["size"] == size)
        for processes in (1, 2):
            group = [find(rows, size, "streaming")] if processes == 1 else [find(rows, size, "job", i) for i in (0, 1)]
            if not all(group):
                continue
            epochs = range(len(group[0]["images"]))
            per_process = [" / ".join(fmt_rate(rate(row, e)) for row in group) for e in (0, 1)]
            yielded = " / ".join(f"{sum(row['images'][e] for row in group):,}" for e in epochs)
            decoded = " / ".join(decoded_in_epoch(group, e) for e in epochs)
            lines.append(
                f"| {files:,} | {processes} | {group[0]['batch'].split('x')[0]} | {per_process[0]} | "
                f"{per_process[1]} | {yielded} | {decoded} | "
                f"{' / '.join(format(row['peak_bytes'] / MIB, ',.0f') for row in group)} |"
            )
    return lines


def decoded_in_epoch(group, epoch):
    counts = [row.get("decoded") or [] for row in group]
    if any(len(c) <= epoch + 1 or c[epoch] is None or c[epoch + 1] is None for c in counts):
        return "n/a"
    return f"{sum(c[epoch + 1] - c[epoch] for c in counts):,}"


def goals(rows, cache_budget):
    """Lines `- met: ...`, `- NOT met: ...` or `- not measured: ...`, one a goal and size."""
    g, budget = GOALS, parse_bytes(cache_budget)
    sizes = list(dict.fromkeys(row["size"] for row in rows))
    largest = "large" if "large" in sizes else sizes[-1] if sizes else None
    files = {row["size"]: row["files"] for row in rows}
    lines = []

    def check(goal, size, variant, value, limit, ok, what):
        if value is None or limit is None:
            lines.append(f"- not measured: {goal} ({files[size]:,} files, {VARIANTS[variant]})")
        else:
            verdict = "met" if ok(value, limit) else "NOT met"
            lines.append(f"- {verdict}: {goal} ({files[size]:,} files, {VARIANTS[variant]}): {what(value, limit)}")

    def peak(size, variant):
        row = find(rows, size, variant)
        return row and row["peak_bytes"]

    for size in sizes:
        plain = find(rows, size, "plain")
        if size == largest:
            limit = plain and plain["peak_bytes"] + budget
            check(
                f"peak memory at most plain's + the cache budget ({cache_budget})",
                size,
                "cached",
                peak(size, "cached"),
                limit,
                lambda v, lim: v <= lim,
                lambda v, lim: f"{v / MIB:,.0f} MiB, limit {lim / MIB:,.0f} MiB",
            )
        for variant in ("streaming", "disk"):
            limit = plain and plain["peak_bytes"] * (1 + g["memory_slack"])
            check(
                f"peak memory with the memory cache off the same as plain's (within {g['memory_slack']:.0%})",
                size,
                variant,
                peak(size, variant),
                limit,
                lambda v, lim: v <= lim,
                lambda v, lim: f"{v / MIB:,.0f} MiB, plain {lim / (1 + g['memory_slack']) / MIB:,.0f} MiB",
            )
        if size == largest:
            for variant in LOADERS:
                row = find(rows, size, variant)
                check(
                    f"first batch at most plain's + {g['first_batch_extra_s']:.0f} s",
                    size,
                    variant,
                    row and row["first_batch_s"],
                    plain and plain["first_batch_s"] + g["first_batch_extra_s"],
                    lambda v, lim: v <= lim,
                    lambda v, lim: f"{v:.1f} s, limit {lim:.1f} s",
                )
        for variant in ("streaming", "cached", "disk"):
            check(
                f"epoch 1 at least {g['first_epoch']}x plain's images/s",
                size,
                variant,
                rate(find(rows, size, variant), 0),
                rate(plain, 0),
                lambda v, lim: v >= g["first_epoch"] * lim,
                lambda v, lim: f"{v:,.0f} images/s, {v / lim:.2f}x",
            )
        for variant in ("cached", "disk"):
            row = find(rows, size, variant)
            if variant == "cached" and row and str(row.get("cache") or "").lower().startswith("none"):
                lines.append(f"- n/a: epoch 2 with the cache holding the set ({files[size]:,} files): {row['cache']}")
                continue
            check(
                f"epoch 2 at least {g['cached_epoch']}x plain's images/s, the cache holding the set",
                size,
                variant,
                rate(row, 1),
                rate(plain, 1),
                lambda v, lim: v >= g["cached_epoch"] * lim,
                lambda v, lim: f"{v:,.0f} images/s, {v / lim:.2f}x",
            )
        check(
            f"packed shards' epoch 1 at least {g['shards']}x the folder's (streaming)",
            size,
            "shards",
            rate(find(rows, size, "shards"), 0),
            rate(find(rows, size, "streaming"), 0),
            lambda v, lim: v >= g["shards"] * lim,
            lambda v, lim: f"{v:,.0f} images/s, {v / lim:.2f}x",
        )
    return lines


def report(results):
    """The whole markdown report of a run's results (as kept in results.json)."""
    meta, rows = results["meta"], results["rows"]
    lines = [
        f"Folders of {meta['side']}x{meta['side']} JPEGs ({meta['mean_kb']:.1f} KB on average, 10 classes) read at "
        f"{meta['image_size'][0]}x{meta['image_size'][1]}, batch {meta['batch_size']}, {meta['epochs']} epochs "
        f"with no model, each variant in its own process; {meta['date']}.",
        f"{meta['machine']}, Python {meta['python']}; load average {meta['load_before']:.1f} before, "
        f"{meta['load_after']:.1f} after.",
        "",
        *[f"- {line}" for line in meta.get("packs", [])],
        *([""] if meta.get("packs") else []),
        *results_table(rows),
        "",
        "A job of 2 processes against 1 (`load_dataset streaming`), on the same files:",
        "",
        *job_table(rows),
        "",
        "Goals:",
        "",
        *goals(rows, meta["cache_budget"]),
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=DEFAULTS["data_dir"], help="made folders are kept and reused here")
    parser.add_argument("--small", type=int, default=DEFAULTS["small"], help="JPEGs in the small set")
    parser.add_argument("--copies", type=int, default=DEFAULTS["copies"], help="links of each in the large set")
    parser.add_argument("--sizes", default=DEFAULTS["sizes"], help="comma-separated: small, large")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--image-size", type=int, nargs=2, default=DEFAULTS["image_size"])
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    parser.add_argument("--cache-budget", default=DEFAULTS["cache_budget"])
    parser.add_argument("--child-timeout", type=int, default=DEFAULTS["child_timeout"])
    parser.add_argument("--out", help="also write the report to this markdown file")
    parser.add_argument("--report", action="store_true", help="redraw the report from --data-dir/results.json")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)  # one variant, in its own process
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--disk-cache", help=argparse.SUPPRESS)
    parser.add_argument("--share", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    kept = pathlib.Path(args.data_dir) / "results.json"
    if args.report:
        results = json.loads(kept.read_text())
    else:
        args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
        for name, chosen, valid in (("--variants", args.variants, VARIANTS), ("--sizes", sizes, ("small", "large"))):
            if not chosen or set(chosen) - set(valid):
                parser.error(f"{name} must be comma-separated names from {', '.join(valid)}. Received: {chosen}")
        results = run(args, sizes)
        kept.write_text(json.dumps(results, indent=1))
    text = report(results)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        pathlib.Path(args.out).write_text(text + "\n")


def run(args, sizes):
    from recipes.hardware import describe_machine

    began = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - began:7.1f} s] {message}", file=sys.stderr, flush=True)

    load_before = os.getloadavg()[0]
    data = pathlib.Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    log(f"making {args.small:,} JPEGs under {data} (reused when made already) ...")
    small, mean_bytes = make_folder(
        data / f"small-{args.small}",
        args.small,
        DEFAULTS["classes"],
        side=DEFAULTS["side"],
        quality=DEFAULTS["quality"],
    )
    roots = {"small": (small, args.small)}
    if "large" in sizes:
        large = data / f"large-{args.small}x{args.copies}"
        roots["large"] = (large, link_copies(small, large, args.copies))
    rows, packs = [], []
    for size in sizes:
        root, files = roots[size]
        size_rows, pack_line = run_size(size, root, files, args, log)
        rows += size_rows
        packs += [pack_line] if pack_line else []
    meta = dict(
        machine=describe_machine(),
        python=sys.version.split()[0],
        date=time.strftime("%Y-%m-%d %H:%M"),
        load_before=load_before,
        load_after=os.getloadavg()[0],
        side=DEFAULTS["side"],
        mean_kb=mean_bytes / 1000,
        image_size=list(args.image_size),
        batch_size=args.batch_size,
        epochs=args.epochs,
        cache_budget=args.cache_budget,
        packs=packs,
        minutes=(time.perf_counter() - began) / 60,
    )
    log(f"done in {meta['minutes']:.1f} min")
    return {"meta": meta, "rows": rows}


if __name__ == "__main__":
    main()
