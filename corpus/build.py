"""`cpt corpus build`: compose the corpus steps into datatrove stages and run them.

    stage A  (N tasks)  read -> clean -> mojibake -> anonymize -> length -> language -> quality
                        -> [code] -> [perplexity] -> dedup signatures -> spool .work/a/{rank}.jsonl.gz
    stage B  (1 task)   find duplicates over every rank's signatures -> .work/remove/{rank}.remove
    stage C  (N tasks)  re-read each rank's spool in order -> drop duplicates -> documents/{rank}
    finalize            report.json (+ the printed table) and stage.json

Every stage runs on a datatrove executor (local processes, Slurm or Ray), which records a
completion marker per task under `.work/logs/<stage>/completions/`: a killed build re-run
with the same arguments skips finished tasks and re-does the rest, and because every task
rewrites its own files from scratch the records come out the same, in the same order.
`resume=False` deletes `.work/` first (an old logging dir would otherwise make datatrove
skip tasks of a different run - see FINDINGS.md), and so does a change of settings.

Each step is wrapped in `Metered`, which counts the documents and UTF-8 bytes it emits
and the wall/CPU time spent inside it, into the step's own datatrove stats; the report
is built from the per-task stats files, so it stays right across resumed runs.

    cpt corpus build --input pkg://konlpy/data/corpus/kolaw --output runs/kolaw --lang ko --rejects
"""

from __future__ import annotations

import contextlib
import gzip
import importlib
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers.base import BaseReader
from datatrove.pipeline.writers.disk_base import DiskWriter

from cpt import ui
from cpt.corpus import faults
from cpt.corpus.config import CorpusConfig
from cpt.corpus.local_executor import local_executor, supervised_workers
from cpt.corpus.readers import PREVIEW_CHARS, CorpusReader, discover_inputs
from cpt.corpus.report import Report, build_report
from cpt.errors import UserError

WORK = ".work"
DOCS = "documents"
REJECTS = "rejects"
PLAN = "plan.json"
FINGERPRINT = "build.json"

# (key = the CorpusConfig section with its switch and options, module, class), in pipeline order
STEPS: list[tuple[str, str, str]] = [
    ("clean", "cpt.corpus.clean", "TextCleaner"),
    ("mojibake", "cpt.corpus.clean", "MojibakeFilter"),
    ("anonymize", "cpt.corpus.pii", "PIIAnonymizer"),
    ("length", "cpt.corpus.quality", "LengthFilter"),
    ("language", "cpt.corpus.langid", "LanguageFilter"),
    ("quality", "cpt.corpus.quality", "QualityFilter"),
    ("code", "cpt.corpus.code_filter", "CodeFilter"),
    ("perplexity", "cpt.corpus.perplexity", "PerplexityFilter"),
]


def _json_bytes(record: dict) -> bytes:
    import orjson
    from datatrove.pipeline.writers.jsonl import _json_default

    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE, default=_json_default)


def document_record(doc: Document) -> dict:
    """The on-disk form of a document: text, id and metadata (media are not part of a text corpus)."""
    return {"text": doc.text, "id": doc.id, "metadata": doc.metadata}


class GzipJsonlWriter(DiskWriter):
    """JSON Lines in gzip with mtime 0 and no file name in the header: equal records, equal bytes.

    datatrove's JsonlWriter compresses through fsspec, which stamps the current time into
    every gzip header, so two identical runs never produce identical files.
    """

    default_output_filename = "${rank}.jsonl.gz"
    name = "🐿 jsonl.gz (deterministic)"
    # no `_requires_dependencies`: orjson is a dependency of cpt itself (see LanguageFilter)

    def __init__(
        self,
        output_folder,
        output_filename: str | None = None,
        compresslevel: int = 6,
        adapter: Callable | None = None,
    ):
        super().__init__(output_folder, output_filename, compression=None, adapter=adapter, mode="wb")
        self.compresslevel = compresslevel
        self._streams: dict[str, tuple[gzip.GzipFile, io.BufferedWriter]] = {}

    def _default_adapter(self, document: Document) -> dict:
        return document_record(document)

    def _write(self, document: dict, file_handler, filename: str) -> None:
        stream = self._streams.get(filename)
        if stream is None:
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=file_handler, mtime=0, compresslevel=self.compresslevel)
            stream = self._streams[filename] = (gz, io.BufferedWriter(gz, 1 << 20))
        stream[1].write(_json_bytes(document))

    def close(self) -> None:
        for gz, buffered in self._streams.values():
            buffered.flush()
            gz.close()
        self._streams.clear()
        super().close()


class RejectWriter(GzipJsonlWriter):
    """`rejects/<step>/<rank>.jsonl.gz`: one line per removed document - id, step, reason (and the kept twin)."""

    name = "🗑 rejects"

    def __init__(self, output_folder, step: str):
        super().__init__(output_folder, output_filename=f"{step}/${{rank}}.jsonl.gz")
        self.step = step

    def _default_adapter(self, document: Document) -> dict:
        meta = document.metadata
        record = {"id": document.id, "step": self.step, "reason": meta.get("filter_reason", "unspecified")}
        for key in ("duplicate_of", "kept_id", "kept", "dup_of"):
            if key in meta:
                record["kept"] = meta[key]
                break
        record["preview"] = document.text[:PREVIEW_CHARS]
        return record


class Metered(PipelineStep):
    """Runs a step and adds to ITS stats: documents and UTF-8 bytes out, and cumulative wall/CPU time.

    Time is cumulative (this step plus everything upstream, as pulled through it), so a
    step's own time is the difference with the step before it - exact for a linear
    pipeline, with no per-step clock juggling. The wrapper shares the inner step's
    `stats`, so datatrove's per-task stats file holds both under the step's name.
    """

    def __init__(self, step: PipelineStep, key: str):
        super().__init__()
        self.step = step
        self.key = key
        self.stats = step.stats
        self.name, self.type = step.name, step.type

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        perf, cpu = time.perf_counter, time.process_time
        wall_total = cpu_total = 0.0
        n_docs = n_bytes = 0
        it = iter(self.step.run(data, rank, world_size))
        try:
            while True:
                w0, c0 = perf(), cpu()
                try:
                    doc = next(it)
                except StopIteration:
                    break
                finally:
                    wall_total += perf() - w0
                    cpu_total += cpu() - c0
                n_docs += 1
                n_bytes += len(doc.text.encode("utf-8"))
                yield doc
        finally:
            self.stat_update("docs_out", value=n_docs, unit="task")
            self.stat_update("bytes_out", value=n_bytes, unit="task")
            self.stat_update("cum_wall_s", value=wall_total, unit="task")
            self.stat_update("cum_cpu_s", value=cpu_total, unit="task")


class SpoolReader(BaseReader):
    """Stage C's reader: exactly `{rank:05d}.jsonl.gz` of stage A, in its order (no file re-sharding).

    datatrove's JsonlReader shards the file list by position; a rank that wrote nothing
    has no file, which would shift every later rank onto another rank's file.
    """

    name = "spool reader"
    type = "📖 - READER"

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import orjson

        if data:
            yield from data
        path = Path(self.folder) / f"{rank:05d}.jsonl.gz"
        if not path.exists():
            return
        with gzip.open(path, "rb") as fh:
            for line in fh:
                rec = orjson.loads(line)
                yield Document(text=rec["text"], id=rec["id"], metadata=rec.get("metadata") or {})


class FindDuplicates(PipelineStep):
    """Stage B as a datatrove step (one task): cluster every rank's signatures, write the remove lists."""

    name = "find duplicates"
    type = "🫂 - DEDUP"

    def __init__(self, sig_folder: str, world_size: int, config: Any, output_folder: str):
        super().__init__()
        self.sig_folder, self.sig_world_size = sig_folder, world_size
        self.config, self.output_folder = config, output_folder

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from cpt.corpus.dedup import find_duplicates

        if data:
            yield from data
        t0, c0 = time.perf_counter(), time.process_time()
        counts = find_duplicates(self.sig_folder, self.sig_world_size, self.config, self.output_folder)
        for key, value in (counts or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.stat_update(str(key), value=value, unit="task")
        self.stat_update("cum_wall_s", value=time.perf_counter() - t0, unit="task")
        self.stat_update("cum_cpu_s", value=time.process_time() - c0, unit="task")
        faults.in_stage("dedup")


class Finalize(PipelineStep):
    """The last stage (one task): write report.json and stage.json from the per-task stats.

    A step rather than a plain call so that Slurm and Ray runs, whose driver returns once
    the jobs are queued, still end with a report and a marker.
    """

    name = "finalize"
    type = "🏁 - REPORT"

    def __init__(self, output: str, inputs: list[str], config: dict, seed: int, started: float):
        super().__init__()
        self.output, self.inputs, self.config, self.seed, self.started = output, inputs, config, seed, started

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        finalize(Path(self.output), self.inputs, self.config, self.seed, self.started)


def finalize(output: Path, inputs: list[str], config: dict, seed: int, started: float) -> Report:
    from cpt.stage import write_marker

    report = build_report(output, inputs=inputs, config=config, seed=seed, wall_s=time.time() - started)
    report.save(output / "report.json")
    totals = report.data["totals"]
    write_marker(
        output,
        "corpus",
        {"corpus": config, "seed": seed, "inputs": inputs},
        local_paths(inputs),
        counts={k: totals[k] for k in ("docs_in", "docs_out", "bytes_in", "bytes_out")},
        timings={"wall_s": report.data["wall_s"], "cpu_s": totals["cpu_s"]},
    )
    return report


def local_paths(inputs: list[str]) -> list[Path]:
    """The files and folders behind the inputs (pkg:// and asset:// resolved; hub names have none), for content hashes."""
    from cpt import paths

    return [paths.resolve(i) for i in inputs if not str(i).startswith("hf://")]


# --------------------------------------------------------------------------- the pipeline


class SkippedStep(Exception):
    """A step that could not be built (missing module or broken constructor): run without it."""


def _load_step(key: str, module: str, cls: str, options: dict, extra: dict) -> PipelineStep:
    try:
        step_cls = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise SkippedStep(f"{module}.{cls} is not available ({type(exc).__name__}: {exc})") from None
    kwargs = {**extra, **options}
    if not issubclass(step_cls, BaseFilter):
        kwargs.pop("exclusion_writer", None)
    try:
        return step_cls(**kwargs)
    except UserError:
        raise
    except TypeError as exc:
        if options or "required" in str(exc):  # a wrong or a missing argument: the user's to fix
            raise UserError(f"corpus.{key}.options: {exc} (check the argument names of {cls})") from None
        raise SkippedStep(f"{module}.{cls} could not be built: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a broken step must not take the whole build down
        raise SkippedStep(f"{module}.{cls} could not be built: {type(exc).__name__}: {exc}") from None


def _step_extra(key: str, config: CorpusConfig, seed: int) -> dict:
    if key == "language":
        extra = {"languages": config.languages, "seed": seed}
        if config.domain == "code":  # source code has no natural language to judge: tag it, keep it
            extra["label_only"] = True
        return extra
    if key == "clean" and config.domain == "code":  # markup-looking strings and alignment spaces are code
        return {"strip_html": False, "collapse_spaces": False}
    return {}


def _enabled(key: str, config: CorpusConfig) -> bool:
    if key == "code":
        return config.code.enabled or config.domain == "code"
    if key == "quality":  # prose heuristics drop source code; the code filter judges it instead
        return config.quality.enabled and config.domain != "code"
    if key == "mojibake":
        return config.mojibake.enabled and config.clean.enabled
    return getattr(config, key).enabled


def plan_stages(
    units, output: Path, config: CorpusConfig, seed: int
) -> tuple[list[tuple[str, list[PipelineStep], int]], list[dict[str, str]]]:
    """The stages as (name, pipeline, tasks), and the steps skipped (with why)."""
    work = output / WORK
    rejects = output / REJECTS if config.rejects else None
    skipped: list[dict[str, str]] = []

    def reject_writer(step: str) -> RejectWriter | None:
        return RejectWriter(str(rejects), step) if rejects else None

    reader = CorpusReader(
        units,
        text_key=config.reader.text_field,
        id_key=config.reader.id_field,
        split_paragraphs=config.reader.split_paragraphs,
        max_doc_bytes=config.reader.max_doc_bytes,
        oversize=config.reader.oversize,
        max_junk_ratio=config.reader.max_junk_ratio,
        exclusion_writer=reject_writer("read"),
        default_metadata={"source": config.source} if config.source else None,
    )
    stage_a: list[PipelineStep] = [Metered(reader, "read"), faults.FaultPoint("read")]
    for key, module, cls in STEPS:
        if not _enabled(key, config):
            continue
        section = getattr(config, key)
        extra = {**_step_extra(key, config, seed), "exclusion_writer": reject_writer(key)}
        try:
            stage_a.append(Metered(_load_step(key, module, cls, dict(section.options), extra), key))
        except SkippedStep as exc:
            skipped.append({"step": key, "why": str(exc)})
            ui.warn(f"corpus build: step {key!r} skipped - {exc}")

    dedup_cfg = None
    if config.dedup.enabled:
        try:
            dedup = importlib.import_module("cpt.corpus.dedup")
            dedup_cfg = dedup.DedupConfig(**config.dedup.dedup_config())
            signatures = dedup.DedupSignatures(str(work / "sigs"), dedup_cfg)
            dedup_filter = dedup.DedupFilter(str(work / "remove"), exclusion_writer=reject_writer("dedup"))
        except Exception as exc:  # noqa: BLE001 - missing or broken dedup: build without it, say so
            dedup_cfg = None
            skipped.append({"step": "dedup", "why": f"cpt.corpus.dedup is not usable ({type(exc).__name__}: {exc})"})
            ui.warn(f"corpus build: step 'dedup' skipped - {skipped[-1]['why']}")
    if dedup_cfg is not None:
        stage_a.append(Metered(signatures, "dedup_signatures"))
    stage_a.append(Metered(GzipJsonlWriter(str(work / "a"), compresslevel=1), "spool"))

    stages: list[tuple[str, list[PipelineStep], int]] = [("a", stage_a, config.tasks)]
    stage_c: list[PipelineStep] = [Metered(SpoolReader(str(work / "a")), "spool_read"), faults.FaultPoint("write")]
    if dedup_cfg is not None:
        stages.append(("b", [FindDuplicates(str(work / "sigs"), config.tasks, dedup_cfg, str(work / "remove"))], 1))
        stage_c.append(Metered(dedup_filter, "dedup"))
    stage_c.append(Metered(_final_writer(output, config), "write"))
    stages.append(("c", stage_c, config.tasks))
    return stages, skipped


def _final_writer(output: Path, config: CorpusConfig) -> DiskWriter:
    if config.format == "parquet":
        import pyarrow as pa
        from datatrove.pipeline.writers.parquet import ParquetWriter

        def adapter(_writer, doc: Document) -> dict:  # metadata differs per input: keep it as one JSON column
            return {"text": doc.text, "id": doc.id, "metadata": json.dumps(doc.metadata, ensure_ascii=False, sort_keys=True, default=str)}

        schema = pa.schema([("text", pa.string()), ("id", pa.string()), ("metadata", pa.string())])
        return ParquetWriter(str(output / DOCS), adapter=adapter, schema=schema, use_content_defined_chunking=False)
    return GzipJsonlWriter(str(output / DOCS))


def _plan_keys(pipeline: list[PipelineStep]) -> list[str | None]:
    """Per pipeline position, the report key of the step (None for helpers): aligns with datatrove's stats list."""
    return [step.key if isinstance(step, Metered) else ("dedup_find" if isinstance(step, FindDuplicates) else None) for step in pipeline]


def _executor(config: CorpusConfig, stage: str, pipeline: list[PipelineStep], tasks: int, logs: Path, depends=None):
    if config.executor == "local":
        return local_executor(pipeline, tasks=tasks, workers=min(config.workers, tasks), logging_dir=str(logs))
    if config.executor == "slurm":
        from datatrove.executor.slurm import SlurmPipelineExecutor

        s = config.slurm
        venv = s.venv_path or (str(Path(sys.prefix) / "bin" / "activate") if (Path(sys.prefix) / "bin" / "activate").exists() else None)
        return SlurmPipelineExecutor(
            pipeline,
            tasks=tasks,
            workers=min(config.workers, tasks),
            time=s.time,
            partition=s.partition,
            cpus_per_task=s.cpus_per_task,
            mem_per_cpu_gb=s.mem_per_cpu_gb,
            job_name=f"{s.job_name}-{stage}",
            venv_path=venv,
            sbatch_args=dict(s.sbatch_args) or None,
            logging_dir=str(logs),
            skip_completed=True,
            depends=depends,
        )
    from datatrove.executor.ray import RayPipelineExecutor

    return RayPipelineExecutor(
        pipeline,
        tasks=tasks,
        workers=min(config.workers, tasks),
        logging_dir=str(logs),
        skip_completed=True,
        depends=depends,
        cpus_per_task=config.ray.cpus_per_task,
        mem_per_cpu_gb=config.ray.mem_per_cpu_gb,
    )


def _prepare_output(output: Path, fingerprint: dict, resume: bool) -> None:
    """Start over unless resuming the same build: clear our folders (never anything else of the user's)."""
    work = output / WORK
    previous = None
    try:
        previous = json.loads((work / FINGERPRINT).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    from cpt.stage import MARKER

    finished = (output / MARKER).exists()  # a finished build that is not up to date is redone whole
    if resume and previous == fingerprint and not finished:
        return
    if resume and previous is not None:
        ui.warn(f"{output}: settings or inputs changed since the unfinished build there; starting it over")
    from cpt.stage import clear_marker

    clear_marker(output)
    for name in (WORK, DOCS, REJECTS):
        shutil.rmtree(output / name, ignore_errors=True)
    (output / "report.json").unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    (work / FINGERPRINT).write_text(json.dumps(fingerprint, indent=2, sort_keys=True), encoding="utf-8")


def build_corpus(inputs: list[str | Path], output: str | Path, config: CorpusConfig, seed: int = 1234) -> Report:
    """Build a clean corpus from `inputs` into `output`; returns the report (also in output/report.json).

    Called by `cpt corpus build` and, once per recipe source, by `cpt run`. Inputs are
    checked before any work starts (missing or unreadable: one-line `UserError`).
    """
    from cpt.stage import is_up_to_date

    started = time.time()
    faults.arm()
    output = Path(output)
    inputs = [str(i) for i in inputs]
    if config.source is None:
        config = config.model_copy(update={"source": Path(inputs[0]).name.split(".")[0] if inputs else None})
    discovery = discover_inputs(inputs, parts=config.tasks)
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output} is a file; give a folder")
    plain_config = config.pipeline_fingerprint()
    fingerprint = {"config": plain_config, "inputs": inputs, "seed": seed, "files": _file_states(discovery.units)}
    marker_config = {"corpus": plain_config, "seed": seed, "inputs": inputs}
    if config.resume and (output / "report.json").exists() and is_up_to_date(output, marker_config, local_paths(inputs)):
        ui.info(f"{output}: up to date (stage.json matches these settings and inputs); nothing to do")
        return Report.load(output / "report.json")

    _seed(seed, config)
    if os.environ.get("CPT_DATATROVE_LOGS", "") in ("", "0"):
        os.environ[QUIET_ENV] = "1"
        quiet_datatrove_console()
    output.mkdir(parents=True, exist_ok=True)
    _prepare_output(output, fingerprint, config.resume)
    work = output / WORK
    stages, skipped = plan_stages(discovery.units, output, config, seed)
    plan = {
        "stages": {name: {"keys": _plan_keys(pipe), "tasks": tasks} for name, pipe, tasks in stages},
        "skipped_steps": skipped,
        "skipped_files": discovery.skipped,
        "executor": config.executor,
        "workers": config.workers,
    }
    (work / PLAN).write_text(json.dumps(plan, indent=2), encoding="utf-8")

    finalize_step = Finalize(str(output), inputs, plain_config, seed, started)
    if config.executor == "slurm":
        return _submit(config, stages, finalize_step, output)
    if config.executor == "ray":
        _ray_init(config)
    executors = []
    for name, pipeline, tasks in stages:
        depends = executors[-1] if executors and config.executor != "local" else None
        executors.append(_executor(config, name, pipeline, tasks, work / "logs" / name, depends))
    for name, ex in zip([s[0] for s in stages], executors, strict=True):
        ui.info(f"corpus build: stage {name} ({ex.world_size} task(s), executor {config.executor})")
        t0 = time.time()
        with supervised_workers() if config.executor == "local" else contextlib.nullcontext():
            ex.run()
        incomplete = ex.get_incomplete_ranks(skip_completed=True)
        if incomplete:
            raise RuntimeError(f"stage {name}: tasks {incomplete} did not complete; see {work / 'logs' / name}/logs")
        _record_stage_wall(work, name, time.time() - t0)
    return finalize(output, inputs, plain_config, seed, started)


def _seed(seed: int, config: CorpusConfig) -> None:
    """Seed every generator the build draws from; torch only when it is loaded or a model step will run.

    Importing torch just to seed it costs seconds of serial start-up before any worker starts,
    and no corpus step but the perplexity scorer uses it.
    """
    from cpt.seed import seed_everything

    if "torch" in sys.modules or _enabled("perplexity", config):
        seed_everything(seed)
        return
    import random

    import numpy as np
    from langdetect import DetectorFactory

    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    np.random.seed(seed % 2**32)
    DetectorFactory.seed = seed


def _file_states(units) -> list[list]:
    """Size and mtime of every input file: a resumed build must not mix two versions of an input."""
    states = []
    for u in units:
        path = Path(u.root) / u.rel if u.kind not in ("hf_disk", "hf_hub") else Path(u.root)
        try:
            st = path.stat()
            states.append([str(path), st.st_size, st.st_mtime_ns])
        except OSError:
            states.append([str(path), None, None])
    return states


def _record_stage_wall(work: Path, stage: str, seconds: float) -> None:
    """Wall time per stage across (resumed) runs, for the report."""
    path = work / "walls.json"
    walls = json.loads(path.read_text()) if path.exists() else {}
    walls[stage] = walls.get(stage, 0.0) + seconds
    path.write_text(json.dumps(walls))


def _ray_init(config: CorpusConfig) -> None:
    import ray

    if not ray.is_initialized():
        if config.ray.address:
            ray.init(address=config.ray.address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(config.workers, config.ray.cpus_per_task), include_dashboard=False, log_to_driver=False)


def _submit(config: CorpusConfig, stages, finalize_step: Finalize, output: Path) -> Report:
    """Slurm: queue one job array per stage, each depending on the previous one, then return."""
    work = output / WORK
    executors = []
    for name, pipeline, tasks in stages:
        executors.append(_executor(config, name, pipeline, tasks, work / "logs" / name, executors[-1] if executors else None))
    last = _executor(config, "finalize", [finalize_step], 1, work / "logs" / "finalize", executors[-1])
    last.run()
    jobs = {name: ex.job_id for name, ex in zip([s[0] for s in stages] + ["finalize"], executors + [last], strict=True)}
    ui.info(f"corpus build: submitted Slurm jobs {jobs}; `cpt corpus stats {output}` once they finish")
    return Report({"status": "submitted", "jobs": {k: str(v) for k, v in jobs.items()}, "output": str(output)})


def corpus_files(output: str | Path) -> list[Path]:
    """The document files of a finished build, in record order."""
    folder = Path(output) / DOCS
    return sorted(p for p in folder.iterdir() if p.name.endswith((".jsonl.gz", ".parquet"))) if folder.is_dir() else []


def read_records(output: str | Path) -> list[dict]:
    """Every record of a finished build, decompressed, in order (for tests and small corpora)."""
    records: list[dict] = []
    for path in corpus_files(output):
        if path.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            for row in pq.read_table(path).to_pylist():
                row["metadata"] = json.loads(row["metadata"])
                records.append(row)
        else:
            with gzip.open(path, "rb") as fh:
                records.extend(json.loads(line) for line in fh)
    return records


QUIET_ENV = "CPT_QUIET_DATATROVE"


def quiet_datatrove_console() -> None:
    """Keep datatrove's per-task logs in their files but show only warnings on the console.

    datatrove re-adds an INFO-level stderr sink for every task (and a DEBUG one after it),
    which buries the build's own progress lines and table under pages of per-task stats.
    The per-task log files under `.work/logs/<stage>/logs/` keep every line.
    """
    import datatrove.executor.base as executor_base
    import datatrove.utils.logging as dt_logging
    from loguru import logger

    def setup_default_logger() -> None:
        logger.remove()
        logger.add(sys.stderr, level="WARNING", colorize=dt_logging.DATATROVE_COLORIZE_LOGS)

    def add_task_logger(logging_dir, rank: int, local_rank: int = 0, node_rank: int = -1):
        logger.remove()
        logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
        fmt = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"
        logger.add(sys.stderr, level="WARNING", format=fmt, colorize=False)
        logger.add(logfile, level="DEBUG", format=fmt, colorize=False)
        logger.info(f"Launching pipeline for {rank=}")
        return logfile

    dt_logging.setup_default_logger = setup_default_logger
    executor_base.add_task_logger = add_task_logger
    if "datatrove.executor.ray" in sys.modules:
        sys.modules["datatrove.executor.ray"].add_task_logger = add_task_logger
    setup_default_logger()


if os.environ.get(QUIET_ENV) == "1":  # worker processes of a quiet build import this module first
    quiet_datatrove_console()
