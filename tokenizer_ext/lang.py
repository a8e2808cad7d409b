"""Which characters belong to a target language, judged by script.

Extension must only add pieces that can never fire on other text. Script is the one
test that is exact: a piece that holds at least one Hangul character can only match
where the text has Hangul, so English and code keep their ids bit for bit. A
language model detector would be probabilistic; the script table is not.

Such a piece may also carry the punctuation, symbols and digits that stick to target
words (`다.`, `▁(예`, `3월`): they are a large part of the tokens left in Korean text
once every Hangul run is one token, and the Hangul inside the piece still anchors it.
Letters of other scripts are left out, so `Linux를` never becomes one piece.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from cpt.errors import UserError

# Unicode ranges (inclusive) of the letters that make up each supported language.
SCRIPTS: dict[str, tuple[tuple[int, int], ...]] = {
    "ko": ((0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x3130, 0x318F)),  # syllables, jamo, compatibility jamo
    "ja": ((0x3040, 0x309F), (0x30A0, 0x30FF), (0x4E00, 0x9FFF)),  # hiragana, katakana, CJK ideographs
    "zh": ((0x4E00, 0x9FFF), (0x3400, 0x4DBF)),  # CJK ideographs and extension A
    "ru": ((0x0400, 0x04FF),),  # Cyrillic
    "uk": ((0x0400, 0x04FF),),
    "el": ((0x0370, 0x03FF),),  # Greek
    "th": ((0x0E00, 0x0E7F),),  # Thai
    "hi": ((0x0900, 0x097F),),  # Devanagari
    "ar": ((0x0600, 0x06FF),),  # Arabic
    "he": ((0x0590, 0x05FF),),  # Hebrew
}


def check_lang(lang: str) -> str:
    """Refuse a language whose script we cannot tell apart from Latin text."""
    if lang not in SCRIPTS:
        raise UserError(
            f"--lang {lang!r}: no script table for it (supported: {', '.join(sorted(SCRIPTS))}); "
            "Latin-script languages share pieces with English, so they cannot be extended safely this way"
        )
    return lang


@cache
def _char_class(lang: str) -> str:
    ranges = "".join(f"\\u{lo:04x}-\\u{hi:04x}" if hi <= 0xFFFF else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in SCRIPTS[lang])
    return f"[{ranges}]"


@cache
def run_pattern(lang: str) -> re.Pattern[str]:
    """Maximal runs of target-script characters."""
    return re.compile(_char_class(lang) + "+")


def is_target_char(ch: str, lang: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in SCRIPTS[lang])


def is_target_string(text: str, lang: str) -> bool:
    """True when every character is in the target script (and there is at least one)."""
    return bool(text) and run_pattern(lang).fullmatch(text) is not None


WORD_START = "\u2581"  # SentencePiece's word-start marker; never inside an added piece


def is_attachable_char(ch: str) -> bool:
    """Punctuation, symbols and digits: characters that may share a piece with target letters."""
    if ch == WORD_START or ch.isspace():
        return False
    return unicodedata.category(ch)[0] in "PSN"


def is_anchored_string(text: str, lang: str) -> bool:
    """True when `text` holds at least one target character and otherwise only
    punctuation, symbols and digits (no letters of other scripts, no spaces)."""
    if not text or run_pattern(lang).search(text) is None:
        return False
    return all(is_target_char(ch, lang) or is_attachable_char(ch) for ch in text)


def target_share(text: str, lang: str) -> float:
    """Share of the non-space characters that are in the target script."""
    letters = sum(1 for ch in text if not ch.isspace())
    if letters == 0:
        return 0.0
    hits = sum(len(m.group()) for m in run_pattern(lang).finditer(text))
    return hits / letters


def target_runs(text: str, lang: str) -> list[str]:
    return run_pattern(lang).findall(text)


@cache
def utf8_prefixes(lang: str) -> frozenset[bytes]:
    """The proper prefixes (1..len-1 bytes) of target characters' UTF-8 forms that no
    other character begins with.

    A byte-level token may end in the middle of a character. It is a target token only
    when every character it can be the start of is a target character: `EA B0` only
    begins Hangul syllables (U+AC00-AFFF), while `EA` alone also begins Yi, Vai, Javanese
    and five other scripts (U+A000-ABFF), so a token ending in a bare `EA` would also
    fire on their text.
    """
    out: set[bytes] = set()
    shared: set[bytes] = set()
    for lo, hi in SCRIPTS[lang]:
        for cp in range(lo, hi + 1):
            b = chr(cp).encode("utf-8")
            for k in range(1, len(b)):
                prefix = b[:k]
                if prefix in out or prefix in shared:
                    continue
                (out if _only_target_chars_begin_with(prefix, cp, len(b), lang) else shared).add(prefix)
    return frozenset(out)


def _only_target_chars_begin_with(prefix: bytes, cp: int, width: int, lang: str) -> bool:
    """Whether every character of `width` UTF-8 bytes that begins with `prefix` (as `cp` does) is a target character."""
    free = 6 * (width - len(prefix))  # each continuation byte after the prefix holds 6 bits
    first = cp >> free << free
    for other in range(first, first + (1 << free)):
        if 0xD800 <= other <= 0xDFFF:
            continue  # surrogates never occur in UTF-8 text
        ch = chr(other)
        if len(ch.encode("utf-8")) == width and not is_target_char(ch, lang):
            return False
    return True


def is_target_bytes(data: bytes, lang: str, *, allow_leading_space: bool = True) -> bool:
    """True when `data` starts on a character boundary and is target characters, then
    possibly the first bytes of one more character that only target characters begin with.

    Such bytes can only occur in text that has the target script at that very spot,
    whatever bytes surround them: the leading byte of a UTF-8 character fixes where the
    character starts, and a prefix in `utf8_prefixes` fixes its script.
    """
    if allow_leading_space and data[:1] == b" ":
        data = data[1:]
    if not data:
        return False
    prefixes = utf8_prefixes(lang)
    i = 0
    while i < len(data):
        lead = data[i]
        width = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4 if lead >> 3 == 0b11110 else 0
        if width == 0:
            return False
        chunk = data[i : i + width]
        if len(chunk) < width:
            return chunk in prefixes
        try:
            ch = chunk.decode("utf-8")
        except UnicodeDecodeError:
            return False
        if not is_target_char(ch, lang):
            return False
        i += width
    return True
