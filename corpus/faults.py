"""Deterministic fault injection for resume tests: the build kills itself at a chosen point.

`CPT_FAULT` names the point; the process then dies by SIGKILL, exactly like `kill -9`
(no cleanup, no flush, no `finally`), so a test can check that a re-run with the same
arguments finishes with the same records without depending on timing:

- `kill-after-docs:N` - after the N-th document read in stage A (counted per process).
- `kill-worker-after-docs:N` - the same point, but only the process that reads it dies (a
  pool worker killed alone, as the OOM killer does): the build must fail, not wait forever.
- `kill-in-stage:NAME` - inside stage `NAME`: `read` (stage A, before its first
  document), `dedup` (stage B, after the duplicate lists are written but before the
  task is marked complete - the worst moment) or `write` (stage C, after its first
  document).

For the other kinds the whole build dies, as `kill -9` of the build does: the hook kills the
build's process group when the build leads one (tests start it with
`start_new_session=True`), else the driver process recorded in `CPT_FAULT_ROOT_PID`, and
then itself.

The variable is parsed by `cpt.faults` (shared with the pack and the training loop); the
other stages' kinds are valid here and ignored.
"""

from __future__ import annotations

import os
import signal

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from cpt import faults as _faults

ENV = _faults.ENV
ROOT_ENV = "CPT_FAULT_ROOT_PID"
KINDS = ("kill-after-docs", "kill-in-stage", "kill-worker-after-docs")


def parse(spec: str | None) -> tuple[str, str] | None:
    """The build's fault in a CPT_FAULT value: `kill-after-docs:5` -> ("kill-after-docs", "5").

    Empty, or only other stages' faults (e.g. `kill-at-step:12`) -> None; a malformed value
    raises `cpt.faults.FaultSpecError` (a ValueError) naming the variable.
    """
    return _build_fault(_faults.parse(spec))


def current() -> tuple[str, str] | None:
    return _build_fault(_faults.active())


def _build_fault(specs: tuple[_faults.Fault, ...]) -> tuple[str, str] | None:
    fault = next((f for f in specs if f.kind in KINDS), None)
    return None if fault is None else (fault.kind, str(fault.arg))


def arm() -> None:
    """Check CPT_FAULT and record the driver's pid, so a fault inside a worker can take the driver down too.

    A malformed CPT_FAULT is a one-line UserError here, before any work, not a crash in a worker.
    """
    from cpt.errors import UserError

    try:
        fault = current()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if fault is not None:
        os.environ[ROOT_ENV] = str(os.getpid())


def die() -> None:
    """SIGKILL the build: its process group if it leads one, else the driver and this process."""
    root = int(os.environ.get(ROOT_ENV, os.getpid()))
    try:
        if os.getpgid(0) == root:
            os.killpg(root, signal.SIGKILL)
        if root != os.getpid():
            os.kill(root, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def in_stage(name: str) -> None:
    """Call at a stage's fault point: dies when CPT_FAULT=kill-in-stage:<name>."""
    if current() == ("kill-in-stage", name):
        die()


class FaultPoint(PipelineStep):
    """A pass-through step that triggers `kill-after-docs:N` or `kill-in-stage:<stage>`.

    Without CPT_FAULT it only forwards documents (one environment lookup per task).
    """

    name = "fault point"
    type = "🧪 - TEST"

    def __init__(self, stage: str):
        super().__init__()
        self.stage = stage

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        fault = current()
        if fault is None:
            yield from data
            return
        kind, arg = fault
        if kind == "kill-in-stage" and arg == self.stage and self.stage == "read":
            die()
        limit = int(arg) if kind in ("kill-after-docs", "kill-worker-after-docs") and self.stage == "read" else None
        for doc in data:
            yield doc
            _COUNT[0] += 1
            if limit is not None and _COUNT[0] >= limit:
                if kind == "kill-worker-after-docs":
                    os.kill(os.getpid(), signal.SIGKILL)
                die()
            if kind == "kill-in-stage" and arg == self.stage:
                die()


_COUNT = [0]  # documents seen by this process across its tasks
