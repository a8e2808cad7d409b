"""Input path references that stay portable across machines.

`pkg://PACKAGE/relative/path` names a file inside an installed package, found through
importlib without importing the package (konlpy, for one, needs a JVM to import).
`asset://NAME/relative/path` names a file fetched by `make assets` / `cpt.assets` into
the assets cache. Anything else is an ordinary path, relative to the current directory.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from cpt.errors import UserError

PKG = "pkg://"
ASSET = "asset://"


def _user_cache(env: str, *parts: str) -> Path:
    """$`env` when set, else ~/.cache/cpt/`parts`."""
    value = os.environ.get(env)
    return Path(value) if value else Path.home().joinpath(".cache", "cpt", *parts)


def assets_dir() -> Path:
    """Where `cpt.assets` keeps what it fetched: $CPT_ASSETS_DIR, else ~/.cache/cpt/assets."""
    return _user_cache("CPT_ASSETS_DIR", "assets")


def cache_dir() -> Path:
    """Where cpt keeps what it can compute again (compiled models): $CPT_CACHE_DIR, else ~/.cache/cpt."""
    return _user_cache("CPT_CACHE_DIR")


def package_root(package: str) -> Path:
    """The folder of an installed top-level package (or module), without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise UserError(f"package {package!r} is not installed (pip install it, or `make install`)")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec.origin:
        return Path(spec.origin).parent
    raise UserError(f"package {package!r} has no files on disk")


def resolve(ref: str | Path, *, must_exist: bool = True) -> Path:
    """Turn a `pkg://`, `asset://` or plain reference into a real path."""
    text = str(ref)
    if text.startswith(PKG):
        package, _, rest = text[len(PKG):].partition("/")
        path = package_root(package) / rest
    elif text.startswith(ASSET):
        path = assets_dir() / text[len(ASSET):]
        if must_exist and not path.exists():
            raise UserError(f"{text} not found under {assets_dir()} (run `make assets` first)")
    else:
        path = Path(text).expanduser()
    if must_exist and not path.exists():
        raise UserError(f"{text} not found" + (f" (resolved to {path})" if str(path) != text else ""))
    return path
