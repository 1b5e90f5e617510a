"""Moved to `recipes.run_directory`; this name stays for one release."""

import sys

from recipes import run_directory

sys.modules[__name__] = run_directory
