"""Moved to `recipes.run.data_parallel` (data-parallel fit); this name stays for one release."""

import sys

from recipes.run import data_parallel

sys.modules[__name__] = data_parallel
