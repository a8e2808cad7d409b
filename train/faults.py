"""Deterministic fault injection for the resume tests: a real SIGKILL at a chosen point.

`CPT_FAULT` (environment variable, parsed by `cpt.faults`) picks the point:
- `kill-at-step:N` — the process kills itself just before optimizer step N (1-based) runs,
  i.e. after step N-1 and any checkpoint it wrote;
- `kill-during-save` or `kill-during-save:N` — the process kills itself in the middle of
  writing a checkpoint (the first one, or the one of step N): some files are in the
  temporary folder, the checkpoint is not renamed into place;
- `nan-at-step:N` / `nan-from-step:N` — the loss of step N (or of every step from N on) is
  made NaN, to exercise the skip-and-stop logic without an unstable model.

A timer-based kill would land at a different point on every run; these land on the same
instruction each time, so the tests can assert exact outcomes. SIGKILL (not an exception)
because that is what an OOM killer or a preempted node does: no `finally`, no flush.
Kinds meant for other stages (the corpus build's, the pack's) are valid and ignored here;
a malformed value is a `cpt.faults.FaultSpecError` (a one-line user error).
"""

from __future__ import annotations

import os
import signal
import sys

from cpt import faults as _faults

ENV = _faults.ENV


def _die(where: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"{ENV}: killing this process {where}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def before_step(step: int) -> None:
    """Called by the loop before optimizer step `step` (1-based)."""
    fault = _faults.get("kill-at-step")
    if fault is not None and fault.arg == step:
        _die(f"before step {step}")


def during_save(step: int) -> None:
    """Called by the checkpoint manager halfway through writing the checkpoint of `step`."""
    fault = _faults.get("kill-during-save")
    if fault is not None and (fault.arg is None or fault.arg == step):
        _die(f"while saving the checkpoint of step {step}")


def poison_loss(step: int, loss):
    """The loss of step `step` (1-based), or NaN where `nan-at-step` / `nan-from-step` says so."""
    at, since = _faults.get("nan-at-step"), _faults.get("nan-from-step")
    if (at is not None and at.arg == step) or (since is not None and step >= since.arg):
        return loss * float("nan")
    return loss
