"""The image-folder benchmark's own logic: its made JPEGs, its links and how it reads results."""

import pathlib
import sys

import pytest
import tensorflow as tf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts" / "bench"))

import image_folders as bench  # noqa: E402


def test_made_folders_are_jpegs_in_class_folders_reused_and_linked(tmp_path):
    root, mean_bytes = bench.make_folder(tmp_path / "small", 10, classes=5, side=64)
    files = sorted(root.glob("*/*.jpg"))
    assert [p.parent.name for p in files] == ["c0", "c0", "c1", "c1", "c2", "c2", "c3", "c3", "c4", "c4"]
    image = tf.io.decode_jpeg(files[0].read_bytes())
    assert image.shape == (64, 64, 3) and image.dtype == tf.uint8
    assert 20 < float(tf.reduce_mean(tf.cast(image, tf.float32))) < 235  # a picture, not a blank
    assert mean_bytes == pytest.approx(sum(p.stat().st_size for p in files) / 10)

    first = files[0].stat().st_mtime_ns
    assert bench.make_folder(root, 10, classes=5, side=64) == (root, mean_bytes)  # reused, not made again
    assert files[0].stat().st_mtime_ns == first

    assert bench.link_copies(root, tmp_path / "large", 3) == 30
    linked = sorted((tmp_path / "large").glob("c0/*.jpg"))
    assert [p.name for p in linked][:3] == ["copy0_img00000.jpg", "copy0_img00005.jpg", "copy1_img00000.jpg"]
    assert linked[0].read_bytes() == files[0].read_bytes()


def test_sizes_parse_with_their_units():
    assert bench.parse_bytes("2GiB") == 2 * 2**30
    assert bench.parse_bytes("1.5 GB") == 1_500_000_000
    assert bench.parse_bytes("0") == 0 and bench.parse_bytes(512) == 512
    with pytest.raises(ValueError, match="2 parsecs"):
        bench.parse_bytes("2 parsecs")


def row(size, variant, rate1, rate2, peak_mib, first=1.0, **extra):
    files = {"small": 6000, "large": 42000}[size]
    images = extra.pop("images", [files, files])
    return {
        "size": size,
        "files": files,
        "variant": variant,
        "import_s": 3.0,
        "build_s": 0.5,
        "first_batch_s": first,
        "images": images,
        "seconds": [images[0] / rate1, images[1] / rate2],
        "cpu_s": [10.0, 8.0],
        "peak_bytes": peak_mib * bench.MIB,
        "batch": "128x224x224x3 float32",
        "decoded": [0, files, 2 * files],
        **extra,
    }


def test_tables_give_ratios_against_plain_and_goals_say_met_or_not():
    half = dict(images=[21000, 21000], batch="64x224x224x3 float32", decoded=[0, 21000, 42000])
    rows = [
        row("large", "plain", 1000, 1000, 1000, first=2.0),
        row("large", "streaming", 950, 950, 1050, first=3.0),
        row("large", "cached", 950, 2500, 4000, first=8.0, cache="disk: /tmp/x (too large for memory)"),
        {"size": "large", "files": 42000, "variant": "disk", "error": "TypeError: no | disk_cache"},
        row("large", "job", 500, 500, 900, process=0, **half),
        row("large", "job", 480, 480, 900, process=1, **half),
    ]
    table = "\n".join(bench.results_table(rows))
    assert "| 42,000 | load_dataset streaming | 3.0 | 0.5 | 3.0 | 950 | 950 | 10.0 / 8.0 | 1,050 | 0.95x |" in table
    assert "not available: TypeError: no \\| disk_cache |" in table  # a | in an error keeps the columns
    assert "| 4.00x | +6.0 s | 128x224x224x3 float32 | disk: /tmp/x (too large for memory) |" in table

    job = bench.job_table(rows)
    assert job[2] == "| 42,000 | 1 | 128 | 950 | 950 | 42,000 / 42,000 | 42,000 / 42,000 | 1,050 |"
    assert job[3] == "| 42,000 | 2 | 64 | 500 / 480 | 500 / 480 | 42,000 / 42,000 | 42,000 / 42,000 | 900 / 900 |"

    goals = bench.goals(rows, "2GiB")
    for line in (
        "- NOT met: peak memory at most plain's + the cache budget (2GiB) (42,000 files, load_dataset cached): "
        "4,000 MiB, limit 3,048 MiB",
        "- met: peak memory with the memory cache off the same as plain's (within 10%) (42,000 files, "
        "load_dataset streaming): 1,050 MiB, plain 1,000 MiB",
        "- met: first batch at most plain's + 5 s (42,000 files, load_dataset streaming): 3.0 s, limit 7.0 s",
        "- NOT met: first batch at most plain's + 5 s (42,000 files, load_dataset cached): 8.0 s, limit 7.0 s",
        "- met: epoch 1 at least 0.9x plain's images/s (42,000 files, load_dataset cached): 950 images/s, 0.95x",
        "- met: epoch 2 at least 2.0x plain's images/s, the cache holding the set (42,000 files, "
        "load_dataset cached): 2,500 images/s, 2.50x",
        "- not measured: packed shards' epoch 1 at least 1.5x the folder's (streaming) (42,000 files, "
        "load_dataset shards)",
    ):
        assert line in goals
    assert sum(line.startswith("- not measured") for line in goals) == 6  # disk cache: 4 goals, shards: 2

    no_cache = [rows[0], row("large", "cached", 950, 950, 1000, cache="none: 6.3 GB is over the budget")]
    assert "- n/a: epoch 2 with the cache holding the set (42,000 files): none: 6.3 GB is over the budget" in (
        bench.goals(no_cache, "2GiB")
    )
