"""The corpus build driver end to end on tiny real inputs: counts, rejects, determinism, resume, executors.

Inputs: konlpy's Korean law text and bills, English prose from the stdlib's `pydoc_data`,
and a generated jsonl.gz with planted duplicates, PII (Faker) and every kind of bad line.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/corpus/test_build.py -q
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cpt.corpus.build import build_corpus, corpus_files, read_records
from cpt.corpus.config import CorpusConfig
from cpt.corpus.report import Report

ROOT = Path(__file__).resolve().parents[2]
KONLPY = Path(next(iter(importlib.util.find_spec("konlpy").submodule_search_locations))) / "data/corpus"


def _pydoc_topics(n: int) -> list[tuple[str, str]]:
    from pydoc_data.topics import topics

    return [(k, v) for k, v in sorted(topics.items()) if 800 < len(v) < 20_000][:n]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    from faker import Faker

    folder = tmp_path_factory.mktemp("inputs")
    topics = _pydoc_topics(24)
    with open(folder / "en.jsonl", "w", encoding="utf-8") as fh:
        for key, text in topics:
            fh.write(json.dumps({"text": text, "id": f"pydoc-{key}"}) + "\n")
    fake = Faker("en_US")
    fake.seed_instance(7)
    email, phone = fake.email(), "010-2345-6789"
    base_key, base = topics[3]
    words = base.split(" ")
    near = " ".join(w + "s" if i % 50 == 7 else w for i, w in enumerate(words))  # ~2 % of words edited
    lines = [
        json.dumps({"text": base, "id": "exact-dup"}),
        json.dumps({"text": near, "id": "near-dup"}),
        json.dumps({"text": topics[5][1] + f"\n\nQuestions: write to {email} or call {phone}.", "id": "pii-doc"}),
        '{"text": "unterminated',
        json.dumps({"body": "no text field here"}),
        json.dumps({"text": "   "}),
        json.dumps({"text": "\x00\x01\x02\x03 binary junk \x04\x05\x06\x07\x08" * 5}),
    ]
    (folder / "mixed.jsonl.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    return {
        "paths": [str(KONLPY / "kolaw"), str(KONLPY / "kobill"), str(folder / "en.jsonl"), str(folder / "mixed.jsonl.gz")],
        "email": email,
        "phone": phone,
        "base_id": f"pydoc-{base_key}",
        "n_records": 1 + 10 + len(topics) + len(lines),
    }


def config(**kw) -> CorpusConfig:
    defaults = {"languages": ["ko", "en"], "tasks": 2, "workers": 1}
    return CorpusConfig(**{**defaults, **kw})


@pytest.fixture(scope="module")
def clean_build(inputs, tmp_path_factory) -> tuple[Path, Report]:
    out = tmp_path_factory.mktemp("clean") / "out"
    report = build_corpus(inputs["paths"], out, config(rejects=True), seed=3)
    return out, report


def test_report_counts_add_up(clean_build, inputs) -> None:
    out, report = clean_build
    saved = Report.load(out / "report.json")
    assert saved.data["totals"] == report.data["totals"]
    assert report.data["totals"]["docs_in"] == inputs["n_records"]
    assert report.data["skipped_steps"] == [] or all("not available" in s["why"] for s in report.data["skipped_steps"])
    previous_out = None
    for step in report.steps:
        if step["docs_in"] is None:  # the single duplicate-finding task has no document stream
            continue
        assert step["docs_in"] == step["docs_out"] + step["removed"], step["step"]
        assert step["removed"] == sum(step["reasons"].values()), step["step"]
        if previous_out is not None:
            assert step["docs_in"] == previous_out, step["step"]
        previous_out = step["docs_out"]
        assert step["cpu_s"] >= 0 and step["wall_s"] >= 0
    read = report.step("read")
    for reason in ("malformed_json", "missing_text_field", "empty_text", "binary_junk"):
        assert read["reasons"][reason] == 1, reason
    records = read_records(out)
    assert len(records) == report.data["totals"]["docs_out"] == report.step("write")["docs_out"]
    assert sum(len(r["text"].encode()) for r in records) == report.data["totals"]["bytes_out"]
    assert (out / "stage.json").is_file()
    assert json.loads((out / "stage.json").read_text())["counts"]["docs_out"] == len(records)


def test_records_keep_id_and_metadata(clean_build, inputs) -> None:
    out, _ = clean_build
    records = read_records(out)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    assert any(i.startswith("kolaw/") for i in ids) and any(i.startswith("pydoc-") for i in ids)
    for r in records:
        assert r["metadata"]["source"] == "kolaw"  # the first input names the source by default
        assert r["metadata"]["language"] in ("ko", "en")
        assert 0 <= r["metadata"]["language_score"] <= 1
    korean = next(r for r in records if r["id"].startswith("kolaw/"))
    assert korean["metadata"]["language"] == "ko" and "\r" not in korean["text"]


def test_pii_masked_everywhere(clean_build, inputs) -> None:
    out, _ = clean_build
    texts = [r["text"] for r in read_records(out)]
    assert not any(inputs["email"] in t or inputs["phone"] in t for t in texts)
    pii = [r for r in read_records(out) if r["id"] == "pii-doc"]
    if pii:  # kept by the filters: the placeholders stand where the PII was
        assert "[EMAIL]" in pii[0]["text"] and "[PHONE]" in pii[0]["text"]


def test_rejects_hold_every_removed_doc(clean_build, inputs) -> None:
    out, report = clean_build
    rejects = []
    for path in sorted((out / "rejects").rglob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            rejects.extend(json.loads(line) for line in fh)
    assert len(rejects) == report.data["totals"]["removed"]
    by_reason: dict[tuple[str, str], int] = {}
    for r in rejects:
        by_reason[(r["step"], r["reason"])] = by_reason.get((r["step"], r["reason"]), 0) + 1
    expected = {(s["step"], reason): n for s in report.steps for reason, n in s["reasons"].items()}
    assert by_reason == expected
    kept_ids = {r["id"] for r in read_records(out)}
    # the planted copy and its original: the first seen (in rank order) stays, the other names it as kept
    pair = {"exact-dup", inputs["base_id"]}
    assert len(pair & kept_ids) == 1
    (kept,) = pair & kept_ids
    (dropped,) = pair - kept_ids
    dup = next(r for r in rejects if r["id"] == dropped)
    assert (dup["step"], dup["reason"], dup["kept"]) == ("dedup", "exact_duplicate", kept)
    near = next(r for r in rejects if r["id"] == "near-dup")
    assert near["step"] == "dedup" and near["kept"] in pair


def test_two_runs_give_identical_files(clean_build, inputs, tmp_path) -> None:
    out, _ = clean_build
    again = build_corpus(inputs["paths"], tmp_path / "again", config(rejects=True), seed=3)
    assert read_records(tmp_path / "again") == read_records(out)
    first = [p.read_bytes() for p in corpus_files(out)]
    second = [p.read_bytes() for p in corpus_files(tmp_path / "again")]
    assert first == second  # gzip mtime 0: equal records, equal bytes
    timing = ("cpu_s", "task_wall_s")
    first_totals = Report.load(out / "report.json").data["totals"]
    assert {k: v for k, v in again.data["totals"].items() if k not in timing} == {
        k: v for k, v in first_totals.items() if k not in timing
    }


def test_up_to_date_build_is_skipped_and_changed_input_rebuilt(inputs, tmp_path) -> None:
    src = tmp_path / "one.jsonl"
    topics = _pydoc_topics(4)
    src.write_text("".join(json.dumps({"text": t, "id": k}) + "\n" for k, t in topics[:2]), encoding="utf-8")
    out = tmp_path / "out"
    build_corpus([src], out, config(tasks=1), seed=1)
    marker = (out / "stage.json").stat().st_mtime_ns
    build_corpus([src], out, config(tasks=1), seed=1)
    assert (out / "stage.json").stat().st_mtime_ns == marker  # nothing re-run
    src.write_text("".join(json.dumps({"text": t, "id": k}) + "\n" for k, t in topics[2:]), encoding="utf-8")
    build_corpus([src], out, config(tasks=1), seed=1)
    assert {r["id"] for r in read_records(out)} <= {k for k, _ in topics[2:]}
    build_corpus([src], out, config(tasks=1, resume=False), seed=1)
    assert {r["id"] for r in read_records(out)} <= {k for k, _ in topics[2:]}


def test_parquet_output(inputs, tmp_path) -> None:
    build_corpus(inputs["paths"][:2], tmp_path / "pq", config(format="parquet", tasks=1), seed=3)
    files = corpus_files(tmp_path / "pq")
    assert files and all(p.suffix == ".parquet" for p in files)
    records = read_records(tmp_path / "pq")
    assert records and all(r["metadata"]["language"] == "ko" for r in records)


def test_missing_step_is_skipped_with_a_message(inputs, tmp_path, monkeypatch) -> None:
    import cpt.corpus.build as build

    steps = [(k, "cpt.corpus.no_such_module", "Nope") if k == "perplexity" else (k, m, c) for k, m, c in build.STEPS]
    monkeypatch.setattr(build, "STEPS", steps)
    report = build_corpus(inputs["paths"][:1], tmp_path / "o", config(tasks=1, perplexity={"enabled": True}), seed=1)
    skipped = report.data["skipped_steps"]
    assert [s["step"] for s in skipped][-1] == "perplexity" and "no_such_module" in skipped[-1]["why"]
    assert report.data["totals"]["docs_out"] >= 1


# ----------------------------------------------------------------------------- kill and resume

_SCRIPT = """
import json, sys
from cpt.corpus.build import build_corpus
from cpt.corpus.config import CorpusConfig
args = json.loads(sys.argv[1])
build_corpus(args["inputs"], args["out"], CorpusConfig(**args["config"]), seed=3)
"""


def _run(inputs: list[str], out: Path, fault: str | None, timeout: float = 300, **cfg) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CPT_FAULT"}
    env["CPT_QUIET"] = "1"
    if fault:
        env["CPT_FAULT"] = fault
    args = {"inputs": inputs, "out": str(out), "config": {"languages": ["ko", "en"], "tasks": 3, "workers": 1, **cfg}}
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, start_new_session=True,
    )


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> Path:
    """An uninterrupted run in a subprocess, with the same settings as the killed ones."""
    out = tmp_path_factory.mktemp("reference") / "out"
    assert _run(inputs["paths"], out, None).returncode == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill-after-docs:12", "kill-in-stage:dedup", "kill-in-stage:write"])
def test_killed_build_resumes_to_the_same_records(reference, inputs, tmp_path, fault) -> None:
    out = tmp_path / "killed"
    killed = _run(inputs["paths"], out, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (out / "stage.json").exists() and not (out / "report.json").exists()
    resumed = _run(inputs["paths"], out, None)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert read_records(out) == read_records(reference)
    a, b = Report.load(out / "report.json"), Report.load(reference / "report.json")
    for key in ("docs_in", "docs_out", "bytes_in", "bytes_out", "removed"):
        assert a.data["totals"][key] == b.data["totals"][key], key
    assert [(s["step"], s["reasons"]) for s in a.steps] == [(s["step"], s["reasons"]) for s in b.steps]


@pytest.mark.slow
def test_no_resume_starts_over_after_a_kill(inputs, tmp_path) -> None:
    out = tmp_path / "o"
    # rank 0 reads 7 documents and completes; the kill comes inside rank 1
    assert _run(inputs["paths"], out, "kill-after-docs:9").returncode == -signal.SIGKILL
    stale = sorted(p.name for p in (out / ".work/logs/a/completions").glob("*"))
    assert stale == ["00000"]
    assert _run(inputs["paths"], out, None, resume=False).returncode == 0
    report = Report.load(out / "report.json")
    assert report.data["totals"]["docs_in"] == inputs["n_records"]  # every task ran again, none skipped


@pytest.mark.slow
def test_a_worker_killed_alone_fails_the_build_which_then_resumes(reference, inputs, tmp_path) -> None:
    """The OOM killer takes one pool worker: the build stops with one line instead of waiting forever."""
    out = tmp_path / "o"
    failed = _run(inputs["paths"], out, "kill-worker-after-docs:9", timeout=120, workers=2)
    assert failed.returncode != 0
    assert "was killed (SIGKILL - out of memory?)" in failed.stderr and "run the same command again" in failed.stderr
    assert not (out / "report.json").exists()
    resumed = _run(inputs["paths"], out, None, workers=2)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert read_records(out) == read_records(reference)


# ----------------------------------------------------------------------------- other executors


def test_slurm_sbatch_scripts(inputs, tmp_path, monkeypatch) -> None:
    """No sbatch here: capture what datatrove would submit, and check the scripts and dependencies."""
    import datatrove.executor.slurm as slurm
    import dill

    submitted: list[tuple[str, tuple]] = []

    def fake_launch(contents: str, job_id_retriever, *args) -> str:
        submitted.append((contents, args))
        return str(100 + len(submitted))

    monkeypatch.setattr(slurm, "launch_slurm_job", fake_launch)
    cfg = config(executor="slurm", tasks=4, workers=2, slurm={"partition": "cpu-long", "time": "02:00:00", "sbatch_args": {"account": "proj"}})
    out = tmp_path / "s"
    report = build_corpus(inputs["paths"], out, cfg, seed=3)
    assert report.data["status"] == "submitted"
    scripts = {stage: (out / ".work/logs" / stage / "launch_script.slurm").read_text() for stage in ("a", "b", "c", "finalize")}
    a = scripts["a"]
    assert a.startswith("#!/bin/bash\n")
    for line in ("#SBATCH --partition=cpu-long", "#SBATCH --time=02:00:00", "#SBATCH --array=0-3%2", "#SBATCH --account=proj", "#SBATCH --job-name=cpt-corpus-a"):
        assert line in a, line
    assert f"launch_pickled_pipeline {out / '.work/logs/a/executor.pik'}" in a
    assert "#SBATCH --array=0-0" in scripts["b"] and "#SBATCH --array=0-3%2" in scripts["c"]
    # each stage's job array waits for the previous one (merge-stats jobs sit in between)
    arrays = [(c, args) for c, args in submitted if "launch_pickled_pipeline" in c]
    assert len(arrays) == 4
    ids = {c.split("--job-name=")[1].split("\n")[0]: str(101 + submitted.index((c, args))) for c, args in arrays}
    deps = [next((a for a in args if a.startswith("--dependency=")), None) for _, args in arrays]
    assert deps[0] is None
    assert deps[1] == f"--dependency=afterok:{ids['cpt-corpus-a']}"
    assert deps[2] == f"--dependency=afterok:{ids['cpt-corpus-b']}"
    assert deps[3] == f"--dependency=afterok:{ids['cpt-corpus-c']}"
    with open(out / ".work/logs/a/executor.pik", "rb") as fh:
        executor = dill.load(fh)
    assert executor.world_size == 4 and executor.pipeline[0].key == "read"


@pytest.mark.slow
def test_ray_executor_matches_local(clean_build, inputs, tmp_path) -> None:
    ray = pytest.importorskip("ray")
    out, _ = clean_build
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        report = build_corpus(inputs["paths"], tmp_path / "r", config(executor="ray", workers=2, rejects=True), seed=3)
    finally:
        ray.shutdown()
    assert read_records(tmp_path / "r") == read_records(out)
    assert report.data["executor"] == "ray"
    assert report.data["totals"]["docs_out"] == len(read_records(out))


def test_pkg_reference_inputs_are_hashed_by_their_files(tmp_path) -> None:
    report = build_corpus(["pkg://konlpy/data/corpus/kolaw"], tmp_path / "o", config(tasks=1), seed=1)
    marker = json.loads((tmp_path / "o/stage.json").read_text())
    ((path, digest),) = marker["inputs"].items()
    assert path == str(KONLPY / "kolaw") and len(digest) == 32
    assert report.data["inputs"] == ["pkg://konlpy/data/corpus/kolaw"]
    assert read_records(tmp_path / "o")[0]["metadata"]["source"] == "kolaw"


def test_code_domain_keeps_source_code_intact(tmp_path) -> None:
    import sysconfig

    src = Path(sysconfig.get_paths()["stdlib"]) / "json"
    report = build_corpus([str(src)], tmp_path / "code", config(domain="code", tasks=1, languages=None), seed=1)
    steps = [s["step"] for s in report.steps]
    assert "code" in steps and "quality" not in steps  # the code filter judges code, not the prose heuristics
    records = {r["id"]: r["text"] for r in read_records(tmp_path / "code")}
    original = (src / "decoder.py").read_text(encoding="utf-8")
    # blank-line runs may be tidied, but every code line survives with its indentation
    kept = [line for line in records["json/decoder.py"].splitlines() if line.strip()]
    assert kept == [line.rstrip() for line in original.splitlines() if line.strip()]


def test_step_with_missing_required_argument_is_a_user_error(inputs, tmp_path) -> None:
    from cpt.errors import UserError

    with pytest.raises(UserError, match="corpus.perplexity.options"):
        build_corpus(inputs["paths"][:1], tmp_path / "p", config(tasks=1, perplexity={"enabled": True}), seed=1)
