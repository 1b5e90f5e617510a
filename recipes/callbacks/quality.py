"""The quality of a generator's samples each epoch, as a judge classifier sees them."""

from __future__ import annotations

import keras
import numpy as np

from recipes.quality import gaussian, sample_quality

KEYS = ("frechet_distance", "judge_confidence", "class_entropy")


class SampleQuality(keras.callbacks.Callback):
    """Each epoch, scores `model.generate(num_samples, seed=seed)` against real images with a judge.

    Puts `val_frechet_distance`, `val_judge_confidence` and `val_class_entropy` into the
    epoch's logs (see `recipes.quality` for what they mean), so history.csv, TensorBoard,
    `best.keras` (`monitor="auto"` on a GAN) and early stopping see them: place it
    before those. The latent vectors are the same every epoch, so the numbers compare.

    Args:
        judge: a `recipes.judge.Judge` that reads the generator's images.
        real: real images in the generator's form, not trained on by the judge's
            scoring (the validation split, else training images).
        num_samples: generated images scored per epoch. Defaults to `500` (on the
            bundled digits the DCGAN makes 1,000 in about 3 s on 2 CPU cores).
        seed: seed of their latent vectors. Defaults to `4321`.
        prefix: put before each key. Defaults to `"val_"`.
    """

    def __init__(self, judge, real, *, num_samples: int = 500, seed: int = 4321, prefix: str = "val_"):
        super().__init__()
        self.judge, self.real = judge, np.asarray(real, dtype="float32")
        self.num_samples, self.seed, self.prefix = num_samples, seed, prefix
        self._real = None

    def on_train_begin(self, logs=None):
        if self._real is None:  # the real side is fixed: its Gaussian is fitted once
            self._real = gaussian(self.judge.predict(self.real)[1])

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        samples = self.model.generate(self.num_samples, seed=self.seed)
        if not np.all(np.isfinite(samples)):  # a diverged generator: no numbers, and no best.keras from it
            logs.update({self.prefix + k: float("nan") for k in KEYS})
            return
        logs.update(sample_quality(self.judge, samples, self._real, prefix=self.prefix))
