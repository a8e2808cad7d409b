"""Training-throughput benchmark: useful (non-pad) tokens/s of cpt's loop against two Trainer setups.

    .venv/bin/python -m bench.train [--quick] [--repeats N]

Three systems train the same small Llama (same config, same init seed, same sequence length,
same sequences per step, same number of steps) on the same documents:

- `cpt`: `cpt.train.loop.run_training` on packed shards (windows cut from the token stream,
  document-aware attention on — the default);
- `seeds`: the seeds' recipe — Hugging Face `Trainer` + `DataCollatorForLanguageModeling(mlm=False)`
  on documents tokenized one by one with truncation and padding to `max_length`;
- `trainer-packed`: `Trainer` fed cpt's packed shards (the same windows, plain causal attention);
- `cpt-no-docmask`: cpt with `doc_attention: false` — the same attention as `trainer-packed`, so
  its ratio isolates the loop itself from the cost of masking attention at document boundaries.

Useful tokens are the targets that are real text: every target of a packed window, the
non-pad targets of a padded document (text cut off by truncation is never seen at all, which
this measure does not even charge). Each system runs in its own process, interleaved, and the
order rotates every repeat (A B C, B C A, C A B, ...) so that neither machine drift (this
machine is shared) nor position in the sequence favours one system. The ratio column is the
median over repeats of the ratio measured within each repeat (runs minutes apart on the same
machine state), the tokens/s column the median of each system's runs; peak RSS is the largest
of a system's runs. Timing covers the training steps only (Trainer: from the first step's start
to the last step's end, via a callback; cpt: the sum of its step times, which include drawing
each batch).

Documents: the KJV Bible's chapters and the fortunes files' entries from the fetched assets
(`python -m cpt.assets fetch`): a natural mix of long and short documents. Without the assets,
the standard library's Python files are used. Targets (issue 5): cpt ≥ 1.3x seeds and ≥ 1.0x
trainer-packed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

SYSTEMS = ("cpt", "seeds", "trainer-packed", "cpt-no-docmask")
BASELINES = ("seeds", "trainer-packed")
TARGETS = {"seeds": 1.3, "trainer-packed": 1.0}  # for the `cpt` row (its defaults)


def settings(quick: bool) -> dict:
    if quick:
        return {"hidden": 128, "layers": 2, "heads": 4, "vocab": 4096, "seq_len": 128, "batch": 8, "steps": 16, "max_docs": 1500}
    return {"hidden": 256, "layers": 4, "heads": 4, "vocab": 8192, "seq_len": 256, "batch": 8, "steps": 16, "max_docs": 4000}


def llama(s: dict) -> dict:
    return {
        "model_type": "llama",
        "hidden_size": s["hidden"],
        "intermediate_size": s["hidden"] * 8 // 3 // 16 * 16,
        "num_hidden_layers": s["layers"],
        "num_attention_heads": s["heads"],
        "num_key_value_heads": s["heads"],
        "vocab_size": s["vocab"],
        "max_position_embeddings": 2048,
    }


# -- data ----------------------------------------------------------------------------------------


def load_documents(max_docs: int) -> tuple[list[str], str]:
    """Natural documents: KJV chapters + fortunes (assets), else the stdlib's Python files."""
    assets = Path(os.environ.get("CPT_ASSETS_DIR", Path(__file__).resolve().parents[1] / ".assets"))
    docs: list[str] = []
    kjv = assets / "bible-kjv" / "kjv.txt"
    fortunes = assets / "fortunes" / "usr" / "share" / "games" / "fortunes"
    if kjv.is_file() and fortunes.is_dir():
        chapter: list[str] = []
        header = re.compile(r"^(?:[1-3] )?[A-Z][A-Za-z ]+ \d+$")
        for line in kjv.read_text(encoding="utf-8", errors="replace").splitlines():
            if header.match(line.strip()):
                if chapter:
                    docs.append("\n".join(chapter).strip())
                chapter = []
            else:
                chapter.append(re.sub(r"^\s+\d+ ", "", line))
        if chapter:
            docs.append("\n".join(chapter).strip())
        for path in sorted(fortunes.iterdir()):
            if path.suffix or path.is_symlink() or not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            docs.extend(t.strip() for t in text.split("\n%\n") if t.strip())
        source = "KJV chapters + fortunes (assets)"
    else:
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        docs = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(stdlib.glob("*.py"))]
        source = "Python stdlib *.py (no assets)"
    import random

    random.Random(0).shuffle(docs)
    return [d for d in docs if d][:max_docs], source


def prepare(folder: Path, s: dict) -> dict:
    """Tokenizer, packed shards and the padded dataset's inputs, written once for every run."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from cpt.train.data import write_shards

    docs, source = load_documents(s["max_docs"])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(docs, trainers.BpeTrainer(vocab_size=s["vocab"], special_tokens=["</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>")
    fast.save_pretrained(folder / "tok")
    ids = fast(docs, add_special_tokens=False)["input_ids"]
    write_shards(folder / "shards", ids, vocab_size=len(fast), eos_id=fast.eos_token_id, files=1)
    (folder / "docs.json").write_text(json.dumps(docs), encoding="utf-8")
    lengths = sorted(len(x) for x in ids)
    return {"docs": len(docs), "source": source, "tokens": sum(lengths), "median_doc_tokens": lengths[len(lengths) // 2]}


# -- workers (one process per run) -----------------------------------------------------------------


def run_cpt(folder: Path, s: dict, doc_attention: bool = True) -> dict:
    from cpt.train.config import TrainConfig
    from cpt.train.loop import run_training

    cfg = TrainConfig.model_validate(
        {
            "model_config": llama(s),
            "sources": {"domain": str(folder / "shards")},
            "mixing": {"shares": {"domain": 1.0}},
            "seq_len": s["seq_len"],
            "global_batch_sequences": s["batch"],
            "micro_batch": s["batch"],
            "lr": 5e-4,
            "warmup_steps": 1,
            "max_steps": s["steps"],
            "doc_attention": doc_attention,
            "plots": False,
            "tokenizer": str(folder / "tok"),
        }
    )
    run_dir = Path(tempfile.mkdtemp(dir=folder))
    summary = run_training(cfg, run_dir, seed=0)
    return {"useful_tokens": s["steps"] * s["batch"] * s["seq_len"], "seconds": summary["train_seconds"], "pad_tokens": 0}


class _StepTimer:
    """A Trainer callback: wall time from the first step's start to the last step's end."""

    def __new__(cls):
        from transformers import TrainerCallback

        class Timer(TrainerCallback):
            start = None
            end = None

            def on_step_begin(self, args, state, control, **kwargs):
                if self.start is None:
                    self.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                self.end = time.perf_counter()

        return Timer()


def run_trainer(folder: Path, s: dict, packed: bool) -> dict:
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        DataCollatorForLanguageModeling,
        PreTrainedTokenizerFast,
        Trainer,
        TrainingArguments,
    )

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder / "tok"))
    tokenizer.pad_token = tokenizer.eos_token  # what the seeds' recipe does
    spec = llama(s)
    config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    counted = {"useful": 0, "pad": 0, "batches": 0}

    if packed:
        from cpt.train.data import PackedShards

        shards = PackedShards(folder / "shards", s["seq_len"], seed=0)
        windows = [shards.window(i).tokens for i in range(min(shards.num_windows, s["steps"] * s["batch"] * 2))]
        dataset = [{"input_ids": torch.from_numpy(w)} for w in windows]  # seq_len + 1 tokens: seq_len targets

        def collate(rows):
            ids = torch.stack([r["input_ids"] for r in rows])
            if counted["batches"] < s["steps"]:
                counted["useful"] += ids[:, 1:].numel()
                counted["batches"] += 1
            return {"input_ids": ids, "labels": ids.clone()}
    else:
        docs = json.loads((folder / "docs.json").read_text(encoding="utf-8"))
        enc = tokenizer(docs, truncation=True, max_length=s["seq_len"], padding="max_length")
        dataset = [{"input_ids": a, "attention_mask": m} for a, m in zip(enc["input_ids"], enc["attention_mask"], strict=True)]
        base = DataCollatorForLanguageModeling(tokenizer, mlm=False)

        def collate(rows):
            batch = base(rows)
            if counted["batches"] < s["steps"]:
                real = int((batch["labels"][:, 1:] != -100).sum())
                counted["useful"] += real
                counted["pad"] += batch["labels"][:, 1:].numel() - real
                counted["batches"] += 1
            return batch

    timer = _StepTimer()
    args = TrainingArguments(
        output_dir=str(Path(tempfile.mkdtemp(dir=folder))),
        per_device_train_batch_size=s["batch"],
        max_steps=s["steps"],
        learning_rate=5e-4,
        warmup_steps=1,
        lr_scheduler_type="cosine",
        weight_decay=0.1,
        logging_strategy="no",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collate, callbacks=[timer])
    trainer.train()
    return {"useful_tokens": counted["useful"], "seconds": timer.end - timer.start, "pad_tokens": counted["pad"]}


def worker(system: str, folder: Path, quick: bool) -> None:
    os.environ.setdefault("CPT_QUIET", "1")
    s = settings(quick)
    if system.startswith("cpt"):
        out = run_cpt(folder, s, doc_attention=system == "cpt")
    else:
        out = run_trainer(folder, s, packed=system == "trainer-packed")
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


# -- the driver ------------------------------------------------------------------------------------


def spawn(system: str, folder: Path, quick: bool) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CPT_QUIET": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "bench.train", "--worker", system, "--folder", str(folder)] + (["--quick"] if quick else [])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"{system} run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(line.removeprefix("RESULT "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller model, fewer steps and repeats")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats per system (default 8: every system twice in every position)")
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.folder, args.quick)
        return 0

    s = settings(args.quick)
    repeats = args.repeats or 2 * len(SYSTEMS)
    with tempfile.TemporaryDirectory(prefix="cpt-bench-train-") as tmp:
        folder = Path(tmp)
        data = prepare(folder, s)
        print(
            f"data: {data['docs']:,} documents ({data['source']}), {data['tokens']:,} tokens, median document {data['median_doc_tokens']} tokens; "
            f"model: Llama {s['layers']} layers x {s['hidden']} hidden, vocab {s['vocab']}; seq_len {s['seq_len']}, {s['batch']} sequences/step, "
            f"{s['steps']} steps; {repeats} interleaved repeats; CPU threads {os.cpu_count()}"
        )
        results: dict[str, list[dict]] = {name: [] for name in SYSTEMS}
        for r in range(repeats):
            for name in SYSTEMS[r % len(SYSTEMS) :] + SYSTEMS[: r % len(SYSTEMS)]:
                out = spawn(name, folder, args.quick)
                out["tokens_per_s"] = out["useful_tokens"] / out["seconds"]
                results[name].append(out)
                print(f"  repeat {r + 1} {name:15s} {out['tokens_per_s']:10,.0f} useful tok/s  ({out['useful_tokens']:,} tokens in {out['seconds']:.2f} s, peak RSS {out['peak_rss_mb']:.0f} MB)", flush=True)

    med = {n: statistics.median(o["tokens_per_s"] for o in results[n]) for n in SYSTEMS}
    rss = {n: max(o["peak_rss_mb"] for o in results[n]) for n in SYSTEMS}
    pad = {n: sum(o["pad_tokens"] for o in results[n]) / max(1, sum(o["pad_tokens"] + o["useful_tokens"] for o in results[n])) for n in SYSTEMS}
    def ratio(name: str, base: str) -> float:
        """Median over repeats of the ratio within each repeat."""
        return statistics.median(x["tokens_per_s"] / y["tokens_per_s"] for x, y in zip(results[name], results[base], strict=True))

    print()
    print(f"{'system':16s} {'useful tok/s':>13s} {'÷ seeds':>9s} {'÷ trainer-packed':>17s} {'pad share':>10s} {'peak RSS MB':>12s}")
    for name in SYSTEMS:
        cols = " ".join(f"{ratio(name, base):{w}.2f}x" for base, w in zip(BASELINES, (8, 16), strict=True))
        print(f"{name:16s} {med[name]:13,.0f} {cols} {pad[name]:9.1%} {rss[name]:12.0f}")
    print()
    ok = True
    for base, target in TARGETS.items():
        value = ratio("cpt", base)
        verdict = "PASS" if value >= target else "MISS"
        ok &= verdict == "PASS"
        print(f"target: cpt ≥ {target:.1f}x {base}: {value:.2f}x  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
