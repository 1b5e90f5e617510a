"""Where recipes keeps what it downloads or makes once: the Keras home."""

from __future__ import annotations

import os
import pathlib


def keras_home(cache_dir=None) -> pathlib.Path:
    """`cache_dir`, else `$KERAS_HOME`, else `~/.keras`: the folder Keras keeps `datasets/` in."""
    return pathlib.Path(cache_dir or os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")).expanduser()
