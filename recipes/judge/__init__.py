"""The judge of generated samples, and its use in a run.

```python
from recipes.judge import Judge, judge_from_run, train_judge
judge = judge_from_run("runs/mlp1", image_shape=(28, 28, 1), value_range=(-1, 1), generator="dcgan")
judge, accuracy = train_judge(x_train, y_train, value_range=(-1, 1))   # a small convnet, seconds
probabilities, features = judge.predict(gan.generate(1000, seed=0))
```

- `recipes.judge.classifier`: the judge itself: a classifier wrapped to read a generator's
  images (`Judge`), trained (`train_judge`, `cached_judge`) or made of a finished
  classifier run (`judge_from_run`).
- `recipes.judge.in_run`: the judge of one generative run (`RunJudge`), the real images it
  compares with (`real_images`) and the scores of a model's samples (`quality_of`,
  `evaluate_quality`). What the numbers mean is in `recipes.quality`.
"""

from recipes.judge.classifier import (
    JUDGE_EPOCHS,
    JUDGE_FILE,
    JUDGE_HOLDOUT,
    JUDGE_VERSION,
    NUM_SAMPLES,
    SAMPLE_SEED,
    Judge,
    build_judge_convnet,
    cached_judge,
    classifier_image_shape,
    judge_from_run,
    judge_key,
    judges_dir,
    stratified_split,
    train_judge,
)
from recipes.judge.in_run import RealImages, RunJudge, evaluate_quality, quality_of, real_images

__all__ = [
    "JUDGE_EPOCHS",
    "JUDGE_FILE",
    "JUDGE_HOLDOUT",
    "JUDGE_VERSION",
    "NUM_SAMPLES",
    "SAMPLE_SEED",
    "Judge",
    "RealImages",
    "RunJudge",
    "build_judge_convnet",
    "cached_judge",
    "classifier_image_shape",
    "evaluate_quality",
    "judge_from_run",
    "judge_key",
    "judges_dir",
    "quality_of",
    "real_images",
    "stratified_split",
    "train_judge",
]
