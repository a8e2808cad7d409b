"""The `train:` recipe section: everything `cpt train` needs, validated before any work starts.

Cross-field rules live here (one of global_batch_tokens/global_batch_sequences, one of
max_steps/max_tokens, warmup as a ratio or as steps), so a bad recipe fails on load with one
line per problem. Checks that need the disk or the model (shard folders exist, seq_len fits
the model's context, vocabularies agree) are in `cpt.train.loop.preflight`, which also runs
before the first step.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, model_validator

from cpt.config import Section
from cpt.train.mixing import MixingConfig
from cpt.train.regularizers import RegularizationConfig


class TrainConfig(Section):
    """The `train` recipe section."""

    # -- model -------------------------------------------------------------------------------
    model: str | None = Field(default=None, description="Starting model: a Hugging Face folder with safetensors (pkg://, asset:// or a path); default: {workdir}/model in a recipe.")
    model_config_dict: dict[str, Any] | None = Field(default=None, alias="model_config", description="Or build a fresh model from a transformers config mapping (model_type included), e.g. a tiny Llama for tests.")
    tokenizer: str | None = Field(default=None, description="Tokenizer folder used for evaluation text and the vocab check; default: the model folder, else the shards' tokenizer.")
    dtype: Literal["fp32", "bf16"] = Field(default="fp32", description="fp32, or bf16 autocast (weights and optimizer stay fp32; under FSDP a bf16 mixed-precision policy).")
    attn_implementation: str | None = Field(default="sdpa", description="Passed to transformers: sdpa, eager, flash_attention_2, flex_attention; null for the model's default.")
    compile: bool = Field(default=False, description="torch.compile the model (each decoder block under FSDP).")
    grad_checkpointing: bool = Field(default=False, description="Recompute activations in the backward pass: less memory, about a third more compute.")
    doc_attention: bool = Field(default=True, description="Document-aware attention: positions restart at each document and no token attends across a document boundary inside a packed window.")

    # -- data ----------------------------------------------------------------------------------
    sources: dict[str, str] = Field(default_factory=dict, description="Source name -> packed-shard folder (a `cpt corpus pack` output); default in a recipe: {workdir}/pack/{name}.")
    mixing: MixingConfig = Field(description="Share of each source per step and how it changes over training.")
    seq_len: int = Field(default=1024, ge=8, description="Tokens per training sequence (windows are cut from the packed stream at this length).")
    global_batch_tokens: int | None = Field(default=None, ge=1, description="Tokens per optimizer step over all processes; a multiple of seq_len. Exclusive with global_batch_sequences.")
    global_batch_sequences: int | None = Field(default=None, ge=1, description="Sequences per optimizer step over all processes. Exclusive with global_batch_tokens.")
    micro_batch: int = Field(default=8, ge=1, description="Sequences per forward pass per process; gradients accumulate until the global batch is reached.")

    # -- optimization --------------------------------------------------------------------------
    lr: float = Field(default=3e-5, gt=0, description="Peak learning rate (after warmup).")
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1, description="The cosine decays to min_lr_ratio x lr, not to zero.")
    decay: Literal["cosine", "linear", "constant"] = Field(default="cosine", description="Shape of the decay after warmup.")
    warmup_steps: int | None = Field(default=None, ge=0, description="Linear warmup length in steps. Exclusive with warmup_ratio.")
    warmup_ratio: float | None = Field(default=None, ge=0, lt=1, description="Linear warmup as a fraction of all steps (default 0.01 when neither is given).")
    weight_decay: float = Field(default=0.1, ge=0, description="AdamW decoupled weight decay for matrices; norms, biases and embeddings get none.")
    betas: tuple[float, float] = Field(default=(0.9, 0.95), description="AdamW betas.")
    eps: float = Field(default=1e-8, gt=0, description="AdamW epsilon.")
    embedding_lr_mult: float = Field(default=1.0, gt=0, description="LR multiplier for embed_tokens and lm_head (CPT often trains them slower, e.g. 0.1).")
    new_vocab_only_steps: int = Field(default=0, ge=0, description="EEVE-style: for the first K steps train only the new vocabulary rows of embed_tokens/lm_head; everything else is frozen.")
    new_vocab_start: int | None = Field(default=None, ge=0, description="First new token id (rows from here on are new); default: base_vocab_size from the tokenizer's extension.json.")
    clip: float | None = Field(default=1.0, gt=0, description="Clip the global gradient norm to this; null for no clipping.")
    max_bad_steps: int = Field(default=5, ge=1, description="A NaN/inf loss or gradient skips the step; this many in a row stop the run.")
    regularization: RegularizationConfig = Field(default_factory=RegularizationConfig, description="KL to the starting model and/or EWC, added to the language-model loss.")
    max_steps: int | None = Field(default=None, ge=1, description="Optimizer steps to run. Exclusive with max_tokens.")
    max_tokens: int | None = Field(default=None, ge=1, description="Or tokens to train on (rounded up to whole steps).")

    # -- evaluation, checkpoints, logging -------------------------------------------------------
    eval_every: int = Field(default=0, ge=0, description="Evaluate on each source's held-out text every N steps (and at the end); 0: only at the end.")
    eval_tokens: int = Field(default=100_000, ge=1, description="At most this many tokens of held-out text per source per evaluation.")
    eval_batch: int = Field(default=8, ge=1, description="Sequences per forward pass during evaluation.")
    checkpoint_every: int = Field(default=0, ge=0, description="Save a full checkpoint every N steps (and at the end); 0: only at the end.")
    keep_last: int = Field(default=2, ge=1, description="Keep this many newest step checkpoints; the best one is kept apart in best/.")
    best_metric: Literal["domain_bpb", "domain_loss", "weighted_bpb"] = Field(default="domain_bpb", description="Which eval result picks best/: domain bits per byte, domain loss per token, or (1-w) x domain + w x general bits per byte.")
    best_general_weight: float = Field(default=0.5, ge=0, le=1, description="w of weighted_bpb: the weight of the general (forgetting) sources.")
    domain_source: str = Field(default="domain", description="The source that is the new domain; every other source counts as general (replay) in evaluation.")
    log_every: int = Field(default=1, ge=1, description="Write a metrics.jsonl line every N steps.")
    plots: bool = Field(default=True, description="Write plots/*.png (matplotlib) at each evaluation and at the end.")
    tensorboard: bool = Field(default=False, description="Also log to TensorBoard (run_dir/tensorboard) when the package is installed.")
    wandb: bool = Field(default=False, description="Also log to Weights & Biases when the package is installed and configured.")

    # -- distribution ----------------------------------------------------------------------------
    parallel: Literal["none", "ddp", "fsdp"] = Field(default="none", description="none (one process), ddp, or fsdp (FSDP2 fully_shard); launch with torchrun for ddp/fsdp.")
    backend: str | None = Field(default=None, description="torch.distributed backend; default nccl on GPU, gloo on CPU.")

    model_config = {**Section.model_config, "populate_by_name": True}

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.model is not None and self.model_config_dict is not None:
            raise ValueError("give one of train.model (a folder) or train.model_config (a fresh architecture), not both")
        if self.global_batch_tokens is not None and self.global_batch_sequences is not None:
            raise ValueError("global_batch_tokens and global_batch_sequences exclude each other: give one")
        if self.global_batch_tokens is not None and self.global_batch_tokens % self.seq_len:
            raise ValueError(f"global_batch_tokens ({self.global_batch_tokens}) must be a multiple of seq_len ({self.seq_len})")
        if self.max_steps is not None and self.max_tokens is not None:
            raise ValueError("max_steps and max_tokens exclude each other: give one")
        if self.max_steps is None and self.max_tokens is None:
            raise ValueError("give max_steps or max_tokens: how long to train")
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("warmup_steps and warmup_ratio exclude each other: give one")
        unknown = [s for s in self.mixing.source_names() if self.sources and s not in self.sources]
        if unknown:
            raise ValueError(f"mixing.shares: unknown source(s) {', '.join(unknown)} (sources: {', '.join(self.sources)})")
        return self

    # -- derived quantities ------------------------------------------------------------------------
    def global_sequences(self) -> int:
        """Sequences per optimizer step over all processes."""
        if self.global_batch_sequences is not None:
            return self.global_batch_sequences
        if self.global_batch_tokens is not None:
            return self.global_batch_tokens // self.seq_len
        return self.micro_batch

    def total_steps(self) -> int:
        """Optimizer steps of the whole run."""
        if self.max_steps is not None:
            return self.max_steps
        if self.max_tokens is not None:
            return max(1, math.ceil(self.max_tokens / (self.global_sequences() * self.seq_len)))
        raise ValueError("train needs max_steps or max_tokens")

    def warmup(self) -> int:
        """Warmup length in steps."""
        if self.warmup_steps is not None:
            return min(self.warmup_steps, self.total_steps())
        ratio = 0.01 if self.warmup_ratio is None else self.warmup_ratio
        return int(round(ratio * self.total_steps()))
