"""Pack a clean corpus into token shards for training, with a held-out eval split.

The output folder:

    OUTPUT/train/NNNNN_{doc_shuffled,unshuffled}.ds[.index|.metadata]   training stream
    OUTPUT/eval/docs.jsonl.gz        the held-out documents, as text (for bits per byte)
    OUTPUT/eval/NNNNN_unshuffled.ds  the same documents tokenized (for per-token perplexity)
    OUTPUT/eval/index/00000.sig      dedup signatures (exact hash, MinHash, sketch) of the held-out documents
    OUTPUT/{train,eval}/meta.json, OUTPUT/meta.json, OUTPUT/stage.json

The shards are datatrove's tokenized format written by datatrove's own `DocumentTokenizer`
(uint16 tokens when the vocabulary fits, else uint32; `.ds.index` = uint64 document ends;
EOS after every document; no padding), so `DatatroveFolderDataset` and nanotron read them
as they are. Windows are cut at training time (`cpt.train.data.PackedShards`), so one pack
serves any sequence length. `meta.json` is ours: the tokenizer's hash, vocab size, EOS id,
token size and counts (docs, tokens, bytes), which datatrove's format does not record.

Input: a `cpt corpus build` output folder (jsonl.gz or parquet documents; its rejects/ and
hidden work folders are left out), any folder of jsonl[.gz|.zst] / parquet files, or such
files named directly. They are read by the corpus build's own readers (`cpt.corpus.readers`),
so a record that is not a document (empty or missing text, malformed JSON, binary junk, a
damaged file's tail) is counted under its reason in `meta.json` (`dropped`), stage.json and
the command's summary table, never silently skipped.

The run is a datatrove pipeline per split — reader -> `EvalDecontaminationFilter` ->
`DocumentTokenizer` — on a `LocalPipelineExecutor`: one task per group of input files,
`workers` processes, bounded memory (documents stream through in tokenizer batches), and
resumable: finished tasks are recorded under `OUTPUT/.datatrove/` and skipped when a killed
pack is run again, unfinished ones are redone from the start (a task rewrites its own file
names). Changing the configuration, the inputs or the tokenizer starts the pack afresh.

Held-out documents: the first N of a seeded permutation of all documents (or a fraction).
They are removed from the training stream together with every copy and near copy: a training
document is dropped when its normalized text has the same hash as a held-out one
(`eval_exact`), or when its char 5-gram Jaccard similarity with one reaches
`near_duplicate_threshold` (`eval_near_duplicate`), so eval text is never trained on. Both
checks are `cpt.corpus.dedup`'s: its normalization, signer (exact hash, MinHash, sketch) and
verifier, with LSH buckets over the held-out signatures proposing candidates.
"""

from __future__ import annotations

import contextlib
import gzip
import heapq
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.tokens.tokenizer import DocumentTokenizer
from pydantic import Field, model_validator

from cpt import faults
from cpt.config import Section  # only Section: cpt.config imports this module for the recipe's `pack` section
from cpt.corpus.dedup import DedupConfig, Signer, normalize, read_signatures, sketch_jaccard, write_signatures
from cpt.corpus.local_executor import local_executor, start_method, supervised_workers
from cpt.corpus.readers import JSONL_SUFFIXES, PARQUET_SUFFIXES, CorpusReader, InputUnit, file_kind
from cpt.errors import UserError, require_path

CORPUS_SUFFIXES = JSONL_SUFFIXES + PARQUET_SUFFIXES
CORPUS_KINDS = ("jsonl", "parquet")
INDEX = "index"  # eval/index/: the held-out documents' signature file
LSH_ROWS = 4
SKIP_DIRS = {"rejects", "removed"}  # corpus build keeps dropped documents there: never pack them
WORK = ".datatrove"
SMALL_INPUT_BYTES = 64 << 20  # without fork, compressed input below this is packed by one process (see _default_workers)
EOS_CANDIDATES = ("</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>", "<|im_end|>")


class PackConfig(Section):
    """The `pack` recipe section."""

    eval_docs: int | None = Field(default=None, ge=0, description="Hold out this many documents (the first N after a seeded shuffle) for evaluation.")
    eval_fraction: float | None = Field(default=None, ge=0, lt=1, description="Or hold out this fraction of the documents (rounded to whole documents); exclusive with eval_docs.")
    shuffle: bool = Field(default=True, description="Shuffle the document order within each shard file (seeded); training also shuffles windows.")
    tasks: int = Field(default=4, ge=1, description="Split the input files into this many datatrove tasks (capped at the number of files); each writes its own shard.")
    workers: int | None = Field(default=None, ge=1, description="Processes running tasks at once, each encoding on one thread (default: min(tasks, CPU count); without fork, 1 for inputs under 64 MB, whose tokenizer then uses every core).")
    add_bos: bool = Field(default=False, description="Put the tokenizer's BOS token before every document (EOS always follows every document).")
    batch_size: int = Field(default=1000, ge=1, description="Documents per tokenizer batch call; memory grows with it.")
    near_duplicate_threshold: float = Field(default=0.7, gt=0, le=1, description="Drop a training document whose char 5-gram Jaccard similarity with a held-out document (verified by the dedup sketch) is at least this.")
    num_perm: int = Field(default=128, ge=16, le=1024, description="MinHash signature length for the near-duplicate candidates (a multiple of 4: LSH bands of 4 slots).")
    seed: int | None = Field(default=None, ge=0, description="Seed for the eval selection and the shuffle (default: the recipe's seed).")

    @model_validator(mode="after")
    def _check(self) -> PackConfig:
        if self.eval_docs is not None and self.eval_fraction is not None:
            raise ValueError("eval_docs and eval_fraction exclude each other: give one")
        if self.num_perm % LSH_ROWS:
            raise ValueError(f"num_perm must be a multiple of {LSH_ROWS}, got {self.num_perm}")
        return self


# --------------------------------------------------------------------------- eval decontamination


def decontamination_config(cfg: PackConfig) -> DedupConfig:
    """Dedup's signer and verifier, set for finding copies of the held-out documents.

    Same shingles (char 5-grams of dedup's normalized text) and the same verified Jaccard as
    `cpt corpus build`'s near-dup pass; the LSH bands are narrower (4 rows) because the
    threshold is lower (0.7 by default: a copy at Jaccard 0.7 becomes a candidate with
    probability 1-(1-0.7^4)^32 > 0.9998 at 128 slots) and the held-out set is small, so the
    extra candidates cost little. Every candidate is verified before a document is dropped.
    """
    return DedupConfig(
        num_perm=cfg.num_perm,
        bands=cfg.num_perm // LSH_ROWS,
        rows=LSH_ROWS,
        threshold=cfg.near_duplicate_threshold,
    )


def doc_key(doc: Document) -> str:
    """A document's place in the corpus (its file and id): tells the held-out document from its copies."""
    return f"{doc.metadata.get('file', '')}#{doc.id}"


class EvalIndex:
    """The held-out documents' dedup signatures, with LSH buckets to find their copies.

    Stored as dedup's signature file (`write_signatures` / `read_signatures`: exact hash,
    MinHash signature and verification sketch per document, the document key as its id),
    memory-mapped by each task.
    """

    def __init__(self, part: Any, config: DedupConfig) -> None:
        self.part = part
        self.config = config
        self.signer = Signer(config)
        self.exact = {(int(hi), int(lo)) for hi, lo in np.asarray(part.exact).tolist()}
        self.heldout_keys = {part.doc_id(i) for i in range(part.size)}
        self.shingles = np.asarray(part.shingles)
        self.width = config.rows * 4  # bytes of one band of uint32 slots
        self.buckets: list[dict[bytes, list[int]]] = [{} for _ in range(config.bands)]
        signatures = np.asarray(part.signature)
        for i in np.flatnonzero(self.shingles > 0).tolist():  # a text too short for one shingle has exact copies only
            raw = signatures[i].tobytes()
            for b, bucket in enumerate(self.buckets):
                bucket.setdefault(raw[b * self.width : (b + 1) * self.width], []).append(i)

    @staticmethod
    def write(docs: list[Document], folder: Path, config: DedupConfig) -> Path:
        signer = Signer(config)
        return write_signatures(folder, ((signer.sign(d.text), doc_key(d)) for d in docs), config)

    @classmethod
    def load(cls, path: Path, config: DedupConfig) -> EvalIndex:
        return cls(read_signatures(path, config), config)

    def check(self, doc: Document) -> str | None:
        """Why `doc` must not be trained on (`eval_heldout`, `eval_exact`, `eval_near_duplicate`), else None."""
        norm = normalize(doc.text)
        if self.signer.exact_hash(norm) in self.exact:
            return "eval_heldout" if doc_key(doc) in self.heldout_keys else "eval_exact"
        hashes = self.signer.shingle_hashes(norm)
        if hashes.size == 0 or not self.heldout_keys:
            return None
        raw = self.signer.signature(hashes).tobytes()
        shared: dict[int, int] = {}
        for b, bucket in enumerate(self.buckets):
            for i in bucket.get(raw[b * self.width : (b + 1) * self.width], ()):
                shared[i] = shared.get(i, 0) + 1
        if not shared:
            return None
        distinct, shift, sketch = self.signer.sketch(hashes)
        threshold = self.config.threshold
        for i in sorted(shared, key=lambda i: (-shared[i], i)):  # most shared bands first: usually settles it
            other = int(self.shingles[i])
            if min(distinct, other) < threshold * max(distinct, other):
                continue  # Jaccard <= |small| / |large| < threshold
            if sketch_jaccard(sketch, shift, self.part.doc_sketch(i), int(self.part.shift[i])) >= threshold:
                return "eval_near_duplicate"
        return None


# --------------------------------------------------------------------------- pipeline steps


class EvalDecontaminationFilter(BaseFilter):
    """Drop held-out documents and their exact and near copies from the training stream.

    Reasons: `eval_heldout` (a held-out document itself), `eval_exact` (same normalized text),
    `eval_near_duplicate` (char 5-gram Jaccard, verified, >= the threshold). It also counts the
    UTF-8 bytes it forwards (`bytes`), which bits-per-byte evaluation and `meta.json` need.
    The index is loaded from disk in each task, so the step pickles small for worker processes.
    `kill_in_task` (from `CPT_FAULT=pack-kill-in-task:N`) SIGKILLs the pack's process from
    inside task N, after its first documents went to the tokenizer, as `kill -9 PID` would:
    the resume tests' deterministic crash (with worker processes, they must die with it).
    """

    name = "🧹 eval decontamination"

    def __init__(self, index_path: Path | None, config: DedupConfig | None = None, kill_in_task: int | None = None) -> None:
        super().__init__()
        self.index_path = str(index_path) if index_path else None
        self.config = config or DedupConfig()
        self.kill_in_task = kill_in_task
        self.pack_pid = os.getpid()  # the process running the pack (a worker's parent)
        self._index: EvalIndex | None = None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self._index is None and self.index_path:
            self._index = EvalIndex.load(Path(self.index_path), self.config)
        if self._index is not None and (reason := self._index.check(doc)):
            return False, reason
        self.stat_update("bytes", value=len(doc.text.encode("utf-8")))
        return True

    def run(self, data, rank: int = 0, world_size: int = 1):
        for n, doc in enumerate(super().run(data, rank, world_size)):
            if self.kill_in_task == rank and n == 1:  # mid-task, files half written
                _kill_pack(self.pack_pid)
            yield doc


def _kill_pack(pack_pid: int) -> None:
    """`kill -9` of the pack's process, from inside a task; a worker then waits to die with it."""
    os.kill(pack_pid, signal.SIGKILL)
    time.sleep(30)  # a worker that outlived its parent would go on writing: wait instead


class BosEosDocumentTokenizer(DocumentTokenizer):
    """datatrove's `DocumentTokenizer`, optionally with BOS before each document.

    Its `eos_token` option replaces the tokenizer's post-processor with `$A <EOS>`; models
    trained with a BOS at every document start (Llama, Mistral) may want `<BOS> $A <EOS>`.
    """

    def __init__(self, *args: Any, bos_token: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bos_token = bos_token

    @property
    def tokenizer(self):  # noqa: D102 - replaces datatrove's cached property
        return _configured_tokenizer(self.tokenizer_name_or_path, self.bos_token, self.eos_token)


_TOKENIZERS: dict[tuple, Any] = {}


def _load_tokenizer(path: str):
    """One parsed tokenizer per process and file version, shared by every task a process runs.

    datatrove deep-copies the pipeline for every task, so its cached property would parse
    tokenizer.json (megabytes for a 50k+ vocabulary) and start from a cold BPE cache once per
    task; size and mtime are in the key, so an edited file is loaded anew.
    """
    from datatrove.utils.tokenization import load_tokenizer

    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _TOKENIZERS:
        _TOKENIZERS.clear()  # a process packs with one tokenizer at a time
        _TOKENIZERS[key] = load_tokenizer(str(path))
    return _TOKENIZERS[key]


def _configured_tokenizer(path: str, bos_token: str | None, eos_token: str):
    """The shared tokenizer with `[BOS] $A EOS` as its post-processor (ids only need the vocabulary)."""
    from tokenizers.processors import TemplateProcessing

    tok = _load_tokenizer(path)
    eos = tok.token_to_id(eos_token)
    if bos_token:
        bos = tok.token_to_id(bos_token)
        tok.post_processor = TemplateProcessing(single="<BOS> $A <EOS>", special_tokens=[("<BOS>", bos), ("<EOS>", eos)], pair=None)
    else:
        tok.post_processor = TemplateProcessing(single="$A <EOS>", special_tokens=[("<EOS>", eos)], pair=None)
    return tok


# --------------------------------------------------------------------------- tokenizer folder


def tokenizer_info(tokenizer_dir: Path) -> dict[str, Any]:
    """tokenizer.json path, vocab size, EOS/BOS tokens and ids, token size, content hash."""
    from cpt.stage import hash_path

    tokenizer_dir = Path(tokenizer_dir)
    path = tokenizer_dir / "tokenizer.json" if tokenizer_dir.is_dir() else tokenizer_dir
    if not path.is_file():
        raise UserError(f"{tokenizer_dir}: no tokenizer.json (pass a Hugging Face tokenizer folder, e.g. the output of `cpt tokenizer extend`)")
    try:
        tok = _load_tokenizer(str(path))
    except Exception as exc:  # the tokenizers library raises a bare Exception on a bad file
        raise UserError(f"{path}: not a tokenizers file ({exc})") from None
    config: dict[str, Any] = {}
    cfg_path = path.parent / "tokenizer_config.json"
    if cfg_path.is_file():
        config = json.loads(cfg_path.read_text(encoding="utf-8"))

    def token_name(value: Any) -> str | None:
        return value.get("content") if isinstance(value, dict) else value

    eos = token_name(config.get("eos_token"))
    if eos is None or tok.token_to_id(eos) is None:
        eos = next((t for t in EOS_CANDIDATES if tok.token_to_id(t) is not None), None)
    if eos is None:
        raise UserError(f"{tokenizer_dir}: no EOS token found (set eos_token in tokenizer_config.json)")
    bos = token_name(config.get("bos_token"))
    vocab = tok.get_vocab_size(with_added_tokens=True)
    return {
        "path": path,
        "vocab_size": vocab,
        "eos_token": eos,
        "eos_id": tok.token_to_id(eos),
        "bos_token": bos if bos and tok.token_to_id(bos) is not None else None,
        "bos_id": tok.token_to_id(bos) if bos else None,
        "token_size": 4 if vocab > np.iinfo(np.uint16).max + 1 else 2,  # datatrove's rule
        "hash": hash_path(path),
    }


# --------------------------------------------------------------------------- inputs


def corpus_files(inputs: list[Path]) -> tuple[Path, list[str]]:
    """A common root and the corpus files under it (sorted), leaving out rejects/ and hidden folders.

    Folders (a `cpt corpus build` output, or any tree) give their jsonl[.gz|.zst] and parquet
    files; a file named directly must be one of those kinds too.
    """
    files: list[Path] = []
    for item in inputs:
        item = Path(item)
        require_path(item, "corpus")
        if item.is_file():
            if file_kind(item.name) not in CORPUS_KINDS:
                raise UserError(f"{item}: not a corpus file ({', '.join(CORPUS_SUFFIXES)}); pack reads `cpt corpus build` output")
            files.append(item.resolve())
            continue
        for p in sorted(item.rglob("*")):
            rel = p.relative_to(item).parts
            if p.is_file() and file_kind(p.name) in CORPUS_KINDS and not any(part in SKIP_DIRS or part.startswith(".") for part in rel[:-1]):
                files.append(p.resolve())
    files = sorted(set(files))
    if not files:
        raise UserError(f"no corpus files ({', '.join(CORPUS_SUFFIXES)}) in {', '.join(map(str, inputs))} (run `cpt corpus build` first)")
    root = Path(os.path.commonpath([str(f.parent) for f in files]))
    return root, [str(f.relative_to(root)) for f in files]


def input_units(root: Path, rel_files: list[str]) -> list[InputUnit]:
    """The files as the corpus readers' units: task N reads units N, N+tasks, ... in this order."""
    return [InputUnit(file_kind(rel), str(root), rel, "") for rel in rel_files]


def _reader(units: list[InputUnit]) -> CorpusReader:
    """The corpus build's checked readers: every record that is not a document is counted by reason."""
    return CorpusReader(units)


def _iter_docs(units: list[InputUnit]) -> Iterator[Document]:
    """Every document in reader order (the same order the training tasks see per file)."""
    yield from _reader(units).run(None, rank=0, world_size=1)


def selection_key(seed: int, ordinal: int) -> int:
    """The document's place in a seeded shuffle: sorting documents by this key is the shuffle."""
    x = (seed * 0x9E3779B97F4A7C15 + ordinal + 1) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def select_eval(units: list[InputUnit], cfg: PackConfig, seed: int) -> list[Document]:
    """The held-out documents: the first N after a seeded shuffle of all documents, in corpus order.

    The shuffle orders documents by a seeded 64-bit key (`selection_key`), so the first N are
    the N smallest keys: one streaming read keeping a heap of N documents (a fraction needs a
    counting read first). Memory holds the held-out documents, never the corpus.
    """
    if not cfg.eval_docs and not cfg.eval_fraction:
        return []
    n_eval = cfg.eval_docs
    if n_eval is None:
        n_eval = int(round(sum(1 for _ in _iter_docs(units)) * cfg.eval_fraction))
        if n_eval == 0:
            return []
    heap: list[tuple[int, int, Document]] = []  # (-key, ordinal, doc): the largest kept key on top
    total = 0
    for ordinal, doc in enumerate(_iter_docs(units)):
        total += 1
        item = (-selection_key(seed, ordinal), ordinal, doc)
        if len(heap) < n_eval:
            heapq.heappush(heap, item)
        elif item[0] > heap[0][0]:
            heapq.heapreplace(heap, item)
    if n_eval >= total:
        raise UserError(f"pack: {n_eval} eval documents requested but the corpus has only {total}; lower eval_docs/eval_fraction")
    return [doc for _, _, doc in sorted(heap, key=lambda item: item[1])]


def write_jsonl_gz(path: Path, docs: list[Document]) -> None:
    """Write documents as jsonl.gz with mtime 0, so equal documents give byte-equal files."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        for d in docs:
            gz.write((json.dumps({"text": d.text, "id": d.id, "metadata": d.metadata}, ensure_ascii=False) + "\n").encode("utf-8"))
    os.replace(tmp, path)


# --------------------------------------------------------------------------- driver


def _run_split(
    name: str,
    units: list[InputUnit],
    out: Path,
    work: Path,
    tok: dict[str, Any],
    cfg: PackConfig,
    seed: int,
    tasks: int,
    workers: int,
    index_path: Path | None,
    shuffle: bool,
    kill_in_task: int | None = None,
) -> None:
    pipeline = [
        _reader(units),
        EvalDecontaminationFilter(index_path, decontamination_config(cfg), kill_in_task=kill_in_task),
        BosEosDocumentTokenizer(
            output_folder=str(out),
            tokenizer_name_or_path=str(tok["path"]),
            eos_token=tok["eos_token"],
            bos_token=tok["bos_token"] if cfg.add_bos else None,
            batch_size=cfg.batch_size,
            seed=seed,
            shuffle_documents=shuffle,
        ),
    ]
    executor = local_executor(pipeline, tasks=tasks, workers=workers, logging_dir=str(work / name))
    with _datatrove_console(work / name / "console.log"), _one_thread_per_worker(workers > 1), supervised_workers():
        executor.run()


@contextlib.contextmanager
def _one_thread_per_worker(on: bool):
    """Worker processes started inside encode on one thread each (TOKENIZERS_PARALLELISM=false).

    With one process per core, the tokenizer's own thread pool would put `workers x cores`
    threads on the cores; one thread each keeps every core busy without that contention.
    Workers inherit the variable when they start; this process gets its value back after.
    """
    if not on:
        yield
        return
    before = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = before


@contextlib.contextmanager
def _datatrove_console(path: Path):
    """Send datatrove's console logging to a file (CPT_DATATROVE_LOGS=1 keeps it on stderr).

    datatrove prints every task's log lines and stats to stderr; the command ends with one
    summary table instead, and the lines stay in OUTPUT/.datatrove/ (with its per-task logs).
    """
    if os.environ.get("CPT_DATATROVE_LOGS"):
        yield
        return
    from loguru import logger

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as log, contextlib.redirect_stderr(log):
        logger.remove()  # datatrove's default sink holds the real stderr; re-add it on the file
        logger.add(log, level="INFO")
        try:
            yield
        finally:
            logger.remove()
            logger.add(sys.stderr)


def _default_workers(root: Path, rel_files: list[str]) -> int:
    """One process per CPU, each encoding on one thread; without fork, one process for small inputs.

    One single-threaded tokenizer per core overlaps one task's reading, eval check and writing
    with another's encoding; one process with the tokenizer's thread pool leaves the cores idle
    while Python reads. A forkserver worker costs seconds to start (it imports datatrove,
    tokenizers and numpy and parses the tokenizer), which only large inputs repay.
    """
    if start_method() == "fork":
        return os.cpu_count() or 1
    size = sum((root / f).stat().st_size for f in rel_files)
    return 1 if size < SMALL_INPUT_BYTES else os.cpu_count() or 1


def _split_counts(folder: Path, work: Path) -> dict[str, Any]:
    """docs and tokens from the shards' own indexes; bytes, removals and bad records from the tasks' stats.

    `removed`: eval decontamination by reason. `dropped`: records the reader could not turn into
    a document (`empty_text`, `missing_text_field`, `malformed_json`, ...), `repaired`: records
    it fixed on the way in. With the packed documents they account for every input record.
    """
    docs = tokens = 0
    files = sorted(folder.glob("*.ds"))
    for f in files:
        index = f.with_name(f.name + ".index")
        ends = np.fromfile(index, dtype="<u8") if index.is_file() else np.zeros(0, "<u8")
        docs += len(ends)
        tokens += int(ends[-1]) if len(ends) else 0
    stats: dict[str, dict[str, int]] = {"read": {}, "decontaminate": {}}
    steps = {f": {CorpusReader.name}": "read", f": {EvalDecontaminationFilter.name}": "decontaminate"}
    for sf in sorted((work / "stats").glob("*.json")):
        for step in json.loads(sf.read_text(encoding="utf-8")):
            which = next((v for k, v in steps.items() if step.get("name", "").endswith(k)), None)
            if which is None:
                continue
            for key, value in step.get("stats", {}).items():
                total = value.get("total", value) if isinstance(value, dict) else value
                if isinstance(total, (int, float)):
                    stats[which][key] = stats[which].get(key, 0) + int(total)

    def by_reason(step: str, prefix: str) -> dict[str, int]:
        return {k.removeprefix(prefix): v for k, v in sorted(stats[step].items()) if k.startswith(prefix)}

    return {
        "files": len(files),
        "docs": docs,
        "tokens": tokens,
        "bytes": stats["decontaminate"].get("bytes", 0),
        "removed": by_reason("decontaminate", "dropped_"),
        "dropped": by_reason("read", "dropped_"),
        "repaired": by_reason("read", "repaired_"),
    }


def pack_corpus(
    corpus: list[Path] | Path,
    tokenizer: Path,
    output: Path,
    config: PackConfig | None = None,
    *,
    seed: int = 1234,
) -> dict[str, Any]:
    """Tokenize a clean corpus into training and eval shards; returns the meta.json dict.

    Safe to run again: a finished pack with the same config, inputs and tokenizer is left as
    it is; a killed one continues with its unfinished tasks.
    """
    from cpt.config import config_hash, to_plain
    from cpt.stage import read_marker, write_marker

    cfg = config or PackConfig()
    seed = cfg.seed if cfg.seed is not None else seed
    kill = faults.get("pack-kill-in-task")  # a malformed CPT_FAULT fails here, before any work
    inputs = [Path(corpus)] if isinstance(corpus, (str, Path)) else [Path(c) for c in corpus]
    output = Path(output)
    tok = tokenizer_info(Path(tokenizer))
    root, rel_files = corpus_files(inputs)
    plain = to_plain(cfg) | {"seed": seed}
    identity = {"config": plain, "files": rel_files, "root": str(root), "tokenizer_hash": tok["hash"]}
    marker_inputs = [*inputs, tok["path"]]
    marker = read_marker(output)
    if marker and marker.get("config", {}).get("identity") == config_hash(identity) and (output / "meta.json").is_file():
        return json.loads((output / "meta.json").read_text(encoding="utf-8"))

    work = output / WORK
    state_file = work / "identity.json"
    if state_file.is_file() and json.loads(state_file.read_text(encoding="utf-8")) != identity:
        _clear(output)  # another config or other inputs: finished tasks of the old pack do not count
    work.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(identity, indent=1, ensure_ascii=False), encoding="utf-8")
    (output / "stage.json").unlink(missing_ok=True)
    units = input_units(root, rel_files)

    t0 = time.perf_counter()
    eval_dir = output / "eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    with _datatrove_console(work / "select" / "console.log"):
        heldout = select_eval(units, cfg, seed)
    t_select = time.perf_counter() - t0
    index_path = None
    if heldout:
        write_jsonl_gz(eval_dir / "docs.jsonl.gz", heldout)
        index_path = EvalIndex.write(heldout, eval_dir / INDEX, decontamination_config(cfg))
    tasks = max(1, min(cfg.tasks, len(rel_files)))
    workers = max(1, min(cfg.workers or _default_workers(root, rel_files), tasks))
    t1 = time.perf_counter()
    _run_split("train", units, output / "train", work, tok, cfg, seed, tasks, workers, index_path, cfg.shuffle, kill.arg if kill else None)
    _drop_empty_shards(output / "train")
    t_train = time.perf_counter() - t1
    if heldout:
        eval_units = input_units(eval_dir, ["docs.jsonl.gz"])
        _run_split("eval", eval_units, eval_dir, work, tok, cfg, seed, 1, 1, None, False)

    common = {
        "format": "datatrove-tokenized",
        "tokenizer": str(tok["path"]),
        "tokenizer_hash": tok["hash"],
        "vocab_size": tok["vocab_size"],
        "eos_id": tok["eos_id"],
        "bos_id": tok["bos_id"] if cfg.add_bos else None,
        "token_size": tok["token_size"],
        "dtype": "uint16" if tok["token_size"] == 2 else "uint32",
        "seed": seed,
        "shuffle": cfg.shuffle,
    }
    splits = {"train": _split_counts(output / "train", work / "train")}
    splits["eval"] = _split_counts(eval_dir, work / "eval") if heldout else {"files": 0, "docs": 0, "tokens": 0, "bytes": 0, "removed": {}, "dropped": {}, "repaired": {}}
    if heldout:
        splits["eval"]["bytes"] = sum(len(d.text.encode("utf-8")) for d in heldout)
    for name, counts in splits.items():
        folder = output / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.json").write_text(json.dumps(common | {"split": name, "counts": counts}, indent=2), encoding="utf-8")
    meta = common | {"counts": {"input_files": len(rel_files), "heldout_docs": len(heldout)}, "splits": splits}
    (output / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    timings = {"select_eval_s": round(t_select, 3), "train_s": round(t_train, 3), "total_s": round(time.perf_counter() - t0, 3)}
    flat_counts = {f"{split}_{k}": v for split, c in splits.items() for k, v in c.items() if not isinstance(v, dict)}
    for kind in ("removed", "dropped", "repaired"):
        flat_counts |= {f"{kind}_{k}": v for k, v in splits["train"][kind].items()}
    write_marker(output, "pack", {"pack": plain, "identity": config_hash(identity)}, marker_inputs, flat_counts, timings)
    return meta


def _drop_empty_shards(folder: Path) -> None:
    """A task whose documents were all held out or removed leaves an empty shard: not a shard."""
    for ds in folder.glob("*.ds"):
        if ds.stat().st_size == 0:
            for f in (ds, ds.with_name(ds.name + ".index"), ds.with_name(ds.name + ".metadata")):
                f.unlink(missing_ok=True)


def _clear(output: Path) -> None:
    """Remove what an earlier pack wrote (only our own names: the folder may hold other things)."""
    for name in ("train", "eval", WORK):
        shutil.rmtree(output / name, ignore_errors=True)
    for name in ("meta.json", "stage.json"):
        (output / name).unlink(missing_ok=True)
