"""Process group setup and the one place where a model is wrapped for DDP or sharded with FSDP2.

Launch:
    python -m cpt train recipe.yaml                                  # one process
    torchrun --nproc-per-node 2 -m cpt train recipe.yaml --set train.parallel=ddp
    torchrun --nproc-per-node 8 -m cpt train recipe.yaml --set train.parallel=fsdp

FSDP2 (`fully_shard`) is applied bottom-up, as torchtitan does: each decoder block is its own
unit (its parameters are gathered just before the block runs and freed after), then the input
embedding, then the final norm together with `lm_head` (they run back to back), then the root,
which picks up whatever is left. With tied embeddings the embedding and `lm_head` are one
tensor, so they are left to the root rather than split over two units. One mixed-precision
policy: bf16 compute with fp32 gradient reduction when the recipe asks for bf16.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(parallel: str, backend: str | None = None) -> DistInfo:
    """Join the torchrun process group (if launched by torchrun) and pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and parallel == "none":
        from cpt.errors import UserError

        raise UserError(f"launched with {world} processes but train.parallel is none; set --set train.parallel=ddp (or fsdp)")
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if parallel != "none" and not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ:  # a single process asked for ddp/fsdp: a world of one
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"), rank=rank, world_size=world)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world, device=device)


def destroy_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def decoder_blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated transformer blocks: modules whose class the model lists as not to be split."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    blocks = [m for m in model.modules() if type(m).__name__ in names]
    if not blocks:  # fall back to the longest ModuleList (model.layers in most architectures)
        lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
        blocks = list(max(lists, key=len)) if lists else []
    return blocks


def parallelize(model: nn.Module, parallel: str, info: DistInfo, *, bf16: bool = False, compile: bool = False) -> nn.Module:
    """Return the module to call in the loop: the model itself, DDP-wrapped, or FSDP2-sharded (in place).

    The optimizer must be built after this (it must see the sharded parameters under FSDP).
    """
    model = model.to(info.device)
    if parallel == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else MixedPrecisionPolicy()
        blocks = decoder_blocks(model)
        for block in blocks:
            if compile:
                block.compile()
            fully_shard(block, mp_policy=mp)
        input_emb = model.get_input_embeddings()
        output_emb = model.get_output_embeddings()
        tied = output_emb is not None and input_emb is not None and output_emb.weight is input_emb.weight
        if input_emb is not None and not tied:
            fully_shard(input_emb, mp_policy=mp)
            final_norm = getattr(getattr(model, "model", model), "norm", None)
            tail = [m for m in (final_norm, output_emb) if m is not None]
            if tail:
                fully_shard(tail, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
        return model
    if compile:
        model = torch.compile(model)
    if parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(model, device_ids=[info.local_rank] if info.device.type == "cuda" else None)
    return model


def prepare_reference(model: nn.Module, parallel: str, info: DistInfo, *, bf16: bool = False, compile: bool = False) -> nn.Module:
    """A frozen model (the KL reference) placed as the trained one, to run without grad in eval mode.

    Under FSDP it is sharded by `parallelize` itself — the same units and the same
    mixed-precision policy as the trained model, so it holds 1/world of the weights and
    computes in the same dtype. Under DDP it is only moved to the device: without gradients
    there is nothing to reduce. Parameters are frozen before sharding so FSDP keeps no
    gradient state for them.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    placed = parallelize(model, "fsdp" if parallel == "fsdp" else "none", info, bf16=bf16, compile=compile)
    return placed.eval()


def set_grad_sync(model: nn.Module, parallel: str, sync: bool) -> None:
    """Reduce gradients only on the last micro-batch of a step.

    DDP: toggling `require_backward_grad_sync` (what `no_sync()` does) without a context
    manager keeps the loop flat; FSDP2: `set_requires_gradient_sync`.
    """
    if parallel == "ddp":
        model.require_backward_grad_sync = sync
    elif parallel == "fsdp":
        model.set_requires_gradient_sync(sync)


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum floats over ranks (identity in one process); float64 so sums stay exact enough."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()
