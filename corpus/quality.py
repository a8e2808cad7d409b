"""Length and quality filters that are correct per language, Korean included.

datatrove's Gopher quality filter drops every clean Korean document (English stop words, or
average Kiwi-morpheme length — see FINDINGS.md). Following FineWeb-2, the rules here are the
same heuristics everywhere (line punctuation, duplicate lines and paragraphs, short lines,
Gopher repetition, stop words, symbol and digit ratios) with per-language *inputs* and
*thresholds* (`THRESHOLDS`): what ends a sentence, which words are function words, how
short a line is. Everything is computed on characters, lines and whitespace tokens, so no
word segmenter is needed (a Korean whitespace token is an eojeol: stem plus particle or
ending, which is what makes the Korean stop-word test work without Kiwi).

Reasons are stable strings, checked in tests: `empty`, `symbol_ratio`, `digit_ratio`,
`low_alpha_words`, `dup_para_frac`, `dup_para_char_frac`, `dup_line_frac`,
`dup_line_char_frac`, `top_ngram`, `dup_ngram`, `keyword_spam`, `navigation`,
`boilerplate`, `short_lines`, `no_stop_words`, `low_punct_lines`.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from itertools import accumulate, filterfalse

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter


class LengthFilter(BaseFilter):
    """Keeps documents whose length in characters (after cleaning) lies in [min_chars, max_chars].

    Whitespace does not count, so a page of blank lines is `too_short`, not kept.
    """

    name = "📏 Length"

    def __init__(
        self,
        min_chars: int = 200,
        max_chars: int | None = 1_000_000,
        exclusion_writer: DiskWriter | None = None,
    ) -> None:
        super().__init__(exclusion_writer)
        self.min_chars = min_chars
        self.max_chars = max_chars

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text or ""
        n = len(text) - sum(text.count(ws) for ws in (" ", "\n", "\t"))
        if n < self.min_chars:
            return False, "too_short"
        if self.max_chars is not None and n > self.max_chars:
            return False, "too_long"
        return True


# --------------------------------------------------------------------------- language inputs

EN_STOP_WORDS = frozenset(
    "a about after all also an and any are as at be been before but by can could did do does for from "
    "had has have he her him his how i if in into is it its just may me more most my no not now of on one "
    "only or other our out over she should so some such than that the their them then there these they "
    "this those through to too under up upon us was we were what when where which while who whom why will "
    "with would you your "
    # archaic function words: the KJV and older prose use them where modern text has the above
    "thee thou thy thine ye hath doth unto shall shalt art".split()
)
KO_STOP_WORDS = frozenset(
    "그리고 그러나 그런데 그래서 하지만 또는 및 또한 즉 그 이 저 것 수 등 때 중 더 및 있다 있는 있고 있으며 "
    "없다 없는 하는 하고 하여 한다 했다 된다 되는 되어 위해 위한 대한 대하여 통해 따라 의해 있습니다 합니다 "
    "입니다 아니라 아닌 같은 모든 각 다른 어떤 이런 그런 매우 가장 다시 이미 바로 경우 때문에 만약".split()
)
# A Korean eojeol that ends in a particle or a verbal ending is doing grammatical work, the
# way an English stop word does. Menus, tags and keyword lists are bare nouns.
KO_FUNCTION_SUFFIXES = (
    "은", "는", "이", "가", "을", "를", "의", "에", "에서", "에게", "으로", "로", "와", "과", "도", "만",
    "까지", "부터", "보다", "처럼", "이나", "나", "고", "며", "면", "서", "지", "게", "다", "요", "까",
    "니다", "한", "할", "된", "될", "인", "던", "든", "며", "여", "야", "데", "죠", "네", "음", "함", "임",
)
DE_STOP_WORDS = frozenset("der die das und ist nicht ein eine zu den von mit sich des auf für im dem an auch es als wie".split())
FR_STOP_WORDS = frozenset("le la les et de des un une est en du que qui dans pour pas sur au il elle ne se ce avec".split())
ES_STOP_WORDS = frozenset("el la los las y de del que en un una es por con para no se lo al como más su".split())

_LATIN_ENDERS = (".", "!", "?", "…", '"', "'", "”", "’", ")", ":", ";")
_CJK_ENDERS = ("。", "！", "？", "」", "』", "）", "．")
# Korean lines often close on a sentence ending without a period (notices, titles of
# sections that are sentences); these count as ended when the line has several words.
_KO_BARE_ENDINGS = ("다", "요", "까", "음", "함", "임", "니다", "시오")


@dataclass(frozen=True)
class LangRules:
    """Per-language inputs and thresholds of `QualityFilter` (FineWeb-2's per-language table)."""

    stop_words: frozenset[str] = frozenset()
    function_suffixes: tuple[str, ...] = ()
    min_stop_words: int = 2  # Gopher: at least two stop words
    min_stop_ratio: float = 0.0  # share of word tokens that are stop words (or end in a function suffix)
    line_enders: tuple[str, ...] = _LATIN_ENDERS + _CJK_ENDERS
    bare_endings: tuple[str, ...] = ()
    min_punct_lines: float = 0.12  # FineWeb
    min_sentence_ends: float = 0.02  # sentence ends per word, the fallback for hard-wrapped text
    short_line_tokens: int = 3  # a "very short" line has at most this many tokens
    max_short_lines: float = 0.75  # headings-rich help pages reach 0.6; menus sit near 1
    char_tokens: bool = False  # scripts without spaces (zh, ja, th): n-grams over characters
    # Gopher's repetition limits are (2, .20) (3, .18) (4, .16) and (5, .15) … (10, .10). They were
    # set on English web pages and drop real documents that repeat by nature (scripture,
    # grammars, legal and help text with fixed phrasing: 10 % of KJV chapters), so, as
    # FineWeb-2 did per language, they are relaxed here. Pasted-over text is still caught by
    # the duplicate line and paragraph rules, and keyword lists repeat far beyond these.
    top_ngrams: tuple[tuple[int, float], ...] = ((2, 0.35), (3, 0.30), (4, 0.25))
    dup_ngrams: tuple[tuple[int, float], ...] = ((5, 0.30), (6, 0.28), (7, 0.26), (8, 0.24), (9, 0.22), (10, 0.20))
    min_dup_item_tokens: int = 3  # lines/paragraphs shorter than this are labels, not counted in the dup fractions
    min_dup_item_chars: int = 10  # the same for scripts without spaces
    dup_line_frac: float = 0.30
    dup_para_frac: float = 0.30
    dup_line_char_frac: float = 0.20
    dup_para_char_frac: float = 0.20
    # Repetition fractions of a short document rest on a handful of lines or n-grams: a help page
    # of ten entries whose descriptions share a sentence frame ("... 여부를 지정합니다.") repeats as
    # much, in share, as a spam page. These pseudo-counts of unrepeated text are added to the
    # denominators (additive smoothing), so a short document needs proportionally more
    # repetition to fail, and long documents are judged as before.
    repetition_prior_chars: int = 0
    repetition_prior_tokens: int = 0  # the same for the keyword share, in content tokens
    max_symbol_ratio: float = 0.20
    max_digit_ratio: float = 0.35
    min_alpha_words: float = 0.60  # Gopher uses 0.8 on English web text; tables of figures sit far below
    max_top_keywords: float = 0.50  # share of content tokens taken by the 3 most frequent ones
    min_keyword_tokens: int = 30
    # distinct / all tokens in 100-token windows (moving-average type-token ratio): clean prose
    # stays above ~0.4 in KO and EN, keyword-stuffed pages repeat a handful of terms
    min_unique_ratio: float = 0.35
    max_nav_lines: float = 0.50
    max_boilerplate: float = 0.40  # share of characters in boilerplate lines


_DEFAULT = LangRules()
THRESHOLDS: dict[str, LangRules] = {
    "en": replace(_DEFAULT, stop_words=EN_STOP_WORDS, min_stop_ratio=0.06),
    # line punctuation and duplicate-line limits from FineWeb-2's kor_Hang config (0.062, 0.374);
    # its n-gram limits are on Kiwi morphemes, not comparable to eojeol tokens, so ours stay
    "ko": replace(
        _DEFAULT,
        # Korean technical and web text quotes English: sentences left untranslated in a help
        # page, product names with their English phrases. English function words in them do the
        # same grammatical work, so a half-translated page is judged on both halves.
        stop_words=KO_STOP_WORDS | EN_STOP_WORDS,
        function_suffixes=KO_FUNCTION_SUFFIXES,
        min_stop_ratio=0.15,
        bare_endings=_KO_BARE_ENDINGS,
        min_punct_lines=0.062,
        dup_line_frac=0.374,
        # Korean is verb-final and technical prose keeps to a few formal predicate frames
        # ("…을 선택합니다", "…할지 여부를 지정합니다", "…할 수 있습니다"), so the last eojeols of
        # many sentences coincide. In a help page of a few entries those shared frames alone
        # exceed the n-gram and keyword shares that mark pasted or stuffed text; smoothing with
        # about one page of unrepeated text lets short pages keep their frames while long
        # repetitive or stuffed documents still fail.
        repetition_prior_chars=1000,
        repetition_prior_tokens=10,
    ),
    "de": replace(_DEFAULT, stop_words=DE_STOP_WORDS, min_stop_ratio=0.05),
    "fr": replace(_DEFAULT, stop_words=FR_STOP_WORDS, min_stop_ratio=0.05),
    "es": replace(_DEFAULT, stop_words=ES_STOP_WORDS, min_stop_ratio=0.05),
    # no spaces: tokens are characters, so n-grams are longer and "short lines" are in characters
    "zh": replace(_DEFAULT, char_tokens=True, short_line_tokens=8,
                  top_ngrams=((4, 0.35), (6, 0.30), (8, 0.25)),
                  dup_ngrams=((10, 0.30), (12, 0.28), (14, 0.26), (16, 0.24), (18, 0.22), (20, 0.20))),
    "default": _DEFAULT,
}
THRESHOLDS["ja"] = THRESHOLDS["zh"]
THRESHOLDS["th"] = THRESHOLDS["zh"]


_NOT_LETTER = re.compile(r"[\W\d_]+")
_HANGUL_SYLLABLE = re.compile(r"[\uac00-\ud7a3]")
_PARA_BREAK = re.compile(r"\n\s*\n")
_HANGUL_ANY = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_THAI = re.compile(r"[\u0e00-\u0e7f]")


def detect_script_language(text: str) -> str:
    """Fallback when no language filter ran: the script mix decides (ko, ja, zh), else English.

    Latin text without a language label is judged by the English rules: the stop-word test
    then protects English, and a pipeline with other Latin-script languages runs the
    language filter first (its label selects the right rules).
    """
    sample = text[:5000]
    letters = len(_NOT_LETTER.sub("", sample))
    hangul = len(_HANGUL_ANY.findall(sample))
    kana = len(_KANA.findall(sample))
    han = len(_HAN.findall(sample))
    thai = len(_THAI.findall(sample))
    if not letters:
        return "default"
    if hangul >= 0.2 * letters:
        return "ko"
    if kana >= 0.1 * letters:
        return "ja"
    if han >= 0.3 * letters:
        return "zh"
    if thai >= 0.3 * letters:
        return "th"
    return "en"


def rules_for(language: str | None, text: str) -> tuple[str, LangRules]:
    """The rules for a document: its language label when we have rules for it, else its script."""
    if language:
        code = re.split(r"[-_]", str(language).lower(), maxsplit=1)[0]
        if code in THRESHOLDS:
            return code, THRESHOLDS[code]
        return code, THRESHOLDS["default"]
    code = detect_script_language(text)
    return code, THRESHOLDS[code]


# --------------------------------------------------------------------------- measurements

# a sentence end: terminal punctuation after a letter (not a decimal point), then space or end
# (the letter before the mark is checked after the mark: a pattern that opens on a character
# class lets `re` skip the text between candidates at C speed, a leading look-behind does not)
_SENTENCE_END = re.compile(r"[.!?…](?<=[^\W\d_][.!?…])(?=[\"'”’)\]]?(?:\s|$))|[。！？]")
_NAV_SEP = re.compile(r"(?:^|\s)(?:\||»|›|>|/|·|•|::|-|–)(?=\s|$)")
# The same separators found from the separator itself (its match starts one character
# later). The space before it is checked after it, so the pattern opens on a character
# class and `re` skips to the next candidate at C speed.
_NAV_SEP_AT = re.compile(r"(?:[|»›>/·•\-–]|::)(?<!\S[|»›>/·•\-–])(?<!\S::)(?!\S)")
_BULLET = re.compile(r"^\s*(?:[-*•·▶►▷◆◇■□●○※→]|\d{1,3}[.)])\s")
# Site furniture, matched as lower-case substrings (one C-speed scan each, much faster than
# one big case-insensitive alternation) plus footer field labels at the start of a line.
# Phrases that are furniture wherever they stand (a copyright notice, a skip link) ...
FURNITURE_PHRASES = (
    "(c) ", "©", "ⓒ", "all rights reserved", "privacy policy", "privacy notice", "privacy settings",
    "terms of use", "terms of service", "terms and conditions", "follow us", "share on", "share this",
    "skip to", "back to top", "powered by", "contact us", "about us", "sitemap", "site map", "read more",
    "click here", "accept all", "manage preferences",
    # a copyright line with its year ("Copyright 2023 Acme Inc."), which may end like a sentence
    "copyright 1", "copyright 2",
    # a page speaking of the site it is on: banners and sign-up calls, sentences or not
    "our site", "our website", "this site", "this website", "our newsletter", "by continuing",
    "이 사이트", "본 사이트", "이 웹사이트", "본 웹사이트",
    "무단전재", "무단 전재", "사이트맵", "본문으로", "맨 위로", "맨위로", "이메일무단수집", "패밀리사이트",
    "개인정보처리방침", "개인정보 처리방침",
)
# ... and words of furniture that are also topics: a help page on logging in, a law on
# personal data or copyright, a guide to cookies or JavaScript. They mark a line as
# furniture only when it is not a sentence (a menu, a button row, a banner fragment).
TOPIC_PHRASES = (
    "copyright", "cookie", "sign in", "sign up", "log in", "login", "log out", "logout", "subscribe",
    "newsletter", "facebook", "twitter", "instagram", "youtube", "linkedin", "javascript", "your browser",
    "로그인", "로그아웃", "회원가입", "개인정보", "이용약관", "저작권", "재배포", "고객센터", "바로가기", "공유하기",
    "구독", "좋아요", "댓글", "쿠키",
)
BOILERPLATE_PHRASES = FURNITURE_PHRASES + TOPIC_PHRASES
_ASCII_FURNITURE = tuple(p for p in FURNITURE_PHRASES if p.isascii())
_ASCII_TOPICS = tuple(p for p in TOPIC_PHRASES if p.isascii())
# Every footer label, lower-cased: a text holding none of them cannot match `_FOOTER_FIELD`
# (checked on the lower-cased text, plus the few characters that match ASCII letters only
# under IGNORECASE: dotted İ, long ſ and the Kelvin sign).
_FOOTER_LABELS = ("상호", "대표", "주소", "사업자", "통신판매업", "호스팅", "전화", "팩스", "이메일", "tel", "fax", "phone", "mail", "address")
# the longest word of each phrase and label, for `_possible`
_PHRASE_KEY = {p: max(p.split(), key=len) for p in (*BOILERPLATE_PHRASES, *_FOOTER_LABELS)}
_FOOTER_FIELD = re.compile(
    r"(?:^|\|)\s*(?:상호|대표자?|주소|사업자\s?등록번호|통신판매업\s?신고|호스팅|전화|팩스|이메일|tel|fax|phone|e-?mail|address)\s*[:.]",
    re.I | re.M,
)


# Symbols in the Gopher sense: not letters, digits, spaces or sentence punctuation.
_SYMBOL = re.compile(r"[^\w\s.,;:!?'\"()\-–—…“”‘’「」『』《》〈〉·、。，！？%]|_")
_NO_LETTER_WORD = re.compile(r"(?<!\S)(?:[^\w\s]|[\d_])+(?!\S)")
_NO_LETTER = re.compile(r"[\W\d_]+")
_EDGE_PUNCT = "".join(chr(c) for c in range(0x21, 0x7F) if not chr(c).isalnum()) + "“”‘’«»…—–·、。，！？「」『』《》〈〉（）【】"


@dataclass(frozen=True)
class CharCounts:
    """Counts over a text's characters and whitespace words, for the first quality rules."""

    words: int  # len(text.split())
    chars: int  # characters that are not whitespace
    symbols: int  # `_SYMBOL` matches
    digits: int  # ASCII digits
    no_letter_words: int  # `_NO_LETTER_WORD` matches: words without a letter (`42`, `--`, `#_1`)


_IS_SPACE, _IS_LETTER, _IS_SYMBOL, _IS_DIGIT = 1, 2, 4, 8
# each class is defined by the pattern the regex version of `char_counts` uses
_WITH_BIT = {bit: [v for v in range(16) if v & bit] for bit in (_IS_SPACE, _IS_LETTER, _IS_SYMBOL, _IS_DIGIT)}
_CLASS_PATTERNS = ((_IS_SPACE, r"\s"), (_IS_LETTER, r"[^\W\d_]"), (_IS_SYMBOL, _SYMBOL.pattern), (_IS_DIGIT, r"[0-9]"))


@cache
def _bmp_classes() -> np.ndarray:
    """Class bits of every code point of the Basic Multilingual Plane, found by the patterns themselves."""
    plane = "".join(map(chr, range(0x10000)))
    table = np.zeros(0x10000, dtype=np.uint8)
    for bit, pattern in _CLASS_PATTERNS:
        table[[m.start() for m in re.finditer(pattern, plane)]] |= bit
    return table


@cache
def _classes_of(cp: int) -> int:
    """Class bits of one code point (outside the BMP table)."""
    return sum(bit for bit, pattern in _CLASS_PATTERNS if re.fullmatch(pattern, chr(cp)))


def char_counts(text: str) -> CharCounts:
    """The counts of `char_counts_regex`, from one table lookup per character.

    Five regex and `count` passes over the text cost more than the rest of the first rules;
    here each character's class comes from a table (built with the same patterns), and words
    are the runs of non-space characters. Characters outside the BMP (emoji, rare CJK) are
    classed once per distinct character.
    """
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if cps.size == 0:
        return CharCounts(0, 0, 0, 0, 0)
    classes = _bmp_classes().take(cps, mode="clip")  # clip: astral code points are looked up below
    if cps.max() > 0xFFFF:
        at = np.flatnonzero(cps > 0xFFFF)
        distinct, which = np.unique(cps[at], return_inverse=True)
        classes[at] = np.fromiter(map(_classes_of, distinct.tolist()), dtype=np.uint8, count=distinct.size)[which]
    per_class = np.bincount(classes, minlength=16)  # how many characters have each combination of bits
    space = (classes & _IS_SPACE).view(bool)  # _IS_SPACE is bit 0: the masked bytes are 0 or 1
    starts = ~space
    starts[1:] &= space[:-1]  # a word starts on a non-space character after a space (or at 0)
    n_words = int(np.count_nonzero(starts))
    # word number of every character (non-decreasing), read at the letters: a change is a new word
    at_letters = np.cumsum(starts, dtype=np.int64)[(classes & _IS_LETTER) != 0]
    lettered = int(np.count_nonzero(at_letters[1:] != at_letters[:-1])) + 1 if at_letters.size else 0
    return CharCounts(
        words=n_words,
        chars=len(text) - int(per_class[_WITH_BIT[_IS_SPACE]].sum()),
        symbols=int(per_class[_WITH_BIT[_IS_SYMBOL]].sum()),
        digits=int(per_class[_WITH_BIT[_IS_DIGIT]].sum()),
        no_letter_words=n_words - lettered,
    )


def char_counts_regex(text: str) -> CharCounts:
    """The definition of `char_counts`, with one regex or `count` pass per count (the tests' reference)."""
    words = text.split()
    return CharCounts(
        words=len(words),
        chars=sum(map(len, words)),
        symbols=len(_SYMBOL.findall(text)),
        digits=sum(map(text.count, "0123456789")),
        no_letter_words=len(_NO_LETTER_WORD.findall(text)),
    )


def find_duplicates(items: list[str]) -> tuple[int, int]:
    """Number of repeated items and the characters they hold (first occurrences not counted)."""
    distinct = set(items)
    return len(items) - len(distinct), sum(map(len, items)) - sum(map(len, distinct))


def _line_starts(text: str) -> list[int]:
    """Offset of the first character of every line; the line holding offset p is bisect_right(starts, p) - 1."""
    return list(accumulate(map((1).__add__, map(len, text.split("\n"))), initial=0))[:-1]


def top_ngram_char_frac(tokens: list[str], n: int, total_chars: int) -> float:
    """Characters covered by the most frequent n-gram (Gopher), relative to all token characters."""
    return top_ngram_stats(tokens, n, total_chars)[0]


def top_ngram_stats(tokens: list[str], n: int, total_chars: int) -> tuple[float, int]:
    """(`top_ngram_char_frac`, how often the most frequent n-gram occurs)."""
    if len(tokens) < n or total_chars == 0:
        return 0.0, 0
    gram, count = Counter(zip(*(tokens[i:] for i in range(n)), strict=False)).most_common(1)[0]
    if count < 2:
        return 0.0, count
    return sum(map(len, gram)) * count / total_chars, count


def dup_ngram_char_frac(tokens: list[str], n: int, total_chars: int) -> float:
    """Characters inside n-grams that already occurred (Gopher; overlapping repeats counted once)."""
    if len(tokens) < n or total_chars == 0:
        return 0.0
    grams = list(zip(*(tokens[k:] for k in range(n)), strict=False))
    repeats = len(grams) - len(set(grams))
    if repeats == 0:
        return 0.0
    # first occurrence of every n-gram, built at C speed (later keys overwrite: iterate backwards)
    first = dict(zip(reversed(grams), range(len(grams) - 1, -1, -1), strict=True))
    covered_until = 0  # tokens before this index are already counted
    dup_chars = 0
    for i in [i for i, gram in enumerate(grams) if first[gram] != i]:
        for j in range(max(i, covered_until), i + n):
            dup_chars += len(tokens[j])
        covered_until = max(covered_until, i + n)
    return dup_chars / total_chars


class _TokenGrams:
    """Exact integer ids of a token list's n-grams, for the repetition measures of long documents.

    `Counter` over n-gram tuples costs a tuple and a hash per position and n; here the ids
    of the n-grams of one length come from those of the length below (a pair of ints ranked
    with `np.unique`), so each length costs one C sort. Ids are exact (no hashing), so every
    count, tie and fraction equals the tuple-based `top_ngram_stats` / `dup_ngram_char_frac`.
    """

    def __init__(self, tokens: list[str]) -> None:
        index = dict.fromkeys(tokens)
        for i, token in enumerate(index):
            index[token] = i
        n = len(tokens)
        self.n_tokens = n
        self.ids = np.fromiter(map(index.__getitem__, tokens), dtype=np.int64, count=n)
        self.lens = np.fromiter(map(len, tokens), dtype=np.int64, count=n)
        self.base = max(1, len(index))
        # n -> (ids of the n-grams in text order, first position of each distinct n-gram, its count)
        self._levels: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def level(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        got = self._levels.get(n)
        if got is not None:
            return got
        if n == 1:
            key = self.ids
        else:
            below = self.level(n - 1)[0]
            key = below[:-1] * self.base + self.ids[n - 1 :]  # < n_tokens * base: fits int64 below 3e9 tokens
        _, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
        got = self._levels[n] = (inverse.astype(np.int64, copy=False), first, counts)
        return got

    def top(self, n: int, total_chars: int) -> tuple[float, int]:
        """`top_ngram_stats`: ties go to the n-gram seen first, as `Counter.most_common` does."""
        if self.n_tokens < n or total_chars == 0:
            return 0.0, 0
        _, first, counts = self.level(n)
        count = int(counts.max())
        if count < 2:
            return 0.0, count
        start = int(first[counts == count].min())
        return int(self.lens[start : start + n].sum()) * count / total_chars, count

    def dup(self, n: int, total_chars: int) -> float:
        """`dup_ngram_char_frac`: characters of the tokens inside any repeated n-gram occurrence."""
        if self.n_tokens < n or total_chars == 0:
            return 0.0
        ids, first, _ = self.level(n)
        if len(first) == len(ids):
            return 0.0
        repeated = np.ones(len(ids), dtype=bool)
        repeated[first] = False
        starts = np.flatnonzero(repeated)
        edges = np.zeros(self.n_tokens + 1, dtype=np.int64)
        edges[starts] += 1
        edges[starts + n] -= 1
        covered = np.cumsum(edges[: self.n_tokens]) > 0
        return int(self.lens[covered].sum()) / total_chars


# below this many tokens the tuple-based functions are faster than numpy's per-call cost
_GRAMS_MIN_TOKENS = 300


def _phrase_starts(lower: str, phrases: Iterable[str]) -> list[int]:
    starts: list[int] = []
    for phrase in phrases:
        pos = lower.find(phrase)
        while pos != -1:
            starts.append(pos)
            pos = lower.find(phrase, pos + len(phrase))
    return starts


def _line_indices(text: str, starts: list[int]) -> set[int]:
    """The line of every offset; one bisect each when there are many, else a count of newlines."""
    if len(starts) > 8:
        line_starts = _line_starts(text)
        last = len(line_starts) - 1
        # an offset past the end (lower() can lengthen a text) belongs to the last line
        return {min(last, bisect.bisect_right(line_starts, p) - 1) for p in starts}
    return {text.count("\n", 0, p) for p in starts}


def _possible(phrases: tuple[str, ...], words: str) -> list[str]:
    """The phrases whose longest word is inside some token of `words` (a necessary condition)."""
    return [p for p in phrases if _PHRASE_KEY[p] in words]


def boilerplate_char_frac(text: str, is_sentence: Callable[[str], bool] | None = None, words: str | None = None) -> float:
    """Share of the text's characters in short lines of site furniture (copyright notices, 이용약관 …).

    Phrases are found in the whole text at once and mapped back to their lines. A line
    with only topic words (`TOPIC_PHRASES`: login, 개인정보 …) counts when `is_sentence`
    (given the stripped line) says it is not a sentence; without it every such line counts.

    `words`, when given, is the lower-cased text's distinct whitespace tokens joined by
    newlines (the keyword rules have them already). A phrase occurs in the text only if its
    longest word occurs in that string, which is about half as long as the text: most
    phrases are ruled out there (`_possible`), and only the rest are searched in the text.
    """
    lower = text.lower()
    # lower() of ASCII text is ASCII: the non-ASCII phrases (Korean, ©) cannot occur in it
    ascii_only = lower.isascii()
    furniture = _ASCII_FURNITURE if ascii_only else FURNITURE_PHRASES
    topics = _ASCII_TOPICS if ascii_only else TOPIC_PHRASES
    labels = _FOOTER_LABELS
    if words is not None:
        furniture, topics, labels = _possible(furniture, words), _possible(topics, words), _possible(labels, words)
    starts = _phrase_starts(lower, furniture)
    if any(label in lower for label in labels) or (not text.isascii() and any(c in text for c in "\u0130\u017f\u212a")):
        starts.extend(m.start() for m in _FOOTER_FIELD.finditer(text))
    topic_starts = _phrase_starts(lower, topics)
    if not starts and not topic_starts:
        return 0.0
    lines = text.split("\n")
    hit_lines = _line_indices(text, starts) if starts else set()
    if topic_starts:
        topical = _line_indices(text, topic_starts) - hit_lines
        hit_lines |= {i for i in topical if is_sentence is None or not is_sentence(lines[i].strip())}
    if not hit_lines:
        return 0.0
    hit = sum(n for n in (len(lines[i].strip()) for i in hit_lines) if n <= 200)
    return hit / max(1, sum(map(len, map(str.strip, lines))))


def _lines_with_separators(text: str) -> list[str]:
    """Lines holding at least two navigation separators, found in one pass over the text."""
    if "\n" not in text:
        return [text] if len(_NAV_SEP.findall(text)) >= 2 else []
    # where `_NAV_SEP` would start: on the whitespace before the separator (-1 stands for 0: same line)
    starts = [m.start() - 1 for m in _NAV_SEP_AT.finditer(text)]
    if len(starts) < 2:
        return []
    line_starts = _line_starts(text)
    per_line = Counter(bisect.bisect_right(line_starts, max(p, 0)) - 1 for p in starts)
    lines = text.split("\n")
    return [lines[i] for i, c in per_line.items() if c >= 2]


_WINDOW = 100


def windowed_unique_ratio(tokens: list[str], window: int = _WINDOW) -> float:
    """Mean share of distinct tokens in half-overlapping windows.

    A whole-document type-token ratio falls as documents grow (a long KJV chapter scores
    like spam); a fixed window makes short and long documents comparable.
    """
    if len(tokens) <= window:
        return len(set(tokens)) / max(1, len(tokens))
    step = window // 2
    vals = [len(set(tokens[i : i + window])) / window for i in range(0, len(tokens) - window + 1, step)]
    return sum(vals) / len(vals)


@dataclass
class QualityStats:
    """The measurements behind a verdict; kept so a report can show why a document went."""

    language: str
    values: dict[str, float] = field(default_factory=dict)


class QualityFilter(BaseFilter):
    """FineWeb-2-style heuristic quality filter with per-language rules.

    The language comes from `doc.metadata[language_key]` (set by the language filter);
    without it the script decides (`detect_script_language`). `rules` overrides or extends
    `THRESHOLDS` per language code. With `store_stats`, the measured values go to
    `doc.metadata["quality"]` so kept documents carry their scores.
    """

    name = "🥇 Quality (per language)"

    def __init__(
        self,
        rules: dict[str, LangRules] | None = None,
        language_key: str = "language",
        store_stats: bool = False,
        exclusion_writer: DiskWriter | None = None,
    ) -> None:
        super().__init__(exclusion_writer)
        self.rules = {**THRESHOLDS, **(rules or {})}
        self.language_key = language_key
        self.store_stats = store_stats

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        verdict, stats = self.judge(doc.text or "", (doc.metadata or {}).get(self.language_key))
        if self.store_stats:
            doc.metadata["quality"] = {k: round(v, 4) for k, v in stats.values.items()}
        return True if verdict is None else (False, verdict)

    def judge(self, text: str, language: str | None = None) -> tuple[str | None, QualityStats]:
        """The first failed rule (a reason string) or None, with the values measured so far."""
        code, r = rules_for(language, text)
        r = self.rules.get(code, r)  # the caller's overrides win, labelled or script-detected
        stats = QualityStats(language=code)
        v = stats.values

        counts = char_counts(text)
        n_chars = counts.chars
        if n_chars <= 0:
            return "empty", stats
        v["symbol_ratio"] = counts.symbols / n_chars
        if v["symbol_ratio"] > r.max_symbol_ratio:
            return "symbol_ratio", stats
        v["digit_ratio"] = counts.digits / n_chars
        if v["digit_ratio"] > r.max_digit_ratio:
            return "digit_ratio", stats

        v["alpha_words"] = 1 - counts.no_letter_words / counts.words
        if v["alpha_words"] < r.min_alpha_words:
            return "low_alpha_words", stats
        words = text.split()

        # ---- repetition (Gopher): paragraphs, lines, then n-grams
        paragraphs = list(filter(None, map(str.strip, _PARA_BREAK.split(text))))
        lines = list(filter(None, map(str.strip, text.split("\n"))))
        total = len(text)
        # Counts skip labels (a `QOTD:` before every quote, a heading repeated as a caption):
        # repeated content is the signal, and the character fractions still weigh everything.
        _, dup_chars = find_duplicates(paragraphs)
        dup, n_items = self._dup_count(paragraphs, r)
        prior_chars = r.repetition_prior_chars
        v["dup_para_frac"], v["dup_para_char_frac"] = dup / n_items, dup_chars / (total + prior_chars)
        if v["dup_para_frac"] > r.dup_para_frac:
            return "dup_para_frac", stats
        if v["dup_para_char_frac"] > r.dup_para_char_frac:
            return "dup_para_char_frac", stats
        _, dup_chars = find_duplicates(lines)
        dup, n_items = self._dup_count(lines, r)
        v["dup_line_frac"], v["dup_line_char_frac"] = dup / n_items, dup_chars / (total + prior_chars)
        if v["dup_line_frac"] > r.dup_line_frac:
            return "dup_line_frac", stats
        if v["dup_line_char_frac"] > r.dup_line_char_frac:
            return "dup_line_char_frac", stats

        tokens = [ch for ch in text if not ch.isspace()] if r.char_tokens else words
        token_chars = sum(map(len, tokens))
        v["top_ngram"] = -1.0
        max_len = max(map(len, tokens), default=0)
        top_count = None  # count of the most frequent shortest n-gram: bounds all longer ones
        grams = _TokenGrams(tokens) if len(tokens) >= _GRAMS_MIN_TOKENS else None
        for n, lim in r.top_ngrams:
            # cheap bound first: a longer n-gram is never more frequent than a shorter one
            if top_count is not None and top_count * n * max_len / max(1, token_chars) <= lim:
                continue
            frac, count = top_ngram_stats(tokens, n, token_chars) if grams is None else grams.top(n, token_chars)
            top_count = count if top_count is None else top_count
            v["top_ngram"] = max(v["top_ngram"], frac - lim)
            if frac > lim:
                return "top_ngram", stats
        v["dup_ngram"] = -1.0
        floor = min((lim for _, lim in r.dup_ngrams), default=1.0)
        for n, lim in r.dup_ngrams:
            if grams is None:
                frac = dup_ngram_char_frac(tokens, n, token_chars + prior_chars)
            else:
                frac = grams.dup(n, token_chars + prior_chars)
            v["dup_ngram"] = max(v["dup_ngram"], frac - lim)
            if frac - lim > 0:
                return "dup_ngram", stats
            # repeated longer n-grams contain repeated shorter ones, so the fraction only
            # falls with n: once under every remaining limit, larger n cannot fail
            if frac <= floor:
                break

        # ---- keyword spam: a few content words make up much of the text
        # each distinct token is judged once: documents repeat most of their words
        lowered = text.lower().split()
        stripped = {w: w.strip(_EDGE_PUNCT) for w in set(lowered)}
        normed = list(map(stripped.__getitem__, lowered))
        # an all-alphabetic token has a letter (isalpha is the cheap test that settles most tokens)
        lettered = {t for t in set(stripped.values()) if t and (t.isalpha() or not _NO_LETTER.fullmatch(t))}
        alpha = list(filter(lettered.__contains__, normed))
        function = self._function_tokens(lettered, r)
        if not r.char_tokens:
            content = list(filterfalse(function.__contains__, alpha))
            if len(content) >= r.min_keyword_tokens:
                top3 = sum(c for _, c in Counter(content).most_common(3))
                v["top_keywords"] = top3 / (len(content) + r.repetition_prior_tokens)
                if v["top_keywords"] > r.max_top_keywords:
                    return "keyword_spam", stats
            tokens_n = list(filter(None, normed))
            if len(tokens_n) >= _WINDOW:
                v["unique_ratio"] = windowed_unique_ratio(tokens_n)
                if v["unique_ratio"] < r.min_unique_ratio:
                    return "keyword_spam", stats

        # ---- page furniture: navigation bars, menus, footers
        nav = sum(1 for ln in _lines_with_separators(text) if self._is_nav_line(ln.strip(), r))
        v["nav_lines"] = nav / len(lines)
        if v["nav_lines"] > r.max_nav_lines and nav >= 1:
            return "navigation", stats
        v["boilerplate"] = boilerplate_char_frac(text, lambda line: self._is_sentence(line, r), "\n".join(stripped))
        if v["boilerplate"] > r.max_boilerplate:
            return "boilerplate", stats
        ended = self._lines_ended(lines, r)
        if len(lines) >= 5:
            k = r.short_line_tokens
            if r.char_tokens:
                short = sum(1 for ln, end in zip(lines, ended, strict=True) if not end and len(ln) <= k)
            else:
                # split(None, k) stops after k cuts: it has at most k parts exactly when the line has at most k tokens
                short = sum(1 for ln, end in zip(lines, ended, strict=True) if not end and len(ln.split(None, k)) <= k)
            v["short_lines"] = short / len(lines)
            if v["short_lines"] > r.max_short_lines:
                return "short_lines", stats

        # ---- natural language: function words and sentence ends
        if (r.stop_words or r.function_suffixes) and not r.char_tokens:
            stop = len(alpha) - len(content)
            v["stop_ratio"] = stop / max(1, len(alpha))
            if stop < r.min_stop_words or v["stop_ratio"] < r.min_stop_ratio:
                return "no_stop_words", stats
        ended_lines = sum(ended) / len(lines)
        ended_paras = sum(self._lines_ended([p.rsplit("\n", 1)[-1].strip() for p in paragraphs], r)) / len(paragraphs)
        v["punct_lines"] = max(ended_lines, ended_paras)
        if v["punct_lines"] < r.min_punct_lines:
            # Hard-wrapped text (plain-text FAQs, bills, quotes with `-- author` lines) ends
            # few lines on punctuation although it is all sentences: count sentence ends in
            # running text before calling it a list or a menu.
            ends = len(_SENTENCE_END.findall(text))
            if r.bare_endings:
                ends += sum(1 for t in words if t.endswith(r.bare_endings) and len(t) >= 2 and t[-1] not in ".!?")
            v["sentence_ends"] = ends / max(1, len(words))
            if v["sentence_ends"] < r.min_sentence_ends:
                return "low_punct_lines", stats
        return None, stats

    @staticmethod
    def _dup_count(items: list[str], r: LangRules) -> tuple[int, int]:
        """Repeated items among those long enough to be content, and how many such items there are."""
        if r.char_tokens:
            content = [it for it in items if len(it) >= r.min_dup_item_chars]
        else:
            content = [it for it in items if it.count(" ") + 1 >= r.min_dup_item_tokens]
        return find_duplicates(content)[0], max(1, len(content))

    @staticmethod
    def _function_tokens(tokens: set[str], r: LangRules) -> set[str]:
        """The tokens `_is_function` accepts, found with set operations instead of one call each."""
        found = tokens & r.stop_words
        if r.function_suffixes:
            found.update(
                t for t in tokens if len(t) >= 2 and t.endswith(r.function_suffixes) and _HANGUL_SYLLABLE.search(t)
            )
        return found

    @staticmethod
    def _lines_ended(lines: list[str], r: LangRules) -> list[bool]:
        """`_line_ended` of every line, in one comprehension."""
        enders, bare = r.line_enders, r.bare_endings
        if not bare:
            return [ln.endswith(enders) for ln in lines]
        # split(None, 2) has three parts exactly when the line has at least three tokens
        return [ln.endswith(enders) or (ln.endswith(bare) and len(ln.split(None, 2)) >= 3) for ln in lines]

    @staticmethod
    def _is_function(token: str, r: LangRules) -> bool:
        if token in r.stop_words:
            return True
        # a particle or ending after a stem: at least one character must remain before it
        return bool(r.function_suffixes) and len(token) >= 2 and token.endswith(r.function_suffixes) and any(
            "\uac00" <= c <= "\ud7a3" for c in token
        )

    @staticmethod
    def _line_ended(line: str, r: LangRules) -> bool:
        if line.endswith(r.line_enders):
            return True
        return bool(r.bare_endings) and line.endswith(r.bare_endings) and len(line.split()) >= 3

    @staticmethod
    def _is_sentence(line: str, r: LangRules) -> bool:
        """A line of running text: an ended line (`_line_ended`) of at least three tokens (characters for unspaced scripts)."""
        long_enough = len(line) >= 3 if r.char_tokens else len(line.split(None, 2)) >= 3
        return long_enough and QualityFilter._line_ended(line, r)

    @staticmethod
    def _is_nav_line(line: str, r: LangRules) -> bool:
        """A bar of short items joined by separators (`Home | News | About`, `홈 > 공지 > 목록`)."""
        seps = len(_NAV_SEP.findall(line))
        if seps < 2:
            return False
        items = [it for it in re.split(r"\s(?:\||»|›|>|/|·|•|::|-|–)\s", line) if it.strip()]
        return len(items) >= 3 and sum(len(it.split()) for it in items) / len(items) <= 3

