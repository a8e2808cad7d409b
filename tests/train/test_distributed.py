"""Real multi-process training on CPU: torchrun, gloo, 2 processes.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/train/test_distributed.py -q

- DDP with 2 processes gives the loss curve of 1 process with the same global batch (1e-5);
- FSDP2 (`fully_shard`) trains, its sharded checkpoint resumes exactly in 2 processes, and it
  reloads in a 1-process run (--init-from, consolidated from the DCP shards) and exports;
- KL (on general samples only) and EWC under FSDP2: the reference and the Fisher are sharded,
  saved as full tensors equal to a 1-process run's, and read back (not rebuilt) on resume.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from cpt.train.checkpoint import full_model_state, load_weights, read_model_state, save_weights
from cpt.train.config import TrainConfig
from cpt.train.data import write_shards
from cpt.train.loop import run_training
from cpt.train.metrics import read_metrics
from cpt.train.regularizers import EWC

LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128, "max_position_embeddings": 64}
ROOT = Path(__file__).resolve().parents[2]


def make_recipe(folder: Path, name: str, **train) -> Path:
    rng = np.random.default_rng(0)
    for src, n, lo in (("domain", 64, 2), ("general", 32, 64)):
        if not (folder / src).exists():
            docs = [rng.integers(lo, lo + 60, size=int(rng.integers(3, 40))) for _ in range(n)]
            write_shards(folder / src, docs, vocab_size=128, eos_id=1, files=2)
    spec = {
        "model_config": LLAMA,
        "sources": {"domain": str(folder / "domain"), "general": str(folder / "general")},
        "mixing": {"shares": {"domain": 0.5, "general": 0.5}},  # 4 + 4 globally, 2 + 2 per rank: the same mix
        "seq_len": 16,
        "global_batch_sequences": 8,
        "micro_batch": 2,
        "lr": 3e-3,
        "warmup_steps": 1,
        "max_steps": 4,
        "checkpoint_every": 2,
        "plots": False,
    }
    spec.update(train)
    recipe = folder / f"{name}.yaml"
    recipe.write_text(yaml.safe_dump({"name": name, "workdir": str(folder / name), "seed": 9, "train": spec}))
    return recipe


def run(recipe: Path, *args: str, nproc: int = 1) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CPT_QUIET": "1", "OMP_NUM_THREADS": "1"}
    env.pop("CPT_FAULT", None)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] if nproc > 1 else [sys.executable]
    done = subprocess.run([*launcher, "-m", "cpt", "train", str(recipe), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-3000:]
    return done


def losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(run_dir) if r["kind"] == "train"]


@pytest.mark.slow
def test_ddp_two_processes_match_one(tmp_path):
    run(make_recipe(tmp_path, "one"))
    run(make_recipe(tmp_path, "ddp", parallel="ddp"), nproc=2)
    one, ddp = losses(tmp_path / "one" / "train"), losses(tmp_path / "ddp" / "train")
    assert len(one) == len(ddp) == 4
    np.testing.assert_allclose(ddp, one, rtol=0, atol=1e-5)
    a = read_model_state(tmp_path / "one" / "train" / "checkpoints" / "step-4")
    b = read_model_state(tmp_path / "ddp" / "train" / "checkpoints" / "step-4")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


@pytest.mark.slow
def test_fsdp_trains_resumes_and_reloads_in_one_process(tmp_path):
    recipe = make_recipe(tmp_path, "fsdp", parallel="fsdp")
    run(recipe, nproc=2)
    run_dir = tmp_path / "fsdp" / "train"
    straight = losses(run_dir)
    assert len(straight) == 4 and straight[-1] < straight[0]
    assert (run_dir / "checkpoints" / "step-2" / "dcp").is_dir()  # sharded state, one file per rank
    assert {"data-rank0.json", "data-rank1.json"} <= {p.name for p in (run_dir / "checkpoints" / "step-2").iterdir()}
    final = read_model_state(run_dir / "checkpoints" / "step-4")  # consolidated from the shards

    # resume the sharded checkpoint of step 2 in 2 processes: steps 3-4 again, the same numbers
    import shutil

    shutil.rmtree(run_dir / "checkpoints" / "step-4")
    run(recipe, "--resume", "auto", nproc=2)
    assert losses(run_dir) == straight
    again = read_model_state(run_dir / "checkpoints" / "step-4")
    assert all(torch.equal(final[k], again[k]) for k in final)

    # the FSDP checkpoint in a 1-process run: its weights are what the model starts from
    one = make_recipe(tmp_path, "single", max_steps=1, lr=1e-9, warmup_steps=0, checkpoint_every=0)
    run(one, "--init-from", str(run_dir / "checkpoints" / "step-4"))
    loaded = read_model_state(tmp_path / "single" / "train" / "checkpoints" / "step-1")
    assert all(torch.allclose(loaded[k], final[k], atol=1e-6) for k in final)

    from transformers import AutoModelForCausalLM

    from cpt.commands.export import export_model

    export_model(run_dir / "checkpoints" / "step-4", tmp_path / "hf")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert all(torch.equal(full_model_state(hf, "none")[k], final[k]) for k in final)


def train_rows(run_dir: Path) -> list[dict]:
    return [r for r in read_metrics(run_dir) if r["kind"] == "train"]


@pytest.mark.slow
def test_fsdp_kl_and_ewc_shard_save_full_tensors_and_reload_on_resume(tmp_path):
    reg = {"kl": {"weight": 1.0, "general_only": True}, "ewc": {"weight": 100.0, "fisher_batches": 3}}
    recipe = make_recipe(tmp_path, "reg", parallel="fsdp", regularization=reg, max_steps=3)
    run(recipe, nproc=2)
    run_dir = tmp_path / "reg" / "train"
    rows = train_rows(run_dir)
    assert [r["step"] for r in rows] == [1, 2, 3] and all(math.isfinite(r["loss"]) for r in rows)
    # step 1 runs on the starting weights: the sharded model equals the sharded reference and θ = θ*
    assert abs(rows[0]["kl"]) < 1e-6 and rows[0]["ewc"] == 0.0
    assert rows[2]["kl"] > 1e-5 and rows[2]["ewc"] > 0

    # one process, the same recipe: the same starting model and the Fisher of the same batches
    spec = yaml.safe_load(recipe.read_text())["train"] | {"parallel": "none", "max_steps": 1, "checkpoint_every": 0}
    run_training(TrainConfig.model_validate(spec), tmp_path / "one", seed=9)
    ref, ref_one = load_weights(run_dir / "reference.safetensors"), load_weights(tmp_path / "one" / "reference.safetensors")
    assert ref.keys() == ref_one.keys() and all(torch.equal(ref[k], ref_one[k]) for k in ref)  # full tensors, not shards
    fsdp, one = EWC.load(run_dir / "ewc.safetensors"), EWC.load(tmp_path / "one" / "ewc.safetensors")
    assert fsdp.fisher.keys() == one.fisher.keys() and fsdp.weight == 100.0
    for name, f in one.fisher.items():
        assert fsdp.fisher[name].shape == f.shape and torch.equal(fsdp.anchor[name], one.anchor[name])
        torch.testing.assert_close(fsdp.fisher[name], f, rtol=1e-4, atol=1e-12)
    assert sum(float(f.sum()) for f in one.fisher.values()) > 0

    # resume from step 2 after replacing the reference and the anchor by the step-2 weights: if
    # they are read back from the run folder, KL and EWC are 0 again at step 3 (straight: > 0)
    at_step2 = read_model_state(run_dir / "checkpoints" / "step-2")
    shutil.rmtree(run_dir / "checkpoints" / "step-3")
    save_weights(at_step2, run_dir / "reference.safetensors")
    tampered = EWC(fsdp.fisher, {name: at_step2[name].float() for name in fsdp.anchor}, fsdp.weight)
    tampered.save(run_dir / "ewc.safetensors")
    run(recipe, "--resume", "auto", nproc=2)
    again = train_rows(run_dir)
    assert [r["loss"] for r in again[:2]] == [r["loss"] for r in rows[:2]] and len(again) == 3
    assert abs(again[2]["kl"]) < 1e-6 and again[2]["ewc"] == 0.0 and math.isfinite(again[2]["loss"])
    kept = EWC.load(run_dir / "ewc.safetensors")  # not re-estimated nor rewritten
    assert all(torch.equal(kept.anchor[n], tampered.anchor[n]) and torch.equal(kept.fisher[n], fsdp.fisher[n]) for n in kept.fisher)
