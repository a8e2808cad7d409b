"""`CPT_FAULT`: one parser (`cpt.faults`) behind the corpus build's, the pack's and the training loop's hooks.

    .venv/bin/python -m pytest tests/test_faults.py -q

The kills themselves are exercised end to end by the resume tests (tests/corpus/test_build.py,
tests/corpus/test_pack.py, tests/train/test_resume.py); here: parsing, errors, and that each
stage acts on its own kinds only, with one real SIGKILL per hook module in a subprocess.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from cpt import faults
from cpt.corpus import faults as corpus_faults
from cpt.errors import UserError
from cpt.train import faults as train_faults


def test_parse_specs_with_typed_arguments():
    assert faults.parse(None) == faults.parse("") == faults.parse("  ") == ()
    assert faults.parse("kill-at-step:12") == (("kill-at-step", 12),)
    assert faults.parse("kill-during-save") == (("kill-during-save", None),)
    assert faults.parse("kill-during-save:10") == (("kill-during-save", 10),)
    assert faults.parse("kill-in-stage:dedup") == (("kill-in-stage", "dedup"),)
    assert faults.parse("pack-kill-in-task:0") == (("pack-kill-in-task", 0),)
    both = faults.parse(" nan-at-step:3 , kill-at-step:8 ")
    assert both == (("nan-at-step", 3), ("kill-at-step", 8)) and both[1].kind == "kill-at-step" and both[1].arg == 8


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("kill-at-step", "needs a whole number >= 1"),
        ("kill-at-step:x", "needs a whole number >= 1"),
        ("kill-at-step:0", "needs a whole number >= 1"),
        ("kill-after-docs:-2", "needs a whole number >= 1"),
        ("pack-kill-in-task:", "needs a whole number >= 0"),
        ("kill-during-save:soon", "needs a whole number >= 1"),
        ("kill-in-stage:tokenize", "read|dedup|write"),
        ("kil-at-step:3", "unknown fault 'kil-at-step'"),
        ("kill-at-step:3,oops", "unknown fault 'oops'"),
    ],
)
def test_malformed_value_is_one_user_error_naming_the_variable(raw, says):
    with pytest.raises(faults.FaultSpecError) as info:
        faults.parse(raw)
    message = str(info.value)
    assert message.startswith(f"CPT_FAULT={raw!r}: ") and says in message and "\n" not in message
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)  # CLI one-liner; old callers' type


def test_active_follows_the_environment_and_get_finds_a_kind(monkeypatch):
    monkeypatch.delenv("CPT_FAULT", raising=False)
    assert faults.active() == () and faults.get("kill-at-step") is None
    monkeypatch.setenv("CPT_FAULT", "nan-from-step:4,kill-at-step:9")
    assert faults.get("kill-at-step") == ("kill-at-step", 9)
    assert faults.active() is faults.active()  # parsed once per value
    monkeypatch.setenv("CPT_FAULT", "kill-at-step:2")
    assert faults.get("kill-at-step").arg == 2 and faults.get("nan-from-step") is None
    with pytest.raises(KeyError):
        faults.get("kill-at-stpe")  # a caller's typo is caught, not a fault that never fires
    monkeypatch.setenv("CPT_FAULT", "kill-at-step:soon")
    with pytest.raises(faults.FaultSpecError):
        faults.get("kill-at-step")


def test_each_stage_acts_on_its_own_kinds_only(monkeypatch):
    # the corpus build's view keeps its old shape: (kind, argument as text), None for other stages' faults
    assert corpus_faults.parse("kill-after-docs:5") == ("kill-after-docs", "5")
    assert corpus_faults.parse("kill-in-stage:write") == ("kill-in-stage", "write")
    assert corpus_faults.parse("kill-at-step:12") is None and corpus_faults.parse("pack-kill-in-task:1") is None
    with pytest.raises(ValueError, match="CPT_FAULT"):
        corpus_faults.parse("kill-after-docs:0")
    monkeypatch.setenv("CPT_FAULT", "kill-after-docs:oops")
    with pytest.raises(UserError, match="CPT_FAULT='kill-after-docs:oops'"):
        corpus_faults.arm()  # before any work
    monkeypatch.setenv("CPT_FAULT", "kill-in-stage:dedup")
    corpus_faults.in_stage("write")  # another stage: nothing happens
    train_faults.before_step(1)  # a build fault means nothing to training
    train_faults.during_save(5)
    monkeypatch.setenv("CPT_FAULT", "nan-at-step:2")
    assert train_faults.poison_loss(1, 1.5) == 1.5
    assert train_faults.poison_loss(2, 1.5) != train_faults.poison_loss(2, 1.5)  # NaN
    monkeypatch.setenv("CPT_FAULT", "nan-from-step:3")
    assert train_faults.poison_loss(2, 1.0) == 1.0
    assert all(train_faults.poison_loss(s, 1.0) != train_faults.poison_loss(s, 1.0) for s in (3, 4, 100))
    monkeypatch.setenv("CPT_FAULT", "kill-during-save:10")
    train_faults.during_save(5)  # not the step named: nothing happens


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("kill-at-step:3", "from cpt.train import faults; faults.before_step(2); faults.before_step(3)"),
        ("kill-during-save", "from cpt.train import faults; faults.during_save(7)"),
        ("kill-in-stage:dedup", "from cpt.corpus import faults; faults.arm(); faults.in_stage('dedup')"),
    ],
)
def test_hooks_die_by_sigkill_where_told(fault, code):
    env = {"CPT_FAULT": fault, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code + "; print('survived')"], env=env, capture_output=True, text=True, timeout=60, start_new_session=True)
    assert done.returncode == -signal.SIGKILL and "survived" not in done.stdout, done.stderr[-2000:]
