"""What a finished run is used for: measured, sampled, asked for predictions, exported.

```python
from recipes import trained
trained.evaluate("runs/alex1")                       # {"accuracy": ..., "loss": ..., "split": "test"}
trained.sample("runs/gan1", n=64, out="grid.png")
run = trained.load_run("runs/mlp1")                  # a TrainedRun: model, config, preprocessing
run.predict(images)                                  # raw images, preprocessed as in training
trained.export_run("runs/mlp1", "onnx", "mlp.onnx")  # verified in onnxruntime
```

- `loaded`: `TrainedRun` and `load_run`; `evaluation`: `evaluate`, `sample`;
  `prediction`: `recipes predict`; `export`: `recipes export` (the runtimes it checks in:
  `_runtimes`).
"""

from recipes.trained._runtimes import FORMATS, Exported, ExportError, litert_interpreter, run_exported
from recipes.trained.evaluation import evaluate, sample
from recipes.trained.export import TOLERANCE, export_command, export_run
from recipes.trained.loaded import TrainedRun, derive, load_run
from recipes.trained.prediction import Predictions, predict_command, write_predictions

__all__ = [
    "FORMATS",
    "TOLERANCE",
    "Exported",
    "ExportError",
    "Predictions",
    "TrainedRun",
    "derive",
    "evaluate",
    "export_command",
    "export_run",
    "litert_interpreter",
    "load_run",
    "predict_command",
    "run_exported",
    "sample",
    "write_predictions",
]
