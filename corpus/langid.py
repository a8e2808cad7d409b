"""Language identification: langdetect's model, made deterministic and 10x+ faster.

The user asked for `langdetect`, so its labels (`ko`, `en`, `ja`, `zh-cn`, ...) and its
55 shipped language profiles are the model. What changes is how the model is run:

1. **Script mix first.** One C-level `str.translate` pass counts letters per script
   (Latin, Hangul, kana/Han, Cyrillic, other), weighted by their UTF-8 bytes as CLD2 weighs
   its script spans, so a Hangul syllable counts like the ~3 Latin letters it stands for.
   The script holding most bytes decides which languages are candidates at all; Hangul
   settles `ko` and Han with kana settles `ja` outright (langdetect itself folds every
   Hangul syllable into one character and every kana into another, so for these two its
   answer is the script anyway).
2. **Deterministic naive Bayes over the same n-grams.** Latin, Cyrillic, Han-only and
   other-script text is scored among the languages whose profile is written in that script
   (derived from the profiles, not hard-coded), with langdetect's own character
   normalization and 1-3-gram extraction (capital-word rule included). Instead of 7 random
   walks over randomly drawn n-grams, the smoothed log-probabilities of all n-grams of a
   bounded sample are summed once, n-grams cached per word, the sum done in numpy. Same
   model, no sampling noise, a fraction of the work. Letters of the other scripts are
   blanked first, so English terms in Korean prose (or the reverse) do not vote.
3. **langdetect for the ambiguous rest.** When the two best languages are a near tie
   (see `_agreement`), the dominant script's text goes to real langdetect, seeded per call,
   so results stay reproducible whatever the global `DetectorFactory.seed` is.

The confidence is comparable with langdetect's probability: langdetect averages 7 random
walks that each stop once one language reaches 0.99999; we compute, from the mean and
variance of the per-n-gram log-likelihood ratio of the two best languages, the chance that
such a walk ends on the best one (gambler's ruin with drift), times the dominant script's
byte share. Clean text scores ~1.0; a Korean page that is 40 % English by bytes scores 0.6.

Text without a single letter (symbol soup, numbers, empty) is `unknown` with score 0.0,
where langdetect would raise "No features in text".
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import math
import os
import re
import tempfile
import threading
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter
from langdetect.detector import Detector
from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import ErrorCode, LangDetectException
from langdetect.utils.ngram import NGram

from cpt.errors import UserError
from cpt.paths import cache_dir

UNKNOWN = "unknown"

# langdetect's smoothing: each n-gram multiplies a language's probability by
# p(ngram | lang) + ALPHA_DEFAULT / BASE_FREQ (detector.py, `_update_lang_prob`).
_ALPHA = 0.5
_BASE_FREQ = 10000
_WEIGHT = _ALPHA / _BASE_FREQ
# Single characters are weak, noisy evidence next to 2- and 3-grams: they count half. Chosen on
# Faker sentences in 9 Latin-script languages (a set apart from the benchmark's), where it
# beat equal weights and other (w1, w2, w3) / smoothing choices on short text.
_ORDER_WEIGHT = np.array([0.5, 1.0, 1.0])
# A langdetect trial stops when one language holds 0.99999 of the probability mass,
# i.e. when the log-odds walk reaches +-ln(0.99999 / 0.00001).
_BARRIER = math.log(0.99999 / 0.00001)

# Script classes written by the classification table (one character per letter).
_ASCII_LETTER, _LATIN, _HANGUL, _KANA, _HAN, _CYRILLIC, _OTHER_LETTER = tuple("alkjhco")


def _script_class(cp: int) -> str | None:
    """The script class of one code point; None deletes non-letters (no script evidence)."""
    ch = chr(cp)
    if not ch.isalpha():
        return None
    if cp < 0x80:
        return _ASCII_LETTER
    if cp < 0x250 or 0x1E00 <= cp <= 0x1EFF:  # Latin-1, Latin Extended A/B, Vietnamese
        return _LATIN
    if 0xAC00 <= cp <= 0xD7AF or 0x1100 <= cp <= 0x11FF or 0x3130 <= cp <= 0x318F or 0xA960 <= cp <= 0xA97F:
        return _HANGUL
    if 0x3040 <= cp <= 0x30FF or 0x31F0 <= cp <= 0x31FF or 0xFF66 <= cp <= 0xFF9F:
        return _KANA
    if 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x3134F:
        return _HAN
    if 0x0400 <= cp <= 0x052F:
        return _CYRILLIC
    return _OTHER_LETTER


# Script groups: the letter classes of each, and the UTF-8 bytes one letter of a class takes.
_GROUP_CLASSES = {
    "latin": (_ASCII_LETTER, _LATIN),
    "hangul": (_HANGUL,),
    "cjk": (_KANA, _HAN),
    "cyrillic": (_CYRILLIC,),
    "other": (_OTHER_LETTER,),
}
_CLASS_GROUP = {c: g for g, cs in _GROUP_CLASSES.items() for c in cs}
_BYTES = {_ASCII_LETTER: 1, _LATIN: 2, _HANGUL: 3, _KANA: 3, _HAN: 3, _CYRILLIC: 2, _OTHER_LETTER: 2}
_RANGES = {
    "latin": "A-Za-z\u00c0-\u024f\u1e00-\u1eff",
    "hangul": "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af",
    "cjk": "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f",
    "cyrillic": "\u0400-\u052f",
}
# for each group: the letters of the other named scripts, blanked before n-gram scoring
_OTHER_SCRIPTS = {
    g: re.compile("[" + "".join(r for h, r in _RANGES.items() if h != g) + "]+") for g in _GROUP_CLASSES
}
# words longer than this are unspaced runs (CJK, Thai): rarely repeated, so not memoised
_LONG_RUN = 24
# a language is a candidate for a script when that script holds this share of its 1-gram mass
_SCRIPT_MASS = 0.3


class _LazyTable(dict):
    """A `str.translate` table filled on first sight of each code point.

    Building it for all of Unicode up front would cost seconds; real text uses a few
    hundred distinct characters, so this stays small and the translate loop stays in C.
    """

    def __init__(self, fn) -> None:
        super().__init__()
        self._fn = fn

    def __missing__(self, cp: int):
        value = self._fn(cp)
        self[cp] = value
        return value


@dataclass(frozen=True)
class Detection:
    """One decision: the label, its confidence, and which path decided it."""

    lang: str
    score: float
    method: str  # "script" | "ngram" | "langdetect" | "none"


class _Script:
    """The candidate languages of one script: their n-gram index and log-probability matrix."""

    def __init__(self, langs: list[str], vocab: dict[str, int], logp: np.ndarray) -> None:
        self.langs = langs
        self.vocab = vocab
        self.logp = logp  # (V, L) float32: log(p(ngram | lang) + langdetect's smoothing)


class _WordTable:
    """Per-script memo: word -> row of a matrix holding that word's summed n-gram log-probs.

    A document's totals then cost one dict lookup per word and one small gather (words x
    languages) instead of one row per n-gram. Rows of long unspaced runs (CJK, Thai) are
    added without an index entry. A memo only: clearing it never changes a result.
    """

    def __init__(self, n_langs: int, capacity: int) -> None:
        self.index: dict[str, int] = {}
        self.ids: dict[str, list[int]] = {}
        self.vecs = np.zeros((1024, n_langs), dtype=np.float32)
        self.used = 0
        self.capacity = capacity

    def reserve(self, rows: int) -> None:
        """Make room for one document's rows before it starts, so rows never move mid-document."""
        if self.used + rows > self.capacity:
            self.index.clear()
            self.ids.clear()
            self.used = 0
        if self.used + rows > len(self.vecs):
            grown = np.zeros(
                (max(2 * len(self.vecs), self.used + rows), self.vecs.shape[1]), dtype=np.float32
            )
            grown[: self.used] = self.vecs[: self.used]
            self.vecs = grown

    def add(self, vectors: np.ndarray) -> int:
        """Append rows (k, L); return the first row's index."""
        first = self.used
        self.vecs[first : first + len(vectors)] = vectors
        self.used += len(vectors)
        return first


_THREAD = threading.local()


def _word_tables() -> dict[tuple[str, int], _WordTable]:
    """This thread's word memos, by (script group, capacity).

    They outlive detectors: datatrove gives every task a fresh copy of its pipeline, and a
    worker process running many tasks keeps what earlier tasks learned. Per thread, because
    a document's rows must not be evicted by another thread's document mid-way.
    """
    tables = getattr(_THREAD, "tables", None)
    if tables is None:
        tables = _THREAD.tables = {}
    return tables


class _ProfileMap(dict):
    """langdetect's `word_lang_prob_map` (n-gram -> probabilities in profile order), built per n-gram on demand.

    The fallback detector looks up only the n-grams of the texts it is given, so this
    fills entries from the sparse rows (184k non-zero of 4.8M) as they are asked for
    instead of 88k lists up front.
    """

    def __init__(self, ngrams: list[str], indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, order: np.ndarray) -> None:
        super().__init__()
        self._rows = dict(zip(ngrams, range(len(ngrams)), strict=True))
        self._indptr, self._cols, self._vals = indptr, cols, vals  # CSR rows, columns in `_Model.langs` order
        self._order = order  # profile-order position -> column

    def __contains__(self, word: object) -> bool:
        return dict.__contains__(self, word) or word in self._rows

    def __missing__(self, word: str) -> list[float]:
        row = self._rows[word]
        lo, hi = self._indptr[row], self._indptr[row + 1]
        dense = np.zeros(len(self._order), dtype=np.float64)
        dense[self._cols[lo:hi]] = self._vals[lo:hi]
        value = dense[self._order].tolist()
        self[word] = value
        return value


def _profile_files(directory: str) -> list[str]:
    """Profile file names in langdetect's load order (os.listdir's: the fallback sums in it)."""
    return [f for f in os.listdir(directory) if not f.startswith(".") and os.path.isfile(os.path.join(directory, f))]


def _load_profiles(directory: str) -> tuple[list[str], list[str], np.ndarray]:
    """(languages in langdetect's load order, n-grams sorted, (V, L) probabilities with columns in load order).

    The same numbers as `DetectorFactory.load_profile` (`freq / n_words[len - 1]` for 1-3-grams,
    0.0 for longer n-grams and absent ones), read with one vectorised division per profile
    instead of a Python loop over 184k entries.
    """
    langs: list[str] = []
    profiles: list[dict] = []
    for filename in _profile_files(directory):
        with open(os.path.join(directory, filename), encoding="utf-8") as fh:
            data = json.load(fh)
        if data["name"] in langs:
            raise LangDetectException(ErrorCode.DuplicateLangError, "Duplicate the same language profile.")
        langs.append(data["name"])
        profiles.append(data)
    ngrams = sorted({g for data in profiles for g in data["freq"]})
    row = {g: i for i, g in enumerate(ngrams)}
    probs = np.zeros((len(ngrams), len(langs)), dtype=np.float64)
    for col, data in enumerate(profiles):
        freq = data["freq"]
        words = [g for g in freq if 1 <= len(g) <= 3]
        rows = np.fromiter(map(row.__getitem__, words), dtype=np.intp, count=len(words))
        counts = np.fromiter(map(freq.__getitem__, words), dtype=np.float64, count=len(words))
        n_words = np.asarray(data["n_words"], dtype=np.float64)
        lengths = np.fromiter(map(len, words), dtype=np.intp, count=len(words))
        probs[rows, col] = counts / n_words[lengths - 1]
    return langs, ngrams, probs


def compile_profiles(directory: str) -> dict[str, np.ndarray]:
    """Everything the detector takes from langdetect's profiles, as plain arrays (what the cache holds).

    `langs` sorted (os.listdir order differs between machines, so ties break the same
    everywhere) and `load_order` (langdetect's, for the fallback); per script group `G`:
    `G.cols` (its languages), `G.vocab` (its n-grams) and `G.logp` (smoothed, order-weighted
    log-probabilities, float32); the fallback's probabilities as sparse rows over `ngrams`.
    """
    load_order, ngrams, probs = _load_profiles(directory)
    order = sorted(range(len(load_order)), key=lambda i: load_order[i])
    langs = [load_order[i] for i in order]
    probs = probs[:, order]  # (V, L)
    # which script each language writes: where its single-character mass lies
    rows_of: dict[str, list[int]] = {g: [] for g in _GROUP_CLASSES}
    for i, g in enumerate(ngrams):
        cls = _script_class(ord(g)) if len(g) == 1 else None
        if cls is not None:
            rows_of[_CLASS_GROUP[cls]].append(i)
    # row by row in n-gram order, as a running sum (cumsum adds sequentially, unlike sum)
    mass = {g: np.cumsum(probs[r], axis=0)[-1] if r else np.zeros(len(langs)) for g, r in rows_of.items()}
    total = sum(mass.values())
    arrays: dict[str, np.ndarray] = {
        "langs": np.array(langs, dtype=str),
        "load_order": np.array(load_order, dtype=str),
        "ngrams": np.array(ngrams, dtype=str),
    }
    for group, m in mass.items():
        cols = np.flatnonzero(m >= _SCRIPT_MASS * np.maximum(total, 1e-12))
        rows = np.flatnonzero(probs[:, cols].max(axis=1) > 0) if len(cols) else np.zeros(0, dtype=np.intp)
        order_weight = _ORDER_WEIGHT[[len(ngrams[r]) - 1 for r in rows]][:, None]  # (V, 1)
        arrays[f"{group}.cols"] = cols.astype(np.int64)
        arrays[f"{group}.vocab"] = np.array([ngrams[r] for r in rows], dtype=str)
        arrays[f"{group}.logp"] = (np.log(probs[np.ix_(rows, cols)] + _WEIGHT) * order_weight).astype(np.float32)
    nz_rows, nz_cols = np.nonzero(probs)  # row-major: CSR order
    arrays["fallback.indptr"] = np.searchsorted(nz_rows, np.arange(len(ngrams) + 1)).astype(np.int64)
    arrays["fallback.cols"] = nz_cols.astype(np.int64)
    arrays["fallback.vals"] = probs[nz_rows, nz_cols]
    return arrays


_ARRAY_KEYS = frozenset(
    ["langs", "load_order", "ngrams", "fallback.indptr", "fallback.cols", "fallback.vals"]
    + [f"{g}.{k}" for g in _GROUP_CLASSES for k in ("cols", "vocab", "logp")]
)


def _cache_file(directory: str) -> Path:
    """Where the compiled profiles are kept, named by everything they are computed from.

    The key covers this module's source (any change to the compilation), langdetect's
    version, and the profiles' names (in load order), sizes and modification times, so a
    stale file is never read: it just stops being looked for.
    """
    key = hashlib.sha256(Path(__file__).read_bytes())
    key.update(importlib.metadata.version("langdetect").encode())
    for name in _profile_files(directory):
        st = os.stat(os.path.join(directory, name))
        key.update(f"\0{name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return cache_dir() / "langid" / f"profiles-{key.hexdigest()[:24]}.npz"


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if set(z.files) != _ARRAY_KEYS:
                return None
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # absent, partly written by a killed run, or damaged: compile again


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write-then-rename, so concurrent workers and killed runs never leave a torn file.

    A cache that cannot be written (read-only home) only costs the next process the
    compilation again.
    """
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def compiled_profiles(directory: str = PROFILES_DIRECTORY) -> dict[str, np.ndarray]:
    """`compile_profiles`, read from the cache when it holds them (about 0.03 s instead of 1 s).

    Every worker process loads the model once; with the cache that costs no more than
    starting the process.
    """
    path = _cache_file(directory)
    arrays = _read_cache(path)
    if arrays is None:
        arrays = compile_profiles(directory)
        _write_cache(path, arrays)
    return arrays


class _Model:
    """langdetect's profiles, split by the script each language is written in."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.langs: list[str] = arrays["langs"].tolist()
        self.scripts: dict[str, _Script] = {}
        for group in _GROUP_CLASSES:
            vocab = arrays[f"{group}.vocab"].tolist()
            self.scripts[group] = _Script(
                [self.langs[j] for j in arrays[f"{group}.cols"].tolist()],
                dict(zip(vocab, range(len(vocab)), strict=True)),
                arrays[f"{group}.logp"],
            )
        self._arrays = arrays
        # per-character tables, filled as characters are first seen (a few hundred per language)
        self.normalize = _LazyTable(self._normalize_cp)
        self.script = _LazyTable(_script_class)

    @cached_property
    def factory(self) -> DetectorFactory:
        """The langdetect fallback: a factory over the same numbers, in langdetect's own
        profile order (its normalisation sums in that order), built when first needed."""
        a = self._arrays
        factory = DetectorFactory()
        factory.langlist = a["load_order"].tolist()
        position = {lang: k for k, lang in enumerate(self.langs)}
        order = np.array([position[lang] for lang in factory.langlist])
        factory.word_lang_prob_map = _ProfileMap(
            a["ngrams"].tolist(), a["fallback.indptr"], a["fallback.cols"], a["fallback.vals"], order
        )
        return factory

    def _normalize_cp(self, cp: int) -> str:
        # langdetect's per-character normalization (Hangul -> 가, kana -> あ/ア, CJK classes, ...)
        return NGram.normalize(chr(cp))


@lru_cache(maxsize=1)
def _model() -> _Model:
    """Load once per process: every detector and filter shares the matrices."""
    return _Model(compiled_profiles())


def load_model() -> None:
    """Load the shared profiles now rather than on the first document (for timing)."""
    _model()


@lru_cache(maxsize=1)
def _profile_names() -> tuple[str, ...]:
    # langdetect names each profile file after its language; listing them needs no loading
    return tuple(sorted(f for f in os.listdir(PROFILES_DIRECTORY) if not f.startswith(".")))


def known_languages() -> list[str]:
    """The labels langdetect (and so this module) can return, besides `unknown`."""
    return list(_profile_names())


class LanguageDetector:
    """Deterministic, fast language ID with langdetect's labels and profiles.

    `max_chars` bounds the work per document: longer texts are sampled as three evenly
    spaced windows (start, middle, end), so a document that switches language half-way is
    still seen whole. `fallback="langdetect"` sends the dominant script's text to real
    langdetect, seeded with `seed`, when our two best languages are a near tie (agreement
    below `fallback_below`); `fallback=None` keeps every decision in this module.
    `cache_words` bounds the per-word memo (a memo only: results never depend on it).
    """

    def __init__(
        self,
        max_chars: int = 600,
        seed: int = 0,
        fallback: str | None = "langdetect",
        fallback_below: float = 0.55,
        cache_words: int = 200_000,
    ) -> None:
        if fallback not in (None, "langdetect"):
            raise UserError(f"unknown language-ID fallback {fallback!r} (use 'langdetect' or none)")
        if max_chars < 30:
            raise UserError(f"max_chars={max_chars} is too small for language ID (use at least 30)")
        self.max_chars = max_chars
        self.seed = seed
        self.fallback = fallback
        self.fallback_below = fallback_below
        self.cache_words = max(cache_words, 4 * max_chars)  # one document's rows always fit

    # -- public -----------------------------------------------------------------------

    def detect(self, text: str) -> tuple[str, float]:
        """Return (language, confidence in [0, 1]); ("unknown", 0.0) when there is no letter."""
        d = self.classify(text)
        return d.lang, d.score

    def classify(self, text: str) -> Detection:
        """Like `detect`, and also say which path decided (for counters and debugging)."""
        m = _model()
        sample = self._sample(text)
        if "@" in sample or "://" in sample:
            # langdetect's own URL / e-mail patterns: addresses are Latin letters of no language
            sample = Detector.MAIL_RE.sub(" ", Detector.URL_RE.sub(" ", sample))
        classes = sample.translate(m.script)
        weights = {g: sum(classes.count(c) * _BYTES[c] for c in cs) for g, cs in _GROUP_CLASSES.items()}
        if weights["hangul"] and weights["hangul"] >= weights["cjk"] and not classes.count(_KANA):
            # Han beside at least as much Hangul and no kana is Korean Hanja (law text: 第44條(休職))
            weights["hangul"] += weights["cjk"]
            weights["cjk"] = 0
        total = sum(weights.values())
        if total == 0:
            return Detection(UNKNOWN, 0.0, "none")
        group = max(_GROUP_CLASSES, key=lambda g: weights[g])  # dict order breaks ties the same way each time
        share = weights[group] / total
        if group == "hangul":  # no other langdetect language writes Hangul
            return Detection("ko", share, "script")
        if group == "cjk" and classes.count(_KANA) >= 0.1 * (classes.count(_KANA) + classes.count(_HAN)):
            # kana belong to Japanese alone; Japanese prose runs ~40-70 % kana among its CJK letters
            return Detection("ja", share, "script")
        script = m.scripts[group]
        if not script.langs:  # a script no profile is written in
            return Detection(UNKNOWN, 0.0, "none")
        if share < 1.0:  # score the dominant script alone, as CLD2 scores script spans apart
            sample = _OTHER_SCRIPTS[group].sub(" ", sample)
        steps = self._steps(sample, group, script)
        if steps is None:
            return Detection(UNKNOWN, 0.0, "none")
        lang, agreement = self._score(steps, script)
        if self.fallback == "langdetect" and agreement < self.fallback_below:
            ranked = self._langdetect(sample)
            # langdetect's answer outside this script's languages (ko for Han-only text) is noise
            usable = [(lang_, p) for lang_, p in ranked if lang_ in script.langs]
            if usable:
                return Detection(usable[0][0], share * usable[0][1], "langdetect")
        return Detection(lang, share * agreement, "ngram")

    # -- internals --------------------------------------------------------------------

    def _sample(self, text: str) -> str:
        n = self.max_chars
        if len(text) <= n:
            return text
        w = n // 3
        mid = (len(text) - w) // 2
        return f"{text[:w]} {text[mid : mid + w]} {text[-w:]}"

    def _steps(self, sample: str, group: str, script: _Script) -> tuple[np.ndarray, list[int]] | None:
        """The text's word rows (summed n-gram log-probs, words x languages) and its n-gram ids.

        Totals come from the few word rows; the n-gram ids are kept for the agreement, whose
        variance must be per n-gram to match langdetect's walk. None when no n-gram of the
        text is in any profile of the script.
        """
        tables = _word_tables()
        table = tables.get((group, self.cache_words))
        if table is None:
            table = tables[(group, self.cache_words)] = _WordTable(len(script.langs), self.cache_words)
        norm = NGram.normalize_vi(sample).translate(_model().normalize)
        table.reserve(len(norm) + 1)  # a row needs at least one character
        index, word_ids, vocab = table.index, table.ids, script.vocab
        # rows in text order, whatever the memo holds, so the totals are summed in the same
        # order (and come out the same to the last bit) on a cold or a warm memo; a word first
        # seen here stands as -1 - k (its place among `fresh`) until its row exists
        rows: list[int] = []
        ids: list[int] = []
        # words first seen in this document get their rows in one numpy call at the end
        fresh: list[str | None] = []  # None: an unspaced run (CJK, Thai), too rarely repeated to memoise
        fresh_ids: list[int] = []
        starts: list[int] = []
        pending: dict[str, int] = {}  # fresh word -> k
        for word in norm.split(" "):
            if not word:
                continue
            row = index.get(word)
            if row is not None:
                if row >= 0:
                    rows.append(row)
                    ids.extend(word_ids[word])
                continue
            k = pending.get(word)
            if k is not None:
                rows.append(-1 - k)
                ids.extend(word_ids[word])
                continue
            found = self._word_ids(word, vocab)
            if not found:
                index[word] = -1
                continue
            k = len(fresh)
            if len(word) <= _LONG_RUN:
                pending[word] = k
                word_ids[word] = found
                fresh.append(word)
            else:
                fresh.append(None)
            starts.append(len(fresh_ids))
            fresh_ids.extend(found)
            ids.extend(found)
            rows.append(-1 - k)
        if fresh:
            first = table.add(np.add.reduceat(script.logp[fresh_ids], starts, axis=0))
            for k, word in enumerate(fresh):
                if word is not None:
                    index[word] = first + k
            rows = [r if r >= 0 else first - 1 - r for r in rows]
        if not rows:
            return None
        return table.vecs[rows], ids

    @staticmethod
    def _word_ids(word: str, vocab: dict[str, int]) -> list[int]:
        """The n-grams langdetect's `NGram.add_char` loop takes from one space-delimited word.

        Words are framed by spaces (" w o r d "), 1-3-grams end at every character, and
        inside an all-capitals run (from its second capital on) no n-gram is taken.
        """
        tail = word[1:]
        if tail == tail.lower():  # no capital after the first letter: no capital run, take all
            p = f" {word} "
            n = len(p)
            grams = [p[i : i + 1] for i in range(1, n - 1)]
            grams += [p[i : i + 2] for i in range(n - 1)]
            grams += [p[i : i + 3] for i in range(n - 2)]
            return [i for i in map(vocab.get, grams) if i is not None]
        return _run_ids(word, vocab)

    @staticmethod
    def _score(steps: tuple[np.ndarray, list[int]], script: _Script) -> tuple[str, float]:
        rows, ids = steps
        if len(script.langs) == 1:
            return script.langs[0], 1.0
        total = rows.sum(axis=0)  # (L,)
        top2 = np.argpartition(total, -2)[-2:]
        best, second = int(top2[1]), int(top2[0])
        if total[second] > total[best]:
            best, second = second, best
        if total[best] == total[second]:  # exact tie: the alphabetically first label, every time
            best, second = min(best, second), max(best, second)
        idx = np.asarray(ids, dtype=np.intp)
        return script.langs[best], _agreement(script.logp[idx, best] - script.logp[idx, second])

    def _langdetect(self, text: str) -> list[tuple[str, float]]:
        """langdetect's ranked (language, probability) list, seeded per call; [] if it has no features."""
        detector = _model().factory.create()
        detector.seed = self.seed  # per call, so the global DetectorFactory.seed is never needed
        detector.append(text)
        try:
            return [(r.lang, float(r.prob)) for r in detector.get_probabilities()]
        except LangDetectException:
            return []


def _run_ids(word: str, vocab: dict[str, int]) -> list[int]:
    """langdetect's `NGram.add_char` loop over one space-free word, exactly.

    Words are framed by spaces (" w o r d "), 1-3-grams end at every character, and inside
    an all-capitals run (from its second capital on) no n-gram is taken.
    """
    ids: list[int] = []
    grams = " "
    last = " "
    capital = False
    for ch in word + " ":
        grams = (grams if len(grams) < 3 else grams[1:]) + ch
        if ch.isupper():
            if last.isupper():
                capital = True
        else:
            capital = False
        last = ch
        if capital:
            continue
        for k in (1, 2, 3):
            if len(grams) < k:
                break
            g = grams[-k:]
            if g != " ":
                i = vocab.get(g)
                if i is not None:
                    ids.append(i)
    return ids


def _agreement(diff: np.ndarray) -> float:
    """Chance that a langdetect-style random walk over these n-grams ends on the best language.

    Each langdetect trial adds the log-ratio of one randomly drawn n-gram at a time until
    the walk reaches +-_BARRIER. For a walk with drift mu and variance s2 per step, the
    probability of hitting the upper barrier first is 1 / (1 + exp(-2 mu B / s2)).
    """
    diff = diff.astype(np.float64)
    mu = float(diff.mean())
    var = float(np.dot(diff, diff)) / len(diff) - mu * mu
    if mu <= 0.0:
        return 0.5
    if var <= 1e-12:
        return 1.0
    z = 2.0 * mu * _BARRIER / var
    return 1.0 / (1.0 + math.exp(-z)) if z < 700 else 1.0


_DEFAULT: LanguageDetector | None = None


def detect(text: str) -> tuple[str, float]:
    """Module-level convenience: a shared `LanguageDetector()` with default options."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = LanguageDetector()
    return _DEFAULT.detect(text)


def _check_languages(languages: Iterable[str]) -> list[str]:
    known = set(known_languages())
    prefixes = {lang.split("-")[0] for lang in known}
    wanted = [lang.strip().lower() for lang in languages if lang.strip()]
    bad = [lang for lang in wanted if lang not in known and lang not in prefixes]
    if bad:
        raise UserError(
            f"unknown language code(s) {', '.join(bad)} for the language filter",
            problems=[f"known codes: {', '.join(sorted(known))} (or a prefix such as 'zh')"],
        )
    return wanted


class LanguageFilter(BaseFilter):
    """Keep documents in `languages`; tag every document with its language and score.

    Drop reasons (counted by datatrove as `dropped_<reason>`): `lang_unknown` (no letter
    to judge by), `lang_other` (a language not asked for), `lang_low_score` (the right
    language, but below `min_score`). A code such as `zh` matches `zh-cn` and `zh-tw`.
    `languages=None` keeps any language that clears `min_score`; `label_only=True` tags
    and keeps everything.
    """

    name = "🌍 Language ID (langdetect profiles)"
    # no `_requires_dependencies`: langdetect is a dependency of cpt itself, and datatrove checks one by
    # reading the metadata of every installed distribution (0.2 s of every build's start)

    def __init__(
        self,
        languages: list[str] | str | None,
        min_score: float = 0.65,
        seed: int = 0,
        max_chars: int = 600,
        fallback: str | None = "langdetect",
        label_only: bool = False,
        exclusion_writer: DiskWriter | None = None,
    ) -> None:
        super().__init__(exclusion_writer)
        if isinstance(languages, str):
            languages = [languages]
        self.languages = None if languages is None else _check_languages(languages)
        if not 0.0 <= min_score <= 1.0:
            raise UserError(f"language min_score must lie in [0, 1], got {min_score}")
        self.min_score = min_score
        self.label_only = label_only
        self.detector = LanguageDetector(max_chars=max_chars, seed=seed, fallback=fallback)

    def _wanted(self, lang: str) -> bool:
        if self.languages is None:
            return True
        return lang in self.languages or lang.split("-")[0] in self.languages

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text if isinstance(doc.text, str) else ""
        d = self.detector.classify(text)
        doc.metadata["language"] = d.lang
        doc.metadata["language_score"] = round(d.score, 4)
        self.stat_update(f"lid_{d.method}")
        if self.label_only:
            return True
        if d.lang == UNKNOWN:
            return False, "lang_unknown"
        if not self._wanted(d.lang):
            return False, "lang_other"
        if d.score < self.min_score:
            return False, "lang_low_score"
        return True


__all__ = [
    "UNKNOWN",
    "Detection",
    "LanguageDetector",
    "LanguageFilter",
    "detect",
    "known_languages",
    "load_model",
]
