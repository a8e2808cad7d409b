"""How cpt starts datatrove's `LocalPipelineExecutor`: fork, and cheap per-task logging.

Logging: datatrove removes and re-adds loguru sinks around every task (a stderr sink and a file sink
per task, the default sink after it). Each `logger.add` builds an exception formatter that
expands every sysconfig install scheme to find the library folders: ~13 ms a sink, 0.2 s for
a 4-task pack, more than a small task's own work. The answer only changes when `sys.path`
does, so it is computed once per `sys.path`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def start_method() -> str:
    """fork where there is one: a worker starts in milliseconds with the modules (and parsed models) it inherits.

    datatrove's default, forkserver, starts each worker by importing datatrove, tokenizers,
    numpy & co afresh, seconds per process.
    """
    import multiprocessing

    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "forkserver"


def cache_loguru_lib_dirs() -> None:
    """Compute loguru's library folders once per `sys.path` instead of once per sink (idempotent)."""
    try:
        from loguru._better_exceptions import ExceptionFormatter
    except ImportError:  # another loguru layout: keep its own behaviour
        return
    compute: Callable[[], list[str]] | None = getattr(ExceptionFormatter, "_get_lib_dirs", None)
    if compute is None or getattr(compute, "_cpt_cached", False):
        return
    cache: dict[tuple[str, ...], list[str]] = {}

    def lib_dirs() -> list[str]:
        key = tuple(sys.path)
        if key not in cache:
            cache[key] = compute()
        return list(cache[key])

    lib_dirs._cpt_cached = True  # type: ignore[attr-defined]
    ExceptionFormatter._get_lib_dirs = staticmethod(lib_dirs)  # type: ignore[method-assign]
