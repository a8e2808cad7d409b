"""How cpt runs datatrove's `LocalPipelineExecutor`: fork, workers that die with the run, cheap logging.

Workers: a pool worker (and datatrove's manager process) outlives a `kill -9` of the process
that started it and goes on writing task outputs, even taking new tasks from the pipe; a
re-run started meanwhile would write the same files. Inside `supervised_workers`
every process forked from this one asks Linux to SIGKILL it when its parent dies
(PR_SET_PDEATHSIG), so a killed run leaves nothing behind to race its re-run. The other way
round, a worker killed alone (the kernel's OOM killer, `kill -9` of one pid) would leave the run
waiting forever: the pool starts a new worker but never fails the task the dead one held.
Inside `supervised_workers` that death is a `WorkerDied` error in the run, within 0.1 s.

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
import threading
from collections.abc import Callable, Iterator

from cpt.errors import UserError


def local_executor(pipeline: list, *, tasks: int, workers: int, logging_dir: str):
    """datatrove's `LocalPipelineExecutor` as build and pack run it: forked workers, cheap task logging, resumable.

    Run it inside `supervised_workers()`.
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


_guard = {"active": False, "parent": 0, "hooked": False, "prctl": None}


def _resolve_prctl() -> None:
    """Find libc's prctl in this (parent) process, once.

    A child forked from a process with other threads may only call what cannot take a lock
    another thread held at the fork; loading a library (dlopen, behind `ctypes.CDLL`) takes
    the dynamic loader's lock, so the child only calls the function found here.
    """
    if _guard["prctl"] is not None:
        return
    try:
        import ctypes

        _guard["prctl"] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        _guard["prctl"] = False  # no prctl here: children are not tied to their parent


def _die_with_parent() -> None:
    """In a freshly forked child: SIGKILL when the parent dies (Linux; elsewhere nothing)."""
    prctl = _guard["prctl"]
    if not _guard["active"] or not prctl:
        return
    parent, _guard["parent"] = _guard["parent"], os.getpid()  # this child's own children die with it
    prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


class WorkerDied(UserError):
    """A worker process was killed while the run waited on it: one line, and the run can be resumed."""

    exit_code = 1


@contextlib.contextmanager
def supervised_workers() -> Iterator[None]:
    """Processes forked inside die with this process, and one dying alone fails this process.

    The first half is Linux's PR_SET_PDEATHSIG (elsewhere nothing). In the second, a pool
    worker that ends on a signal other than the SIGTERM of the pool's own shutdown raises
    `WorkerDied` in the main thread, through a SIGUSR1 whose handler raises it: the main
    thread sits in a blocking wait that no exception could otherwise reach. Off the main
    thread only the first half applies.
    """
    with _die_with_this_process(), _fail_when_a_worker_dies():
        yield


@contextlib.contextmanager
def _die_with_this_process() -> Iterator[None]:
    if not sys.platform.startswith("linux"):
        yield
        return
    if not _guard["hooked"]:
        _resolve_prctl()
        os.register_at_fork(after_in_child=_die_with_parent)
        _guard["hooked"] = True
    before = dict(_guard)
    _guard.update(active=True, parent=os.getpid())
    try:
        yield
    finally:
        _guard.update(active=before["active"], parent=before["parent"])


_watching = [False]


def _death(pid: int, code: int) -> str:
    number = -code
    name = signal.Signals(number).name if number in signal.valid_signals() else f"signal {number}"
    return f"worker process {pid} was killed ({name}{' - out of memory?' if number == signal.SIGKILL else ''})"


@contextlib.contextmanager
def _fail_when_a_worker_dies() -> Iterator[None]:
    """Raise `WorkerDied` in the main thread when a pool's maintenance finds a worker killed.

    multiprocess's pool reaps and replaces exited workers in `Pool._join_exited_workers`
    (every 0.1 s, on its own thread): that is where a lost task would start to be waited on
    forever, so that is where the exit code is read, before the worker is joined.
    """
    if _watching[0] or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_kill"):
        yield  # nested (pack inside `cpt run`): the outer context already watches every pool
        return
    from multiprocess.pool import Pool

    original = Pool.__dict__.get("_join_exited_workers")
    if not isinstance(original, staticmethod):  # another multiprocess layout: its own behaviour
        yield
        return
    died: list[str] = []
    main = threading.main_thread().ident

    def join_exited_workers(pool) -> bool:
        for worker in pool:
            code = worker.exitcode
            if code is not None and code < 0 and -code != signal.SIGTERM and not died:  # SIGTERM: the pool's own shutdown
                died.append(_death(worker.pid, code))
                signal.pthread_kill(main, signal.SIGUSR1)
        return original.__func__(pool)

    def raise_in_main(signum, frame) -> None:
        if died:
            raise WorkerDied(f"{died[0]}; finished tasks are kept: run the same command again to resume")

    previous = signal.signal(signal.SIGUSR1, raise_in_main)
    Pool._join_exited_workers = staticmethod(join_exited_workers)
    _watching[0] = True
    try:
        yield
    finally:
        _watching[0] = False
        Pool._join_exited_workers = original
        signal.signal(signal.SIGUSR1, previous)
