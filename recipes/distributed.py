"""Moved to `recipes.job` (the processes of a job); this name stays for one release."""

import sys

from recipes import job

sys.modules[__name__] = job
