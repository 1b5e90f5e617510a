"""Trains a recipe: the same as `recipes train`, for script-based workflows.

    python scripts/train.py mlp                                   # bundled digits, 20 epochs
    python scripts/train.py vgg16 --epochs 5 --run-dir runs/vgg-demo
    python scripts/train.py alexnet --dataset cifar10 --config scripts/configs/alexnet_cifar10.yaml
    python scripts/train.py lstm --dataset imdb --config scripts/configs/lstm_imdb.yaml --set learning_rate=3e-4
    python scripts/train.py --resume runs/vgg-demo                # continue a killed run
    tensorboard --logdir runs

`python scripts/train.py --help` lists every flag; any builder or training setting can be
given with `--set key=value`.
"""

import sys

from recipes.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
