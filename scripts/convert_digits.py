"""Converts the UCI optical handwritten digits (scikit-learn's copy) to `data/digits.npz`.

Run once; the result is committed, so neither users nor tests need scikit-learn:

    pip install scikit-learn
    python scripts/convert_digits.py            # writes data/digits.npz

The file uses the Keras dataset layout (`x_train`, `y_train`, `x_test`, `y_test`):
uint8 images of shape (8, 8) with values 0..16 and uint8 labels 0..9. The test split
is a seeded, class-stratified 20% (359 of the 1,797 images).
"""

import argparse
import gzip
import pathlib

import numpy as np

TEST_FRACTION = 0.2
SEED = 1797


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=pathlib.Path(__file__).parents[1] / "data" / "digits.npz")
    args = parser.parse_args()

    import sklearn.datasets  # only this script needs scikit-learn

    source = pathlib.Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"
    with gzip.open(source, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    x, y = table[:, :-1].reshape(-1, 8, 8), table[:, -1]

    rng = np.random.default_rng(SEED)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        test[members[: round(len(members) * TEST_FRACTION)]] = True
    train_idx, test_idx = rng.permutation(np.flatnonzero(~test)), rng.permutation(np.flatnonzero(test))

    np.savez_compressed(args.out, x_train=x[train_idx], y_train=y[train_idx], x_test=x[test_idx], y_test=y[test_idx])
    print(
        f"wrote {args.out}: {len(train_idx)} train, {len(test_idx)} test images of 8x8, "
        f"values {x.min()}..{x.max()}, {len(np.unique(y))} classes"
    )


if __name__ == "__main__":
    main()
