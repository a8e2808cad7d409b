"""Packing: throughput against raw `tokenizers` batch encoding, and padding waste against pad-per-document.

    .venv/bin/python -m bench.pack [--quick] [--repeats 5] [--seq-len 1024]

Corpus: real text from the assets cache (`CPT_ASSETS_DIR`, default the repository's `.assets`):
the King James Bible (one document per chapter), the Korean Debian FAQ (sections), fortunes
(ten a document), the Korean LibreOffice help pages and the English Debian Reference (HTML to
text with the corpus build's cleaner), up to `--mb` million characters (12 by default: large
enough that a pack's fixed cost, ~0.2 s to start its tasks, is not most of the difference);
without the assets, konlpy's Korean law and bills and the Python
reference topics. Tokenizer: SmolLM2's (49,152 tokens, byte-level BPE) from the assets, else a
BPE trained on the corpus. The corpus is written as 4 jsonl.gz files first (not timed).

1. Throughput (target: pack >= 0.8x raw): `cpt corpus pack` end to end (read jsonl.gz, tokenize,
   write and shuffle datatrove shards, meta.json) against `Tokenizer.encode_batch` on the same
   texts already in memory, in the same batch size; interleaved repeats (A B A B ...), median
   of each. A second pack row holds out eval documents, so the decontamination check runs too.
2. Padding waste at `--seq-len` (target: 0 besides the final partial window): the packed
   stream cut into windows by `PackedShards` against the seeds' recipe, each document
   tokenized with truncation and padded to max_length, then `DataCollatorForLanguageModeling`
   (mlm=False); waste = padding slots / all slots; truncation's lost tokens shown beside.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import statistics
import tempfile
import time
from pathlib import Path

from cpt.paths import package_root

ASSETS = Path(os.environ.get("CPT_ASSETS_DIR", Path(__file__).resolve().parent.parent / ".assets"))


def asset_docs(limit_chars: int) -> list[str]:
    docs: list[str] = []
    kjv = ASSETS / "bible-kjv" / "kjv.txt"
    if kjv.is_file():
        text = kjv.read_text(encoding="utf-8", errors="replace")
        chapters = re.split(r"\n(?=[1-3]?\s?[A-Z][A-Za-z ]+ \d+\n)", text)
        docs += [c.strip() for c in chapters if len(c.strip()) > 50]
    faq = ASSETS / "debian-faq-ko" / "usr/share/doc/debian/FAQ/debian-faq.ko.txt.gz"
    if faq.is_file():
        text = gzip.decompress(faq.read_bytes()).decode("utf-8", errors="replace")
        docs += [s.strip() for s in re.split(r"\n(?=\d+\.\d+\.? )", text) if len(s.strip()) > 50]
    fortunes = ASSETS / "fortunes" / "usr/share/games/fortunes"
    if fortunes.is_dir():
        for f in sorted(fortunes.iterdir()):
            if f.suffix or not f.is_file():
                continue
            items = [x.strip() for x in f.read_text(encoding="utf-8", errors="replace").split("\n%\n") if x.strip()]
            docs += ["\n\n".join(items[i : i + 10]) for i in range(0, len(items), 10)]
    pages = sorted((ASSETS / "libreoffice-help-ko" / "usr/share/libreoffice/help/ko").rglob("*.html"))
    pages += sorted((ASSETS / "debian-reference-en" / "usr/share/debian-reference").glob("*.html"))
    if pages:  # HTML as a corpus build leaves it: text
        from cpt.corpus.clean import html_to_text

        docs += [t for t in (html_to_text(p.read_text(encoding="utf-8", errors="replace")).strip() for p in pages) if len(t) > 50]
    if not docs:  # no assets: text that ships in installed packages
        import pydoc_data.topics

        kon = package_root("konlpy") / "data" / "corpus"
        docs = [f.read_text(encoding="utf-8").replace("\r\n", "\n") for f in sorted(kon.rglob("*.txt"))]
        docs += list(pydoc_data.topics.topics.values())
    out, total = [], 0
    for d in docs:
        if total >= limit_chars:
            break
        out.append(d)
        total += len(d)
    return out


def tokenizer_dir(work: Path, docs: list[str]) -> Path:
    smol = ASSETS / "smollm2-135m"
    if (smol / "tokenizer.json").is_file():
        return smol
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(docs, trainers.BpeTrainer(vocab_size=8000, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    folder = work / "tokenizer"
    folder.mkdir(exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>", "bos_token": "<s>"}))
    return folder


def write_corpus(folder: Path, docs: list[str], files: int = 4) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(files):
        with gzip.open(folder / f"part-{k:02d}.jsonl.gz", "wt", encoding="utf-8") as f:
            for i in range(k, len(docs), files):
                f.write(json.dumps({"text": docs[i], "id": f"d{i}", "metadata": {}}, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~1 MB of text, 1 repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--mb", type=float, default=12.0, help="characters of text, in millions")
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats
    limit = 1_000_000 if args.quick else int(args.mb * 1_000_000)

    os.environ.setdefault("CPT_QUIET", "1")
    from tokenizers import Tokenizer

    from cpt.corpus.pack import PackConfig, pack_corpus
    from cpt.train.data import PackedShards

    work = Path(tempfile.mkdtemp(prefix="bench-pack-"))
    docs = asset_docs(limit)
    tok_dir = tokenizer_dir(work, docs)
    corpus = work / "corpus"
    write_corpus(corpus, docs)
    n_bytes = sum(len(d.encode("utf-8")) for d in docs)
    print(f"corpus: {len(docs):,} documents, {n_bytes / 1e6:.2f} MB UTF-8; tokenizer: {tok_dir}")

    tok = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    batch = PackConfig().batch_size
    cpus = os.cpu_count() or 1

    def cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def raw() -> tuple[float, float]:
        t, c = time.perf_counter(), cpu()
        fresh = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))  # loaded and cold, as for new text
        for i in range(0, len(docs), batch):
            fresh.encode_batch(docs[i : i + batch])
        return time.perf_counter() - t, cpu() - c

    def pack(eval_docs: int | None, run: int) -> tuple[float, float]:
        from cpt.corpus import pack as pack_module

        pack_module._TOKENIZERS.clear()  # every run parses the tokenizer and starts cold, like the baseline
        t, c = time.perf_counter(), cpu()
        pack_corpus(corpus, tok_dir, work / f"out-{eval_docs}-{run}", PackConfig(eval_docs=eval_docs, tasks=4), seed=0)
        return time.perf_counter() - t, cpu() - c

    wall: dict[str, list[float]] = {"raw": [], "pack": [], "pack+eval": []}
    cpus_used: dict[str, list[float]] = {k: [] for k in wall}
    for r in range(repeats):  # A B C A B C ...: machine drift hits every row alike
        for key, eval_docs in (("raw", None), ("pack", None), ("pack+eval", min(200, len(docs) // 10))):
            w, c = raw() if key == "raw" else pack(eval_docs, r)
            wall[key].append(w)
            cpus_used[key].append(c)
    med = {k: statistics.median(v) for k, v in wall.items()}
    cmed = {k: statistics.median(v) for k, v in cpus_used.items()}
    names = {"raw": "raw tokenizers encode_batch (baseline)", "pack": "cpt corpus pack (no eval split)", "pack+eval": "cpt corpus pack (eval held out + decontamination)"}
    print(f"\n## Throughput (median of {repeats} interleaved runs, {cpus} CPUs, load average {os.getloadavg()[0]:.1f})")
    print(f"{'what':52} {'wall s':>8} {'MB/s':>7} {'x raw':>6} {'CPU s':>7} {'x raw':>6}")
    for key, name in names.items():
        print(f"{name:52} {med[key]:8.2f} {n_bytes / 1e6 / med[key]:7.2f} {med['raw'] / med[key]:6.2f} {cmed[key]:7.2f} {cmed['raw'] / cmed[key]:6.2f}")
    ratio = med["raw"] / med["pack"]
    print(f"target: pack >= 0.8x raw (wall) -> {ratio:.2f}x {'PASS' if ratio >= 0.8 else 'MISS'}")

    # ---- padding waste
    seq = args.seq_len
    out = work / "out-None-0"
    ps = PackedShards(out, seq, seed=0)
    total = json.loads((out / "meta.json").read_text())["splits"]["train"]["tokens"]
    used = ps.num_windows * seq  # target tokens trained on; no slot of a window is padding
    unused = total - used
    files = len(list(ps.folder.glob("*.ds")))

    from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(tokenizer_file=str(tok_dir / "tokenizer.json"))
    hf.pad_token = json.loads((tok_dir / "tokenizer_config.json").read_text()).get("pad_token") or tok.id_to_token(0)
    collator = DataCollatorForLanguageModeling(hf, mlm=False)
    pad_slots = slots = kept = 0
    for i in range(0, len(docs), 256):
        enc = hf(docs[i : i + 256], truncation=True, max_length=seq, padding="max_length")
        b = collator([{"input_ids": ids, "attention_mask": m} for ids, m in zip(enc["input_ids"], enc["attention_mask"], strict=True)])
        slots += b["labels"].numel()
        pad_slots += int((b["labels"] == -100).sum())
        kept += int((b["labels"] != -100).sum())
    full = sum(len(e.ids) for e in tok.encode_batch(docs))
    # the pack did all the work it was timed for: every document's tokens and its EOS
    print(f"\ntokens in the packed stream {total:,} = raw encode {full:,} + one EOS per document ({len(docs):,}): {'yes' if total == full + len(docs) else 'NO'}")
    seeds_waste = pad_slots / slots
    print(f"\n## Padding waste at seq_len {seq}")
    print(f"{'what':52} {'slots':>10} {'pad':>8} {'waste':>7} {'tokens not trained on':>22}")
    print(f"{'cpt: packed windows (one-token overlap)':52} {used:10,} {0:8,} {0.0:7.2%} {unused:>12,} ({unused / total:.3%})")
    print(f"{'seeds: truncate+pad each doc, DataCollatorForLM':52} {slots:10,} {pad_slots:8,} {seeds_waste:7.2%} {full - kept:>12,} ({1 - kept / full:.2%})")
    print(f"  cpt leaves out only each shard file's final partial window ({files} files, at most {seq} tokens each)")
    ok = unused <= files * (seq + 1)
    print(f"target: padding waste 0 (final partial windows only) -> {'PASS' if ok else 'MISS'}; "
          f"seeds' recipe: {seeds_waste:.1%} of its slots are padding")

if __name__ == "__main__":
    main()
