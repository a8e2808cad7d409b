"""`cpt corpus pack`: datatrove token shards, a held-out eval split with no contamination, resume.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/corpus/test_pack.py -q

The corpus is real text that ships in installed packages: the Python reference topics
(`pydoc_data`) and the Korean constitution and National Assembly bills (konlpy's data, found
without importing konlpy, which needs a JVM). Into it we plant exact copies (other case and
spacing) and near copies (a few words changed, the end cut) of real documents, so the eval
split has copies to catch. The tokenizer is a byte-level BPE trained here on the same text:
small, and lossless to decode, so every packed document can be checked against its text.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from cpt.commands.pack import pack as pack_command
from cpt.corpus.dedup import Signer, read_signatures
from cpt.corpus.dedup import normalize as normalize_for_hash
from cpt.corpus.pack import (
    INDEX,
    EvalIndex,
    PackConfig,
    decontamination_config,
    pack_corpus,
    selection_key,
)
from cpt.errors import UserError
from cpt.paths import package_root
from cpt.train.data import PackedShards

EOS = 1


def corpus_docs() -> list[dict]:
    import pydoc_data.topics

    docs = [{"text": v, "id": f"pydoc/{k}", "metadata": {"source": "pydoc"}} for k, v in sorted(pydoc_data.topics.topics.items())]
    kon = package_root("konlpy") / "data" / "corpus"
    for f in sorted((kon / "kobill").glob("*.txt")):
        docs.append({"text": f.read_text(encoding="utf-8").replace("\r\n", "\n"), "id": f"kobill/{f.stem}", "metadata": {}})
    law = (kon / "kolaw" / "constitution.txt").read_text(encoding="utf-8").replace("\r\n", "\n")
    for i, chapter in enumerate(law.split("\n제")):  # one document per chapter of the constitution
        docs.append({"text": chapter if i == 0 else "제" + chapter, "id": f"kolaw/{i}", "metadata": {}})
    return docs


def near_copy(text: str, rng: np.random.Generator) -> str:
    """A few words replaced and the last tenth cut: char 5-gram Jaccard around 0.8 with the original."""
    words = text.split(" ")
    for i in rng.choice(len(words), size=max(1, len(words) // 40), replace=False):
        words[i] = "xyzzy"
    return " ".join(words[: int(len(words) * 0.92)])


def jaccard(a: str, b: str, k: int = 5) -> float:
    """Exact char k-gram Jaccard of normalized texts: the reference the MinHash check must honour."""
    sa = {a[i : i + k] for i in range(max(1, len(a) - k + 1))}
    sb = {b[i : i + k] for i in range(max(1, len(b) - k + 1))}
    return len(sa & sb) / len(sa | sb)


def write_jsonl_gz(path: Path, docs: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    root = tmp_path_factory.mktemp("pack")
    docs = [d for d in corpus_docs() if d["text"].strip()]
    rng = np.random.default_rng(0)
    planted = []
    long_docs = [d for d in docs if len(d["text"]) > 400]
    for i, d in enumerate(long_docs[:60]):
        if i % 2 == 0:
            planted.append({"text": near_copy(d["text"], rng), "id": d["id"] + "/near", "metadata": {"planted": "near"}})
        elif i % 5 == 1:
            text = "  " + d["text"].upper().replace(" ", "   ") + "\n"
            planted.append({"text": text, "id": d["id"] + "/exact", "metadata": {"planted": "exact"}})
    corpus = root / "corpus"
    for part in range(3):
        write_jsonl_gz(corpus / f"part-{part}.jsonl.gz", docs[part::3])
    write_jsonl_gz(corpus / "planted.jsonl.gz", planted)
    write_jsonl_gz(corpus / "rejects" / "dropped.jsonl.gz", [{"text": "must never be packed", "id": "r1"}])

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=["<s>", "</s>", "<unk>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((d["text"] for d in docs), trainer)
    tok_dir = root / "tokenizer"
    tok_dir.mkdir()
    tok.save(str(tok_dir / "tokenizer.json"))
    (tok_dir / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>", "bos_token": "<s>"}))
    return {"root": root, "corpus": corpus, "tokenizer": tok_dir, "tok": tok, "docs": docs + planted, "planted": planted}


CFG = PackConfig(eval_docs=40, tasks=4, workers=1)


@pytest.fixture(scope="module")
def packed(assets):
    out = assets["root"] / "out"
    meta = pack_corpus(assets["corpus"], assets["tokenizer"], out, CFG, seed=7)
    return out, meta


def shard_docs(folder: Path) -> list[list[int]]:
    """Every document of every shard file (EOS included), in file order."""
    docs = []
    for ds in sorted(folder.glob("*.ds")):
        tokens = np.fromfile(ds, dtype="<u2")
        ends = np.fromfile(ds.with_name(ds.name + ".index"), dtype="<u8").astype(int)
        starts = np.concatenate([[0], ends])[:-1]
        docs.extend(tokens[s:e].tolist() for s, e in zip(starts, ends, strict=True))
    return docs


def test_shards_are_exact_tokenizations_with_eos_and_no_padding(assets, packed):
    out, meta = packed
    tok = assets["tok"]
    train = shard_docs(out / "train")
    texts = {d["text"] for d in assets["docs"]}
    for ids in train:
        assert ids[-1] == EOS and EOS not in ids[:-1]  # one EOS, closing the document
        text = tok.decode(ids[:-1])
        assert text in texts and tok.encode(text).ids == ids[:-1]  # the document, exactly, nothing else
    counts = meta["splits"]["train"]
    assert counts["docs"] == len(train) and counts["tokens"] == sum(map(len, train))
    assert counts["bytes"] == sum(len(tok.decode(ids[:-1]).encode("utf-8")) for ids in train)
    removed = counts["removed"]
    assert counts["docs"] + sum(removed.values()) == len(assets["docs"])  # every document is packed or counted
    assert removed["eval_heldout"] == 40
    assert "must never be packed" not in {tok.decode(ids[:-1]) for ids in train}  # rejects/ is not corpus
    assert meta["token_size"] == 2 and meta["dtype"] == "uint16" and meta["eos_id"] == EOS
    assert meta["vocab_size"] == tok.get_vocab_size()
    assert json.loads((out / "stage.json").read_text())["stage"] == "pack"
    assert json.loads((out / "train" / "meta.json").read_text())["counts"] == counts


def test_eval_split_is_text_plus_shards_and_never_trained_on(assets, packed):
    out, meta = packed
    tok = assets["tok"]
    with gzip.open(out / "eval" / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        heldout = [json.loads(line) for line in f]
    assert len(heldout) == 40 == meta["splits"]["eval"]["docs"]
    assert [tok.decode(ids[:-1]) for ids in shard_docs(out / "eval")] == [d["text"] for d in heldout]
    assert meta["splits"]["eval"]["bytes"] == sum(len(d["text"].encode()) for d in heldout)
    # the planted copies were caught, by both checks
    removed = meta["splits"]["train"]["removed"]
    assert removed.get("eval_exact", 0) >= 1 and removed.get("eval_near_duplicate", 0) >= 1
    # no training document is a copy or near copy of a held-out one (exact Jaccard, brute force)
    train_texts = [normalize_for_hash(tok.decode(ids[:-1])) for ids in shard_docs(out / "train")]
    eval_texts = [normalize_for_hash(d["text"]) for d in heldout]
    worst = 0.0
    for t in train_texts:
        for e in eval_texts:
            if min(len(t), len(e)) >= 0.6 * max(len(t), len(e)):  # Jaccard >= 0.6 needs similar sizes
                worst = max(worst, jaccard(t, e))
    # MinHash estimates Jaccard (std ~0.04 at 128 bins), so a pair right at the threshold may go either way
    assert worst < CFG.near_duplicate_threshold + 0.05


def test_planted_near_copy_of_an_eval_document_is_removed(assets, tmp_path):
    """One document and its near copy, then held out: the copy never reaches the training shards."""
    docs = [d for d in assets["docs"] if d["id"].startswith("kobill/")]
    target = next(d for d in docs if d["id"] == "kobill/1809896")  # no other bill is near it (Jaccard <= 0.07)
    docs = [d for d in docs if d is not target] + [target]
    copy = {"text": near_copy(target["text"], np.random.default_rng(1)), "id": "copy", "metadata": {}}
    assert 0.7 < jaccard(normalize_for_hash(copy["text"]), normalize_for_hash(target["text"])) < 0.95
    corpus = tmp_path / "c"
    write_jsonl_gz(corpus / "a.jsonl.gz", docs[:-1])
    write_jsonl_gz(corpus / "b.jsonl.gz", [copy])
    write_jsonl_gz(corpus / "c.jsonl.gz", [target])
    # hold out exactly the target: eval_docs=1 with a seed whose shuffle puts the last document first
    seed = next(s for s in range(1000) if min(range(len(docs)), key=lambda i: selection_key(s, i)) == len(docs) - 1)
    meta = pack_corpus(corpus, assets["tokenizer"], tmp_path / "out", PackConfig(eval_docs=1, tasks=2, workers=1), seed=seed)
    assert meta["splits"]["train"]["removed"] == {"eval_heldout": 1, "eval_near_duplicate": 1}
    train = {assets["tok"].decode(ids[:-1]) for ids in shard_docs(tmp_path / "out" / "train")}
    assert copy["text"] not in train and target["text"] not in train and len(train) == len(docs) - 1


def test_datatrove_reads_the_shards(packed):
    from datatrove.utils.dataset import DatatroveFolderDataset

    out, meta = packed
    ds = DatatroveFolderDataset(str(out / "train"), seq_len=64, token_size=meta["token_size"])
    first = sorted((out / "train").glob("*.ds"))[0]
    assert ds[0]["input_ids"].tolist() == np.fromfile(first, dtype="<u2")[:65].astype(int).tolist()
    ours = PackedShards(out, 64, seed=0, shuffle=False)  # the pack root reads the training split
    assert ours.window(0).tokens.tolist() == ds[0]["input_ids"].tolist()
    assert ours.vocab_size == meta["vocab_size"] and ours.eos_id == EOS


def test_deterministic_and_a_finished_pack_is_not_redone(assets, packed, tmp_path):
    out, _ = packed
    again = tmp_path / "again"
    pack_corpus(assets["corpus"], assets["tokenizer"], again, CFG, seed=7)
    for f in sorted((out / "train").glob("*.ds*")) + sorted((out / "eval").glob("*.ds*")) + [out / "eval" / "docs.jsonl.gz"]:
        assert (again / f.relative_to(out)).read_bytes() == f.read_bytes(), f.name
    stamp = {f: f.stat().st_mtime_ns for f in again.rglob("*.ds")}
    pack_corpus(assets["corpus"], assets["tokenizer"], again, CFG, seed=7)
    assert {f: f.stat().st_mtime_ns for f in again.rglob("*.ds")} == stamp
    # a changed config starts afresh
    meta = pack_corpus(assets["corpus"], assets["tokenizer"], again, PackConfig(eval_docs=5, tasks=4, workers=1), seed=7)
    assert meta["splits"]["eval"]["docs"] == 5


def pack_subprocess(assets, target: Path, workers: int) -> list[str]:
    """A subprocess that packs the fixture corpus with the `packed` fixture's settings."""
    code = (
        "import sys; from cpt.corpus.pack import PackConfig, pack_corpus; "
        f"pack_corpus(sys.argv[1], sys.argv[2], sys.argv[3], PackConfig(eval_docs=40, tasks=4, workers={workers}), seed=7)"
    )
    return [sys.executable, "-c", code, str(assets["corpus"]), str(assets["tokenizer"]), str(target)]


def resume_equals(args: list[str], target: Path, out: Path, log: Path) -> None:
    """Re-run the killed pack without the fault: it finishes with `out`'s shards and counts, byte for byte."""
    with open(log, "wb") as fh:
        resumed = subprocess.run(args, env={k: v for k, v in os.environ.items() if k != "CPT_FAULT"}, stdout=fh, stderr=fh, timeout=300)
    assert resumed.returncode == 0, log.read_text()[-2000:]
    for f in sorted((out / "train").glob("*.ds*")):
        assert (target / "train" / f.name).read_bytes() == f.read_bytes(), f.name
    assert sorted(p.name for p in (target / "train").glob("*.ds")) == sorted(p.name for p in (out / "train").glob("*.ds"))
    assert json.loads((target / "meta.json").read_text())["splits"] == json.loads((out / "meta.json").read_text())["splits"]


def run_with_fault(args: list[str], fault: str, log: Path) -> tuple[int, list[int]]:
    """Run `args` with CPT_FAULT=`fault` in a session of its own; its exit code and what outlived it.

    A session of its own lets the test find (and then end) any process the killed run left
    behind; output goes to a file, since a survivor holding a pipe would block the read.
    """
    with open(log, "wb") as fh:
        proc = subprocess.Popen(args, env=os.environ | {"CPT_FAULT": fault}, stdout=fh, stderr=fh, start_new_session=True)
        try:
            returncode = proc.wait(timeout=120)
            deadline = time.monotonic() + 10
            while _session_processes(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            return returncode, _session_processes(proc.pid)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.slow
def test_a_killed_pack_resumes_to_the_same_shards(assets, packed, tmp_path):
    out, _ = packed
    target = tmp_path / "killed"
    args = pack_subprocess(assets, target, workers=1)
    returncode, survivors = run_with_fault(args, "pack-kill-in-task:2", tmp_path / "killed.log")
    assert returncode == -9 and survivors == []  # SIGKILL inside task 2, its files half written; the manager died too
    assert not (target / "stage.json").exists()
    done_before = {f.name: f.stat().st_mtime_ns for f in (target / "train").glob("0000[01]_*.ds")}
    assert len(done_before) == 2  # tasks 0 and 1 had finished
    resume_equals(args, target, out, tmp_path / "resumed.log")
    assert {f.name: f.stat().st_mtime_ns for f in (target / "train").glob("0000[01]_*.ds")} == done_before  # not redone


def test_decontamination_is_dedups_signer_and_verifier(packed):
    """The held-out index is dedup's signature file, holding exactly what dedup's signer makes."""
    out, _ = packed
    with gzip.open(out / "eval" / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        heldout = [json.loads(line) for line in f]
    config = decontamination_config(CFG)
    part = read_signatures(out / "eval" / INDEX / "00000.sig", config)  # refuses a file made with other settings
    signer = Signer(config)
    assert part.size == len(heldout)
    for i, d in enumerate(heldout):
        record = signer.sign(d["text"])
        assert tuple(int(x) for x in part.exact[i]) == record.exact
        assert np.array_equal(part.signature[i], record.signature)
        assert np.array_equal(part.doc_sketch(i), record.sketch)
        assert part.doc_id(i) == f"{d['metadata']['file']}#{d['id']}"


def test_near_copies_removed_by_verified_jaccard(assets, tmp_path):
    """Copies at every edit level: dropped exactly when their true char 5-gram Jaccard reaches the threshold."""
    from datatrove.data import Document

    rng = np.random.default_rng(3)
    bases = [d for d in assets["docs"] if d["id"].startswith("pydoc/") and 2000 < len(d["text"]) < 8000][:12]
    config = decontamination_config(CFG)
    EvalIndex.write([Document(text=d["text"], id=d["id"], metadata={"file": "a"}) for d in bases], tmp_path / "ix", config)
    index = EvalIndex.load(tmp_path / "ix" / "00000.sig", config)
    seen = set()
    for d in bases:
        assert index.check(Document(text=d["text"], id=d["id"], metadata={"file": "a"})) == "eval_heldout"
        assert index.check(Document(text=d["text"].upper(), id="other", metadata={"file": "b"})) == "eval_exact"
        words = d["text"].split(" ")
        for rate in (0.02, 0.05, 0.08, 0.12, 0.2, 0.4):
            copy = words.copy()
            for i in rng.choice(len(copy), size=max(1, int(len(copy) * rate)), replace=False):
                copy[i] = "xyzzy"
            text = " ".join(copy)
            truth = jaccard(normalize_for_hash(text), normalize_for_hash(d["text"]))
            if abs(truth - config.threshold) < 0.01:
                continue  # the sketch of a long document is a sample: keep clear of the boundary
            got = index.check(Document(text=text, id="copy", metadata={"file": "b"}))
            assert got == ("eval_near_duplicate" if truth >= config.threshold else None), (d["id"], rate, truth)
            seen.add(got)
    assert seen == {"eval_near_duplicate", None}  # both sides of the threshold were exercised


def test_cli_and_user_mistakes(assets, tmp_path):
    app = typer.Typer()
    app.command()(pack_command)
    runner = CliRunner()
    args = ["--corpus", str(assets["corpus"]), "--tokenizer", str(assets["tokenizer"]), "--eval-fraction", "0.1", "--no-shuffle", "--tasks", "2"]
    ok = runner.invoke(app, [*args, "--output", str(tmp_path / "o"), "--workers", "2"])  # two processes, one task each
    assert ok.exit_code == 0, ok.output
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    assert meta["splits"]["eval"]["docs"] == round(len(assets["docs"]) * 0.1) and meta["shuffle"] is False
    names = sorted(p.name for p in (tmp_path / "o" / "train").glob("*.ds*"))
    assert [n for n in names if n.endswith(".ds")] == ["00000_unshuffled.ds", "00001_unshuffled.ds"]
    # the same pack in one process gives the same bytes: parallelism changes nothing but speed
    pack_corpus(assets["corpus"], assets["tokenizer"], tmp_path / "one", PackConfig(eval_fraction=0.1, shuffle=False, tasks=2, workers=1))
    for name in names:
        assert (tmp_path / "one" / "train" / name).read_bytes() == (tmp_path / "o" / "train" / name).read_bytes()
    both = runner.invoke(app, ["--corpus", "x", "--tokenizer", "y", "--output", "z", "--eval-docs", "3", "--eval-fraction", "0.1"])
    assert isinstance(both.exception, UserError) and "exclude each other" in str(both.exception)
    with pytest.raises(UserError, match="no tokenizer.json"):
        pack_corpus(assets["corpus"], tmp_path, tmp_path / "p")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no corpus files"):
        pack_corpus(tmp_path / "empty", assets["tokenizer"], tmp_path / "p")
    with pytest.raises(UserError, match="has only"):
        pack_corpus(assets["corpus"], assets["tokenizer"], tmp_path / "p", PackConfig(eval_docs=100_000))


# ----------------------------------------------------------------------------- input formats and bad records


def write_parquet(path: Path, docs: list[dict]) -> None:
    """The schema `cpt corpus build --format parquet` writes: text, id, metadata as one JSON column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = {"text": [d["text"] for d in docs], "id": [d["id"] for d in docs], "metadata": [json.dumps(d.get("metadata", {})) for d in docs]}
    pq.write_table(pa.table(rows), path, row_group_size=7)  # several row groups: read in batches


def packed_stream(out: Path) -> tuple[list[list[int]], list[list[int]], list[str]]:
    with gzip.open(out / "eval" / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        eval_texts = [json.loads(line)["text"] for line in f]
    return shard_docs(out / "train"), shard_docs(out / "eval"), eval_texts


def test_parquet_corpus_packs_like_jsonl(assets, tmp_path):
    """The same documents as parquet (a folder, or a file named directly) give the same token stream as jsonl."""
    docs = [d for d in assets["docs"] if not d["id"].startswith("pydoc/")][:60]
    cfg = PackConfig(eval_docs=6, tasks=2, workers=1)
    for k in range(2):
        write_jsonl_gz(tmp_path / "j" / f"{k:05d}.jsonl.gz", docs[k::2])
        write_parquet(tmp_path / "p" / f"{k:05d}.parquet", docs[k::2])
    jsonl = pack_corpus(tmp_path / "j", assets["tokenizer"], tmp_path / "oj", cfg, seed=5)
    parquet = pack_corpus(tmp_path / "p", assets["tokenizer"], tmp_path / "op", cfg, seed=5)
    assert packed_stream(tmp_path / "op") == packed_stream(tmp_path / "oj")
    for split in ("train", "eval"):
        for f in sorted((tmp_path / "oj" / split).glob("*.ds")):
            assert (tmp_path / "op" / split / f.name).read_bytes() == f.read_bytes()
    assert parquet["splits"] == jsonl["splits"] and parquet["splits"]["train"]["docs"] > 0
    # one parquet file named directly reads like the same jsonl file named directly
    one_p = pack_corpus([tmp_path / "p" / "00000.parquet"], assets["tokenizer"], tmp_path / "o1p", PackConfig(tasks=1), seed=5)
    one_j = pack_corpus([tmp_path / "j" / "00000.jsonl.gz"], assets["tokenizer"], tmp_path / "o1j", PackConfig(tasks=1), seed=5)
    assert shard_docs(tmp_path / "o1p" / "train") == shard_docs(tmp_path / "o1j" / "train")
    assert one_p["splits"]["train"]["docs"] == len(docs[0::2]) == one_j["splits"]["train"]["docs"]
    (tmp_path / "notes.txt").write_text("not a corpus file")
    with pytest.raises(UserError, match="not a corpus file"):
        pack_corpus([tmp_path / "notes.txt"], assets["tokenizer"], tmp_path / "bad")


@pytest.mark.slow
def test_build_parquet_output_packs_like_its_jsonl_output(assets, tmp_path):
    """`cpt corpus build --format parquet` then pack: the same tokens as the jsonl.gz build of the same input."""
    from cpt.corpus.build import build_corpus
    from cpt.corpus.config import CorpusConfig

    docs = [d for d in assets["docs"] if d["id"].startswith("kobill/") or d["id"].startswith("pydoc/")][:50]
    write_jsonl_gz(tmp_path / "in" / "docs.jsonl.gz", docs)
    outs = {}
    for fmt in ("jsonl", "parquet"):
        build_corpus([tmp_path / "in"], tmp_path / f"build-{fmt}", CorpusConfig(languages=["ko", "en"], tasks=2, workers=1, format=fmt), seed=3)
        outs[fmt] = pack_corpus(tmp_path / f"build-{fmt}", assets["tokenizer"], tmp_path / f"pack-{fmt}", PackConfig(eval_docs=4, tasks=2, workers=1), seed=5)
    assert any((tmp_path / "build-parquet").rglob("*.parquet"))
    assert packed_stream(tmp_path / "pack-parquet") == packed_stream(tmp_path / "pack-jsonl")
    assert outs["parquet"]["splits"] == outs["jsonl"]["splits"] and outs["jsonl"]["splits"]["train"]["docs"] > 10


def test_bad_records_are_counted_by_reason_never_dropped_silently(assets, tmp_path):
    good = [d for d in assets["docs"] if d["id"].startswith("kobill/")][:8]
    lines = [json.dumps(d, ensure_ascii=False) for d in good[:4]]
    lines += [
        json.dumps({"text": "", "id": "empty"}),
        json.dumps({"text": "  \n\t ", "id": "blank"}),
        json.dumps({"id": "no-text", "metadata": {}}),
        json.dumps({"text": None, "id": "null-text"}),
        json.dumps({"text": 42, "id": "number"}),
        '{"text": "cut off',
        json.dumps(["not", "an", "object"]),
    ]
    lines += [json.dumps(d, ensure_ascii=False) for d in good[4:]]
    corpus = tmp_path / "c"
    corpus.mkdir()
    with gzip.open(corpus / "a.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    write_parquet(corpus / "b.parquet", [{"text": "", "id": "pq-empty"}, {"text": good[0]["text"] + " (parquet)", "id": "pq-ok"}])

    from cpt import ui

    app = typer.Typer()
    app.command()(pack_command)
    quiet = ui.is_quiet()
    ui.set_quiet(False)  # the summary tables are what this test reads
    try:
        result = CliRunner().invoke(app, ["--corpus", str(corpus), "--tokenizer", str(assets["tokenizer"]), "--output", str(tmp_path / "o"), "--eval-docs", "2", "--tasks", "2"])
    finally:
        ui.set_quiet(quiet)
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    train = meta["splits"]["train"]
    expected = {"empty_text": 3, "missing_text_field": 1, "text_not_string": 2, "malformed_json": 1, "not_an_object": 1}
    assert train["dropped"] == expected
    assert train["docs"] + sum(train["removed"].values()) + sum(train["dropped"].values()) == len(lines) + 2  # every record accounted for
    assert train["docs"] == len(good) + 1 - sum(train["removed"].values()) and train["removed"]["eval_heldout"] == 2
    stage = json.loads((tmp_path / "o" / "stage.json").read_text())
    assert {k: v for k, v in stage["counts"].items() if k.startswith("dropped_")} == {f"dropped_{k}": v for k, v in expected.items()}
    for reason in expected:
        assert reason in result.output  # the summary table lists every reason
    assert "bad record" in result.output and "records dropped" in result.output


def test_malformed_fault_variable_fails_before_any_work(assets, tmp_path, monkeypatch):
    monkeypatch.setenv("CPT_FAULT", "pack-kill-in-task:two")
    with pytest.raises(UserError, match="CPT_FAULT='pack-kill-in-task:two'"):
        pack_corpus(assets["corpus"], assets["tokenizer"], tmp_path / "o", PackConfig(eval_docs=3))
    assert not (tmp_path / "o").exists()
    monkeypatch.setenv("CPT_FAULT", "kill-at-step:12")  # another stage's fault: valid, not acted on here
    meta = pack_corpus(assets["corpus"], assets["tokenizer"], tmp_path / "o", PackConfig(tasks=1))
    assert meta["splits"]["train"]["docs"] > 0


def test_signature_length_must_fill_lsh_bands():
    with pytest.raises(ValueError, match="multiple of 4"):
        PackConfig(num_perm=130)
    assert decontamination_config(PackConfig(num_perm=64)).bands == 16


def test_default_worker_processes_write_the_same_shuffled_shards(assets, tmp_path):
    """One single-threaded tokenizer per CPU (the default with fork) gives the bytes of one process."""
    many = pack_corpus(assets["corpus"], assets["tokenizer"], tmp_path / "many", PackConfig(eval_docs=5, tasks=3), seed=11)
    one = pack_corpus(assets["corpus"], assets["tokenizer"], tmp_path / "one", PackConfig(eval_docs=5, tasks=3, workers=1), seed=11)
    assert many["splits"] == one["splits"]
    names = sorted(p.name for p in (tmp_path / "one" / "train").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "many" / "train").iterdir()) and any("shuffled" in n for n in names)
    for name in names:
        assert (tmp_path / "many" / "train" / name).read_bytes() == (tmp_path / "one" / "train" / name).read_bytes(), name


def test_worker_processes_tokenize_on_one_thread_and_the_setting_is_restored(monkeypatch):
    from cpt.corpus.pack import _one_thread_per_worker

    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")
    with _one_thread_per_worker(True):
        assert os.environ["TOKENIZERS_PARALLELISM"] == "false"  # what forked workers inherit
    assert os.environ["TOKENIZERS_PARALLELISM"] == "true"
    monkeypatch.delenv("TOKENIZERS_PARALLELISM")
    with _one_thread_per_worker(True):
        assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    assert "TOKENIZERS_PARALLELISM" not in os.environ
    with _one_thread_per_worker(False):  # one process: the tokenizer's thread pool uses every core
        assert "TOKENIZERS_PARALLELISM" not in os.environ


def _session_processes(sid: int) -> list[int]:
    """Live (not zombie) processes of session `sid`, read from /proc (none where there is no /proc)."""
    alive: list[int] = []
    if not os.path.isdir("/proc"):
        return alive
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getsid(int(entry)) != sid:
                continue
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            continue
        if state != "Z":
            alive.append(int(entry))
    return alive


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with the pack through Linux's PR_SET_PDEATHSIG")
def test_killing_a_multi_process_pack_leaves_no_worker_behind_and_resumes(assets, packed, tmp_path):
    """`kill -9` of the pack's process (from inside task 2, on a worker): its workers and datatrove's
    manager die with it instead of finishing tasks behind the re-run's back; the re-run is exact."""
    out, _ = packed
    target = tmp_path / "killed"
    args = pack_subprocess(assets, target, workers=2)
    returncode, survivors = run_with_fault(args, "pack-kill-in-task:2", tmp_path / "killed.log")
    assert returncode == -9
    assert survivors == [], f"processes outlived the killed pack: {survivors}"
    assert not (target / "stage.json").exists()
    done = sorted(p.name for p in (target / ".datatrove" / "train" / "completions").glob("*"))
    assert "00002" not in done and len(done) < 4
    resume_equals(args, target, out, tmp_path / "resumed.log")
