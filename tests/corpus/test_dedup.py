"""Dedup: exact and near duplicates on real Korean and English text, the 3-step datatrove flow, faults.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/corpus/test_dedup.py -q

Ground truth in these tests is computed here, independently of the code under test: the
character 5-gram Jaccard of case-folded, NFC, whitespace-collapsed text, from Python sets.
"""

from __future__ import annotations

import ast
import gzip
import importlib.util
import json
import pydoc_data.topics
import random
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from pydantic import ValidationError

import cpt.corpus.dedup as dedup_module
from cpt.corpus.dedup import (
    EXACT_REASON,
    NEAR_REASON,
    DedupConfig,
    DedupFilter,
    DedupSignatures,
    SignatureFileError,
    Signer,
    deduplicate,
    find_duplicates,
    lsh_candidate_probability,
    read_signatures,
    sketch_jaccard,
    write_signatures,
)

KONLPY = Path(next(iter(importlib.util.find_spec("konlpy").submodule_search_locations))) / "data/corpus"
KOBILL = sorted((KONLPY / "kobill").glob("*.txt"))
CONSTITUTION = (KONLPY / "kolaw/constitution.txt").read_text(encoding="utf-8")
TOPICS = [pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics)]


def true_jaccard(a: str, b: str, n: int = 5) -> float:
    def grams(t: str) -> set[str]:
        t = " ".join(unicodedata.normalize("NFC", t.casefold()).split())
        return {t[i : i + n] for i in range(len(t) - n + 1)}

    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


def word_edit(text: str, rate: float, rng: random.Random, vocab: list[str]) -> str:
    """Insert, delete or replace round(rate × words) words (at least one)."""
    words = text.split()
    for _ in range(max(1, round(rate * len(words)))):
        op = rng.choice(("insert", "delete", "replace"))
        i = rng.randrange(len(words))
        if op == "insert":
            words.insert(i, rng.choice(vocab))
        elif op == "delete" and len(words) > 1:
            del words[i]
        else:
            words[i] = rng.choice(vocab)
    return " ".join(words)


def constitution_articles() -> list[str]:
    """The constitution cut into ~600-char chunks of whole lines: real, mutually distinct Korean text."""
    chunks, cur = [], []
    for line in CONSTITUTION.splitlines():
        cur.append(line)
        if sum(map(len, cur)) > 600:
            chunks.append("\n".join(cur))
            cur = []
    return chunks


def removed(decisions) -> dict[int, tuple[str, int, float]]:
    return {d.index: (d.reason, d.duplicate_of, d.similarity) for d in decisions if not d.keep}


# ---------------------------------------------------------------------------------------------- exact


def test_exact_duplicate_removed_first_kept():
    a, b = TOPICS[0], TOPICS[1]
    variant = "  " + a.upper().replace(" ", "\n\t ") + "\n"  # case and whitespace only
    out = removed(deduplicate([a, b, variant, a, b]))
    assert out == {2: (EXACT_REASON, 0, 1.0), 3: (EXACT_REASON, 0, 1.0), 4: (EXACT_REASON, 1, 1.0)}


def test_exact_keeps_punctuation_but_near_catches_it():
    text = CONSTITUTION[:3000]
    no_punct = text.replace(".", "").replace(",", "")
    out = removed(deduplicate([text, no_punct]))
    reason, twin, sim = out[1]
    assert reason == NEAR_REASON and twin == 0  # not "exact": the texts differ
    assert sim == pytest.approx(true_jaccard(text, no_punct), abs=1e-4)


def test_exact_only_and_near_only_configs():
    texts = [TOPICS[2], TOPICS[2], word_edit(TOPICS[2], 0.01, random.Random(1), TOPICS[3].split())]
    exact_only = removed(deduplicate(texts, DedupConfig(near=False)))
    near_only = removed(deduplicate(texts, DedupConfig(exact=False)))
    assert exact_only == {1: (EXACT_REASON, 0, 1.0)}
    assert set(near_only) == {1, 2} and {r for r, _, _ in near_only.values()} == {NEAR_REASON}
    assert near_only[1][2] == 1.0


# ---------------------------------------------------------------------------------------------- near


def test_kobill_real_near_duplicates():
    texts = [p.read_text(encoding="utf-8") for p in KOBILL]
    names = [p.stem for p in KOBILL]
    out = removed(deduplicate(texts))
    assert [names[i] for i in out] == ["1809891"]
    reason, twin, sim = out[names.index("1809891")]
    assert reason == NEAR_REASON and names[twin] == "1809890"
    assert sim == pytest.approx(true_jaccard(texts[twin], texts[names.index("1809891")]), abs=1e-4)
    assert 0.85 < sim < 0.95


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_word_edited_copies(lang):
    """1-10 % word edits: every copy whose true Jaccard ≥ 0.8 goes, every removal is a true duplicate."""
    bases = constitution_articles()[:24] if lang == "ko" else [t[:4000] for t in TOPICS[:24]]
    vocab = " ".join(bases).split()
    rng = random.Random(7)
    texts = list(bases)
    pairs = []
    for i, base in enumerate(bases):
        rate = (0.01, 0.03, 0.05, 0.10)[i % 4]
        pairs.append((i, len(texts), rate))
        texts.append(word_edit(base, rate, rng, vocab))
    config = DedupConfig()
    out = removed(deduplicate(texts, config))
    truth = {copy: true_jaccard(texts[orig], texts[copy]) for orig, copy, _ in pairs}
    dups = [c for c, j in truth.items() if j >= config.threshold]
    assert len(dups) >= 15, "the edit levels should yield mostly true duplicates"
    assert all(c in out for c in dups), {c: truth[c] for c in dups if c not in out}
    for idx, (reason, twin, sim) in out.items():
        assert reason == NEAR_REASON
        assert true_jaccard(texts[twin], texts[idx]) >= config.threshold
        assert sim == pytest.approx(true_jaccard(texts[twin], texts[idx]), abs=1e-4)
    assert all(i not in out for i in range(len(bases)))  # the originals came first: they stay


def test_unrelated_and_templated_docs_kept():
    """Real distinct documents, and template-filled documents just under the threshold, all stay."""
    body = CONSTITUTION[:1500]  # a shared boilerplate body; each page adds its own ~330-440 chars
    own = " ".join(TOPICS[30:40])
    templated = [f"[문서 {n}]\n{body}\n{own[n * 500 : n * 500 + 330 + 10 * n]}" for n in range(12)]
    texts = constitution_articles()[:20] + TOPICS[:20] + templated
    sims = [true_jaccard(a, b) for i, a in enumerate(templated) for b in templated[i + 1 :]]
    assert max(sims) < 0.8 and min(sims) > 0.6, sims  # similar, yet not duplicates by the definition
    assert removed(deduplicate(texts)) == {}


def test_deterministic_and_first_seen_wins():
    texts = [p.read_text(encoding="utf-8") for p in KOBILL] + [TOPICS[5], TOPICS[5]]
    assert deduplicate(texts) == deduplicate(texts)
    names = [p.stem for p in KOBILL]
    flipped = [texts[names.index("1809891")]] + [
        t for i, t in enumerate(texts) if names[i : i + 1] != ["1809891"]
    ]
    out = removed(deduplicate(flipped))
    assert 0 not in out and flipped.index(texts[names.index("1809890")]) in out


def test_short_and_empty_texts_never_crash():
    out = deduplicate(["", "   ", "abc", "abc", "가나", TOPICS[0]])
    assert out[1] == dedup_module.DedupDecision(1, False, EXACT_REASON, 0, 1.0)  # empty after normalization
    assert out[3].reason == EXACT_REASON and out[2].keep and out[4].keep and out[5].keep


def test_long_documents_verified_by_sample():
    """Past verify_shingles the check uses a consistent sample; its estimate stays close to the truth."""
    base = " ".join(TOPICS)[:60000]
    copy = word_edit(base, 0.02, random.Random(5), base.split())
    out = removed(deduplicate([base, copy], DedupConfig(verify_shingles=2048)))
    assert out[1][0] == NEAR_REASON
    assert out[1][2] == pytest.approx(true_jaccard(base, copy), abs=0.03)


def test_config_validation():
    with pytest.raises(ValidationError, match="bands"):
        DedupConfig(num_perm=128, bands=20, rows=6)
    with pytest.raises(ValidationError):
        DedupConfig(shingle="word")
    assert all(f.description for f in DedupConfig.model_fields.values())
    c = DedupConfig()
    assert lsh_candidate_probability(0.8, c.bands, c.rows) > 0.99
    assert lsh_candidate_probability(0.1, c.bands, c.rows) < 1e-4


# ---------------------------------------------------------------------------------------------- datatrove flow


def _corpus() -> list[tuple[str, str]]:
    bills = [(f"bill-{p.stem}", p.read_text(encoding="utf-8")) for p in KOBILL]
    rng = random.Random(11)
    vocab = " ".join(TOPICS[:8]).split()
    docs = bills + [(f"topic-{i}", t) for i, t in enumerate(TOPICS[:14])]
    docs += [
        ("copy-topic-3", TOPICS[3]),
        ("edit-topic-4", word_edit(TOPICS[4], 0.02, rng, vocab)),
        ("edit-bill-0", word_edit(bills[0][1], 0.03, rng, vocab)),
    ]
    docs += [("copy-bill-1809891", dict(bills)["bill-1809891"])]
    return docs


def _write_shards(folder: Path, docs: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Two jsonl.gz files: JsonlReader gives file k to rank k when tasks == files."""
    folder.mkdir(parents=True)
    shards = [docs[0::2], docs[1::2]]
    for k, shard in enumerate(shards):
        with gzip.open(folder / f"part{k}.jsonl.gz", "wt", encoding="utf-8") as f:
            for doc_id, text in shard:
                f.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")
    return shards


def _run(pipeline, tmp_path: Path, name: str) -> None:
    LocalPipelineExecutor(
        pipeline=pipeline, tasks=2, workers=1, logging_dir=str(tmp_path / "logs" / name)
    ).run()


def _read_ids(folder: Path) -> dict[str, dict]:
    out = {}
    for path in sorted(folder.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                out[rec["id"]] = rec
    return out


def test_three_step_flow_matches_deduplicate(tmp_path):
    docs = _corpus()
    shards = _write_shards(tmp_path / "in", docs)
    config = DedupConfig(seed=5)
    _run([JsonlReader(str(tmp_path / "in")), DedupSignatures(tmp_path / "sig", config)], tmp_path, "sig")
    counts = find_duplicates(tmp_path / "sig", 2, config, tmp_path / "remove")
    _run(
        [
            JsonlReader(str(tmp_path / "in")),
            DedupFilter(tmp_path / "remove", exclusion_writer=JsonlWriter(str(tmp_path / "rejects"))),
            JsonlWriter(str(tmp_path / "out")),
        ],
        tmp_path,
        "filter",
    )
    ordered = shards[0] + shards[1]  # (rank, index) order
    expected = deduplicate([t for _, t in ordered], config)
    kept_expected = {ordered[d.index][0] for d in expected if d.keep}
    assert set(_read_ids(tmp_path / "out")) == kept_expected
    rejects = _read_ids(tmp_path / "rejects")
    want = {ordered[d.index][0]: (d.reason, ordered[d.duplicate_of][0]) for d in expected if not d.keep}
    assert {
        k: (r["metadata"]["filter_reason"], r["metadata"]["duplicate_of"]) for k, r in rejects.items()
    } == want
    assert want["topic-3"] == (EXACT_REASON, "copy-topic-3")  # rank 0 comes first, whatever the names say
    assert want["edit-bill-0"] == (NEAR_REASON, "bill-1809890")
    # An exact copy of a document that itself fell as a near duplicate points at the document actually kept.
    assert want["bill-1809891"] == want["copy-bill-1809891"] == (NEAR_REASON, "bill-1809890")
    assert all(0.8 <= r["metadata"]["duplicate_similarity"] <= 1.0 for r in rejects.values())
    assert counts[EXACT_REASON] + counts[NEAR_REASON] == len(want) and counts["documents"] == len(docs)
    for sig in (tmp_path / "sig").iterdir():  # plain numpy container, not a pickle
        assert sig.read_bytes()[:8] == b"CPTSIG\x00\x01"


def test_truncated_or_foreign_signature_file_detected(tmp_path):
    docs = _corpus()
    _write_shards(tmp_path / "in", docs)
    config = DedupConfig()
    _run([JsonlReader(str(tmp_path / "in")), DedupSignatures(tmp_path / "sig", config)], tmp_path, "sig")
    find_duplicates(tmp_path / "sig", 2, config, tmp_path / "remove")  # complete files read fine
    with pytest.raises(SignatureFileError, match="made with"):
        find_duplicates(tmp_path / "sig", 2, DedupConfig(ngram=4), tmp_path / "remove")
    with pytest.raises(SignatureFileError, match="missing"):
        find_duplicates(tmp_path / "sig", 3, config, tmp_path / "remove")
    sig = tmp_path / "sig" / "00001.sig"
    data = sig.read_bytes()
    sig.write_bytes(data[: len(data) // 2])
    with pytest.raises(SignatureFileError, match="incomplete"):
        find_duplicates(tmp_path / "sig", 2, config, tmp_path / "remove")
    sig.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    with pytest.raises(SignatureFileError, match="checksum"):
        find_duplicates(tmp_path / "sig", 2, config, tmp_path / "remove")


def test_killed_signature_task_leaves_no_valid_file(tmp_path):
    step = DedupSignatures(tmp_path / "sig", DedupConfig())
    gen = step.run((Document(text=t, id=str(i)) for i, t in enumerate(TOPICS)), rank=0, world_size=1)
    for _ in range(5):
        next(gen)
    gen.close()  # the consumer stops mid-stream, as when the task dies
    assert not (tmp_path / "sig" / "00000.sig").exists()
    assert list((tmp_path / "sig").iterdir()) == []


def test_signature_files_are_reproducible(tmp_path):
    docs = [Document(text=t, id=f"d{i}") for i, t in enumerate(TOPICS[:10])]
    for name in ("a", "b"):
        assert [d.id for d in DedupSignatures(tmp_path / name).run(iter(docs), 0, 1)] == [d.id for d in docs]
    assert (tmp_path / "a/00000.sig").read_bytes() == (tmp_path / "b/00000.sig").read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["00000.sig"]  # no leftover part files


def test_signer_parts_and_signature_files_for_other_callers(tmp_path):
    """The public pieces (exact hash, signature, sketch; write/read of a .sig) are exactly what the steps store."""
    config = DedupConfig(verify_shingles=512)
    signer = Signer(config)
    texts = ["", "abc", "가나다라마바", CONSTITUTION[:5000], TOPICS[0]]
    records = [signer.sign(t) for t in texts]
    for text, record in zip(texts, records, strict=True):
        norm = dedup_module.normalize(text)
        hashes = signer.shingle_hashes(norm)
        assert signer.exact_hash(norm) == record.exact
        assert np.array_equal(signer.signature(hashes), record.signature)
        distinct, shift, sketch = signer.sketch(hashes)
        assert (distinct, shift) == (record.shingles, record.shift) and np.array_equal(sketch, record.sketch)
    assert records[3].shift > 0  # a long text's sketch is a sample, and still the same one
    path = write_signatures(tmp_path / "ix", ((r, f"k{i}") for i, r in enumerate(records)), config)
    part = read_signatures(path, config)
    assert [part.doc_id(i) for i in range(part.size)] == [f"k{i}" for i in range(len(texts))]
    assert all(np.array_equal(part.doc_sketch(i), r.sketch) for i, r in enumerate(records))
    copy = word_edit(TOPICS[0], 0.03, random.Random(2), TOPICS[1].split())
    mine = signer.sketch(signer.shingle_hashes(dedup_module.normalize(copy)))
    estimate = sketch_jaccard(mine[2], mine[1], part.doc_sketch(4), int(part.shift[4]))
    assert estimate == pytest.approx(true_jaccard(copy, TOPICS[0]), abs=0.02)
    with pytest.raises(SignatureFileError, match="made with"):
        read_signatures(path, DedupConfig())  # other settings: refused by name


def test_filter_refuses_a_different_stream(tmp_path):
    docs = [Document(text=t, id=f"d{i}") for i, t in enumerate(TOPICS[:6] + TOPICS[:2])]
    list(DedupSignatures(tmp_path / "sig").run(iter(docs), 0, 1))
    find_duplicates(tmp_path / "sig", 1, DedupConfig(), tmp_path / "remove")
    step = DedupFilter(tmp_path / "remove")
    kept = list(step.run(iter(docs), 0, 1))
    assert [d.id for d in kept] == [f"d{i}" for i in range(6)]
    stats = {k: v.total for k, v in step.stats.stats.items()}
    assert stats["dropped"] == 2 and stats[f"dropped_{EXACT_REASON}"] == 2 and stats["forwarded"] == 6
    renamed = [Document(text=d.text, id=f"x{d.id}") for d in docs]
    with pytest.raises(RuntimeError, match="differs"):
        list(DedupFilter(tmp_path / "remove").run(iter(renamed), 0, 1))
    with pytest.raises(RuntimeError, match="differs"):
        list(DedupFilter(tmp_path / "remove").run(iter(docs[:7]), 0, 1))
    with pytest.raises(FileNotFoundError):
        list(DedupFilter(tmp_path / "nowhere").run(iter(docs), 0, 1))


def test_no_pickle_anywhere():
    tree = ast.parse(Path(dedup_module.__file__).read_text(encoding="utf-8"))
    imported = {
        a.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in getattr(n, "names", [])
    }
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"pickle", "dill", "cloudpickle", "marshal", "shelve"}
    assert "allow_pickle" not in Path(dedup_module.__file__).read_text(encoding="utf-8")
