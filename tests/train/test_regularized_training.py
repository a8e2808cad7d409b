"""KL and EWC inside the training loop: they train, cache what they need, and hold the weights back."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cpt.train.checkpoint import read_model_state
from cpt.train.loop import run_training
from cpt.train.metrics import read_metrics
from cpt.train.regularizers import EWC

# the packed-data fixture of the loop tests, loaded by path (test modules are not a package)
_spec = importlib.util.spec_from_file_location("loop_tests", Path(__file__).with_name("test_loop.py"))
loop_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(loop_tests)
data = loop_tests.data


def distance(run: Path) -> float:
    """Squared distance of the final weights from the starting ones (the saved KL reference)."""
    from safetensors.torch import load_file

    start = load_file(str(run / "reference.safetensors"))
    final = read_model_state(run / "checkpoints" / "step-6")
    return sum(float((final[k].float() - v.float()).pow(2).sum()) for k, v in start.items())


@pytest.mark.slow
def test_kl_and_ewc_train_and_restrain(data, tmp_path):
    plain = run_training(loop_tests.config(data, regularization={"kl": {"weight": 1e-9}}), tmp_path / "plain", seed=3)
    strong = run_training(loop_tests.config(data, regularization={"kl": {"weight": 50.0}}), tmp_path / "kl", seed=3)
    assert plain["steps"] == strong["steps"] == 6
    assert (tmp_path / "kl" / "reference.safetensors").is_file()
    # the same start, the same data: a strong pull to the reference keeps the weights nearer to it
    assert distance(tmp_path / "kl") < distance(tmp_path / "plain")
    kl_terms = [r["kl"] for r in read_metrics(tmp_path / "kl") if r["kind"] == "train"]
    assert abs(kl_terms[0]) < 1e-6 and kl_terms[-1] > 0  # step 1: the model is the reference

    run_training(loop_tests.config(data, regularization={"ewc": {"weight": 10.0, "fisher_batches": 2}}), tmp_path / "ewc", seed=3)
    fisher = EWC.load(tmp_path / "ewc" / "ewc.safetensors")
    assert fisher.weight == 10.0 and sum(float(f.sum()) for f in fisher.fisher.values()) > 0
    penalties = [r["ewc"] for r in read_metrics(tmp_path / "ewc") if r["kind"] == "train"]
    assert penalties[0] == 0.0 and penalties[-1] > 0  # θ = θ* on the first step only
