"""recipes.datasets: pipelines, info, local files, the Keras cache, and every bad input."""

import gzip
import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from recipes.datasets import NAMED_DATASETS, DatasetInfo, _named, _readers, _remote, auto_batch_size, load_dataset


def _collect(ds):
    """All batches of `ds` as numpy: (x, y) or x."""
    batches = list(ds.as_numpy_iterator())
    if isinstance(batches[0], tuple):
        return tuple(np.concatenate(parts) for parts in zip(*batches))
    return np.concatenate(batches)


def _write_npz(path, n=20, shape=(6, 6), classes=3, test=8, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    arrays = dict(
        x_train=rng.integers(0, 256, (n, *shape), dtype=np.uint8), y_train=np.arange(n, dtype=np.uint8) % classes
    )
    if test:
        arrays.update(
            x_test=rng.integers(0, 256, (test, *shape), dtype=np.uint8),
            y_test=np.arange(test, dtype=np.uint8) % classes,
        )
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def _write_png(path, size=(5, 7), channels=3, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((*size, channels), value, dtype=np.uint8)
    tf.io.write_file(str(path), tf.io.encode_png(pixels))


def _image_folder(root, classes=("cat", "dog", "emu"), per_class=4, **kwargs):
    for i, name in enumerate(classes):
        for j in range(per_class):
            _write_png(root / name / f"{j}.png", value=40 * i + j, **kwargs)
    return root


# ---------------------------------------------------------------- bundled digits


def test_digits_shapes_dtypes_range_and_splits():
    train, val, test, info = load_dataset("digits", batch_size=64, return_test=True)
    assert isinstance(info, DatasetInfo)
    assert (info.name, info.kind, info.input_shape, info.num_classes) == ("digits", "image", (8, 8, 1), 10)
    assert info.class_names == tuple("0123456789")
    assert (info.num_train, info.num_val, info.num_test) == (1294, 144, 359)
    assert info.value_range == (0.0, 1.0) and info.raw_max == 16.0
    x, y = _collect(train)
    assert x.shape == (1294, 8, 8, 1) and x.dtype == np.float32 and y.dtype == np.int32
    assert x.min() == 0.0 and x.max() == 1.0  # scaled from 16, not from 255
    assert set(np.unique(y)) == set(range(10))
    assert _collect(val)[0].shape == (144, 8, 8, 1)
    x_test, y_test = _collect(test)
    assert x_test.shape == (359, 8, 8, 1) and y_test.shape == (359,)
    assert next(iter(train))[0].shape == (64, 8, 8, 1)


def test_auto_batch_size_gives_about_20_steps_an_epoch_from_32_to_128():
    assert auto_batch_size(0) == auto_batch_size(10) == auto_batch_size(900) == 32
    assert [auto_batch_size(n) for n in (1000, 1294, 1800, 2000, 5400, 60000)] == [64, 64, 64, 128, 128, 128]
    with pytest.raises(ValueError, match=r"num_train must be >= 0\. Received: num_train=-1"):
        auto_batch_size(-1)


def test_auto_batch_size_is_chosen_from_the_training_split(tmp_path):
    train, val, _, info = load_dataset("digits", batch_size="auto")
    assert (info.num_train, info.batch_size) == (1294, 64)
    assert [len(x) for x, _ in train][:2] == [64, 64] and len(next(iter(val))[0]) == 64
    # the same 1,438 digits with 40% held out: 863 training examples, 32 a batch
    assert load_dataset("digits", batch_size="auto", validation_split=0.4).info.batch_size == 32
    assert load_dataset("digits", batch_size=16).info.batch_size == 16
    root = _image_folder(tmp_path / "pets")  # 12 images
    train, _, _, info = load_dataset(root, batch_size="auto", validation_split=0.25)
    assert (info.num_train, info.batch_size) == (9, 32) and len(next(iter(train))[0]) == 9


def test_digits_train_a_classifier():
    from recipes import build_mlp

    train, val, _, info = load_dataset("digits", batch_size=128)
    model = build_mlp(input_shape=info.input_shape, num_classes=info.num_classes, hidden_units=(32,))
    history = model.fit(train, validation_data=val, epochs=3, verbose=0, shuffle=False)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_digits_found_through_recipes_data_dir(tmp_path, monkeypatch):
    (tmp_path / "digits.npz").write_bytes(_named.bundled_path().read_bytes())
    monkeypatch.setenv("RECIPES_DATA_DIR", str(tmp_path))
    *_, info = load_dataset("digits")
    assert info.source == str(tmp_path / "digits.npz")


def test_digits_found_in_an_installed_prefix(tmp_path, monkeypatch):
    # a non-editable install: no source checkout, the file in <sys.prefix>/share/recipes/data
    share = tmp_path / "prefix" / "share" / "recipes" / "data"
    share.mkdir(parents=True)
    (share / "digits.npz").write_bytes(_named.bundled_path().read_bytes())
    monkeypatch.delenv("RECIPES_DATA_DIR", raising=False)
    monkeypatch.setattr(_named, "__file__", str(tmp_path / "site" / "recipes" / "datasets" / "_named.py"))
    monkeypatch.setattr("sys.prefix", str(tmp_path / "prefix"))
    assert _named.bundled_path() == share / "digits.npz"
    monkeypatch.setattr("sys.prefix", str(tmp_path / "elsewhere"))
    monkeypatch.setattr("sysconfig.get_path", lambda name: None)
    monkeypatch.setattr("site.USER_BASE", None)
    with pytest.raises(FileNotFoundError, match=r"digits\.npz was not found\. Looked in: .*RECIPES_DATA_DIR"):
        load_dataset("digits")


def test_digits_resize_channels_and_value_range():
    train, _, _, info = load_dataset("digits", image_size=(16, 12), channels=3, value_range=(-1, 1), validation_split=0)
    assert info.input_shape == (16, 12, 3) and info.value_range == (-1.0, 1.0)
    x, _ = _collect(train)
    assert x.shape == (1438, 16, 12, 3)
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_array_equal(x[..., 0], x[..., 2])  # gray copied to every channel


def test_as_sequence_gives_rows_and_labels_false_gives_images_alone():
    train, _, _, info = load_dataset("digits", as_sequence=True, labels=False, validation_split=0)
    assert (info.kind, info.input_shape, info.sequence_length) == ("sequence", (8, 8), 8)
    x = _collect(train)
    assert isinstance(x, np.ndarray) and x.shape == (1438, 8, 8)
    images, _ = _collect(load_dataset("digits", validation_split=0)[0])
    # same examples (shuffled the same way), each image's rows as time steps
    np.testing.assert_array_equal(x, images[..., 0])


# --------------------------------------------------------------------- .npz files


def test_npz_shapes_dtypes_and_split_sizes(tmp_path):
    path = _write_npz(tmp_path / "toy.npz", n=20, shape=(6, 6, 3))
    train, val, test, info = load_dataset(path, batch_size=4, validation_split=0.25, return_test=True)
    assert (info.name, info.input_shape, info.num_classes) == ("toy", (6, 6, 3), 3)
    assert (info.num_train, info.num_val, info.num_test) == (15, 5, 8)
    x, y = _collect(train)
    assert x.shape == (15, 6, 6, 3) and x.dtype == np.float32 and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert len(list(train)) == 4  # ceil(15 / 4) batches
    x_test, _ = _collect(test)
    with np.load(path) as f:  # test split in file order, scaled from the data's max
        np.testing.assert_allclose(x_test, f["x_test"] / max(f["x_train"].max(), f["x_test"].max()), atol=1e-6)


def test_validation_split_zero_gives_no_val(tmp_path):
    train, val, _, info = load_dataset(_write_npz(tmp_path / "toy.npz"), validation_split=0)
    assert val is None and (info.num_train, info.num_val) == (20, 0)


def test_seed_makes_split_and_order_deterministic(tmp_path):
    path = _write_npz(tmp_path / "toy.npz", n=40, test=0, y_train=np.arange(40) % 4)

    def run(seed):
        train, val, _, _ = load_dataset(path, batch_size=8, seed=seed)
        return _collect(train)[0], _collect(train)[0], _collect(val)[0]

    first, second_epoch, val = run(seed=3)
    again, _, val_again = run(seed=3)
    other, _, val_other = run(seed=4)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(val, val_again)
    assert not np.array_equal(first, second_epoch)  # reshuffled on every epoch
    assert not np.array_equal(first, other) and not np.array_equal(val, val_other)
    np.testing.assert_array_equal(np.sort(first, axis=0), np.sort(second_epoch, axis=0))


def test_each_epochs_order_depends_on_the_seed_and_epoch_alone(tmp_path):
    """A new process (a resumed run) reads epoch k's order after set_epoch(train, k), whatever
    the global seed and however often the pipeline was read before."""
    import keras

    from recipes.datasets import set_epoch

    path = _write_npz(tmp_path / "toy.npz", n=40, test=0, y_train=np.arange(40) % 4)
    keras.utils.set_random_seed(1)
    train, val, _, _ = load_dataset(path, batch_size=8, seed=3)
    epochs = [_collect(train)[0] for _ in range(3)]
    assert len({e.tobytes() for e in epochs}) == 3  # three different orders of the same examples
    for e in epochs[1:]:
        np.testing.assert_array_equal(np.sort(e, axis=0), np.sort(epochs[0], axis=0))

    keras.utils.set_random_seed(7)  # another process, another global seed
    resumed, _, _, _ = load_dataset(path, batch_size=8, seed=3)
    _collect(resumed)  # read before, as batch-norm calibration does
    assert set_epoch(resumed, 2) is True
    np.testing.assert_array_equal(_collect(resumed)[0], epochs[2])
    np.testing.assert_array_equal(_collect(resumed)[0], _collect(train)[0])  # both then at epoch 3
    assert set_epoch(val, 0) is False  # read in file order: nothing to set
    with pytest.raises(ValueError, match=r"epoch must be >= 0\. Received: epoch=-1"):
        set_epoch(train, -1)


def test_an_image_folder_is_reshuffled_by_epoch_too(tmp_path):
    from recipes.datasets import set_epoch

    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(6):
            tf.io.write_file(
                str(root / c / f"{i}.png"), tf.io.encode_png(rng.integers(0, 255, (4, 4, 1), dtype=np.uint8))
            )
    train, *_ = load_dataset(root, batch_size=4, seed=5, validation_split=0)
    first, second = _collect(train)[0], _collect(train)[0]
    assert not np.array_equal(first, second)
    set_epoch(train, 0)
    np.testing.assert_array_equal(_collect(train)[0], first)


def test_npz_channels_one_from_rgb_and_float_images(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((10, 4, 4, 3)).astype(np.float32)  # floats in [0, 1] are kept as they are
    path = _write_npz(tmp_path / "f.npz", n=10, test=0, x_train=x)
    train, _, _, info = load_dataset(path, channels=1, validation_split=0, batch_size=10)
    assert info.input_shape == (4, 4, 1) and info.raw_max == 1.0
    got = _collect(train)[0]
    assert got.shape == (10, 4, 4, 1)
    expected = tf.image.rgb_to_grayscale(x).numpy()
    # the training split is shuffled: every image must be the grayscale of exactly one input image
    distance = np.abs(got[:, None] - expected[None]).max(axis=(2, 3, 4))
    assert sorted(distance.argmin(axis=1).tolist()) == list(range(10)) and distance.min(axis=1).max() < 1e-6


def test_npz_images_only_for_generative_models(tmp_path):
    path = _write_npz(tmp_path / "gan.npz", y_train=None, test=0)
    train, val, _, info = load_dataset(path, labels=False, value_range=(-1, 1))
    assert info.num_classes is None and tuple(train.element_spec.shape) == (None, 6, 6, 1)
    assert _collect(train).min() >= -1.0
    with pytest.raises(ValueError, match=r"gan\.npz is missing the key\(s\) y_train"):
        load_dataset(path)


def test_npz_tokens_and_tables(tmp_path):
    tokens = np.array([[0, 0, 5, 6], [1, 2, 3, 4], [9, 8, 7, 6]] * 4)
    path = _write_npz(tmp_path / "tok.npz", test=0, x_train=tokens, y_train=np.arange(12) % 2)
    train, _, _, info = load_dataset(path, vocab_size=10, sequence_length=6, validation_split=0)
    assert (info.kind, info.input_shape, info.vocab_size, info.sequence_length) == ("sequence", (6,), 10, 6)
    x, _ = _collect(train)
    assert x.dtype == np.int32 and x.shape == (12, 6) and np.all(x[:, :2] == 0)  # padded at the front
    with pytest.raises(ValueError, match=r"tokens in 0\.\.7 \(vocab_size=8\)\. Received: values from 0 to 9"):
        load_dataset(path, vocab_size=8)

    path = _write_npz(tmp_path / "tab.npz", test=0, x_train=np.ones((12, 6)) * 2.5, y_train=np.arange(12) % 2)
    train, _, _, info = load_dataset(path, validation_split=0)
    assert (info.kind, info.input_shape, info.value_range) == ("table", (6,), None)
    assert _collect(train)[0].max() == 2.5  # tables keep their values


# ---------------------------------------------------------------------- folders


def test_image_folder(tmp_path):
    root = _image_folder(tmp_path / "pets")
    train, val, _, info = load_dataset(root, batch_size=2, validation_split=0.25, seed=1)
    assert info.class_names == ("cat", "dog", "emu") and info.num_classes == 3
    assert info.input_shape == (5, 7, 3)  # from the first image
    assert (info.num_train, info.num_val, info.num_test) == (9, 3, 0)
    x, y = _collect(train)
    assert x.shape == (9, 5, 7, 3) and x.dtype == np.float32 and y.dtype == np.int32
    # every pixel of image j of class i is 40 * i + j: labels match the folders
    np.testing.assert_allclose(x[:, 0, 0, 0] * 255.0 // 40, y, atol=1e-4)
    x2, _ = _collect(load_dataset(root, batch_size=2, validation_split=0.25, seed=1)[0])
    np.testing.assert_array_equal(x, x2)


def test_image_folder_resize_gray_sequence_and_test_split(tmp_path):
    _image_folder(tmp_path / "d" / "train")
    _image_folder(tmp_path / "d" / "test", per_class=1)
    train, val, test, info = load_dataset(
        tmp_path / "d",
        image_size=(4, 4),
        channels=1,
        as_sequence=True,
        labels=False,
        validation_split=0,
        return_test=True,
    )
    assert val is None and info.input_shape == (4, 4) and info.kind == "sequence"
    assert (info.num_train, info.num_test) == (12, 3)
    assert _collect(train).shape == (12, 4, 4)
    assert _collect(test).shape == (3, 4, 4)


def test_image_folder_empty_or_flat_is_a_clear_error(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"No images found in .*empty: expected .*\.png files in its class"):
        load_dataset(tmp_path / "empty")
    _write_png(tmp_path / "flat" / "a.png")
    with pytest.raises(ValueError, match=r"class sub-folders \(there are none\)"):
        load_dataset(tmp_path / "flat")
    with pytest.raises(ValueError, match=r"has no test split: lay it out as"):
        load_dataset(_image_folder(tmp_path / "pets"), return_test=True)


# ------------------------------------------------------------------------- CSV


def test_csv_with_header_label_column_and_sequences(tmp_path):
    path = tmp_path / "t.csv"
    rows = ["label,a,b,c,d"] + [f"{i % 2},{i},{i + 0.5},{-i},{2 * i}" for i in range(10)]
    path.write_text("\n".join(rows) + "\n\n")
    train, val, _, info = load_dataset(path, batch_size=4, validation_split=0.2)
    assert (info.kind, info.input_shape, info.num_classes, info.num_train, info.num_val) == ("table", (4,), 2, 8, 2)
    x, y = _collect(train)
    assert x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal((x[:, 0] % 2).astype(int), y)  # each row keeps its own label
    train, _, _, info = load_dataset(path, sequence_length=2, validation_split=0)
    assert (info.kind, info.input_shape, info.sequence_length) == ("sequence", (2, 2), 2)
    assert _collect(train)[0].shape == (10, 2, 2)


def test_csv_without_header_uses_last_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("".join(f"{i},{i * 2},{i % 3}\n" for i in range(9)))
    train, _, _, info = load_dataset(path, validation_split=0, batch_size=9)
    x, y = _collect(train)
    assert info.num_classes == 3 and x.shape == (9, 2)
    np.testing.assert_array_equal(x[:, 0].astype(int) % 3, y)


@pytest.mark.parametrize(
    "text, message",
    [
        ("a,b\n1,2\n3\n", r"line 3: expected 2 columns, as the header has \(.*\)\. Received: 1"),
        ("1,2\nx,1\n2,1\n", r"line 2: every cell must be a number\. Received: 'x'"),
        ("1,0.5\n2,1\n", r"line 1: labels \(column 2\) must be integers or names\. Received: '0\.5'"),
        ("1,-1\n2,1\n", r"labels must be in 0\.\.1\. Received: labels from -1 to 1"),
        ("a,label\n", r"has no data rows"),
    ],
)
def test_csv_bad_files(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_dataset(path)


# ------------------------------------------------------------- bad .npz files


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda p: p.write_bytes(b"not a zip at all"),
            r"Could not read .*bad\.npz: not a valid \.npz \(zip\) file "
            r"\(File is not a zip file\)\.$",
        ),
        (lambda p: p.write_bytes(_write_npz(p).read_bytes()[:300]), r"Could not read .*bad\.npz"),
        (lambda p: np.savez(p, x_train=np.zeros((3, 4, 4))), r"bad\.npz is missing the key\(s\) y_train"),
        (lambda p: _write_npz(p, y_test=None), r"missing the key\(s\) y_test"),
        (
            lambda p: _write_npz(p, y_train=np.zeros(19)),
            r"x_train and y_train must have the same length\. "
            r"Received: 20 and 19",
        ),
        (
            lambda p: _write_npz(p, class_names=np.array(["a", "b"])),
            r"labels must be in 0\.\.1\. "
            r"Received: labels from 0 to 2",
        ),
        (lambda p: _write_npz(p, y_train=-np.ones(20)), r"labels must be in 0\.\.2\. Received: labels from -1"),
        (
            lambda p: _write_npz(p, x_test=np.zeros((8, 5, 5), np.uint8)),
            r"x_test examples must have the shape "
            r"of x_train's",
        ),
        (
            lambda p: _write_npz(p, x_train=np.zeros((20, 4, 4, 2))),
            r"x_train must hold images .* Received: "
            r"shape \(20, 4, 4, 2\)",
        ),
        (lambda p: _write_npz(p, x_train=-np.ones((20, 4, 4)), test=0), r"image values must be >= 0"),
        (lambda p: _write_npz(p, x_train=np.zeros((0, 4, 4)), y_train=np.zeros(0), test=0), r"x_train is empty"),
    ],
)
def test_bad_npz_files(tmp_path, make, message):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(ValueError, match=message):
        load_dataset(path)


def test_return_test_without_test_split(tmp_path):
    with pytest.raises(ValueError, match=r"no test split \(x_test, y_test\)\. Received: return_test=True"):
        load_dataset(_write_npz(tmp_path / "toy.npz", test=0), return_test=True)


# ------------------------------------------------------------- bad arguments


def test_unknown_name_lists_valid_names():
    with pytest.raises(
        ValueError,
        match=r"Unknown data set 'svhn': .*cifar10, cifar100, digits, "
        r"fashion_mnist, imdb, mnist",
    ):
        load_dataset("svhn")


def test_unsupported_file_type(tmp_path):
    (tmp_path / "notes.txt").write_text("1,2\n")
    with pytest.raises(
        ValueError,
        match=r"Unsupported data file .*notes\.txt: expected a \.npz, \.csv, \.tsv or \.jsonl file.*"
        r"Received: suffix '\.txt'",
    ):
        load_dataset(tmp_path / "notes.txt")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(batch_size=0), ValueError, r"batch_size must be >= 1\. Received: batch_size=0"),
        (dict(batch_size=2.5), TypeError, r"batch_size must be an integer\. Received: batch_size=2\.5"),
        (dict(batch_size="big"), TypeError, r"batch_size must be an integer or 'auto'\. Received: batch_size='big'"),
        (
            dict(validation_split=1.0),
            ValueError,
            r"validation_split must be in \[0, 1\)\. Received: validation_split=1\.0",
        ),
        (dict(validation_split=-0.1), ValueError, r"Received: validation_split=-0\.1"),
        (dict(image_size=(0, 8)), ValueError, r"image_size must be \(height, width\).*Received: image_size=\(0, 8\)"),
        (dict(image_size=32), ValueError, r"Received: image_size=32"),
        (dict(channels=2), ValueError, r"channels must be 1, 3 or None\. Received: channels=2"),
        (dict(value_range=(1, 0)), ValueError, r"low < high\. Received: value_range=\(1, 0\)"),
        (dict(value_range="01"), TypeError, r"pair of numbers .*Received: value_range='01'"),
        (dict(seed=-1), ValueError, r"seed must be >= 0"),
        (dict(labels="no"), TypeError, r"labels must be True or False\. Received: labels='no'"),
        (dict(vocab_size=100), ValueError, r"vocab_size does not apply to 'digits', which holds image data"),
        (dict(sequence_length=8), ValueError, r"sequence_length does not apply to 'digits'.*as_sequence=True"),
        (
            dict(validation_split=0.0001),
            ValueError,
            r"validation_split=0\.0001 of the 1438 training examples .* "
            r"leaves no validation examples",
        ),
    ],
)
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        load_dataset("digits", **kwargs)


def test_image_options_on_a_table_and_bad_name_type(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("1,2,0\n3,4,1\n")
    with pytest.raises(
        ValueError,
        match=r"image_size does not apply to 't', which holds table data\. "
        r"Received: image_size=\(8, 8\)",
    ):
        load_dataset(path, image_size=(8, 8))
    with pytest.raises(TypeError, match=r"Received: name_or_path=3"):
        load_dataset(3)


# ---------------------------------------------------------- the Keras cache


def _fake_mnist(path, n=12):
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        y_train=np.arange(n) % 10,
        x_test=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        y_test=np.arange(4),
    )
    return path


def _in_cache(home, fname):
    (home / "datasets").mkdir(parents=True, exist_ok=True)
    return home / "datasets" / fname


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _use_hash(monkeypatch, name, digest, origin=None, index=0):
    files = list(_remote.REMOTE_FILES[name])
    files[index] = _remote.RemoteFile(
        files[index].fname, origin or files[index].origin, digest, files[index].subdir, files[index].aliases
    )
    monkeypatch.setitem(_remote.REMOTE_FILES, name, tuple(files))


def test_named_dataset_read_from_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = _fake_mnist(_in_cache(tmp_path, "mnist.npz"))
    _use_hash(monkeypatch, "mnist", _sha256(cached))
    train, val, test, info = load_dataset("mnist", validation_split=0.25, return_test=True)
    assert (info.input_shape, info.num_classes, info.num_train, info.num_val, info.num_test) == (
        (28, 28, 1),
        10,
        9,
        3,
        4,
    )
    assert info.source == str(cached) and info.raw_max == 255.0
    assert _collect(test)[0].shape == (4, 28, 28, 1)


def test_checksum_mismatch_is_reported_and_the_file_kept(tmp_path):
    cached = _fake_mnist(_in_cache(tmp_path, "mnist.npz"))
    before = cached.read_bytes()
    with pytest.raises(ValueError) as e:
        load_dataset("mnist", cache_dir=tmp_path)
    message = str(e.value)
    assert f"The cached file {cached} of the 'mnist' data set is corrupted or incomplete" in message
    assert "expected 731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1" in message
    assert "It was left as it is" in message and "\n" not in message
    assert cached.read_bytes() == before
    assert os.listdir(tmp_path / "datasets") == ["mnist.npz"]


def test_offline_gives_one_clear_error_and_leaves_no_partial_file(tmp_path, monkeypatch):
    _use_hash(monkeypatch, "mnist", "0" * 64, origin=(tmp_path / "nowhere" / "mnist.npz").as_uri())
    with pytest.raises(FileNotFoundError) as e:
        load_dataset("mnist", cache_dir=tmp_path / "home")
    message = str(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__
    assert "\n" not in message
    assert f"needs mnist.npz, which is not in {tmp_path / 'home' / 'datasets'}" in message
    assert f"Download {(tmp_path / 'nowhere' / 'mnist.npz').as_uri()} and save it as" in message
    assert os.listdir(tmp_path / "home" / "datasets") == []


def test_offline_when_get_file_raises(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure on https://x: None -- [Errno -3] Temporary failure\nin name resolution")

    monkeypatch.setattr("keras.utils.get_file", no_network)
    with pytest.raises(
        FileNotFoundError,
        match=r"downloading it failed \(URL fetch failure .* Temporary "
        r"failure in name resolution\)\. Download https://storage",
    ):
        load_dataset("imdb", cache_dir=tmp_path)
    assert os.listdir(tmp_path / "datasets") == []


def test_download_with_get_file_verifies_and_caches(tmp_path, monkeypatch):
    source = _fake_mnist(tmp_path / "mnist.npz")
    _use_hash(monkeypatch, "mnist", _sha256(source), origin=source.as_uri())
    *_, info = load_dataset("mnist", cache_dir=tmp_path / "home")
    assert info.source == str(tmp_path / "home" / "datasets" / "mnist.npz")
    assert os.listdir(tmp_path / "home" / "datasets") == ["mnist.npz"]
    # a download that does not match its hash is not kept
    _use_hash(monkeypatch, "mnist", "0" * 64, origin=source.as_uri())
    with pytest.raises(ValueError, match=r"The file downloaded from .* is corrupted: its sha256 is "):
        load_dataset("mnist", cache_dir=tmp_path / "other")
    assert os.listdir(tmp_path / "other" / "datasets") == []


def test_fashion_mnist_from_cached_idx_files(tmp_path, monkeypatch):
    folder = tmp_path / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    labels = {"train": np.arange(6) % 10, "t10k": np.array([9, 0, 1])}
    for prefix, y in labels.items():
        header = (2049).to_bytes(4, "big") + len(y).to_bytes(4, "big")
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header + y.astype(np.uint8).tobytes()))
        header = (2051).to_bytes(4, "big") + b"".join(v.to_bytes(4, "big") for v in (len(y), 28, 28))
        images = np.full((len(y), 28, 28), 255, np.uint8).tobytes()
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images))
    for i, remote in enumerate(_remote.REMOTE_FILES["fashion_mnist"]):
        _use_hash(monkeypatch, "fashion_mnist", hashlib.md5((folder / remote.fname).read_bytes()).hexdigest(), index=i)
    train, _, test, info = load_dataset("fashion_mnist", cache_dir=tmp_path, validation_split=0, return_test=True)
    assert info.class_names[9] == "Ankle boot" and (info.num_train, info.num_test) == (6, 3)
    x, y = _collect(test)
    assert x.shape == (3, 28, 28, 1) and x.max() == 1.0 and list(y) == [9, 0, 1]


def _pickled(obj):
    return pickle.dumps(obj, protocol=3)  # the real files are protocol 2 from Python 2: no _codecs


def test_cifar10_from_a_cached_archive(tmp_path, monkeypatch):
    archive = tmp_path / "datasets" / "cifar-10-batches-py-target_archive"  # the Keras >= 3.6 name
    archive.parent.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {f"data_batch_{i}": (rng.integers(0, 256, (2, 3072), dtype=np.uint8), [i, i + 1]) for i in range(1, 6)}
    batches["test_batch"] = (np.zeros((3, 3072), np.uint8), [7, 8, 9])
    with tarfile.open(archive, "w:gz") as tar:
        for member, (data, y) in {**batches, "batches.meta": (None, None)}.items():
            content = {b"label_names": [b"x"]} if data is None else {b"data": data, b"labels": y}
            blob = _pickled(content)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{member}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    _use_hash(monkeypatch, "cifar10", _sha256(archive))
    train, _, test, info = load_dataset(
        "cifar10", cache_dir=tmp_path, validation_split=0, return_test=True, batch_size=64
    )
    assert info.class_names[0] == "airplane" and (info.num_train, info.num_test) == (10, 3)
    x_test, y_test = _collect(test)
    assert x_test.shape == (3, 32, 32, 3) and list(y_test) == [7, 8, 9]
    x, y = _collect(train)
    first = batches["data_batch_1"][0][0].reshape(3, 32, 32).transpose(1, 2, 0) / 255.0
    np.testing.assert_allclose(x[np.argmax([np.allclose(img, first) for img in x])], first, atol=1e-6)


def test_imdb_tokens_vocab_and_padding(tmp_path, monkeypatch):
    path = tmp_path / "datasets" / "imdb.npz"
    path.parent.mkdir(parents=True)
    reviews = np.empty(4, dtype=object)
    reviews[:] = [[10, 20, 30], [5] * 10, [40000, 6], [1]]
    np.savez(path, x_train=reviews, y_train=np.array([0, 1, 0, 1]), x_test=reviews[:2], y_test=np.array([1, 0]))
    _use_hash(monkeypatch, "imdb", _sha256(path))
    train, _, test, info = load_dataset(
        "imdb", cache_dir=tmp_path, validation_split=0, return_test=True, sequence_length=5, vocab_size=30
    )
    assert (info.kind, info.input_shape, info.vocab_size, info.num_classes) == ("sequence", (5,), 30, 2)
    x, y = _collect(test)
    assert x.dtype == np.int32
    # Keras's layout: 1 starts the review, word w is w + 3, ids >= vocab_size become 2, padded in front
    np.testing.assert_array_equal(x, [[0, 1, 13, 23, 2], [8, 8, 8, 8, 8]])
    *_, info = load_dataset("imdb", cache_dir=tmp_path, validation_split=0)
    assert (info.vocab_size, info.sequence_length) == (20000, 200)


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "datasets" / "imdb.npz"
    path.parent.mkdir(parents=True)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = np.empty(1, dtype=object)
    evil[0] = Evil()
    np.savez(path, x_train=evil, y_train=np.zeros(1), x_test=evil, y_test=np.zeros(1))
    _use_hash(monkeypatch, "imdb", _sha256(path))
    with pytest.raises(ValueError, match=r"Could not read .*imdb\.npz: refusing to load posix\.system"):
        load_dataset("imdb", cache_dir=tmp_path)


def test_named_list_is_sorted():
    assert list(NAMED_DATASETS) == sorted(NAMED_DATASETS)
    assert set(_remote.REMOTE_FILES) == set(NAMED_DATASETS) - {"digits"}


def test_cifar100_from_a_folder_keras_extracted(tmp_path):
    # no archive, only the folder Keras >= 3.6 leaves: reused as it is (Keras never checks it)
    folder = tmp_path / "datasets" / "cifar-100-python-target" / "cifar-100-python"
    folder.mkdir(parents=True)
    names = [f"class{i}".encode() for i in range(100)]
    (folder / "train").write_bytes(
        _pickled({b"data": np.ones((4, 3072), np.uint8) * 51, b"fine_labels": [0, 99, 5, 5], b"coarse_labels": [0] * 4})
    )
    (folder / "test").write_bytes(_pickled({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [1, 2]}))
    (folder / "meta").write_bytes(_pickled({b"fine_label_names": names}))
    train, _, _, info = load_dataset("cifar100", cache_dir=tmp_path, validation_split=0)
    assert info.num_classes == 100 and info.class_names[99] == "class99" and info.num_test == 2
    x, y = _collect(train)
    assert sorted(y) == [0, 5, 5, 99] and np.allclose(x, 0.2)
    (folder / "test").write_bytes(b"\x80\x03garbage")
    with pytest.raises(ValueError, match=r"Could not read .*cifar-100-python:test"):
        load_dataset("cifar100", cache_dir=tmp_path)


def test_return_test_auto_gives_none_when_the_source_has_no_test_split(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(20)))
    train, val, test, info = load_dataset(path, batch_size=4, return_test="auto")
    assert test is None and info.num_test == 0
    *_, test, info = load_dataset("digits", batch_size=512, return_test="auto")
    assert sum(len(y) for _, y in test) == info.num_test == 359
    with pytest.raises(TypeError, match=r"return_test must be True, False or 'auto'\. Received: return_test='yes'"):
        load_dataset("digits", return_test="yes")


# ------------------------------------------- arrays, and non-finite values in every source


def test_arrays_in_memory_in_each_keras_layout():
    rng = np.random.default_rng(0)
    x, y = rng.random((30, 5)).astype("float32"), np.arange(30) % 3
    for data in ((x, y), {"x_train": x, "y_train": y}, ((x[:20], y[:20]), (x[20:], y[20:]))):
        train, val, test, info = load_dataset(data, batch_size=8, validation_split=0, return_test="auto")
        assert info.kind == "table" and info.input_shape == (5,) and info.num_classes == 3
        assert info.num_train + info.num_test == 30
        xs, ys = _collect(train)
        rows = [int(np.flatnonzero((x == row).all(axis=1))[0]) for row in xs]  # where each example came from
        assert xs.dtype == np.float32 and sorted(rows) == list(range(info.num_train))
        np.testing.assert_array_equal(ys, y[rows])  # and its label came with it
    images = (rng.random((12, 6, 6)) * 255).astype("uint8")
    train, _, _, info = load_dataset(images, labels=False, validation_split=0)
    assert info.kind == "image" and info.input_shape == (6, 6, 1) and _collect(train).max() <= 1.0
    with pytest.raises(TypeError, match=r"Arrays must be x, \(x, y\), .* Received: tuple of length 3"):
        load_dataset((x, y, y))


NON_FINITE = [
    (
        lambda p, v: p.with_suffix(".csv").write_text(f"a,b,label\n1,2,0\n3,{v},1\n"),
        r"bad\.csv, line 3, column 'b': features must be finite numbers\. Received: '{v}' \(1 non-finite",
    ),
    (
        lambda p, v: p.with_suffix(".csv").write_text(f"1,2,0\n{v},4,1\n"),
        r"bad\.csv, line 2, column 1: features must be finite numbers",
    ),
    (
        lambda p, v: np.savez(p.with_suffix(".npz"), x_train=np.full((4, 3), float(v)), y_train=np.arange(4) % 2),
        r"bad\.npz: x_train holds NaN or inf values in float32 \(12 in all; the first at index \(0, 0\)\)",
    ),
    (
        lambda p, v: _write_npz(
            p.with_suffix(".npz"), x_test=np.where(np.eye(6) > 0, float(v), 0.5)[None].repeat(8, 0)
        ),
        r"bad\.npz: x_test holds NaN or inf values in float32 \(48 in all; the first at index \(0, 0, 0\)\)",
    ),
]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e40"])
@pytest.mark.parametrize("case", range(len(NON_FINITE)))
def test_non_finite_values_are_refused_in_every_file_source(tmp_path, case, value):
    make, message = NON_FINITE[case]
    make(tmp_path / "bad", value)
    path = next(tmp_path.iterdir())
    with pytest.raises(ValueError, match=message.replace("{v}", value)) as e:
        load_dataset(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e300])
def test_non_finite_arrays_are_refused(value):
    x, y = np.zeros((10, 4)), np.arange(10) % 2
    x[7, 3] = value
    with pytest.raises(
        ValueError,
        match=r"^arrays: x_train holds NaN or inf values in float32 \(1 in all; "
        r"the first at index \(7, 3\)\)\. Received: ",
    ):
        load_dataset((x, y))


def test_image_folders_decode_to_finite_values(tmp_path):
    # 8-bit files cannot hold NaN; the pipeline's scaling must not make any either
    for cls in ("a", "b"):
        for i in range(3):
            _write_png(tmp_path / "imgs" / cls / f"{i}.png", value=255 * i // 2)
    train, _, _, _ = load_dataset(tmp_path / "imgs", validation_split=0, value_range=(-1.0, 1.0))
    x, _ = _collect(train)
    assert np.isfinite(x).all() and x.min() == -1.0 and x.max() == 1.0


# ----------------------------------- damaged files: one line naming the file, found up front


def _compressed_npz_failing_lazily(path):
    """A savez_compressed file with bytes flipped in its deflate stream, where np.load
    itself fails late, with zlib.error (found by trying offsets from the middle)."""
    import zlib

    x = np.random.default_rng(0).integers(0, 4, (200, 8, 8), dtype=np.uint8)
    np.savez_compressed(path, x_train=x, y_train=np.arange(200) % 4)
    good = path.read_bytes()
    for offset in range(len(good) // 2, len(good)):
        damaged = bytearray(good)
        damaged[offset : offset + 3] = bytes(b ^ 0xFF for b in damaged[offset : offset + 3])
        path.write_bytes(bytes(damaged))
        try:
            with np.load(path) as f:
                f["x_train"]
        except zlib.error:
            return path
        except Exception:  # noqa: BLE001, S110 - another error: try the next offset
            pass
    raise AssertionError("no offset gives zlib.error")


def _write_npy(path):
    """A .npy file (one array, not a zip) under the name `path`."""
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((4, 3)))
    path.write_bytes(buffer.getvalue())


def _patch_central_directory(path, offset, value):
    """Sets a 2-byte field of every central-directory entry of a zip (8: flags, 10: method)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        data[at + offset : at + offset + 2] = value.to_bytes(2, "little")
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (
            _compressed_npz_failing_lazily,
            r"^Could not read .*bad\.npz: the file is corrupted \('x_train\.npy': Error -3 while decompressing data: ",
        ),
        (
            lambda p: _patch_central_directory(_write_npz(p), 8, 1),  # "encrypted": RuntimeError in zipfile
            r"^Could not read .*bad\.npz: the file is corrupted \('x_train\.npy': File .* is encrypted, password ",
        ),
        (
            lambda p: _patch_central_directory(_write_npz(p), 10, 99),  # AES: NotImplementedError in zipfile
            r"^Could not read .*bad\.npz: the file is corrupted \('x_train\.npy': That compression method is not ",
        ),
        (
            lambda p: p.write_bytes(_write_npz(p).read_bytes()[:-40]),
            r"^Could not read .*bad\.npz: not a valid \.npz \(zip\) file \(",
        ),
        (
            lambda p: p.write_text("x,y\n1,2\n"),  # np.load would suggest allow_pickle
            r"^Could not read .*bad\.npz: not a valid \.npz \(zip\) file \(File is not a zip file\)\.$",
        ),
        (
            _write_npy,
            r"^Could not read .*bad\.npz: not a valid \.npz \(zip\) file; "
            r"it holds one \.npy array: save with np\.savez",
        ),
        (
            lambda p: np.savez(p, x_train=np.array([[1, 2], [3]], dtype=object), y_train=np.arange(2)),
            (
                r"^.*bad\.npz: x_train is an object array, refused for safety \(reading it would unpickle, which can "
                r"run any code\); save arrays of numbers or strings\. Received: dtype object$"
            ),
        ),
    ],
)
def test_damaged_npz_is_one_line(tmp_path, make, message):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(ValueError, match=message) as e:
        load_dataset(path)
    assert "\n" not in str(e.value) and "allow_pickle" not in str(e.value)


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "empty"])
def test_an_unreadable_image_is_named_before_any_pipeline_exists(tmp_path, damage):
    root = _image_folder(tmp_path / "imgs", per_class=6)
    bad = root / "dog" / "5.png"
    good = bad.read_bytes()
    bad.write_bytes(
        {"random bytes": np.random.default_rng(0).bytes(300), "truncated": good[: len(good) // 2], "empty": b""}[damage]
    )
    expected = {
        "random bytes": "Unknown image file format. One of JPEG",
        "truncated": "Invalid PNG",
        "empty": "Input is empty",
    }[damage]
    for split in (0, 0.5):  # the file is in train or in val
        with pytest.raises(ValueError, match=rf"^Could not decode the image {bad}: {expected}") as e:
            load_dataset(root, validation_split=split)
        assert "\n" not in str(e.value) and str(e.value).endswith(". Remove or replace it.")


def test_image_folder_too_small_for_the_validation_split(tmp_path):
    root = _image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=3)
    with pytest.raises(ValueError) as e:
        load_dataset(root, validation_split=0.1)
    assert str(e.value) == f"validation_split=0.1 of the 6 training examples of {root} leaves no validation examples."


def test_image_folders_log_no_autograph_warning(tmp_path, caplog, capfd):
    root = _image_folder(tmp_path / "imgs")
    for labels in (True, False):
        train, val, _, _ = load_dataset(root, labels=labels, validation_split=0.25)
        next(iter(train)), next(iter(val))
    logged = caplog.text + "".join(capfd.readouterr())
    assert "AutoGraph could not transform" not in logged


# ---------------------------------------------------------- labels: 0..K-1, at least 2 classes


def test_a_stray_label_is_refused_not_made_into_classes(tmp_path):
    y = np.arange(20) % 10
    y[7] = 100000
    npz = _write_npz(tmp_path / "stray.npz", y_train=y, test=0)
    with pytest.raises(ValueError) as e:
        load_dataset(npz)
    assert str(e.value) == (
        f"{npz}: labels must be 0..K-1 with every class present; classes 10, 11, 12, 13, 14, "
        f"15, 16, 17, 18, 19, ... (99990 of 100001) have no training example. "
        f"Received: labels from 0 to 100000"
    )
    csv = tmp_path / "stray.csv"
    csv.write_text("".join(f"{i},{label}\n" for i, label in enumerate([0, 1, 2, 4, 4.0, 1])))
    with pytest.raises(ValueError) as e:
        load_dataset(csv)
    assert str(e.value) == (
        f"{csv}: labels must be 0..K-1 with every class present; class 3 (1 of 5) has no "
        f"training example. Received: labels from 0 to 4"
    )
    huge = _write_npz(tmp_path / "huge.npz", y_train=np.where(np.arange(20) == 3, 1e300, np.arange(20) % 2), test=0)
    with pytest.raises(
        ValueError,
        match=r"classes 2, 3, .* \(1e\+300 of 1e\+300\) have no training example\. "
        r"Received: labels from 0 to 1e\+300$",
    ):
        load_dataset(huge)


def test_a_test_label_unseen_in_training_is_refused(tmp_path):
    path = _write_npz(tmp_path / "t.npz", classes=3, y_test=np.array([0, 1, 2, 3, 0, 1, 2, 0]))
    with pytest.raises(ValueError) as e:
        load_dataset(path)
    assert str(e.value) == (
        f"{path}: labels must be 0..K-1 with every class present; class 3 (1 of 4) has no "
        f"training example. Received: labels from 0 to 3"
    )


def test_one_class_is_refused_for_a_classifier_only(tmp_path):
    message = (
        "the data holds one class ({}); a classifier needs at least 2. "
        "Pass labels=False to read the data without labels."
    )
    npz = _write_npz(tmp_path / "one.npz", classes=1)
    csv = tmp_path / "one.csv"
    csv.write_text("".join(f"{i},0\n" for i in range(6)))
    for path in (npz, csv):
        with pytest.raises(ValueError) as e:
            load_dataset(path)
        assert str(e.value) == f"{path}: " + message.format("label 0")
        train, _, _, info = load_dataset(path, labels=False, validation_split=0)
        assert info.num_classes == 1 and len(_collect(train)) == info.num_train
    root = _image_folder(tmp_path / "imgs", classes=("cat",), per_class=10)
    with pytest.raises(ValueError) as e:
        load_dataset(root)
    assert str(e.value) == f"{root}: " + message.format("label 0, the folder 'cat'")
    train, _, _, info = load_dataset(root, labels=False, validation_split=0)
    assert _collect(train).shape == (10, 5, 7, 3)


# ------------------------------------------------------------ one read, named splits


def test_load_dataset_returns_named_splits_and_builds_only_those_asked_for(tmp_path):
    path = _write_npz(tmp_path / "toy.npz", n=20, test=8)
    splits = load_dataset(path, batch_size=4, return_test=True)
    assert splits.train is splits[0] and splits.info is splits[3] and len(splits) == 4
    assert splits.test is not None and splits.info.num_test == 8
    only = load_dataset(path, batch_size=4, return_test=True, splits=["test"])
    assert only.train is None and only.val is None and only.info.num_train == splits.info.num_train
    np.testing.assert_array_equal(_collect(only.test)[0], _collect(splits.test)[0])
    assert load_dataset(path, batch_size=4).test is None  # return_test=False
    with pytest.raises(
        ValueError,
        match=r"splits must be a list of names from \('train', 'val', 'test'\)\. "
        r"Received: splits='test'",
    ):
        load_dataset(path, splits="test")


@pytest.mark.parametrize("model, shape", [("vgg16", (32, 32, 1)), ("lstm", (8, 8)), ("mlp", (8, 8, 1))])
def test_training_reads_the_data_once_in_the_form_the_model_needs(monkeypatch, model, shape):
    from recipes import config as config_lib
    from recipes import training

    calls = []
    read = _readers.read_npz

    def counting(*args, **kwargs):
        calls.append(args)
        return read(*args, **kwargs)

    monkeypatch.setattr(_readers, "read_npz", counting)
    data = training.load_data(config_lib.resolve(model, flags={"dataset": "digits"}))
    assert len(calls) == 1, calls  # digits are read once, even when they must be resized or read as rows
    assert data.info.input_shape == shape and data.test is not None


def test_open_source_tells_kind_and_shape_without_pipelines(tmp_path):
    from recipes.datasets import open_source

    folder = _image_folder(tmp_path / "pets")
    source = open_source(folder)
    assert (source.kind, source.shape, source.has_test) == ("image", (5, 7, 3), False)
    table = tmp_path / "t.csv"
    table.write_text("1,2,0\n3,4,1\n")
    assert (open_source(table).kind, open_source(table).shape) == ("table", (2,))
    train, _, _, info = load_dataset(source, batch_size=2, validation_split=0)
    assert info.num_classes == 3 and _collect(train)[0].shape == (12, 5, 7, 3)
