"""How good a generator's samples are, as a judge classifier sees them: the maths, in numpy.

```python
from recipes.quality import sample_quality
sample_quality(judge, gan.generate(1000, seed=0), test_images, labels=test_labels, reference=train_images)
# {"judge_confidence": 0.93, "class_entropy": 2.27, "frechet_distance": 4.1,
#  "judge_accuracy": 0.97, "frechet_distance_real": 1.2}
```

What the numbers mean (all measured with one judge; numbers from two judges do not compare):

- `judge_confidence`: mean top-class probability on the samples. Near 1: each sample
  looks clearly like some class to the judge; near 1/K: the judge cannot tell.
- `class_entropy`: entropy in nats of the histogram of the judge's predicted classes on
  the samples. `log K` (2.303 for 10 classes) when every class is generated equally
  often; far lower means mode collapse (0 when every sample is one class).
- `frechet_distance`: the Fréchet distance between Gaussians fitted to the judge's
  penultimate-layer features of the samples and of real held-out images (FID, Heusel
  et al. 2017, with the judge in place of Inception). Lower is better; 0 only for the
  same distribution. Finite sets give a positive floor: `frechet_distance_real` is the
  distance between as many real training images and the same held-out images.
- `judge_accuracy`: the judge's accuracy on the real held-out images, so a reader can
  tell whether the judge is worth trusting.

Reference:
- [Heusel et al., 2017](https://arxiv.org/abs/1706.08500) (Fréchet Inception Distance)
"""

from __future__ import annotations

import numpy as np


def gaussian(features):
    """Mean and covariance (float64) of `features` `(n, d)`, n >= 2."""
    features = np.asarray(features, dtype="float64").reshape(len(features), -1)
    if len(features) < 2:
        raise ValueError(f"A Gaussian needs at least 2 examples. Received: {len(features)} examples")
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def _sqrt_psd(matrix):
    """Square root of a symmetric positive semi-definite matrix, through its eigen-decomposition.

    Round-off can make tiny eigenvalues negative: they are clipped to 0, which a
    general `sqrtm` would turn into complex numbers."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to two sets of features.

    `||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2)`, the
    squared 2-Wasserstein distance of the two Gaussians. The last trace is taken from
    the eigenvalues of a symmetric matrix, so it stays real and stable when the
    covariances are singular (fewer examples than features).

    Args:
        a, b: features `(n, d)`, or `(mean, covariance)` pairs from `gaussian`.

    Returns:
        A float >= 0 (0 for identical sets).
    """
    (mu_a, s_a), (mu_b, s_b) = (x if isinstance(x, tuple) else gaussian(x) for x in (a, b))
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"Both sets need features of one size. Received: {mu_a.shape[0]} and {mu_b.shape[0]}")
    root = _sqrt_psd(s_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s_b @ root), 0.0, None)).sum()
    distance = np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2.0 * cross
    return float(max(distance, 0.0))


def class_entropy(classes, num_classes: int) -> float:
    """Entropy in nats of the histogram of `classes` (ints in `[0, num_classes)`).

    `log(num_classes)` when every class is equally frequent, 0 when all are one class."""
    counts = np.bincount(np.asarray(classes, dtype="int64").ravel(), minlength=num_classes)
    shares = counts[counts > 0] / counts.sum()
    return float(-np.sum(shares * np.log(shares)) + 0.0)


def sample_quality(judge, samples, real, *, labels=None, reference=None, prefix: str = "") -> dict:
    """Scores generated `samples` against `real` held-out images with `judge` (see the module doc).

    Args:
        judge: a `recipes.judge.Judge` (anything with `predict(images) -> (probabilities, features)`).
        samples: generated images, in the generator's shape and value range.
        real: real held-out images in the same form, or their `gaussian` of judge
            features (then `labels` must be `None`).
        labels: class labels of `real`; gives `judge_accuracy`. Defaults to `None`.
        reference: other real images (as many as `samples`, from the training split),
            or their `gaussian`; gives the floor `frechet_distance_real`. Defaults to `None`.
        prefix: put before each key, e.g. `"val_"`. Defaults to `""`.

    Returns:
        A dict of floats: `judge_confidence`, `class_entropy`, `frechet_distance`, and
        `judge_accuracy`, `frechet_distance_real` when `labels`, `reference` are given.
    """
    probabilities, features = judge.predict(samples)
    if isinstance(real, tuple):
        if labels is not None:
            raise ValueError("labels need the real images, not their Gaussian. Received: real=(mean, covariance)")
        real_stats = real
    else:
        real_probabilities, real_features = judge.predict(real)
        real_stats = gaussian(real_features)
    result = {
        "judge_confidence": float(probabilities.max(axis=1).mean()),
        "class_entropy": class_entropy(probabilities.argmax(axis=1), probabilities.shape[1]),
        "frechet_distance": frechet_distance(features, real_stats),
    }
    if labels is not None:
        result["judge_accuracy"] = float(np.mean(real_probabilities.argmax(axis=1) == np.asarray(labels).ravel()))
    if reference is not None:
        reference = reference if isinstance(reference, tuple) else gaussian(judge.predict(reference)[1])
        result["frechet_distance_real"] = frechet_distance(reference, real_stats)
    return {prefix + k: v for k, v in result.items()}
