"""`cpt corpus pack`: tokenize a clean corpus into training shards and a held-out eval split."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from cpt import ui
from cpt.config import format_validation_error
from cpt.errors import UserError


def pack(
    corpus: list[Path] = typer.Option(..., "--corpus", help="A `cpt corpus build` output folder (jsonl.gz or parquet), or jsonl[.gz|.zst] / parquet files (repeatable)."),
    tokenizer: Path = typer.Option(..., "--tokenizer", help="A Hugging Face tokenizer folder with tokenizer.json (e.g. from `cpt tokenizer extend`)."),
    output: Path = typer.Option(..., "--output", help="Folder for train/ and eval/ shards, meta.json and stage.json."),
    shuffle: bool = typer.Option(True, "--shuffle/--no-shuffle", help="Shuffle documents within each shard (seeded)."),
    eval_docs: int | None = typer.Option(None, "--eval-docs", min=0, help="Hold out this many documents for evaluation."),
    eval_fraction: float | None = typer.Option(None, "--eval-fraction", min=0.0, max=0.99, help="Or hold out this fraction of the documents."),
    tasks: int = typer.Option(4, "--tasks", min=1, help="datatrove tasks (input files are split among them; one shard each)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Processes at once, each tokenizing on one thread (default: min(tasks, CPUs); without fork, 1 under 64 MB of input)."),
    add_bos: bool = typer.Option(False, "--add-bos", help="Put BOS before every document (EOS always follows every document)."),
    seed: int = typer.Option(1234, "--seed", help="Seed of the eval selection and the shuffle."),
) -> None:
    """Tokenize a clean corpus into datatrove token shards (EOS between documents, no padding).

    Held-out eval documents are kept as text beside their own shards, and every exact or near
    copy of them is removed from the training shards. Re-running a killed pack finishes it.

    Example: cpt corpus pack --corpus runs/tiny_ko/corpus/domain --tokenizer runs/tiny_ko/tokenizer --output runs/tiny_ko/pack/domain --eval-docs 50
    """
    from cpt.corpus.pack import PackConfig, pack_corpus

    if eval_docs is not None and eval_fraction is not None:
        raise UserError("--eval-docs and --eval-fraction exclude each other: give one")
    try:
        config = PackConfig(eval_docs=eval_docs, eval_fraction=eval_fraction, shuffle=shuffle, tasks=tasks, workers=workers, add_bos=add_bos)
    except ValidationError as exc:
        raise format_validation_error(exc, "cpt corpus pack") from None
    meta = pack_corpus(corpus, tokenizer, output, config, seed=seed)
    rows, reasons = [], []
    for split, counts in meta["splits"].items():
        removed, dropped = counts.get("removed", {}), counts.get("dropped", {})
        rows.append(
            {
                "split": split,
                "files": counts["files"],
                "documents": counts["docs"],
                "tokens": counts["tokens"],
                "bytes": counts["bytes"],
                "tokens/byte": counts["tokens"] / counts["bytes"] if counts["bytes"] else 0.0,
                "eval copies": sum(v for k, v in removed.items() if k != "eval_heldout"),
                "bad records": sum(dropped.values()),
            }
        )
        for kind, why in (("dropped", "bad record"), ("removed", "eval split"), ("repaired", "repaired, packed")):
            reasons += [{"split": split, "reason": r, "kind": why, "records": n} for r, n in counts.get(kind, {}).items()]
    ui.summary_table(f"packed {output} ({meta['dtype']}, vocab {meta['vocab_size']:,}, eos {meta['eos_id']})", rows)
    ui.summary_table("records dropped, held out or repaired, by reason", reasons)
    bad = sum(r["records"] for r in reasons if r["kind"] == "bad record")
    if bad:
        ui.warn(f"{bad:,} input records were not documents (empty or missing text, malformed); counted by reason in {output}/meta.json")
