"""Shared fixtures. Tests never reach a hub: HF_HUB_OFFLINE is set before anything imports transformers.

Tests that need an optional package call `need("module")`: locally a missing package
skips the test, but under CI (`CI=true`) it fails, so a missing install step cannot hide
behind a skip.
"""

from __future__ import annotations

import importlib
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CPT_QUIET", "1")
# compiled models (language ID profiles) go to a cache of this session, not the user's
os.environ.setdefault("CPT_CACHE_DIR", tempfile.mkdtemp(prefix="cpt-test-cache-"))

import pytest  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_module(name: str):
    """Import an optional module; skip locally when absent, fail under CI."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if IN_CI:
            pytest.fail(f"{name} is required under CI=true but is not installed: {exc}")
        pytest.skip(f"{name} not installed")


@pytest.fixture
def need():
    return need_module
