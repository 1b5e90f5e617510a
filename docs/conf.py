"""Sphinx configuration of the recipes docs (MyST Markdown, furo).

Build, as CI does (warnings are errors):

    .venv/bin/pip install -e ".[docs]"
    .venv/bin/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
"""

import os
import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # the checkout's recipes, also when it is not installed
sys.path.insert(0, str(DOCS / "_ext"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


import recipes  # noqa: E402
from recipes.cli import _import_tensorflow_quietly  # noqa: E402

_import_tensorflow_quietly()  # autodoc imports TensorFlow: no C++ start-up notices in the build's output

project = "recipes"
author = "the recipes authors"
copyright = "the recipes authors, Apache-2.0"
release = version = recipes.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinxarg.ext",
    "recipes_docs",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "tensorboard"]

# MyST: ::: fences, definition lists, anchors for headings down to ###
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# docstrings write `name` for code, as Markdown does; in reStructuredText that is the default role
default_role = "code"
# "--flag" stays two hyphens in prose and in the command's help (no en dashes); quotes still curl
smartquotes_action = "qe"

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"  # types for the documented arguments only
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False  # no Keras docstrings on every overridden on_epoch_end
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

html_theme = "furo"
html_title = f"recipes {release}"
html_static_path = []
html_theme_options = {"navigation_with_keys": True}
