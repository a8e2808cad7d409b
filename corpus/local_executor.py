"""How cpt runs datatrove's `LocalPipelineExecutor`: fork, workers that die with the run, cheap logging.

Workers: a pool worker (and datatrove's manager process) outlives a `kill -9` of the process
that started it and goes on writing task outputs, even taking new tasks from the pipe; a
re-run started meanwhile would write the same files. Inside `workers_die_with_this_process`
every process forked from this one asks Linux to SIGKILL it when its parent dies
(PR_SET_PDEATHSIG), so a killed run leaves nothing behind to race its re-run.

Logging: datatrove removes and re-adds loguru sinks around every task (a stderr sink and a file sink
per task, the default sink after it). Each `logger.add` builds an exception formatter that
expands every sysconfig install scheme to find the library folders: ~13 ms a sink, 0.2 s for
a 4-task pack, more than a small task's own work. The answer only changes when `sys.path`
does, so it is computed once per `sys.path`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator


def local_executor(pipeline: list, *, tasks: int, workers: int, logging_dir: str):
    """datatrove's `LocalPipelineExecutor` as build and pack run it: forked workers, cheap task logging, resumable.

    Run it inside `workers_die_with_this_process()`.
    """
    from datatrove.executor import LocalPipelineExecutor

    cache_loguru_lib_dirs()  # before the fork: workers inherit it
    return LocalPipelineExecutor(
        pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir, skip_completed=True, start_method=start_method()
    )


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


_guard = {"active": False, "parent": 0, "hooked": False}


def _die_with_parent() -> None:
    """In a freshly forked child: SIGKILL when the parent dies (Linux; elsewhere nothing)."""
    if not _guard["active"]:
        return
    parent, _guard["parent"] = _guard["parent"], os.getpid()  # this child's own children die with it
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def workers_die_with_this_process() -> Iterator[None]:
    """Processes forked inside (pool workers, datatrove's manager) are killed when this process dies."""
    if not sys.platform.startswith("linux"):
        yield
        return
    if not _guard["hooked"]:
        os.register_at_fork(after_in_child=_die_with_parent)
        _guard["hooked"] = True
    before = dict(_guard)
    _guard.update(active=True, parent=os.getpid())
    try:
        yield
    finally:
        _guard.update(active=before["active"], parent=before["parent"])

