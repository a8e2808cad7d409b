"""Readers that turn raw files into datatrove Documents and count every bad record.

Stock datatrove readers either crash on a malformed JSON line or skip a record without
text with one warning for the whole run. Here every record that does not become a
document is counted under a stable reason (`dropped_<reason>` in the step's stats, and
a reject record when an exclusion writer is given), and every record that was repaired
on the way in is counted too (`repaired_<reason>`):

- dropped: `malformed_json`, `not_an_object`, `missing_text_field`, `text_not_string`,
  `empty_text`, `binary_junk`, `oversized` (with `oversize="drop"`), `corrupt_file`
  (the unreadable tail of a damaged compressed file; counted once per file).
- repaired: `decoded_with_replacement` (bytes that are not UTF-8), `truncated_oversized`.

`discover_inputs` checks every input before any work starts: a missing path, a file
that cannot be opened, or a compressed file whose header is broken is a one-line
`UserError`, not a failure in the middle of a long run.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseDiskReader, BaseReader
from datatrove.pipeline.writers.disk_base import DiskWriter

from cpt.errors import UserError

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson", ".ndjson.gz", ".json.gz", ".jsonl.zstd")
PARQUET_SUFFIXES = (".parquet",)
HF_PREFIX = "hf://"
# control characters other than the whitespace ones, DEL, and the replacement character. Tab,
# newline, carriage return, vertical tab and form feed are layout: a form feed is the page break
# of plain-text documents (man pages, RFCs, printed manuals), so a short paragraph that opens a
# page with one is text, not binary junk.
_JUNK = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufffd]")
PREVIEW_CHARS = 200


def file_kind(name: str) -> str:
    """`jsonl`, `parquet` or `text`, from the file name; anything not structured is read as text."""
    lower = name.lower()
    if lower.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return "text"


def _compression(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith(".gz"):
        return "gzip"
    if lower.endswith((".zst", ".zstd")):
        return "zstd"
    return None


@contextmanager
def open_binary(data_folder, filepath: str):
    """A binary line-iterable stream of a possibly compressed file (gzip or zstd by suffix).

    zstd goes through `zstandard` directly: fsspec's zstd file object cannot iterate lines.
    """
    comp = _compression(filepath)
    if comp == "zstd":
        import zstandard

        with data_folder.open(filepath, "rb") as raw:
            with io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)) as fh:
                yield fh
    else:
        with data_folder.open(filepath, "rb", compression=comp) as fh:
            yield fh


def decode(raw: bytes) -> tuple[str, bool]:
    """UTF-8 (a BOM is dropped); bytes that are not UTF-8 become U+FFFD. Returns (text, replaced)."""
    try:
        return raw.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8-sig", errors="replace"), True


class CheckedReaderMixin:
    """Admission checks shared by every reader: empty, binary junk, oversize; counted by reason."""

    max_doc_bytes: int
    oversize: str
    max_junk_ratio: float
    exclusion_writer: DiskWriter | None
    _writer: DiskWriter | None = None
    _rank: int = 0

    def _setup_checks(self, max_doc_bytes: int, oversize: str, max_junk_ratio: float, exclusion_writer) -> None:
        if oversize not in ("truncate", "drop"):
            raise ValueError(f"oversize must be 'truncate' or 'drop', got {oversize!r}")
        self.max_doc_bytes = max_doc_bytes
        self.oversize = oversize
        self.max_junk_ratio = max_junk_ratio
        self.exclusion_writer = exclusion_writer

    def drop(self, reason: str, doc_id: str, text: str = "") -> None:
        """Count a record that does not become a document, and write its reject record."""
        self.stat_update("records", "dropped", f"dropped_{reason}")
        if self._writer is not None:
            self._writer.write(
                Document(text=text[:PREVIEW_CHARS], id=doc_id, metadata={"filter_reason": reason}), self._rank
            )

    def admit(self, text: Any, doc_id: str, metadata: dict, replaced: bool = False) -> Document | None:
        """The document for `text`, or None after counting why it was dropped."""
        if not isinstance(text, str):
            self.drop("text_not_string", doc_id, repr(text))
            return None
        if not text.strip():
            self.drop("empty_text", doc_id)
            return None
        n_junk = len(_JUNK.findall(text))
        if "\x00" in text or n_junk > self.max_junk_ratio * len(text):
            self.drop("binary_junk", doc_id, text)
            return None
        if len(text) * 4 > self.max_doc_bytes:  # cheap test first: a char is at most 4 UTF-8 bytes
            raw = text.encode("utf-8")
            if len(raw) > self.max_doc_bytes:
                if self.oversize == "drop":
                    self.drop("oversized", doc_id, text)
                    return None
                text = raw[: self.max_doc_bytes].decode("utf-8", errors="ignore")
                cut = text.rfind("\n")
                if cut > len(text) // 2:  # end on a line break when one is near the limit
                    text = text[:cut]
                self.stat_update("repaired_truncated_oversized")
        if replaced:
            self.stat_update("repaired_decoded_with_replacement")
        self.stat_update("records", "forwarded")
        return Document(text=text, id=str(doc_id), metadata=metadata)


class _CheckedDiskReader(CheckedReaderMixin, BaseDiskReader):
    """A BaseDiskReader whose run() opens the exclusion writer and records the rank."""

    def __init__(
        self,
        data_folder,
        text_key: str = "text",
        id_key: str = "id",
        max_doc_bytes: int = 10_000_000,
        oversize: str = "truncate",
        max_junk_ratio: float = 0.05,
        exclusion_writer: DiskWriter | None = None,
        default_metadata: dict | None = None,
        name_prefix: str | None = None,
        **kwargs,
    ):
        super().__init__(data_folder, text_key=text_key, id_key=id_key, default_metadata=default_metadata, **kwargs)
        self._setup_checks(max_doc_bytes, oversize, max_junk_ratio, exclusion_writer)
        self.name_prefix = name_prefix if name_prefix is not None else Path(self.data_folder.path).name

    def _doc_id(self, filepath: str, suffix: str) -> str:
        return f"{self.name_prefix}/{filepath}{suffix}" if self.name_prefix else f"{filepath}{suffix}"

    def _meta(self, filepath: str) -> dict:
        return {**(self.default_metadata or {}), "file": self._doc_id(filepath, "")}

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self._rank = rank
        if self.exclusion_writer is None:
            yield from super().run(data, rank, world_size)
            return
        with self.exclusion_writer as writer:
            self._writer = writer
            try:
                yield from super().run(data, rank, world_size)
            finally:
                self._writer = None


class JsonlReader(_CheckedDiskReader):
    """JSON Lines (.jsonl, .jsonl.gz, .jsonl.zst), one record a line, read as bytes.

    Reading bytes rather than text lets one bad line be repaired (replacement
    characters) or counted without losing the rest of the file.
    """

    name = "jsonl (checked)"

    def read_file(self, filepath: str) -> DocumentsPipeline:
        import json

        try:
            import orjson

            loads = orjson.loads
        except ImportError:  # pragma: no cover - datatrove's writer needs orjson anyway
            loads = json.loads
        lineno = 0
        try:
            with open_binary(self.data_folder, filepath) as fh:
                for lineno, raw in enumerate(fh):
                    self.stat_update("bytes_in", value=len(raw), unit="record")
                    if not raw.strip():
                        continue  # blank lines between records are layout, not records
                    doc_id = self._doc_id(filepath, f":{lineno}")
                    replaced = False
                    try:
                        record = loads(raw)
                    except ValueError:
                        text, replaced = decode(raw)
                        try:
                            record = json.loads(text) if replaced else None
                        except ValueError:
                            record = None
                        if record is None:
                            self.drop("malformed_json", doc_id, text)
                            continue
                    if not isinstance(record, dict):
                        self.drop("not_an_object", doc_id, str(record))
                        continue
                    if self.text_key not in record:
                        self.drop("missing_text_field", doc_id, str(list(record))[:PREVIEW_CHARS])
                        continue
                    text = record.pop(self.text_key)
                    if self.id_key in record and record[self.id_key] not in (None, ""):
                        doc_id = str(record.pop(self.id_key))
                    metadata = record.pop("metadata", None)
                    meta = self._meta(filepath)
                    if isinstance(metadata, dict):
                        meta.update(metadata)
                    meta.update(record)
                    doc = self.admit(text, doc_id, meta, replaced)
                    if doc is not None:
                        yield doc
        except (EOFError, OSError, zlib.error, ValueError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            self.drop("corrupt_file", self._doc_id(filepath, f":{lineno + 1}"), f"{type(exc).__name__}: {exc}")


class TextReader(_CheckedDiskReader):
    """Plain text files: one document per file, or one per blank-line separated block.

    Line endings are normalised to `\\n` (the kolaw/kobill files are CRLF). In one-doc
    mode a file is read line by line and stops growing at `max_doc_bytes`, so a huge
    file cannot exhaust memory before the oversize rule applies.
    """

    name = "text (checked)"

    def __init__(self, data_folder, split_paragraphs: bool = False, **kwargs):
        super().__init__(data_folder, **kwargs)
        self.split_paragraphs = split_paragraphs

    def read_file(self, filepath: str) -> DocumentsPipeline:
        try:
            with open_binary(self.data_folder, filepath) as fh:
                if self.split_paragraphs:
                    yield from self._paragraphs(fh, filepath)
                else:
                    yield from self._whole(fh, filepath)
        except (EOFError, OSError, zlib.error) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            self.drop("corrupt_file", self._doc_id(filepath, ""), f"{type(exc).__name__}: {exc}")

    def _whole(self, fh, filepath: str) -> Iterator[Document]:
        chunks, size, over = [], 0, False
        for raw in fh:
            self.stat_update("bytes_in", value=len(raw), unit="record")
            if size <= self.max_doc_bytes:
                chunks.append(raw)
                size += len(raw)
            else:
                over = True
        text, replaced = decode(b"".join(chunks))
        text = text.replace("\r\n", "\n")
        doc_id = self._doc_id(filepath, "")
        if over and self.oversize == "drop":
            self.drop("oversized", doc_id, text)
            return
        doc = self.admit(text, doc_id, self._meta(filepath), replaced)  # truncates (and counts) when over
        if doc is not None:
            yield doc

    def _paragraphs(self, fh, filepath: str) -> Iterator[Document]:
        block: list[bytes] = []
        index = 0

        def flush() -> Document | None:
            nonlocal index
            text, replaced = decode(b"".join(block))
            doc_id = self._doc_id(filepath, f"#{index}")
            index += 1
            return self.admit(text.replace("\r\n", "\n").strip("\n"), doc_id, self._meta(filepath), replaced)

        for raw in fh:
            self.stat_update("bytes_in", value=len(raw), unit="record")
            if raw.strip():
                block.append(raw)
            elif block:
                doc = flush()
                block = []
                if doc is not None:
                    yield doc
        if block:
            doc = flush()
            if doc is not None:
                yield doc


class ParquetReader(_CheckedDiskReader):
    """Parquet files read in record batches, so a large file never sits in memory whole."""

    name = "parquet (checked)"

    def __init__(self, data_folder, batch_size: int = 1000, **kwargs):
        super().__init__(data_folder, **kwargs)
        self.batch_size = batch_size

    def read_file(self, filepath: str) -> DocumentsPipeline:
        import pyarrow.parquet as pq

        row = 0
        try:
            with self.data_folder.open(filepath, "rb") as fh:
                pf = pq.ParquetFile(fh)
                has_text = self.text_key in pf.schema_arrow.names
                for batch in pf.iter_batches(batch_size=self.batch_size):
                    for record in batch.to_pylist():
                        doc_id = self._doc_id(filepath, f":{row}")
                        row += 1
                        if not has_text:
                            self.drop("missing_text_field", doc_id, str(list(record))[:PREVIEW_CHARS])
                            continue
                        text = record.pop(self.text_key)
                        if text is None:
                            self.drop("missing_text_field", doc_id)
                            continue
                        if record.get(self.id_key) not in (None, ""):
                            doc_id = str(record.pop(self.id_key))
                        meta = self._meta(filepath)
                        extra = record.pop("metadata", None)
                        if isinstance(extra, str):  # cpt's parquet output stores metadata as a JSON string
                            try:
                                extra = json.loads(extra)
                            except ValueError:
                                extra = {"metadata": extra}
                        if isinstance(extra, dict):
                            meta.update(extra)
                        meta.update(record)
                        doc = self.admit(text, doc_id, meta)
                        if doc is not None:
                            yield doc
        except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) on damaged pages
            if isinstance(exc, FileNotFoundError):
                raise
            self.drop("corrupt_file", self._doc_id(filepath, f":{row}"), f"{type(exc).__name__}: {exc}")


class HFDatasetReader(CheckedReaderMixin, BaseReader):
    """A `datasets` dataset: a `save_to_disk` folder, or a hub name (needs network).

    `rows` = (start, stop) reads a contiguous block, which is how the corpus reader
    spreads one large dataset over several tasks without changing the record order.
    """

    name = "datasets (checked)"

    def __init__(
        self,
        path_or_name: str,
        split: str | None = None,
        from_disk: bool = True,
        rows: tuple[int, int] | None = None,
        text_key: str = "text",
        id_key: str = "id",
        max_doc_bytes: int = 10_000_000,
        oversize: str = "truncate",
        max_junk_ratio: float = 0.05,
        exclusion_writer: DiskWriter | None = None,
        default_metadata: dict | None = None,
        name_prefix: str | None = None,
    ):
        super().__init__(text_key=text_key, id_key=id_key, default_metadata=default_metadata)
        self._setup_checks(max_doc_bytes, oversize, max_junk_ratio, exclusion_writer)
        self.path_or_name = path_or_name
        self.split = split
        self.from_disk = from_disk
        self.rows = rows
        self.name_prefix = name_prefix or Path(path_or_name).name

    def _dataset(self):
        import datasets

        if self.from_disk:
            ds = datasets.load_from_disk(self.path_or_name)
            if isinstance(ds, datasets.DatasetDict):
                split = self.split or ("train" if "train" in ds else sorted(ds)[0])
                ds = ds[split]
            return ds
        return datasets.load_dataset(self.path_or_name, split=self.split or "train", streaming=True)

    def records(self) -> Iterator[tuple[int, dict]]:
        ds = self._dataset()
        if self.rows is not None:
            ds = ds.select(range(*self.rows))
        start = self.rows[0] if self.rows else 0
        for i, record in enumerate(ds, start=start):
            yield i, dict(record)

    def read(self) -> Iterator[Document]:
        for i, record in self.records():
            doc_id = f"{self.name_prefix}:{i}"
            if self.text_key not in record or record[self.text_key] is None:
                self.drop("missing_text_field", doc_id, str(list(record))[:PREVIEW_CHARS])
                continue
            text = record.pop(self.text_key)
            if record.get(self.id_key) not in (None, ""):
                doc_id = str(record.pop(self.id_key))
            meta = {**(self.default_metadata or {}), "file": self.name_prefix}
            extra = record.pop("metadata", None)
            if isinstance(extra, dict):
                meta.update(extra)
            meta.update({k: v for k, v in record.items() if isinstance(v, (str, int, float, bool))})
            doc = self.admit(text, doc_id, meta)
            if doc is not None:
                yield doc

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        self._rank = rank
        with self.exclusion_writer if self.exclusion_writer else _nullwriter() as writer:
            self._writer = writer
            for doc in self.read():
                self.update_doc_stats(doc)
                yield doc
            self._writer = None


class _nullwriter:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


@dataclass(frozen=True)
class InputUnit:
    """One unit of reading work: a file under an input root, or a block of a dataset."""

    kind: str  # jsonl | parquet | text | hf_disk | hf_hub
    root: str  # input folder (files), dataset folder or hub name
    rel: str  # file path relative to root ("" for datasets)
    name: str  # the input folder's name, prefixed to ids and metadata.file ("" for a single file)
    rows: tuple[int, int] | None = None


@dataclass
class Discovery:
    units: list[InputUnit]
    skipped: list[str]  # hidden files and caches left out of folder inputs

    def to_dict(self) -> dict:
        return {"units": [asdict(u) for u in self.units], "skipped": self.skipped}


def _is_hf_folder(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (
        (path / "state.json").is_file() and (path / "dataset_info.json").is_file()
    )


def _check_readable(path: Path) -> None:
    """Open the file and read its first bytes through its compression: fail now, with one line."""
    try:
        comp = _compression(path.name)
        if comp == "gzip":
            with gzip.open(path, "rb") as fh:
                fh.read(1)
        elif comp == "zstd":
            import zstandard

            with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as fh:
                fh.read(1)
        elif file_kind(path.name) == "parquet":
            import pyarrow.parquet as pq

            pq.ParquetFile(path)
        else:
            with open(path, "rb") as fh:
                fh.read(1)
    except ImportError as exc:
        raise UserError(f"cannot read {path}: {exc.name} is not installed (pip install {exc.name})") from None
    except Exception as exc:  # noqa: BLE001 - any failure to open is the same user-facing problem
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise UserError(f"cannot read input file {path}: {reason}") from None


def discover_inputs(inputs: list[str | Path], parts: int = 1, check: bool = True) -> Discovery:
    """Every input expanded into reading units, in a deterministic order; fails before any work.

    `parts` splits each local dataset into that many contiguous row blocks, so one
    dataset can feed several tasks.
    """
    from cpt import paths

    if not inputs:
        raise UserError("no input given: pass --input PATH (a file or folder), or a recipe source")
    units: list[InputUnit] = []
    skipped: list[str] = []
    for ref in inputs:
        text = str(ref)
        if text.startswith(HF_PREFIX):
            name, _, split = text[len(HF_PREFIX):].partition(":")
            if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or os.environ.get("HF_DATASETS_OFFLINE", "") not in ("", "0"):
                raise UserError(f"{text}: hub datasets need network access, but HF_HUB_OFFLINE is set (download it, then pass the folder)")
            units.append(InputUnit("hf_hub", name, split, name.replace("/", "_")))
            continue
        path = paths.resolve(text)  # UserError for a missing path
        if path.is_dir() and _is_hf_folder(path):
            units.extend(_dataset_units(path, parts))
            continue
        if path.is_file():
            if check:
                _check_readable(path)
            units.append(InputUnit(file_kind(path.name), str(path.parent), path.name, ""))
            continue
        found = False
        for dirpath, dirnames, filenames in os.walk(path):
            hidden = {d for d in dirnames if d.startswith(".") or d == "__pycache__"}
            skipped.extend(str(Path(dirpath, d)) for d in sorted(hidden))
            dirnames[:] = sorted(set(dirnames) - hidden)
            for fname in sorted(filenames):
                full = Path(dirpath, fname)
                if fname.startswith("."):
                    skipped.append(str(full))
                    continue
                if check:
                    _check_readable(full)
                units.append(InputUnit(file_kind(fname), str(path), str(full.relative_to(path)), path.name))
                found = True
        if not found:
            raise UserError(f"input folder {path} holds no files (hidden files and __pycache__ are not read)")
    return Discovery(units, skipped)


def _dataset_units(path: Path, parts: int) -> list[InputUnit]:
    try:
        import datasets

        ds = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"cannot load dataset folder {path}: {exc}") from None
    if isinstance(ds, datasets.DatasetDict):
        split = "train" if "train" in ds else sorted(ds)[0]
        n = len(ds[split])
    else:
        split, n = "", len(ds)
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [InputUnit("hf_disk", str(path), split, path.name, (bounds[i], bounds[i + 1])) for i in range(parts)]


class CorpusReader(BaseReader):
    """Every kind of input in one step: units are dealt to tasks round-robin, read in order.

    The format readers it delegates to share its stats, so the report shows one `read`
    step with every bad-input reason, whatever mix of files came in.
    """

    name = "corpus reader"
    type = "📖 - READER"

    def __init__(
        self,
        units: list[InputUnit],
        text_key: str = "text",
        id_key: str = "id",
        split_paragraphs: bool = False,
        max_doc_bytes: int = 10_000_000,
        oversize: str = "truncate",
        max_junk_ratio: float = 0.05,
        exclusion_writer: DiskWriter | None = None,
        default_metadata: dict | None = None,
    ):
        super().__init__(text_key=text_key, id_key=id_key, default_metadata=default_metadata)
        self.units = list(units)
        self.split_paragraphs = split_paragraphs
        self.checks = {"max_doc_bytes": max_doc_bytes, "oversize": oversize, "max_junk_ratio": max_junk_ratio}
        self.exclusion_writer = exclusion_writer

    def _reader_for(self, unit: InputUnit, writer) -> CheckedReaderMixin:
        common = {
            "text_key": self.text_key,
            "id_key": self.id_key,
            "default_metadata": self.default_metadata,
            "name_prefix": unit.name,
            **self.checks,
        }
        if unit.kind == "jsonl":
            reader = JsonlReader(unit.root, **common)
        elif unit.kind == "parquet":
            reader = ParquetReader(unit.root, **common)
        elif unit.kind == "text":
            reader = TextReader(unit.root, split_paragraphs=self.split_paragraphs, **common)
        elif unit.kind in ("hf_disk", "hf_hub"):
            reader = HFDatasetReader(
                unit.root, split=unit.rel or None, from_disk=unit.kind == "hf_disk", rows=unit.rows, **common
            )
        else:  # pragma: no cover - discover_inputs makes only the kinds above
            raise ValueError(f"unknown input kind {unit.kind}")
        reader.stats = self.stats  # one set of counters for the whole read step
        reader._writer = writer
        return reader

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        with self.exclusion_writer if self.exclusion_writer else _nullwriter() as writer:
            for unit in self.units[rank::world_size]:
                reader = self._reader_for(unit, writer)
                reader._rank = rank
                self.stat_update("input_files")
                if unit.kind in ("hf_disk", "hf_hub"):
                    docs = reader.read()
                else:
                    docs = reader.read_file(unit.rel)
                for doc in docs:
                    self.update_doc_stats(doc)
                    yield doc
