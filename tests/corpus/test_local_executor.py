"""How cpt runs datatrove's local executor: workers that die with the run, cheap per-task logging."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import pytest

from cpt.corpus.local_executor import cache_loguru_lib_dirs, start_method, workers_die_with_this_process


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
    with workers_die_with_this_process():
        assert _child_death_signal() == signal.SIGKILL
        with workers_die_with_this_process():  # nested (pack inside `cpt run`): still on
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
