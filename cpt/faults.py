"""`CPT_FAULT`: the one parser of the deterministic fault-injection variable.

Resume tests kill a stage at an exact point (a real SIGKILL, not a timer) by setting
`CPT_FAULT`. The corpus build, the pack and the training loop each act on their own
kinds; this module turns the variable into `(kind, argument)` specs once and checks it
against every kind the project knows, so a typo is a one-line error naming the variable
wherever it is read, and a kind meant for another stage (e.g. `kill-at-step:12` while a
`cpt run` builds its corpus) is valid and simply not acted on there.

Several faults may be combined with commas: `CPT_FAULT=nan-at-step:3,kill-at-step:8`.

Known kinds (the stage that acts on each documents its exact point):

| kind | argument | acted on by |
| --- | --- | --- |
| `kill-after-docs:N` | N >= 1 | corpus build (`cpt.corpus.faults`) |
| `kill-in-stage:S` | read, dedup or write | corpus build |
| `kill-worker-after-docs:N` | N >= 1 | corpus build: one worker alone, as the OOM killer would |
| `pack-kill-in-task:N` | task N >= 0 | `cpt corpus pack` |
| `kill-at-step:N` | step N >= 1 | training loop (`cpt.train.faults`) |
| `kill-during-save[:N]` | optional step N >= 1 | checkpoint save |
| `nan-at-step:N` / `nan-from-step:N` | step N >= 1 | training loop |
"""

from __future__ import annotations

import os
from typing import NamedTuple

from cpt.errors import UserError

ENV = "CPT_FAULT"

_STAGES = ("read", "dedup", "write")
# kind -> (argument rule, example). Rules: "int>=1", "int>=0", "opt-int>=1" or a tuple of allowed words.
KINDS: dict[str, tuple[str | tuple[str, ...], str]] = {
    "kill-after-docs": ("int>=1", "kill-after-docs:5"),
    "kill-in-stage": (_STAGES, "kill-in-stage:dedup"),
    "kill-worker-after-docs": ("int>=1", "kill-worker-after-docs:5"),
    "pack-kill-in-task": ("int>=0", "pack-kill-in-task:2"),
    "kill-at-step": ("int>=1", "kill-at-step:12"),
    "kill-during-save": ("opt-int>=1", "kill-during-save:10"),
    "nan-at-step": ("int>=1", "nan-at-step:3"),
    "nan-from-step": ("int>=1", "nan-from-step:3"),
}


class Fault(NamedTuple):
    """One parsed spec: `kill-at-step:12` -> Fault("kill-at-step", 12); words stay strings."""

    kind: str
    arg: int | str | None


class FaultSpecError(UserError, ValueError):
    """A malformed `CPT_FAULT`: a user mistake (one line, exit 2), and a ValueError for callers that expect one."""


def _parse_one(item: str, raw: str) -> Fault:
    kind, sep, arg = item.partition(":")
    kind, arg = kind.strip(), arg.strip()
    if kind not in KINDS:
        known = ", ".join(example for _, example in KINDS.values())
        raise FaultSpecError(f"{ENV}={raw!r}: unknown fault {kind!r} (known: {known})")
    rule, example = KINDS[kind]
    if isinstance(rule, tuple):
        if arg not in rule:
            raise FaultSpecError(f"{ENV}={raw!r}: {kind} takes one of {'|'.join(rule)}, e.g. {example}")
        return Fault(kind, arg)
    if rule.startswith("opt-") and not sep:
        return Fault(kind, None)
    least = int(rule.rpartition(">=")[2])
    if not arg.isdigit() or int(arg) < least:
        raise FaultSpecError(f"{ENV}={raw!r}: {kind} needs a whole number >= {least}, e.g. {example}")
    return Fault(kind, int(arg))


def parse(raw: str | None) -> tuple[Fault, ...]:
    """Every spec in a `CPT_FAULT` value, in order; empty or unset -> (). Raises FaultSpecError."""
    if raw is None or not raw.strip():
        return ()
    items = [item for item in raw.split(",") if item.strip()]
    return tuple(_parse_one(item.strip(), raw) for item in items)


_CACHE: dict[str, tuple[Fault, ...]] = {}


def active() -> tuple[Fault, ...]:
    """The faults set in this process's environment, parsed once per distinct value.

    Hot paths (the training loop asks before every step) pay one environment lookup and one
    dict lookup; a test that changes the variable gets the new value parsed.
    """
    raw = os.environ.get(ENV, "")
    if raw not in _CACHE:
        _CACHE[raw] = parse(raw)
    return _CACHE[raw]


def get(kind: str) -> Fault | None:
    """The first active fault of `kind`, else None (raises FaultSpecError for a malformed variable)."""
    if kind not in KINDS:  # a caller's typo must not turn into a fault that silently never fires
        raise KeyError(f"{kind!r} is not a registered {ENV} kind")
    return next((f for f in active() if f.kind == kind), None)
