"""Exact and near-duplicate removal that works on Korean without a word segmenter.

Three datatrove steps, run like datatrove's own multi-stage MinHash:

1. `DedupSignatures` (one task per rank) passes documents through unchanged and writes
   `{rank:05d}.sig`: per document, in stream order, the exact hash, the MinHash
   signature, a verification sketch and the document id. Plain numpy arrays in a
   documented container (no pickle) that ends with a footer; a file without a valid
   footer (a killed task) is refused by name.
2. `find_duplicates` (one process) reads every rank in (rank, index) order, removes exact
   duplicates, then near duplicates through MinHash-LSH, and VERIFIES every LSH candidate
   pair against the Jaccard threshold before removing anything; it writes
   `{rank:05d}.remove` per rank and `dedup.json` last.
3. `DedupFilter` (one task per rank) re-reads the same per-rank stream and drops the
   listed documents with reason `exact_duplicate` / `near_duplicate`, recording the kept
   twin's id and the similarity for the rejects file.

`deduplicate(texts, config)` runs the same signer and the same decision code in memory.
`Signer`, `sketch_jaccard` and `write_signatures` / `read_signatures` are public: `cpt corpus
pack` finds the copies of its held-out eval documents with them (one implementation).

Design choices, and why:

- Normalization (both kinds): Unicode case folding, then NFC, then every whitespace run
  collapsed to one space. Punctuation is KEPT. Exact dedup must not merge texts that
  differ in meaning, and punctuation carries meaning (`1,000` vs `1.000`, `a.b()` vs
  `a b()`, `제1조.` vs list markers); copies that differ only in punctuation are still
  removed, by the near pass, with their measured similarity instead of being called
  "exact". Keeping punctuation in the shingles also makes the verified similarity the
  very quantity the benchmark's ground truth defines (character 5-gram Jaccard).
- Shingles: character 5-grams of the normalized text, spaces included. Measured by
  `python -m bench.neardup` (sections "settings sweep" and "shingle study", 3.3k Korean and
  3.6k English documents): character n-grams need no segmenter and behave alike on Hangul,
  Latin and code; 3- and 4-grams are shared by unrelated documents far more (99.9th
  percentile Jaccard of random unrelated English pairs 0.47 and 0.27, vs 0.19 for 5-grams:
  more LSH candidates), and verifying on any shingling other than the one that defines a
  duplicate (character 5-gram Jaccard ≥ 0.8) costs precision (4-grams: 0.88 Korean, 0.90
  English). Word 2- and 3-grams decay fastest under edits in Korean, where a word carries
  its particle (mean Jaccard of 10 %-edited copies 0.73 and 0.62 vs 0.79 for character
  5-grams); word unigrams keep copies high (0.88) but are a bag of words, blind to order, and
  need whitespace-delimited words.
- Shingle hashing: each n-gram's code points are packed losslessly into 64-bit words
  (three 21-bit code points per word) and mixed with the murmur3 finalizer, all as numpy
  array operations. Hashing each shingle with xxhash would be one Python call per
  character of input; the packed form is a bijection before the mixer, so two shingles
  collide only through the 64-bit mix. The exact-duplicate hash is xxh3-128 of the
  whole normalized text.
- MinHash: one-permutation hashing (each shingle hash picks one of `num_perm` bins and
  competes for that bin's minimum) with optimal densification (Shrivastava 2017) for
  empty bins. Each signature slot still collides with probability equal to the Jaccard
  similarity, but the cost is O(shingles) instead of O(shingles × num_perm): the
  classic `(a*h+b) mod p` over 120 permutations is 120 multiply-add-mods per character;
  as numpy matrix ops it signed 1.3-1.5 MB/s of English per core here, against 3.0-3.6 MB/s
  for this whole signer (exact hash and sketch included), both on the same loaded machine.
- LSH: `bands` × `rows` = `num_perm`. The default 20 × 6 makes a pair at Jaccard 0.8 a
  candidate with probability 1-(1-0.8^6)^20 = 0.9977 (0.9993 at 0.82), while an unrelated
  pair at Jaccard 0.05 becomes one with probability 3e-7, so verification work does not
  grow quadratically with the corpus. Measured on the ≤ 10 % pairs: 14 × 8 (datatrove's
  shape) reached recall 0.990 (Korean) / 0.996 (English) instead of 1.000; 30 × 4 gave the
  same result as 20 × 6 after verifying 12× (Korean) / 4× (English) more candidates.
- Verification: MinHash only proposes; a pair is removed only if its similarity, from
  a sketch of the documents' shingle hashes, reaches `threshold`. A document with at
  most `verify_shingles` distinct shingles stores all of them (the check is then the
  exact Jaccard up to 32-bit hash collisions); a longer one stores those whose hash lies
  below 2^(32-s) for the smallest s that fits. Two such samples restricted to the
  smaller bound are a uniform sample of the union (consistent sampling), so the
  estimate's error shrinks with the sample, not with `num_perm`. The price is disk: the
  signature files hold about 4 bytes per distinct shingle (measured 1.9× the Korean and
  2.7× the English input bytes at the default 4096; 1024 gives 1.35× / 1.5× but recall
  0.994 / 0.985 and precision 0.991 / 0.989 on pairs near the threshold).
- Keep the first seen: documents are visited in (rank, index) order; a document is
  compared only with documents already KEPT, and removed when one of them is verified
  at or above the threshold. So every removed document has a kept twin it really is
  similar to (no transitive chains through removed documents), and the same inputs
  give the same decisions.
"""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter
from pydantic import Field, model_validator

from cpt.config import Section

EXACT_REASON = "exact_duplicate"
NEAR_REASON = "near_duplicate"
SUMMARY_FILE = "dedup.json"
SIG_FORMAT = 1

_KEEP, _EXACT, _NEAR = 0, 1, 2
_REASONS = {_EXACT: EXACT_REASON, _NEAR: NEAR_REASON}
_EMPTY_BIN = np.uint32(0xFFFFFFFF)
_HEAD_MAGIC = b"CPTSIG\x00\x01"
_FOOT_MAGIC = b"CPTSIGOK"
_ALIGN = 64
_FLUSH_DOCS = 2048
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)


class DedupConfig(Section):
    """Exact + near-duplicate removal. Every stage of one run must use the same values."""

    exact: bool = Field(
        default=True,
        description="Remove documents whose normalized text (case-folded, NFC, whitespace collapsed, punctuation kept) is identical to an earlier one.",
    )
    near: bool = Field(
        default=True,
        description="Remove documents whose character n-gram Jaccard similarity with an earlier kept document reaches `threshold` (MinHash-LSH, verified).",
    )
    ngram: int = Field(
        default=5,
        ge=1,
        le=30,
        description="Shingle length in characters of the normalized text (spaces count); 5 matches the duplicate definition the benchmark scores against and had the least unrelated-pair overlap of 3/4/5 (bench.neardup).",
    )
    num_perm: int = Field(
        default=120, ge=1, le=4096, description="MinHash signature length; must equal bands × rows."
    )
    bands: int = Field(
        default=20,
        ge=1,
        description="LSH bands: a pair becomes a candidate when all rows of any one band agree.",
    )
    rows: int = Field(
        default=6,
        ge=1,
        description="Signature values per band; more rows = fewer unrelated candidates, fewer bands = lower candidate recall.",
    )
    threshold: float = Field(
        default=0.8,
        gt=0.0,
        le=1.0,
        description="Jaccard similarity (of character n-gram sets) at or above which a verified pair counts as a duplicate.",
    )
    seed: int = Field(
        default=1,
        ge=0,
        description="Seed of the shingle hash and the densification probes; signatures are comparable only under one seed.",
    )
    verify_shingles: int = Field(
        default=4096,
        ge=0,
        description="Shingle hashes kept per document for verifying candidates: documents up to this many distinct shingles are checked exactly, longer ones by a consistent sample of at least half this size; 0 keeps all.",
    )

    @model_validator(mode="after")
    def _bands_fill_signature(self) -> DedupConfig:
        if self.bands * self.rows != self.num_perm:
            raise ValueError(
                f"num_perm ({self.num_perm}) must equal bands × rows ({self.bands} × {self.rows} = {self.bands * self.rows})"
            )
        return self

    def signature_fields(self) -> dict[str, Any]:
        """The settings a signature file depends on; find_duplicates refuses files made with others."""
        return {
            "ngram": self.ngram,
            "num_perm": self.num_perm,
            "seed": self.seed,
            "verify_shingles": self.verify_shingles,
        }


@dataclass(frozen=True)
class DedupDecision:
    """What dedup decided for one document (indices are positions in the input order)."""

    index: int
    keep: bool
    reason: str | None = None
    duplicate_of: int | None = None
    similarity: float | None = None


class SignatureFileError(RuntimeError):
    """A signature file is missing, truncated (its task was killed) or made with other settings."""


def normalize(text: str) -> str:
    """The text both dedup kinds compare: case-folded, NFC, whitespace runs → one space, punctuation kept."""
    return " ".join(unicodedata.normalize("NFC", text.casefold()).split())


def _fmix64(x: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finalizer, in place on a uint64 array (a bijection with full avalanche)."""
    x ^= x >> np.uint64(33)
    x *= _M1
    x ^= x >> np.uint64(33)
    x *= _M2
    x ^= x >> np.uint64(33)
    return x


@dataclass
class _Record:
    exact: tuple[int, int]
    signature: np.ndarray  # (num_perm,) uint32; all 0xFFFFFFFF when the text has no shingle
    shingles: int  # distinct shingle hashes in the document
    shift: int  # the sketch holds every hash < 2**(32 - shift)
    sketch: np.ndarray  # sorted unique uint32


class Signer:
    """Normalizes a text and computes its exact hash, MinHash signature and verification sketch.

    `sign` is what dedup stores per document. The parts are public too, so a caller that
    only needs some of them (the pack's eval decontamination: exact hash first, the sketch
    only for LSH candidates) computes exactly the same values with no second implementation.
    """

    def __init__(self, config: DedupConfig) -> None:
        self.n = config.ngram
        self.k = config.num_perm
        self.cap = config.verify_shingles
        rng = np.random.default_rng([config.seed, 0xD5D0])
        self.word_seeds = rng.integers(1, 2**63, size=(self.n + 2) // 3, dtype=np.uint64)
        # Densification probes: for empty bin i, probe[i, t] is the t-th bin to borrow from. The same table for
        # every document, so two documents densify alike (the condition for Pr[equal slot] = Jaccard).
        self.probe = rng.integers(0, self.k, size=(self.k, 64), dtype=np.int64)

    def shingle_hashes(self, norm: str) -> np.ndarray:
        """64-bit hashes of the character n-grams of a normalized text, in text order (repeats included)."""
        cp = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32)
        count = cp.size - self.n + 1
        if count <= 0:
            return np.empty(0, dtype=np.uint64)
        cp = cp.astype(np.uint64)
        h = None
        for w, g in enumerate(range(0, self.n, 3)):
            word = cp[g : g + count].copy()
            for j in range(1, min(3, self.n - g)):
                word |= cp[g + j : g + j + count] << np.uint64(21 * j)
            word += self.word_seeds[w]
            h = _fmix64(word) if h is None else _fmix64(h ^ word)
        return h

    @staticmethod
    def exact_hash(norm: str) -> tuple[int, int]:
        """xxh3-128 of a normalized text, as (high, low) 64-bit halves."""
        digest = xxhash.xxh3_128_intdigest(norm.encode("utf-8"))
        return digest >> 64, digest & 0xFFFFFFFFFFFFFFFF

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """The (num_perm,) uint32 MinHash signature of a text's shingle hashes (all 0xFFFFFFFF for none)."""
        if hashes.size == 0:
            return np.full(self.k, _EMPTY_BIN, dtype=np.uint32)
        return self._signature(hashes, (hashes >> np.uint64(32)).astype(np.uint32))

    def sketch(self, hashes: np.ndarray) -> tuple[int, int, np.ndarray]:
        """(distinct shingles, shift, sorted unique uint32 sample) for `sketch_jaccard`."""
        if hashes.size == 0:
            return 0, 0, np.empty(0, dtype=np.uint32)
        return self._sketch((hashes >> np.uint64(32)).astype(np.uint32))

    def sign(self, text: str) -> _Record:
        norm = normalize(text)
        exact = self.exact_hash(norm)
        hashes = self.shingle_hashes(norm)
        if hashes.size == 0:
            return _Record(
                exact, np.full(self.k, _EMPTY_BIN, dtype=np.uint32), 0, 0, np.empty(0, dtype=np.uint32)
            )
        values = (hashes >> np.uint64(32)).astype(np.uint32)
        signature = self._signature(hashes, values)
        distinct, shift, sketch = self._sketch(values)
        return _Record(exact, signature, distinct, shift, sketch)

    def _signature(self, hashes: np.ndarray, values: np.ndarray) -> np.ndarray:
        # Low 32 bits choose the bin, high 32 bits are the value: independent bits of one mixed hash.
        # Repeated shingles give repeated (bin, value) pairs, which cannot change a minimum.
        bins = ((hashes & np.uint64(0xFFFFFFFF)) * np.uint64(self.k)) >> np.uint64(32)
        signature = np.full(self.k, _EMPTY_BIN, dtype=np.uint32)
        np.minimum.at(signature, bins.astype(np.intp), values)
        self._densify(signature)
        return signature

    def _sketch(self, values: np.ndarray) -> tuple[int, int, np.ndarray]:
        """Sorts `values` in place (uint32: twice as fast to sort as the 64-bit hashes, and all verification needs)."""
        values.sort()
        if values.size > 1:
            values = values[np.concatenate(([True], values[1:] != values[:-1]))]
        distinct = int(values.size)
        shift = 0
        if self.cap and values.size > self.cap:
            while np.searchsorted(values, 1 << (32 - shift)) > self.cap:
                shift += 1
            values = values[: np.searchsorted(values, 1 << (32 - shift))]
        return distinct, shift, np.ascontiguousarray(values)

    def _densify(self, signature: np.ndarray) -> None:
        """Fill empty bins from the first non-empty bin along each bin's fixed probe sequence."""
        filled = signature != _EMPTY_BIN
        empty = np.flatnonzero(~filled)
        if empty.size == 0:
            return
        source = signature.copy()
        t = 0
        while empty.size:
            if t == self.probe.shape[1]:  # tiny documents: extend the probe table deterministically
                rng = np.random.default_rng(
                    [int(self.word_seeds[0] & np.uint64(0xFFFFFFFF)), self.probe.shape[1]]
                )
                self.probe = np.hstack(
                    [self.probe, rng.integers(0, self.k, size=self.probe.shape, dtype=np.int64)]
                )
            targets = self.probe[empty, t]
            hit = filled[targets]
            signature[empty[hit]] = source[targets[hit]]
            empty = empty[~hit]
            t += 1


# ---------------------------------------------------------------------------------------------
# Signature store: the same arrays in memory (deduplicate) or memory-mapped from .sig files.

_SECTIONS = ("exact", "signature", "shingles", "shift", "sketch_offsets", "sketch", "id_offsets", "ids")
_DTYPES = {
    "exact": "<u8",
    "signature": "<u4",
    "shingles": "<u4",
    "shift": "u1",
    "sketch_offsets": "<u8",
    "sketch": "<u4",
    "id_offsets": "<u8",
    "ids": "u1",
}


@dataclass
class _Part:
    """One rank's signatures: arrays indexed by the document's position in the rank's stream."""

    exact: np.ndarray  # (n, 2) uint64
    signature: np.ndarray  # (n, num_perm) uint32
    shingles: np.ndarray  # (n,) uint32
    shift: np.ndarray  # (n,) uint8
    sketch_offsets: np.ndarray  # (n + 1,) uint64
    sketch: np.ndarray  # (m,) uint32
    id_offsets: np.ndarray  # (n + 1,) uint64
    ids: np.ndarray  # utf-8 bytes of all ids

    @property
    def size(self) -> int:
        return int(self.shingles.shape[0])

    def doc_id(self, i: int) -> str:
        return bytes(self.ids[int(self.id_offsets[i]) : int(self.id_offsets[i + 1])]).decode("utf-8")

    def doc_sketch(self, i: int) -> np.ndarray:
        return self.sketch[int(self.sketch_offsets[i]) : int(self.sketch_offsets[i + 1])]

    @classmethod
    def from_records(cls, records: list[_Record], ids: list[str], num_perm: int) -> _Part:
        arrays = _records_to_arrays(records, ids, num_perm)
        arrays["sketch_offsets"] = np.concatenate(
            ([0], np.cumsum(arrays.pop("sketch_lengths"), dtype=np.uint64))
        ).astype(np.uint64)
        arrays["id_offsets"] = np.concatenate(
            ([0], np.cumsum(arrays.pop("id_lengths"), dtype=np.uint64))
        ).astype(np.uint64)
        return cls(**arrays)


def _records_to_arrays(records: list[_Record], ids: list[str], num_perm: int) -> dict[str, np.ndarray]:
    encoded = [i.encode("utf-8") for i in ids]
    return {
        "exact": np.array([r.exact for r in records], dtype=np.uint64).reshape(-1, 2),
        "signature": np.stack([r.signature for r in records])
        if records
        else np.empty((0, num_perm), dtype=np.uint32),
        "shingles": np.array([r.shingles for r in records], dtype=np.uint32),
        "shift": np.array([r.shift for r in records], dtype=np.uint8),
        "sketch_lengths": np.array([r.sketch.size for r in records], dtype=np.uint64),
        "sketch": np.concatenate([r.sketch for r in records]) if records else np.empty(0, dtype=np.uint32),
        "id_lengths": np.array([len(e) for e in encoded], dtype=np.uint64),
        "ids": np.frombuffer(b"".join(encoded), dtype=np.uint8),
    }


class _SigWriter:
    """Streams one rank's records into per-section part files, then assembles `{rank:05d}.sig` atomically.

    Layout: 8-byte head magic, the sections (each aligned to 64 bytes, little-endian), a JSON footer
    (format, docs, signature settings, each section's offset/size/dtype/shape, xxh3-64 of everything
    before the footer), the footer's length as uint64, and the 8-byte tail magic. Only a complete
    file gets a footer and its final name, so a killed task leaves no file that reads as valid.
    """

    def __init__(self, folder: Path, rank: int, config: DedupConfig) -> None:
        self.folder = Path(folder)
        self.rank = rank
        self.config = config
        self.path = self.folder / f"{rank:05d}.sig"
        self.parts_dir = self.folder / f".{rank:05d}.sig.parts"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)  # a stale file from an earlier run must never pass for this one
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        self.parts_dir.mkdir()
        names = ("exact", "signature", "shingles", "shift", "sketch_lengths", "sketch", "id_lengths", "ids")
        self.files = {name: open(self.parts_dir / name, "wb") for name in names}  # noqa: SIM115 - closed in finish/abort
        self.pending: list[_Record] = []
        self.pending_ids: list[str] = []
        self.docs = 0

    def add(self, record: _Record, doc_id: str) -> None:
        self.pending.append(record)
        self.pending_ids.append(doc_id)
        if len(self.pending) >= _FLUSH_DOCS:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        for name, array in _records_to_arrays(self.pending, self.pending_ids, self.config.num_perm).items():
            dtype = _DTYPES.get(name, "<u8")
            self.files[name].write(np.ascontiguousarray(array, dtype=dtype).tobytes())
        self.docs += len(self.pending)
        self.pending, self.pending_ids = [], []

    def finish(self) -> Path:
        self._flush()
        for f in self.files.values():
            f.close()
        for name, out in (("sketch_lengths", "sketch_offsets"), ("id_lengths", "id_offsets")):
            lengths = np.fromfile(self.parts_dir / name, dtype="<u8")
            np.concatenate(([0], np.cumsum(lengths, dtype=np.uint64))).astype("<u8").tofile(
                self.parts_dir / out
            )
        shapes = {
            "exact": [self.docs, 2],
            "signature": [self.docs, self.config.num_perm],
            "shingles": [self.docs],
            "shift": [self.docs],
            "sketch_offsets": [self.docs + 1],
            "id_offsets": [self.docs + 1],
        }
        tmp = self.folder / f".{self.rank:05d}.sig.tmp"
        digest = xxhash.xxh3_64()
        sections = {}
        with open(tmp, "wb") as out:
            out.write(_HEAD_MAGIC)
            digest.update(_HEAD_MAGIC)
            for name in _SECTIONS:
                pad = (-out.tell()) % _ALIGN
                out.write(b"\0" * pad)
                digest.update(b"\0" * pad)
                offset = out.tell()
                with open(self.parts_dir / name, "rb") as src:
                    for block in iter(lambda src=src: src.read(1 << 22), b""):
                        out.write(block)
                        digest.update(block)
                nbytes = out.tell() - offset
                itemsize = np.dtype(_DTYPES[name]).itemsize
                sections[name] = {
                    "offset": offset,
                    "nbytes": nbytes,
                    "dtype": _DTYPES[name],
                    "shape": shapes.get(name, [nbytes // itemsize]),
                }
            footer = json.dumps(
                {
                    "format": SIG_FORMAT,
                    "rank": self.rank,
                    "docs": self.docs,
                    "config": self.config.signature_fields(),
                    "sections": sections,
                    "checksum": digest.hexdigest(),
                },
                sort_keys=True,
            ).encode()
            out.write(footer)
            out.write(len(footer).to_bytes(8, "little"))
            out.write(_FOOT_MAGIC)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        for f in self.files.values():
            f.close()
        shutil.rmtree(self.parts_dir, ignore_errors=True)


def write_signatures(folder: str | Path, records: Iterable[tuple[_Record, str]], config: DedupConfig, rank: int = 0) -> Path:
    """Write `(Signer.sign record, document id)` pairs as `folder/{rank:05d}.sig`, the format `read_signatures` maps.

    The same container as the signature step's (so any other index of signatures, e.g. the
    pack's held-out documents, gets its completeness and settings checks for free).
    """
    writer = _SigWriter(Path(folder), rank, config)
    try:
        for record, doc_id in records:
            writer.add(record, doc_id)
    except BaseException:
        writer.abort()
        raise
    return writer.finish()


def read_signatures(path: str | Path, config: DedupConfig, *, verify_checksum: bool = True) -> _Part:
    """Memory-map one rank's `.sig` file after checking that it is complete and made with `config`."""
    path = Path(path)
    if not path.is_file():
        raise SignatureFileError(
            f"{path}: signature file missing (did the signature task for this rank finish?)"
        )
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(len(_HEAD_MAGIC))
        if head != _HEAD_MAGIC or size < len(_HEAD_MAGIC) + 16:
            raise SignatureFileError(f"{path}: not a cpt signature file (bad header)")
        f.seek(size - 16)
        tail = f.read(16)
        footer_len = int.from_bytes(tail[:8], "little")
        if tail[8:] != _FOOT_MAGIC or footer_len > size - len(_HEAD_MAGIC) - 16:
            raise SignatureFileError(
                f"{path}: incomplete signature file (no completion footer; its task was killed or is still running) — re-run the signature step for this rank"
            )
        body_len = size - 16 - footer_len
        f.seek(body_len)
        try:
            footer = json.loads(f.read(footer_len))
        except ValueError:
            raise SignatureFileError(
                f"{path}: corrupt signature footer — re-run the signature step for this rank"
            ) from None
        if verify_checksum:
            f.seek(0)
            digest = xxhash.xxh3_64()
            left = body_len
            while left:
                block = f.read(min(left, 1 << 22))
                if not block:
                    break
                digest.update(block)
                left -= len(block)
            if left or digest.hexdigest() != footer.get("checksum"):
                raise SignatureFileError(
                    f"{path}: signature file damaged (checksum mismatch) — re-run the signature step for this rank"
                )
    if footer.get("format") != SIG_FORMAT:
        raise SignatureFileError(f"{path}: signature format {footer.get('format')} is not {SIG_FORMAT}")
    if footer.get("config") != config.signature_fields():
        raise SignatureFileError(
            f"{path}: made with {footer.get('config')}, but this run uses {config.signature_fields()} — re-run the signature step"
        )
    arrays = {}
    for name in _SECTIONS:
        sec = footer["sections"][name]
        shape = tuple(sec["shape"])
        if sec["nbytes"] == 0:
            arrays[name] = np.zeros(shape, dtype=sec["dtype"])
        else:
            arrays[name] = np.memmap(path, dtype=sec["dtype"], mode="r", offset=sec["offset"], shape=shape)
    return _Part(**arrays)


# ---------------------------------------------------------------------------------------------
# Decisions: the one code path behind find_duplicates and deduplicate.


@dataclass
class _Decisions:
    reason: np.ndarray  # (n,) uint8: _KEEP/_EXACT/_NEAR
    twin: np.ndarray  # (n,) int64 global index of the kept twin, -1 when kept
    similarity: np.ndarray  # (n,) float32
    counts: dict[str, int]


def sketch_jaccard(a: np.ndarray, shift_a: int, b: np.ndarray, shift_b: int) -> float:
    """Jaccard of two consistent samples of shingle hashes (`Signer.sketch`), both cut at the smaller bound."""
    shift = max(shift_a, shift_b)
    if shift:
        bound = 1 << (32 - shift)
        a = a[: np.searchsorted(a, bound)]
        b = b[: np.searchsorted(b, bound)]
    if a.size == 0 or b.size == 0:
        return 1.0 if a.size == b.size else 0.0
    if a.size > b.size:
        a, b = b, a
    pos = np.searchsorted(b, a)
    pos[pos == b.size] = 0
    inter = int(np.count_nonzero(b[pos] == a))
    return inter / (a.size + b.size - inter)


def _band_keys(block: np.ndarray, band: int, seed: int) -> np.ndarray:
    """One uint64 key per row of a band's (docs, rows) block: equal keys = equal rows (up to 2^-64)."""
    key = np.full(
        block.shape[0], np.uint64((seed * 0x9E3779B97F4A7C15 + band + 1) & 0xFFFFFFFFFFFFFFFF), np.uint64
    )
    for c in range(block.shape[1]):
        key ^= block[:, c].astype(np.uint64)
        key = _fmix64(key)
    return key


def _decide(parts: list[_Part], config: DedupConfig) -> _Decisions:
    sizes = [p.size for p in parts]
    starts = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64))).astype(np.int64)
    n = int(starts[-1])
    reason = np.zeros(n, dtype=np.uint8)
    twin = np.full(n, -1, dtype=np.int64)
    similarity = np.zeros(n, dtype=np.float32)
    counts = {
        "documents": n,
        EXACT_REASON: 0,
        NEAR_REASON: 0,
        "too_short_for_near": 0,
        "candidate_pairs": 0,
        "verified_pairs": 0,
    }

    if config.exact and n:
        exact = np.concatenate([np.asarray(p.exact) for p in parts]) if parts else np.empty((0, 2), np.uint64)
        order = np.lexsort((exact[:, 1], exact[:, 0]))  # stable: equal hashes stay in (rank, index) order
        ex = exact[order]
        new_group = np.ones(n, dtype=bool)
        new_group[1:] = (ex[1:, 0] != ex[:-1, 0]) | (ex[1:, 1] != ex[:-1, 1])
        first = order[np.maximum.accumulate(np.where(new_group, np.arange(n), 0))]
        dup = order[~new_group]
        reason[dup] = _EXACT
        twin[dup] = first[~new_group]
        similarity[dup] = 1.0
        counts[EXACT_REASON] = int(dup.size)

    if config.near and n:
        shingles = np.concatenate([np.asarray(p.shingles) for p in parts])
        too_short = (shingles == 0) & (reason == _KEEP)
        counts["too_short_for_near"] = int(np.count_nonzero(too_short))
        eligible = np.flatnonzero((reason == _KEEP) & (shingles > 0))
        _near(parts, starts, eligible, shingles, config, reason, twin, similarity, counts)
        # An exact group's first member may itself fall as a near duplicate; its copies then point at the
        # document that was kept instead of it (one hop: a near twin is always kept).
        moved = np.flatnonzero((reason == _EXACT) & (reason[np.maximum(twin, 0)] == _NEAR))
        if moved.size:
            via = twin[moved]
            reason[moved], twin[moved], similarity[moved] = _NEAR, twin[via], similarity[via]
            counts[EXACT_REASON] -= int(moved.size)
            counts[NEAR_REASON] += int(moved.size)

    counts["kept"] = int(np.count_nonzero(reason == _KEEP))
    return _Decisions(reason, twin, similarity, counts)


def _near(parts, starts, eligible, shingles, config, reason, twin, similarity, counts) -> None:
    """LSH over the eligible documents, then a greedy pass in input order against kept documents only."""
    if eligible.size < 2:
        return
    member_pos: list[np.ndarray] = []  # positions (into `eligible`) that share a band key with someone
    member_gid: list[np.ndarray] = []
    next_gid = 0
    part_of = np.searchsorted(starts, eligible, side="right") - 1
    for band in range(config.bands):
        keys = np.empty(eligible.size, dtype=np.uint64)
        for p, part in enumerate(parts):
            sel = np.flatnonzero(part_of == p)
            if sel.size:
                local = eligible[sel] - starts[p]
                block = part.signature[:, band * config.rows : (band + 1) * config.rows]
                keys[sel] = _band_keys(np.asarray(block[local]), band, config.seed)
        order = np.argsort(keys, kind="stable")
        sk = keys[order]
        new_group = np.ones(sk.size, dtype=bool)
        new_group[1:] = sk[1:] != sk[:-1]
        gid = np.cumsum(new_group) - 1
        group_size = np.bincount(gid)
        shared = group_size[gid] > 1
        if not shared.any():
            continue
        _, local_gid = np.unique(gid[shared], return_inverse=True)
        member_pos.append(order[shared])
        member_gid.append(local_gid + next_gid)
        next_gid += int(local_gid.max()) + 1
    if not member_pos:
        return
    pos = np.concatenate(member_pos)
    gids = np.concatenate(member_gid)
    by_doc = np.argsort(pos, kind="stable")
    pos, gids = pos[by_doc], gids[by_doc]
    doc_start = np.flatnonzero(np.concatenate(([True], pos[1:] != pos[:-1])))
    doc_end = np.append(doc_start[1:], pos.size)

    kept_in_group: dict[int, list[int]] = {}
    threshold = config.threshold

    def sketch_of(g: int) -> tuple[np.ndarray, int]:
        # A view into the (memory-mapped) store, not a copy: verification holds no per-document memory.
        p = int(np.searchsorted(starts, g, side="right") - 1)
        i = g - int(starts[p])
        return parts[p].doc_sketch(i), int(parts[p].shift[i])

    for s, e in zip(doc_start.tolist(), doc_end.tolist(), strict=True):
        g = int(eligible[pos[s]])
        groups = gids[s:e].tolist()
        shared_bands: dict[int, int] = {}
        for grp in groups:
            for c in kept_in_group.get(grp, ()):
                shared_bands[c] = shared_bands.get(c, 0) + 1
        match, best = -1, 0.0
        if shared_bands:
            size_g = int(shingles[g])
            mine = sketch_of(g)
            # Most shared bands first: a true duplicate shares many, so the first check usually settles it.
            for c in sorted(shared_bands, key=lambda c: (-shared_bands[c], c)):
                counts["candidate_pairs"] += 1
                size_c = int(shingles[c])
                if min(size_g, size_c) < threshold * max(size_g, size_c):
                    continue  # Jaccard ≤ |small| / |large| < threshold
                other = sketch_of(c)
                sim = sketch_jaccard(mine[0], mine[1], other[0], other[1])
                if sim >= threshold:
                    match, best = c, sim
                    counts["verified_pairs"] += 1
                    break
        if match >= 0:
            reason[g], twin[g], similarity[g] = _NEAR, match, best
            counts[NEAR_REASON] += 1
        else:
            for grp in groups:
                kept_in_group.setdefault(grp, []).append(g)


# ---------------------------------------------------------------------------------------------
# The three datatrove steps.


class DedupSignatures(PipelineStep):
    """Dedup stage 1: pass documents through and write this rank's signatures to `output_folder/{rank:05d}.sig`.

    Documents leave unchanged, so the stage can sit at the end of a cleaning/filtering pipeline
    that writes the documents out; the later filter stage re-reads those documents in the same order.
    """

    type = "🫂 - DEDUP"
    name = "🔏 cpt dedup signatures"

    def __init__(self, output_folder: str | Path, config: DedupConfig | None = None) -> None:
        super().__init__()
        self.output_folder = Path(output_folder)
        self.config = config or DedupConfig()

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        signer = Signer(self.config)
        writer = _SigWriter(self.output_folder, rank, self.config)
        try:
            for doc in data or ():
                with self.track_time():
                    record = signer.sign(doc.text if isinstance(doc.text, str) else "")
                    writer.add(record, "" if doc.id is None else str(doc.id))
                self.stat_update("total")
                if record.shingles == 0:
                    self.stat_update("too_short_for_near")
                yield doc
        except BaseException:
            writer.abort()
            raise
        writer.finish()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def find_duplicates(
    sig_folder: str | Path, world_size: int, config: DedupConfig, output_folder: str | Path
) -> dict[str, int]:
    """Dedup stage 2 (one process): decide, over all ranks in (rank, index) order, which documents to drop.

    Writes `output_folder/{rank:05d}.remove` (JSON lines sorted by index: `index`, `id`, `reason`,
    `duplicate_of` — the kept twin's id — and `similarity`) for every rank, then `dedup.json`
    (counts, per-rank document counts, settings) last: the filter stage refuses to run without it.
    """
    sig_folder, output_folder = Path(sig_folder), Path(output_folder)
    if world_size < 1:
        raise ValueError(f"world_size must be ≥ 1, got {world_size}")
    parts = [read_signatures(sig_folder / f"{rank:05d}.sig", config) for rank in range(world_size)]
    output_folder.mkdir(parents=True, exist_ok=True)
    (output_folder / SUMMARY_FILE).unlink(missing_ok=True)
    decisions = _decide(parts, config)
    starts = np.concatenate(([0], np.cumsum([p.size for p in parts], dtype=np.int64)))
    twin_ids: dict[int, str] = {}
    for rank, part in enumerate(parts):
        lo = int(starts[rank])
        removed = np.flatnonzero(decisions.reason[lo : lo + part.size])
        lines = []
        for i in removed.tolist():
            g = lo + i
            t = int(decisions.twin[g])
            if t not in twin_ids:
                tp = int(np.searchsorted(starts, t, side="right") - 1)
                twin_ids[t] = parts[tp].doc_id(t - int(starts[tp]))
            entry = {
                "index": i,
                "id": part.doc_id(i),
                "reason": _REASONS[int(decisions.reason[g])],
                "duplicate_of": twin_ids[t],
                "similarity": round(float(decisions.similarity[g]), 4),
            }
            lines.append(json.dumps(entry, ensure_ascii=False))
        _write_atomic(output_folder / f"{rank:05d}.remove", "".join(line + "\n" for line in lines))
    summary = {
        "world_size": world_size,
        "docs_per_rank": [p.size for p in parts],
        "counts": decisions.counts,
        "config": config.model_dump(),
    }
    _write_atomic(output_folder / SUMMARY_FILE, json.dumps(summary, indent=2, sort_keys=True))
    return dict(decisions.counts)


class DedupFilter(BaseFilter):
    """Dedup stage 3: drop this rank's documents listed by `find_duplicates`.

    Documents are matched by their position in the rank's stream, and each listed position is
    checked against the document id recorded at signature time: a stream that is not the one the
    signatures were made from (different order, different shard) fails loudly instead of
    dropping the wrong documents.
    """

    name = "🫂 cpt dedup filter"

    def __init__(self, remove_folder: str | Path, exclusion_writer: DiskWriter | None = None) -> None:
        super().__init__(exclusion_writer=exclusion_writer)
        self.remove_folder = Path(remove_folder)
        self._position = 0
        self._pending: Iterator[dict[str, Any]] | None = None  # opened in run(): the step must stay picklable
        self._next: dict[str, Any] | None = None

    def _load(self, rank: int, world_size: int) -> int:
        summary_path = self.remove_folder / SUMMARY_FILE
        if not summary_path.is_file():
            raise FileNotFoundError(f"{summary_path}: missing — run find_duplicates before the dedup filter")
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if summary["world_size"] != world_size:
            raise ValueError(
                f"{summary_path}: duplicates were found for {summary['world_size']} ranks, this filter runs with {world_size}"
            )
        path = self.remove_folder / f"{rank:05d}.remove"
        self._pending = _read_jsonl(path)
        self._next = next(self._pending, None)
        self._position = 0
        return int(summary["docs_per_rank"][rank])

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        expected = self._load(rank, world_size)
        yield from super().run(data, rank, world_size)
        if self._position != expected or self._next is not None:
            raise RuntimeError(
                f"dedup filter rank {rank}: read {self._position} documents, signatures were made from {expected}; the stream differs from the one deduplicated"
            )

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        position = self._position
        self._position += 1
        entry = self._next
        if entry is None or entry["index"] != position:
            return True
        if entry["id"] != ("" if doc.id is None else str(doc.id)):
            raise RuntimeError(
                f"dedup filter: document {position} has id {doc.id!r}, signatures recorded {entry['id']!r}; the stream differs from the one deduplicated"
            )
        self._next = next(self._pending, None) if self._pending is not None else None
        doc.metadata["duplicate_of"] = entry["duplicate_of"]
        doc.metadata["duplicate_similarity"] = entry["similarity"]
        return False, entry["reason"]


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing — run find_duplicates before the dedup filter")
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def deduplicate(texts: Iterable[str], config: DedupConfig | None = None) -> list[DedupDecision]:
    """Decide in memory which texts to keep: the signer and decision code of the three steps, without files."""
    config = config or DedupConfig()
    signer = Signer(config)
    records = [signer.sign(t) for t in texts]
    decisions = _decide(
        [_Part.from_records(records, [str(i) for i in range(len(records))], config.num_perm)], config
    )
    out = []
    for i in range(len(records)):
        r = int(decisions.reason[i])
        if r == _KEEP:
            out.append(DedupDecision(i, True))
        else:
            out.append(
                DedupDecision(i, False, _REASONS[r], int(decisions.twin[i]), float(decisions.similarity[i]))
            )
    return out


def lsh_candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Probability that a pair with this Jaccard similarity shares at least one LSH band."""
    return 1.0 - (1.0 - similarity**rows) ** bands


__all__ = [
    "EXACT_REASON",
    "NEAR_REASON",
    "DedupConfig",
    "DedupDecision",
    "DedupFilter",
    "DedupSignatures",
    "SignatureFileError",
    "Signer",
    "deduplicate",
    "find_duplicates",
    "lsh_candidate_probability",
    "normalize",
    "read_signatures",
    "sketch_jaccard",
    "write_signatures",
]
