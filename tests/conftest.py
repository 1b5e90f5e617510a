import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# the judges' cache (and any other KERAS_HOME file) of this session only, not the user's ~/.keras
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="recipes-tests-keras-home-"))

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Every test starts from the same seed, the float32 policy and an empty graph."""
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")
    keras.backend.clear_session()
