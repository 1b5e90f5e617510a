"""One process of a job in tests/test_distributed.py: `recipes.run.train` as the command
runs it, then this process's copy of the trained weights saved to `<out>/weights<process>.npz`
(and, for an image folder, the number of files it decoded to `<out>/decoded<process>.txt`).

    python tests/_job_worker.py OUT RUN_DIR MODEL EPOCHS BATCH VALIDATION_SPLIT [KEY=VALUE ...]

The job comes from the KERAS_DISTRIBUTION_* variables (none: one process).
"""

import importlib
import os
import sys

import numpy as np

from recipes import config as config_lib
from recipes import job, run
from recipes.run import data_parallel

preparing = importlib.import_module("recipes.run.prepare")  # the module (recipes.run.prepare is the function)

out, run_dir, model, epochs, batch, split, *sets = sys.argv[1:]
captured = {}
original = preparing.build_model


def build_and_keep(config, info, plan):
    built = original(config, info, plan)
    captured.setdefault("model", built)  # the trained model (the twin is built by data_parallel)
    return built


def load_and_keep(*args, **kwargs):
    data = original_load(*args, **kwargs)
    captured.setdefault("train", data.train)
    return data


preparing.build_model = build_and_keep
original_load, preparing.load_data = preparing.load_data, load_and_keep
config = config_lib.resolve(
    model,
    flags={"epochs": int(epochs), "batch_size": int(batch), "validation_split": float(split)},
    sets=config_lib.parse_sets(sets),
)
run.train(config, run_dir, verbose=0, log=lambda *a: None)
weights = [data_parallel.local_value(v) for v in captured["model"].weights]
np.savez(os.path.join(out, f"weights{job.joined().process_id}.npz"), *weights)
decoded = getattr(captured["train"], "decoded", None)  # image files this process decoded (a folder's pipeline)
if decoded is not None:
    with open(os.path.join(out, f"decoded{job.joined().process_id}.txt"), "w") as f:
        f.write(str(int(decoded.numpy())))
