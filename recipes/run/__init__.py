"""One run: `prepare(config)` makes a `Run` once; `train` claims its run directory, fits and finishes.

```python
from recipes import config, run
run_dir, metrics = run.train(config.resolve("mlp", flags={"epochs": 2}))
prepared = run.prepare(config.resolve("vgg16"))     # a Run: config, plan, data, model, judge, ...
prepared.model.fit(prepared.data.train, validation_data=prepared.data.val)
```

- `prepare`: `Run` and `prepare` (settings checked, job joined, hardware planned, data loaded,
  model built, judge planned).
- `train`: `train`, the run directory claimed (a new run, or a resume).
- `fit`: the run's callbacks and one process's `fit()`; `data_parallel`: `fit()` under a
  `keras.distribution.DataParallel` (a job of several processes, or several devices).
- `finish`: `finalize`, the end of a run for both; `reading`: a failed read named.
"""

from recipes.run.prepare import Run, backend_for, prepare
from recipes.run.train import other_backend, train

__all__ = ["Run", "backend_for", "other_backend", "prepare", "train"]
