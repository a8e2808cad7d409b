"""Regularizers against forgetting: KL to a frozen reference, and EWC.

The KL term is a scalar the training loop adds to the language-model loss; EWC adds the
gradient of its penalty to the parameters' gradients after the backward pass and reports the
penalty's value.

- `KLToReference`: the reference is the starting model, frozen, run without grad on the
  same batch; the term is KL(p_ref || p_model) per token at temperature T (scaled by T²,
  as in distillation, so its gradient does not shrink with T), averaged over target
  tokens, optionally only over general (replay) sequences.
- `EWC` (Kirkpatrick et al. 2017): a diagonal Fisher F estimated on general data before
  training, an anchor θ* (the starting weights), penalty λ Σ F (θ − θ*)². Fisher and
  anchor are saved in safetensors beside the run so they are computed once; they cost
  two extra fp32 copies of the trained weights, which `memory_bytes` reports.

Under FSDP2 both follow the sharding of the trained model: the reference is sharded by the
same `fully_shard` wrapping (`cpt.train.parallelize.prepare_reference`), and the Fisher and
anchor are DTensors with the placements of the parameters, so every rank holds and computes
its own shard (`λ Σ F (θ − θ*)²` is a sum of local sums, reduced once). Files always hold
full tensors, written by rank 0, so a run can resume with any sharding.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from pydantic import Field
from safetensors.torch import load_file, save_file
from torch import nn
from torch.distributed.tensor import DTensor, distribute_tensor

from cpt.config import Section


def _dist_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _shard_group(module: nn.Module) -> dist.ProcessGroup | None:
    """The process group a module's DTensor (FSDP2) parameters are sharded over, else None.

    A forward of such a module gathers weights from every rank of that group.
    """
    for p in module.parameters():
        if isinstance(p, DTensor):
            return p.device_mesh.get_group()
    return None


class KLToReference:
    """KL(p_ref || p_model) per token; zero when the model equals the reference."""

    def __init__(self, reference: nn.Module, weight: float, temperature: float = 1.0, general_only: bool = False) -> None:
        self.reference = reference.eval()
        for p in self.reference.parameters():
            p.requires_grad_(False)
        self.weight = weight
        self.temperature = temperature
        self.general_only = general_only
        # a sharded reference gathers its weights from every rank, so whether it runs on a
        # micro-batch is decided by all ranks together (see __call__)
        self.group = _shard_group(self.reference)

    @torch.no_grad()
    def reference_logits(self, input_ids: torch.Tensor, **model_kwargs) -> torch.Tensor:
        return self.reference(input_ids=input_ids, **model_kwargs).logits

    def __call__(
        self,
        logits: torch.Tensor,  # (B, T, V) of the trained model
        input_ids: torch.Tensor,  # (B, T)
        labels: torch.Tensor | None = None,  # (B, T); -100 marks positions without a target
        is_general: torch.Tensor | None = None,  # (B,) bool: replay sequences
        **model_kwargs,
    ) -> torch.Tensor:
        mask = torch.ones(input_ids.shape, dtype=torch.bool, device=logits.device)
        if labels is not None:
            mask &= labels != -100
        if self.general_only:
            if is_general is None:
                raise ValueError("KL on general samples only needs is_general for each sequence")
            mask &= is_general.to(logits.device)[:, None]
        needed = bool(mask.any())
        if self.group is not None:  # run it if any rank needs it (general_only can leave one rank none)
            flag = torch.tensor([int(needed)], device=logits.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.group)
            if flag.item() and not needed:
                self.reference_logits(input_ids, **model_kwargs)
        if not needed:
            return logits.new_zeros(())
        ref = self.reference_logits(input_ids, **model_kwargs)
        t = self.temperature
        vocab = min(ref.shape[-1], logits.shape[-1])  # a padded vocab may differ in its unused tail
        log_p = F.log_softmax(logits[mask][:, :vocab].float() / t, dim=-1)  # (N, V)
        log_q = F.log_softmax(ref[mask][:, :vocab].float() / t, dim=-1)
        kl = F.kl_div(log_p, log_q, log_target=True, reduction="batchmean")  # Σ q (log q − log p) / N
        return self.weight * kl * t * t


class EWC:
    """Elastic weight consolidation with a diagonal Fisher.

    `fisher` and `anchor` map parameter names to tensors shaped (and, under FSDP, sharded)
    like the parameters.
    """

    def __init__(self, fisher: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor], weight: float) -> None:
        if fisher.keys() != anchor.keys():
            raise ValueError("EWC fisher and anchor must cover the same parameters")
        self.fisher = fisher
        self.anchor = anchor
        self.weight = weight

    @staticmethod
    def estimate(
        model: nn.Module,
        batches: Iterable[dict[str, torch.Tensor]],
        mode: str = "empirical",
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Mean of squared gradients of the LM loss over the batches.

        `empirical` uses the data's own next tokens as labels; `sampled` draws labels from the
        model's predictive distribution (the true Fisher's expectation). The square is taken
        per batch: with batch size 1 this is the per-sample Fisher, larger batches trade
        exactness for speed.

        Under FSDP pass the sharded model and the same batches on every rank: the reduced
        gradient of identical batches is the one-process gradient, so the sharded Fisher is
        the one-process Fisher cut into shards (an average over different batches would
        square a mean of gradients instead of averaging their squares).
        """
        if mode not in ("empirical", "sampled"):
            raise ValueError(f"unknown Fisher mode {mode!r}")
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
        was_training = model.training
        model.eval()  # no dropout: the Fisher of the model as it will be evaluated
        count = 0
        for batch in batches:
            model.zero_grad(set_to_none=True)
            input_ids = batch["input_ids"]
            logits = model(input_ids=input_ids).logits[:, :-1].float()  # (B, T-1, V)
            if mode == "empirical":
                target = batch.get("labels", input_ids)[:, 1:]
            else:
                with torch.no_grad():
                    probs = F.softmax(logits, dim=-1).reshape(-1, logits.shape[-1])
                    target = torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:2])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)
            loss.backward()
            for n, p in params.items():
                if p.grad is not None:
                    fisher[n] += p.grad.detach().float() ** 2
            count += 1
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        if count == 0:
            raise ValueError("EWC needs at least one batch of general data to estimate the Fisher")
        return {n: f / count for n, f in fisher.items()}

    @classmethod
    def from_model(cls, model: nn.Module, fisher: dict[str, torch.Tensor], weight: float) -> EWC:
        """Anchor at the model's current weights."""
        anchor = {n: p.detach().float().clone() for n, p in model.named_parameters() if n in fisher}
        return cls(fisher, anchor, weight)

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """λ Σ F (θ − θ*)² over the whole model, the same scalar on every rank.

        Differentiable for plain parameters. Sharded ones add up their local sums (a
        `Partial` DTensor) and are reduced over ranks once, at the end (collective).
        """
        total = None
        sharded = None
        for n, p in model.named_parameters():
            if n in self.fisher:
                term = (self.fisher[n].to(p.device) * (p.float() - self.anchor[n].to(p.device)) ** 2).sum()
                if isinstance(term, DTensor):
                    sharded = term if sharded is None else sharded + term
                else:
                    total = term if total is None else total + term
        if sharded is not None:
            reduced = sharded.full_tensor()
            total = reduced if total is None else total + reduced.to(total.device)
        if total is None:
            return torch.zeros(())
        return self.weight * total

    @torch.no_grad()
    def add_gradient(self, model: nn.Module) -> float:
        """Add ∂/∂θ of the penalty, 2 λ F (θ − θ*), to the gradients; return the penalty.

        Called after the backward pass (and after DDP/FSDP reduced the gradients), on
        parameters as the optimizer sees them: under FSDP these are the local shards, and
        the gradient of an elementwise penalty is local, so no communication is needed for
        it — only the returned value is summed over ranks (one all-reduce, collective).
        Adding it here rather than through autograd keeps it out of the gradient average
        over ranks and leaves FSDP's reduce-scatter alone.
        """
        total = 0.0
        sharded = None
        for n, p in model.named_parameters():
            if n not in self.fisher or not p.requires_grad:
                continue
            fisher = self.fisher[n].to(p.device)
            diff = p.detach().float() - self.anchor[n].to(p.device)
            grad = (2 * self.weight) * fisher * diff
            if p.grad is None:
                p.grad = grad.to(p.dtype)
            else:
                p.grad.add_(grad.to(p.grad.dtype))
            value = (fisher * diff * diff).sum()
            if isinstance(value, DTensor):
                sharded = value if sharded is None else sharded + value
            else:
                total += float(value)
        if sharded is not None:
            total += float(sharded.full_tensor())
        return self.weight * total

    @property
    def memory_bytes(self) -> int:
        """Bytes this process holds: under FSDP its shards of the Fisher and the anchor."""
        local = (t.to_local() if isinstance(t, DTensor) else t for d in (self.fisher, self.anchor) for t in d.values())
        return sum(t.numel() * t.element_size() for t in local)

    def save(self, path: Path) -> None:
        """One safetensors file: `fisher.<name>` and `anchor.<name>` tensors, always full.

        Sharded tensors are gathered one at a time, so this is collective under FSDP (every
        rank calls it) and rank 0 alone writes.
        """
        rank0 = _dist_rank() == 0
        tensors: dict[str, torch.Tensor] = {}
        for prefix, group in (("fisher", self.fisher), ("anchor", self.anchor)):
            for n, t in group.items():
                full = t.full_tensor() if isinstance(t, DTensor) else t
                if rank0:
                    tensors[f"{prefix}.{n}"] = full.detach().cpu().contiguous()
        if rank0:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            save_file(tensors, str(path), metadata={"weight": str(self.weight)})
        _barrier()

    @classmethod
    def load(cls, path: Path, weight: float | None = None, like: nn.Module | None = None) -> EWC:
        """Read a saved EWC; with `like`, place each tensor as that model's parameter of the name.

        Plain parameters: the tensor moves to their device. Sharded (FSDP) ones: rank 0 reads
        the full tensor and `distribute_tensor` scatters it with the parameter's mesh and
        placements, so each rank ends up with the shard matching its parameter shard (the
        other ranks read only the file's header, to agree on the names).
        """
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            names = list(fh.keys())
            saved_weight = float((fh.metadata() or {}).get("weight", "0"))
        params = dict(like.named_parameters()) if like is not None else {}
        sharded = any(isinstance(p, DTensor) for p in params.values())
        if like is not None:
            keys = {k.split(".", 1)[1] for k in names if k.startswith(("fisher.", "anchor."))}
            unknown = sorted(keys - params.keys())
            if unknown:
                raise ValueError(f"{path}: EWC tensors for parameters the model does not have ({', '.join(unknown[:3])})")
        tensors = load_file(str(path)) if not sharded or _dist_rank() == 0 else {}
        placed: dict[str, torch.Tensor] = {}
        for key in names:
            if not key.startswith(("fisher.", "anchor.")):
                continue
            p = params.get(key.split(".", 1)[1])
            if p is None:
                placed[key] = tensors[key]
            elif isinstance(p, DTensor):
                full = tensors[key].to(p.device) if key in tensors else torch.empty(p.shape, dtype=torch.float32, device=p.device)
                placed[key] = distribute_tensor(full, p.device_mesh, p.placements, src_data_rank=0)
            else:
                placed[key] = tensors[key].to(p.device)
        fisher = {k.removeprefix("fisher."): v for k, v in placed.items() if k.startswith("fisher.")}
        anchor = {k.removeprefix("anchor."): v for k, v in placed.items() if k.startswith("anchor.")}
        return cls(fisher, anchor, saved_weight if weight is None else weight)


class KLConfig(Section):
    """KL(p_ref || p_model) to the frozen starting model, on the same batch."""

    weight: float = Field(gt=0, description="Multiplier of the KL term added to the per-token loss.")
    temperature: float = Field(default=1.0, gt=0, description="Softmax temperature of both distributions (the term is scaled by T²).")
    general_only: bool = Field(default=False, description="Compute it only on general (replay) sequences, where keeping the old behaviour matters.")


class EWCConfig(Section):
    """Elastic weight consolidation against the starting weights."""

    weight: float = Field(gt=0, description="λ of the penalty λ Σ F (θ − θ*)².")
    fisher_batches: int = Field(default=16, ge=1, description="Micro-batches of general data the diagonal Fisher is estimated on, before training.")
    mode: Literal["empirical", "sampled"] = Field(default="empirical", description="Labels of the Fisher: the data's next tokens, or tokens sampled from the model.")


class RegularizationConfig(Section):
    """The `train.regularization` recipe section: levers against forgetting besides replay."""

    kl: KLConfig | None = Field(default=None, description="KL to the frozen reference (the starting model); null for none.")
    ewc: EWCConfig | None = Field(default=None, description="EWC penalty; the Fisher is saved to {run}/ewc.safetensors and reused; null for none.")
