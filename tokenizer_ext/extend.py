"""`cpt tokenizer extend`: train target-language pieces and merge them into a base as real vocabulary.

    extend_tokenizer("pkg://mistral_common/data/tokenizer.model.v1", "ko", ["runs/x/corpus/domain"], 8000, "out/tok")

The output folder loads with `AutoTokenizer.from_pretrained`, keeps `tokenizer.model`
for SentencePiece bases, and has `extension.json` (what was added, from how much
text, and the fertility before/after on that text).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cpt import ui
from cpt.errors import UserError
from cpt.stage import write_marker
from cpt.tokenizer_ext import fertility
from cpt.tokenizer_ext.lang import check_lang, is_target_bytes
from cpt.tokenizer_ext.load import (
    corpus_files,
    hf_face,
    iter_texts,
    json_tokenizer,
    load_base,
    load_proto,
    write_hf_folder,
)
from cpt.tokenizer_ext.merge_bpe import append_merges, append_pieces, base_segmentation
from cpt.tokenizer_ext.merge_sp import extend_proto, plan_pieces, target_piece
from cpt.tokenizer_ext.train_pieces import (
    continue_bpe,
    continue_sp,
    sp_json_segmentation,
    sp_segmentation,
    target_words,
    token_bytes,
    train_sentencepiece,
)

EXTENSION_FILE = "extension.json"
FERTILITY_SAMPLE_CHARS = 2_000_000  # fertility before/after is measured on at most this much target text


def extend_tokenizer(
    base: str | Path,
    lang: str,
    corpus: list[str | Path],
    new_tokens: int,
    output: str | Path,
    algorithm: str = "bpe",
    min_frequency: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """Extend `base` with up to `new_tokens` target-language pieces; write `output`; return the report."""
    started = time.perf_counter()
    check_lang(lang)
    if new_tokens < 1:
        raise UserError(f"--new-tokens {new_tokens}: must be at least 1 (the number of pieces to add)")
    if algorithm not in ("bpe", "unigram"):
        raise UserError(f"--algorithm {algorithm!r}: choose bpe or unigram")
    if min_frequency < 1:
        raise UserError(f"--min-frequency {min_frequency}: must be at least 1")
    tok = load_base(base)
    if tok.family == "bpe" and algorithm != "bpe":
        raise UserError("--algorithm unigram: a byte-level BPE base applies ranked merges, so only --algorithm bpe can extend it")
    files = corpus_files(list(corpus))
    read_counts: dict[str, int] = {}
    sample: list[str] = []  # the first target documents, for fertility before/after
    pretokens: Counter[str] = Counter()  # byte-level bases: target pre-tokens as the base cuts them
    count_pretokens = _pretoken_counter(tok.tokenizer_json, lang, pretokens) if tok.family == "bpe" else None

    sampled = [0]

    def on_target(doc: str) -> None:
        if sampled[0] < FERTILITY_SAMPLE_CHARS:
            sample.append(doc)
            sampled[0] += len(doc)
        if count_pretokens is not None:
            count_pretokens(doc)

    raw_words: Counter[str] = Counter()
    words, size = target_words(iter_texts(files, read_counts), lang, on_target=on_target, raw=raw_words)
    if size["target_chars"] == 0:
        raise UserError(f"--corpus: no {lang} text in {size['documents']} documents ({', '.join(map(str, corpus))}); pass text in the target language")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)

    if tok.family in ("sentencepiece", "sentencepiece_json"):
        as_json = tok.family == "sentencepiece_json"
        base_vocab = set(tok.tokenizer_json["model"]["vocab"]) if as_json else {p.piece for p in load_proto(tok.sp_proto).pieces}
        if algorithm == "bpe":
            ui.info(f"continuing BPE on {len(raw_words):,} distinct {lang} words")
            segmented = sp_json_segmentation(tok.tokenizer_json, raw_words) if as_json else sp_segmentation(tok.sp_proto, raw_words)
            candidates = continue_sp(segmented, base_vocab, lang, new_tokens, min_frequency)
        else:
            overlap = sum(1 for p in base_vocab if target_piece(p, lang))
            ui.info(f"training unigram pieces on {len(words):,} distinct {lang} words")
            candidates = train_sentencepiece(words, new_tokens + overlap + new_tokens // 10 + 100, algorithm, min_frequency, seed)
        pieces, in_base, other = plan_pieces(candidates, base_vocab, lang, new_tokens)
        if as_json:
            merged_json = append_pieces(tok.tokenizer_json, pieces)
            write_hf_folder(output, tok, tokenizer_json=merged_json.tokenizer_json)
        else:
            write_hf_folder(output, tok, sp_proto=extend_proto(tok.sp_proto, pieces))
        added = pieces
        details = {"skipped_in_base": in_base, "skipped_other_script": other}
    else:
        ui.info(f"continuing BPE on {len(raw_words):,} distinct {lang} words")
        segmented = base_segmentation(tok.tokenizer_json, dict(pretokens))
        vocab = set(tok.tokenizer_json["model"]["vocab"])
        learned = continue_bpe(segmented, vocab, lang, new_tokens, min_frequency)
        merged_bpe = append_merges(tok.tokenizer_json, learned)
        write_hf_folder(output, tok, tokenizer_json=merged_bpe.tokenizer_json)
        added = merged_bpe.added
        details = {"merges_added": len(merged_bpe.merges)}
    if not added:
        raise UserError(f"no new {lang} piece could be learned (every candidate is in the base or below --min-frequency {min_frequency})")

    before = fertility.measure(hf_face(tok), sample)
    after = fertility.measure(fertility.load_dir(output), sample)
    report = {
        "base": str(base),
        "family": tok.family,
        "language": lang,
        "algorithm": algorithm,
        "min_frequency": min_frequency,
        "base_vocab_size": tok.vocab_size,
        "vocab_size": tok.vocab_size + len(added),
        "pieces_added": len(added),
        "first_new_id": tok.vocab_size,
        **details,
        "training_corpus": {"files": len(files), **read_counts, **size, "distinct_words": len(raw_words)},
        "fertility_sample": {"documents": len(sample), "chars": sum(map(len, sample))},
        "fertility_before": before,
        "fertility_after": after,
        "token_ratio": round(after["tokens"] / before["tokens"], 4) if before["tokens"] else None,
        "added": added,
    }
    (output / EXTENSION_FILE).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    config = {"base": str(base), "lang": lang, "new_tokens": new_tokens, "algorithm": algorithm, "min_frequency": min_frequency, "seed": seed}
    write_marker(output, "tokenizer", config, files, counts={"pieces_added": len(added)}, timings={"total_s": round(time.perf_counter() - started, 2)})
    return report


def _pretoken_counter(data: dict[str, Any], lang: str, counts: Counter[str]) -> Callable[[str], None]:
    """A function that counts a document's pre-tokens (as the base cuts them) holding target characters."""
    tok = json_tokenizer(data)

    def count(doc: str) -> None:
        text = tok.normalizer.normalize_str(doc) if tok.normalizer is not None else doc
        for piece, _ in tok.pre_tokenizer.pre_tokenize_str(text):
            raw = token_bytes(piece)
            if raw is not None and _has_target(raw, lang):
                counts[piece] += 1

    return count


def _has_target(raw: bytes, lang: str) -> bool:
    text = raw.decode("utf-8", errors="ignore")
    return any(is_target_bytes(ch.encode(), lang, allow_leading_space=False) for ch in text)

