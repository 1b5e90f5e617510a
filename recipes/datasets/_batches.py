"""Reading the batches of any pipeline `load_dataset` returns, whichever engine built it.

A pipeline is a `tf.data.Dataset` (the tf.data engine) or a `keras.utils.PyDataset` (the PyDataset
engine, where TensorFlow is absent); callbacks, the judge and `evaluate` read batches through
`batches` and never test for either type. Imports no TensorFlow.
"""

from __future__ import annotations

import numpy as np


def is_pipeline(data) -> bool:
    """`data` is a pipeline of batches (either engine), not arrays."""
    return hasattr(data, "as_numpy_iterator") or _is_py_dataset(data)


def _is_py_dataset(data) -> bool:
    import keras

    return isinstance(data, keras.utils.PyDataset)


def batches(data, limit: int | None = None):
    """Yields the batches of `data` as numpy arrays (a tuple `(x, y)`, or `x`), at most `limit`.

    `data` is a `tf.data.Dataset`, a `keras.utils.PyDataset`, or an iterable of batches.
    A PyDataset is read by index (`data[i]`, no workers): what its epoch counter says stays as it was.
    """
    if hasattr(data, "as_numpy_iterator"):
        source = data.as_numpy_iterator() if limit is None else data.take(limit).as_numpy_iterator()
    elif _is_py_dataset(data):
        count = data.num_batches
        if count is None:
            raise ValueError("A PyDataset of unknown length cannot be read batch by batch here.")
        source = (data[i] for i in range(count if limit is None else min(count, limit)))
    else:
        source = iter(data)
    for i, batch in enumerate(source):
        if limit is not None and i >= limit:
            return
        yield tuple(np.asarray(part) for part in batch) if isinstance(batch, (tuple, list)) else np.asarray(batch)
