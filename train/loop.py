"""The continued-pretraining loop: read it top to bottom.

    python -m cpt train recipe.yaml                                            # one process
    torchrun --nproc-per-node 2 -m cpt train recipe.yaml --set train.parallel=ddp
    torchrun --nproc-per-node 8 -m cpt train recipe.yaml --set train.parallel=fsdp
    python -m cpt train recipe.yaml --resume auto                              # continue a killed run

`run_training` composes the components — `mixing` (which sequences), `optim` (param groups,
new-vocab-only mask), `schedules` (lr), `attention` (document-aware masks), `parallelize`
(DDP/FSDP2), `evaluate` (held-out loss and bits per byte), `checkpoint`, `metrics` — and knows
no model internals.

One optimizer step: the mixture loader draws this rank's sequences of the global batch
(global batch in tokens / seq_len / world size), the loop slices them into micro-batches,
sums the cross-entropy of every target token and divides by this rank's target tokens, so
after DDP/FSDP averages over ranks the gradient is that of the mean loss over the global batch
— the same as one process with the whole batch. A step whose loss or gradient norm is not
finite is skipped (no update, its data is consumed); `max_bad_steps` in a row stop the run.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from cpt import faults as cpt_faults
from cpt import paths, ui
from cpt.config import to_plain
from cpt.errors import UserError
from cpt.seed import seed_everything
from cpt.train import faults
from cpt.train.attention import model_inputs
from cpt.train.checkpoint import (
    CheckpointManager,
    load_weights,
    read_model_state,
    resolve_resume,
    save_weights,
)
from cpt.train.config import TrainConfig
from cpt.train.data import PackedShards, read_meta, shard_folder
from cpt.train.evaluate import EvalSet, best_value, build_eval_set, eval_text_files, evaluate, read_eval_texts
from cpt.train.metrics import MetricsLogger, plot_run
from cpt.train.mixing import MixingSchedule, MixtureLoader
from cpt.train.optim import NewVocabOnly, build_optimizer
from cpt.train.parallelize import (
    all_reduce_sum,
    destroy_distributed,
    init_distributed,
    parallelize,
    prepare_reference,
    set_grad_sync,
)
from cpt.train.schedules import LRSchedule, LRScheduler


class TrainingDiverged(UserError):
    """Too many non-finite steps in a row: the run stops with a message saying what to change."""


# -- preflight: every check that can fail before a single step runs -----------------------------


@dataclass
class Plan:
    """What the checks resolved: the model's config, folders, batch layout."""

    model_config: Any
    model_path: Path | None
    tokenizer_path: Path | None
    source_folders: dict[str, Path]
    metas: dict[str, dict[str, Any]]
    sequences_per_rank: int
    total_steps: int
    warmup_steps: int
    new_vocab_start: int | None
    problems: list[str] = field(default_factory=list)


def _model_vocab(model_config: Any) -> int | None:
    return getattr(model_config, "vocab_size", None) or getattr(getattr(model_config, "text_config", None), "vocab_size", None)


def _context_length(model_config: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(model_config, name, None)
        if isinstance(value, int):
            return value
    return None


def preflight(config: TrainConfig, *, world_size: int = 1) -> Plan:
    """Check the recipe against the disk and the model; every problem is reported in one UserError."""
    from transformers import AutoConfig

    problems: list[str] = []
    # sources and their shards
    folders: dict[str, Path] = {}
    metas: dict[str, dict[str, Any]] = {}
    for name in config.mixing.source_names():
        if name not in config.sources:
            problems.append(f"train.mixing.shares: unknown source {name!r} (train.sources has: {', '.join(config.sources) or 'none'})")
            continue
        ref = config.sources[name]
        try:
            folder = paths.resolve(ref)
        except UserError as exc:
            folder = None
            hint = str(exc) if "://" in ref else f"run `cpt corpus pack --output {ref}` first"
        if folder is None or not folder.is_dir():
            problems.append(f"train.sources.{name}: shard folder not found: {ref} ({hint if folder is None else 'not a folder'})")
            continue
        try:
            metas[name] = read_meta(shard_folder(folder))
            folders[name] = folder
        except UserError as exc:
            problems.append(f"train.sources.{name}: {exc}")
    hashes = {m.get("tokenizer_hash") for m in metas.values() if m.get("tokenizer_hash")}
    if len(hashes) > 1:
        problems.append("train.sources: the sources were packed with different tokenizers (meta.json tokenizer_hash differs); pack them with one tokenizer")

    # the model
    model_path: Path | None = None
    model_config = None
    if config.model is not None:
        try:
            model_path = paths.resolve(config.model)
            model_config = AutoConfig.from_pretrained(str(model_path))
        except (UserError, OSError, ValueError) as exc:
            problems.append(f"train.model: cannot load a model config from {config.model} ({str(exc).splitlines()[0]})")
    elif config.model_config_dict is not None:
        spec = dict(config.model_config_dict)
        model_type = spec.pop("model_type", None)
        if model_type is None:
            problems.append("train.model_config: needs a model_type, e.g. llama")
        else:
            try:
                model_config = AutoConfig.for_model(model_type, **spec)
            except (ValueError, TypeError) as exc:
                problems.append(f"train.model_config: {exc}")
    else:
        problems.append("train.model: no starting model (give a model folder, or model_config for a fresh one)")

    vocab = _model_vocab(model_config) if model_config is not None else None
    if model_config is not None:
        context = _context_length(model_config)
        if context is not None and config.seq_len > context:
            problems.append(f"train.seq_len: {config.seq_len} is larger than the model's context ({context} positions); lower seq_len")
        for name, meta in metas.items():
            if vocab is not None and int(meta.get("vocab_size", 0)) > vocab:
                problems.append(
                    f"train.sources.{name}: packed with a tokenizer of {meta['vocab_size']} tokens but the model has {vocab} embedding rows; "
                    "resize the model to the tokenizer (`cpt model resize`) or pack with the model's tokenizer"
                )

    # the tokenizer used for evaluation text
    tokenizer_path: Path | None = None
    if config.tokenizer is not None:
        tokenizer_path = paths.resolve(config.tokenizer)
    elif model_path is not None and any((model_path / f).is_file() for f in ("tokenizer.json", "tokenizer.model")):
        tokenizer_path = model_path
    else:
        for meta in metas.values():
            tok = Path(str(meta.get("tokenizer", "")))
            if tok.name and tok.exists():
                tokenizer_path = tok if tok.is_dir() else tok.parent
                break
    if tokenizer_path is not None and vocab is not None:
        tok_vocab = _tokenizer_size(tokenizer_path)
        if tok_vocab is not None and tok_vocab > vocab:
            problems.append(f"train.tokenizer: {tokenizer_path} has {tok_vocab} tokens but the model has {vocab} embedding rows (tokenizer/model vocab mismatch)")

    # batch layout
    seqs = config.global_sequences()
    if seqs % world_size:
        problems.append(f"train: the global batch ({seqs} sequences) does not split evenly over {world_size} processes")
    new_start = config.new_vocab_start
    if config.new_vocab_only_steps and new_start is None and tokenizer_path is not None:
        ext = tokenizer_path / "extension.json"
        if ext.is_file():
            import json

            new_start = json.loads(ext.read_text(encoding="utf-8")).get("base_vocab_size")
    if config.new_vocab_only_steps and new_start is None:
        problems.append("train.new_vocab_only_steps: set train.new_vocab_start (the first new token id); no extension.json names it")

    if problems:
        if len(problems) == 1:
            raise UserError(problems[0])
        raise UserError(f"train: {len(problems)} problems in the recipe", problems=problems)
    return Plan(
        model_config=model_config,
        model_path=model_path,
        tokenizer_path=tokenizer_path,
        source_folders=folders,
        metas=metas,
        sequences_per_rank=seqs // world_size,
        total_steps=config.total_steps(),
        warmup_steps=config.warmup(),
        new_vocab_start=new_start,
    )


def _tokenizer_size(folder: Path) -> int | None:
    try:
        from transformers import AutoTokenizer

        return len(AutoTokenizer.from_pretrained(str(folder)))
    except (OSError, ValueError):
        return None


# -- the model ------------------------------------------------------------------------------------


def build_model(config: TrainConfig, plan: Plan, seed: int) -> nn.Module:
    """The starting model in fp32 (bf16 is autocast / FSDP mixed precision, master weights stay fp32)."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if config.attn_implementation:
        kwargs["attn_implementation"] = config.attn_implementation
    torch.manual_seed(seed)  # a fresh model's init depends on it: every rank builds the same one
    if plan.model_path is not None:
        model = AutoModelForCausalLM.from_pretrained(str(plan.model_path), **kwargs)
    else:
        model = AutoModelForCausalLM.from_config(plan.model_config, **kwargs)
    if config.grad_checkpointing:  # non-reentrant: works with DDP/FSDP and with frozen inputs
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    return model


def check_names(model: nn.Module, names, where: str) -> None:
    """Refuse weights whose names differ from the model's, except names a tied weight makes redundant."""
    own = model.state_dict()
    shared: dict[int, list[str]] = {}  # one Parameter, several names (tied embeddings)
    for name, p in model.named_parameters(remove_duplicate=False):
        shared.setdefault(id(p), []).append(name)
    covered = {name for group in shared.values() if any(n in names for n in group) for name in group}
    unexpected = [k for k in names if k not in own]
    missing = [k for k in own if k not in names and k not in covered]
    if unexpected or missing:
        listed = ", ".join((missing + unexpected)[:4])
        raise UserError(f"{where}: the weights do not match the model ({len(missing)} missing, {len(unexpected)} unexpected: {listed})")


def load_into(model: nn.Module, state: dict[str, torch.Tensor], where: str, *, assign: bool = False) -> None:
    """Load weights strictly, except keys a tied weight makes redundant (HF omits `lm_head.weight`).

    `assign=True` puts the given tensors into the model (for a model built on the meta device).
    """
    check_names(model, state, where)
    try:
        model.load_state_dict(state, strict=False, assign=assign)
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc).splitlines()[0])
        raise UserError(f"{where}: {first}") from None


def _eval_sets(config: TrainConfig, plan: Plan, eos_id: int | None) -> list[EvalSet]:
    if plan.tokenizer_path is None:
        ui.warn("no tokenizer found for the held-out text (set train.tokenizer); evaluation is skipped")
        return []
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(plan.tokenizer_path))
    sets = []
    for name, folder in plan.source_folders.items():
        files = eval_text_files(folder)
        if not files:
            ui.warn(f"source {name}: no held-out text (eval/*.jsonl.gz) in {folder}; it is not evaluated (pack with --eval-docs N)")
            continue
        counts: dict[str, int] = {}
        texts = read_eval_texts(files, counts=counts)
        data = build_eval_set(name, texts, tokenizer, seq_len=config.seq_len, max_tokens=config.eval_tokens, eos_id=tokenizer.eos_token_id if tokenizer.eos_token_id is not None else eos_id)
        if counts.get("no_text") or data.skipped:
            ui.warn(f"source {name}: {counts.get('no_text', 0)} held-out records without text and {data.skipped} that tokenize to nothing are not evaluated")
        if data.docs:
            sets.append(data)
    return sets


# -- the entry point --------------------------------------------------------------------------------


def _ref_kwargs(inputs: dict[str, Any]) -> dict[str, Any]:
    """The reference model sees the same positions and attention mask as the trained one."""
    return {k: v for k, v in inputs.items() if k != "input_ids"}


def _check_saved_keys(model: nn.Module, path: Path) -> None:
    """Compare a safetensors file's names with the model's on every rank, from the header alone.

    Under FSDP only rank 0 reads the tensors; checking the names everywhere first makes a
    wrong file fail on all ranks with one message instead of leaving the others waiting.
    """
    import json

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        names = set(fh.keys()) | set(json.loads((fh.metadata() or {}).get("aliases", "{}")))
    check_names(model, names, str(path))


def _load_full_into_sharded(model: nn.Module, path: Path, info) -> None:
    """Rank 0 reads a full state dict; FSDP broadcasts it and each rank keeps its shards."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    _check_saved_keys(model, path)
    state = load_weights(path) if info.rank == 0 else {}
    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))


def build_regularizers(
    config: TrainConfig,
    model: nn.Module,
    reference: nn.Module | None,
    source_folders: dict[str, Path],
    run_dir: Path,
    seed: int,
    info,
    *,
    resumed: bool,
):
    """KL to a frozen copy of the starting model, and EWC anchored at it (both cached in the run folder).

    `model` is the trained model as the loop holds it (sharded in place under FSDP);
    `reference` its copy taken before sharding or wrapping (None without KL). Both are built
    from the weights as they are before the first step: the reference is saved once, from
    full tensors on rank 0, and on resume the reference and the Fisher are read back from
    the run folder (and sharded like the model), never recomputed from trained weights.
    """
    from cpt.train.regularizers import EWC, KLToReference

    reg = config.regularization
    fsdp = config.parallel == "fsdp"
    kl = ewc = None
    if reg.kl is not None:
        if reference is None:
            raise ValueError("KL needs the copy of the starting model taken before parallelizing")
        reference_file = run_dir / "reference.safetensors"
        saved = resumed and reference_file.is_file()
        if saved and not fsdp:
            load_into(reference, load_weights(reference_file), str(reference_file))
        elif not saved and info.rank == 0:  # not sharded yet: rank 0 holds the full tensors
            save_weights({k: v.detach().cpu() for k, v in reference.state_dict().items()}, reference_file)
        reference = prepare_reference(reference, config.parallel, info, bf16=config.dtype == "bf16", compile=config.compile)
        if saved and fsdp:
            _load_full_into_sharded(reference, reference_file, info)
        kl = KLToReference(reference, reg.kl.weight, reg.kl.temperature, reg.kl.general_only)
    if reg.ewc is not None:
        fisher_file = run_dir / "ewc.safetensors"
        if fisher_file.is_file():
            ewc = EWC.load(fisher_file, weight=reg.ewc.weight, like=model)
        else:
            general = [name for name in source_folders if name != config.domain_source]
            if not general:
                raise UserError("train.regularization.ewc: the Fisher is estimated on general data, but every source is the domain")
            # the first windows of the one-process stream, on every rank: the Fisher does not
            # depend on the number of processes, and under FSDP/DDP all ranks agree on it
            source = PackedShards(source_folders[general[0]], config.seq_len, seed=seed)
            batches = []
            for _ in range(reg.ewc.fisher_batches):
                window = source.next()
                batches.append({"input_ids": torch.as_tensor(window.tokens[None, :-1], dtype=torch.long, device=info.device)})
            generator = torch.Generator(device=info.device).manual_seed(seed)
            fisher = EWC.estimate(model, batches, mode=reg.ewc.mode, generator=generator)
            ewc = EWC.from_model(model, fisher, reg.ewc.weight)
            ewc.save(fisher_file)  # collective under FSDP: full tensors, written by rank 0
        share = f"this rank's 1/{info.world_size} share of " if fsdp and info.world_size > 1 else ""
        if info.is_main:
            ui.info(f"EWC: Fisher and anchor hold {ewc.memory_bytes / 2**20:,.1f} MiB per process (two fp32 copies of {share}the weights)")
    return kl, ewc


def run_training(config: TrainConfig, run_dir: Path, seed: int, resume: str | None = None, init_from: str | None = None) -> dict[str, Any]:
    """Train (or continue training) into `run_dir`; returns the summary. Works under torchrun too."""
    if resume is not None and init_from is not None:
        raise UserError("--resume (full state) and --init-from (weights only) exclude each other: give one")
    info = init_distributed(config.parallel, config.backend)
    try:
        return _train(config, Path(run_dir), seed, resume, init_from, info)
    finally:
        destroy_distributed()


def _train(config: TrainConfig, run_dir: Path, seed: int, resume: str | None, init_from: str | None, info) -> dict[str, Any]:
    plan = preflight(config, world_size=info.world_size)
    cpt_faults.active()  # a malformed CPT_FAULT fails here, before the model loads
    main = info.is_main
    seed_everything(seed)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "train_config.yaml").write_text(yaml.safe_dump({"seed": seed, "train": to_plain(config)}, sort_keys=False, allow_unicode=True), encoding="utf-8")

    # model -> (weights) -> DDP/FSDP -> optimizer, in that order: the optimizer must see the final parameters
    raw_model = build_model(config, plan, seed)
    if init_from is not None:
        load_into(raw_model, read_model_state(paths.resolve(init_from)), f"--init-from {init_from}")
    checkpoints = CheckpointManager(run_dir, keep_last=config.keep_last, parallel=config.parallel, model_config=raw_model.config, tokenizer=plan.tokenizer_path)
    resume_from = resolve_resume(run_dir, resume)
    if resume_from is not None:
        checkpoints.load_model_weights(resume_from, raw_model)
    bf16 = config.dtype == "bf16"
    # the KL reference is copied before sharding/wrapping, then placed like the model in build_regularizers
    reference = copy.deepcopy(raw_model) if config.regularization.kl is not None else None
    model = parallelize(raw_model, config.parallel, info, bf16=bf16, compile=config.compile)
    optimizer = build_optimizer(raw_model, lr=config.lr, weight_decay=config.weight_decay, embedding_lr_mult=config.embedding_lr_mult, betas=config.betas, eps=config.eps)
    schedule = LRSchedule(lr=config.lr, total_steps=plan.total_steps, warmup_steps=plan.warmup_steps, min_lr_ratio=config.min_lr_ratio, decay=config.decay)
    scheduler = LRScheduler(optimizer, schedule)
    new_vocab = NewVocabOnly(raw_model, plan.new_vocab_start, config.new_vocab_only_steps) if config.new_vocab_only_steps else None

    # data: each rank reads its own slice of every source
    shards = {name: PackedShards(folder, config.seq_len, seed=seed, rank=info.rank, world_size=info.world_size) for name, folder in plan.source_folders.items()}
    loader = MixtureLoader(shards, MixingSchedule(config.mixing), plan.sequences_per_rank, plan.total_steps, seed)
    eos_id = next(iter(plan.metas.values())).get("eos_id") if plan.metas else None
    eval_sets = _eval_sets(config, plan, eos_id)
    kl, ewc = build_regularizers(config, raw_model, reference, plan.source_folders, run_dir, seed, info, resumed=resume_from is not None)
    del reference

    metrics = MetricsLogger(run_dir, enabled=main, tensorboard=config.tensorboard, wandb=config.wandb, run_name=run_dir.name, config=to_plain(config))
    state: dict[str, Any] = {"tokens_seen": 0, "best_value": None, "best_step": None, "bad_streak": 0, "skipped_steps": 0, "train_seconds": 0.0}
    step = 0
    if resume_from is not None:
        saved = checkpoints.load(resume_from, model=raw_model, optimizer=optimizer, scheduler=scheduler, loader=loader)
        step = int(saved["step"])
        state.update({k: saved[k] for k in state if k in saved})
        metrics.truncate_after(step)
        ui.info(f"resumed from {resume_from} at step {step}")
    elif resume == "auto":
        ui.info("--resume auto: no complete checkpoint yet, starting from step 0")

    autocast = torch.autocast(info.device.type, dtype=torch.bfloat16) if bf16 and config.parallel != "fsdp" else contextlib.nullcontext()
    eval_dtype = torch.bfloat16 if bf16 and config.parallel != "fsdp" else None
    eval_model = raw_model if config.parallel != "fsdp" else model
    tokens_per_step = config.global_sequences() * config.seq_len
    micro = config.micro_batch
    last_eval: dict[str, dict[str, float]] = {}
    last_saved = step if resume_from is not None else -1
    loss_value = float("nan")

    def run_eval(at_step: int) -> None:
        nonlocal last_eval
        if not eval_sets:
            return
        results = {s.name: evaluate(eval_model, s, batch_size=config.eval_batch, device=info.device, autocast_dtype=eval_dtype) for s in eval_sets}
        last_eval = results
        metrics.log({"kind": "eval", "step": at_step, "sources": results})
        value = best_value(results, config.best_metric, config.domain_source, config.best_general_weight)
        if value is not None and math.isfinite(value) and (state["best_value"] is None or value < state["best_value"]):
            state["best_value"] = value
            state["best_step"] = at_step
            checkpoints.save_best(at_step, model=raw_model, metric=config.best_metric, value=value, metrics=results)
        if main and config.plots:
            plot_run(run_dir)

    def save(at_step: int) -> None:
        nonlocal last_saved
        checkpoints.save(at_step, model=raw_model, optimizer=optimizer, scheduler=scheduler, loader=loader, state={**state, "epochs": loader.epochs()})
        last_saved = at_step

    model.train()
    with ui.progress() if main else contextlib.nullcontext() as bar:
        task = bar.add_task("train", total=plan.total_steps, completed=step, status="") if bar is not None else None
        while step < plan.total_steps:
            faults.before_step(step + 1)
            t0 = time.perf_counter()
            lr = scheduler.apply(step)
            batch = loader.batch(step)  # this rank's sequences of the global batch, (B, T)
            B = batch.input_ids.shape[0]
            n_micro = math.ceil(B / micro)
            rank_tokens = batch.num_tokens
            loss_sum = torch.zeros((), dtype=torch.float64)
            kl_sum = torch.zeros((), dtype=torch.float64)
            for i in range(n_micro):
                rows = slice(i * micro, (i + 1) * micro)
                inputs = model_inputs(
                    batch.input_ids[rows].to(info.device),
                    batch.position_ids[rows].to(info.device),
                    batch.segment_ids[rows].to(info.device),
                    doc_attention=config.doc_attention,
                    attn_implementation=config.attn_implementation,
                )
                labels = batch.labels[rows].to(info.device)  # already shifted: labels[:, t] follows input_ids[:, t]
                set_grad_sync(model, config.parallel, i == n_micro - 1)
                with autocast:
                    logits = model(**inputs).logits  # (b, T, V)
                ce = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), reduction="sum")
                ce = faults.poison_loss(step + 1, ce)
                objective = ce
                if kl is not None:  # a per-token mean, weighted by this micro-batch's share of the tokens
                    general = torch.tensor([s != config.domain_source for s in batch.sources[rows]], device=info.device)
                    with autocast:  # the reference computes in the trained model's dtype
                        term = kl(logits, inputs["input_ids"], labels, is_general=general, **_ref_kwargs(inputs)) * int((labels != -100).sum())
                    objective = objective + term
                    kl_sum += term.detach().double().cpu()
                (objective / rank_tokens).backward()  # / this rank's tokens: DDP/FSDP average over ranks -> mean over the global batch
                loss_sum += ce.detach().double().cpu()
            # EWC once per step, on the reduced gradients (local shards under FSDP): + 2 λ F (θ − θ*)
            ewc_value = ewc.add_gradient(raw_model) if ewc is not None else None
            if new_vocab is not None:
                new_vocab.apply(step)
            grad_norm = torch.nn.utils.clip_grad_norm_([p for p in raw_model.parameters() if p.grad is not None], config.clip or float("inf"))
            grad_norm = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
            total_loss, total_tokens, total_kl = all_reduce_sum([float(loss_sum), float(rank_tokens), float(kl_sum)], info.device)
            loss_value = total_loss / total_tokens

            if math.isfinite(loss_value) and math.isfinite(grad_norm):
                optimizer.step()
                state["bad_streak"] = 0
            else:  # skip: no update, the batch is consumed so the data stream stays deterministic
                state["bad_streak"] += 1
                state["skipped_steps"] += 1
                ui.warn(f"step {step + 1}: non-finite loss or gradient (loss {loss_value}, grad norm {grad_norm}); step skipped")
            optimizer.zero_grad(set_to_none=True)
            scheduler.advance()
            step += 1
            dt = time.perf_counter() - t0
            state["tokens_seen"] += tokens_per_step
            state["train_seconds"] += dt
            if state["bad_streak"] >= config.max_bad_steps:
                raise TrainingDiverged(
                    f"training stopped at step {step}: {state['bad_streak']} steps in a row had a non-finite loss or gradient "
                    f"(lr {lr:.3g}); lower train.lr, lengthen the warmup, use dtype fp32, or check the data"
                    + (f"; resume from {checkpoints.folder / f'step-{last_saved}'}" if last_saved > 0 else "")
                )
            if step % config.log_every == 0 or step == plan.total_steps:
                metrics.log(
                    {
                        "kind": "train",
                        "step": step,
                        "loss": loss_value,
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "tokens": state["tokens_seen"],
                        "tokens_per_s": tokens_per_step / dt,
                        "step_s": dt,
                        "shares": batch.shares,
                        "counts": {k: v * info.world_size for k, v in batch.counts.items()},
                        "epochs": batch.epochs,
                        "skipped": state["bad_streak"] > 0,
                        # the regularizers' terms as they enter the objective (per target token / per step)
                        **({"kl": total_kl / total_tokens} if kl is not None else {}),
                        **({"ewc": ewc_value} if ewc is not None else {}),
                    }
                )
            if bar is not None:
                bar.update(task, completed=step, status=f"loss {loss_value:.4f}  lr {lr:.2e}  {tokens_per_step / dt:,.0f} tok/s")
            if config.eval_every and step % config.eval_every == 0 and step < plan.total_steps:
                run_eval(step)
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step < plan.total_steps:
                save(step)

    # the end: final eval (it may update best/), final checkpoint, plots, summary
    run_eval(step)
    if last_saved != step:
        save(step)
    if main and config.plots:
        plot_run(run_dir)
    metrics.close()
    summary = {
        "steps": step,
        "tokens": state["tokens_seen"],
        "final_loss": loss_value,
        "tokens_per_s": state["tokens_seen"] / state["train_seconds"] if state["train_seconds"] else float("nan"),
        "train_seconds": state["train_seconds"],
        "checkpoint_seconds": checkpoints.save_seconds,
        "skipped_steps": state["skipped_steps"],
        "epochs": loader.epochs(),
        "best_value": state["best_value"],
        "best_step": state["best_step"],
        "best_metric": config.best_metric,
        "eval": last_eval,
        "run_dir": str(run_dir),
        "world_size": info.world_size,
    }
    if main:
        _print_summary(summary)
    return summary


def _print_summary(summary: dict[str, Any]) -> None:
    rows: list[dict[str, Any]] = [
        {"what": "steps", "value": summary["steps"]},
        {"what": "tokens", "value": summary["tokens"]},
        {"what": "final train loss", "value": summary["final_loss"]},
        {"what": "tokens/s", "value": summary["tokens_per_s"]},
        {"what": "skipped steps", "value": summary["skipped_steps"]},
        {"what": "epochs per source", "value": ", ".join(f"{k}: {v}" for k, v in summary["epochs"].items())},
    ]
    for name, r in summary["eval"].items():
        rows.append({"what": f"eval {name}: ppl / bits per byte", "value": f"{r['ppl']:.4g} / {r['bpb']:.4g}"})
    if summary["best_value"] is not None:
        rows.append({"what": f"best {summary['best_metric']} (step {summary['best_step']})", "value": summary["best_value"]})
    ui.summary_table(f"cpt train -> {summary['run_dir']}", rows)
