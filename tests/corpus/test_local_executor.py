"""How cpt runs datatrove's local executor: workers that die with the run, a run that fails when a worker dies, cheap per-task logging."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import pytest

from cpt.corpus.local_executor import cache_loguru_lib_dirs, start_method, supervised_workers


def _child_death_signal() -> int:
    """Fork; the child reports the signal it will get when this process dies (0: none)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: ask the kernel, report, leave without running any cleanup
        value = ctypes.c_int(-1)
        ctypes.CDLL(None).prctl(2, ctypes.byref(value))  # PR_GET_PDEATHSIG
        os.write(write, str(value.value).encode())
        os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    return int(answer)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_forked_inside_die_with_this_process_and_only_those():
    assert _child_death_signal() == 0
    with supervised_workers():
        assert _child_death_signal() == signal.SIGKILL
        with supervised_workers():  # nested (pack inside `cpt run`): still on
            assert _child_death_signal() == signal.SIGKILL
        assert _child_death_signal() == signal.SIGKILL
    assert _child_death_signal() == 0


def test_fork_where_there_is_one():
    import multiprocessing

    assert start_method() == ("fork" if "fork" in multiprocessing.get_all_start_methods() else "forkserver")


def test_loguru_library_folders_are_computed_once_with_the_same_answer():
    from loguru import logger
    from loguru._better_exceptions import ExceptionFormatter

    before = sorted(ExceptionFormatter._get_lib_dirs())
    cache_loguru_lib_dirs()
    cache_loguru_lib_dirs()  # idempotent: still one layer of caching
    assert sorted(ExceptionFormatter._get_lib_dirs()) == before
    assert getattr(ExceptionFormatter._get_lib_dirs, "_cpt_cached", False)
    sink = logger.add(lambda message: None)  # sinks still build their exception formatter
    logger.remove(sink)


def _work(i: int) -> int:
    if i == 2:  # this worker is killed alone, as the OOM killer would
        os.kill(os.getpid(), signal.SIGKILL)
    return i


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_a_pool_worker_killed_alone_fails_the_run_instead_of_hanging():
    import multiprocess
    from multiprocess.pool import Pool

    from cpt.corpus.local_executor import WorkerDied

    # the hook point the guard needs; without it the killed-worker pool below would wait forever
    assert isinstance(Pool.__dict__.get("_join_exited_workers"), staticmethod)
    before = signal.getsignal(signal.SIGUSR1)
    ctx = multiprocess.get_context(start_method())
    with supervised_workers():  # a finished pool (its workers end on SIGTERM) raises nothing
        with ctx.Pool(2) as pool:
            assert sorted(pool.imap_unordered(abs, range(6))) == list(range(6))
    with pytest.raises(WorkerDied, match=r"worker process \d+ was killed \(SIGKILL - out of memory\?\)"):
        with supervised_workers(), ctx.Pool(2) as pool:
            list(pool.imap_unordered(_work, range(6)))  # without the guard: waits forever for task 2
    assert signal.getsignal(signal.SIGUSR1) == before
    assert Pool._join_exited_workers.__name__ == "_join_exited_workers"  # the pool is itself again
