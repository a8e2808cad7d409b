"""Benchmarks: each `bench/NAME.py` prints the project beside a baseline measured in the same run."""

import os
from pathlib import Path

# the asset cache `make assets` fills (the Makefile exports it); the same default for
# `python -m bench ...` run by hand, before any benchmark module reads it
os.environ.setdefault("CPT_ASSETS_DIR", str(Path(__file__).resolve().parent.parent / ".assets"))
