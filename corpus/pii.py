"""Replace personal identifiers with typed placeholders: `[EMAIL] [PHONE] [RRN] [CARD] [SSN] [IP] [BRN]`.

datatrove's stock `PIIFormatter` masks emails and *public* IPv4 addresses only; it knows no
phone number and no Korean identifier. This module covers what Korean and US text contains:

- EMAIL: `local@domain.tld` (Korean particles glued on: `hong@naver.com으로`) and the
  harvester-dodging `hong [at] naver [dot] com` / `hong(at)naver.com`.
- PHONE: Korean mobile (010/011/016-019) and landline (02, 031-064, 070, 080, 050X) with
  hyphen / dot / middle-dot / space / no separator, `(02) 123-4567`, `02)123-4567`; Korean
  representative numbers (`1588-1234`; bare `15881234` only next to a phone keyword);
  `+82`, `82-10-…`, `(+82)`, `+1` and any E.164 number; US numbers (`555-123-4567`,
  `(555) 123-4567`, `555.123.4567`, `1-800-…`, `001-…`, bare 10 digits, extensions).
- RRN: 주민등록번호 and 외국인등록번호 (`YYMMDD-GNNNNNN`, with or without the hyphen, and the
  redacted `YYMMDD-G******`). The old check digit is NOT required (numbers issued since
  October 2020 do not follow it); the date part and the gender/century digit (1-8) are.
- CARD: payment cards of 13-19 digits (12 for Maestro; 13-15 only with the prefixes of the
  brands that issue those lengths), bare or grouped by spaces/hyphens/dots, Luhn-checked.
- SSN: US `AAA-GG-SSSS` with the SSA's rules (area not 000/666/9xx, group not 00, serial
  not 0000); a bare 9-digit number only next to a keyword ("SSN", "social security").
- BRN: Korean business registration numbers `NNN-NN-NNNNN`; a bare 10-digit number only
  next to a keyword ("사업자", "등록번호", "BRN").
- IP: every IPv4 address (private ones too: they still locate a person's network) and IPv6
  in full and `::`-compressed form, validated by `ipaddress`. Four one-digit parts
  (`8.8.4.4`) read like a section number too, so they need an address word before them
  (IP, DNS, server, 주소, 서버 …) or a port / prefix length after them (`1.1.1.1:53`, `/8`).
Fullwidth forms (`０１０－１２３４－５６７８`) are read as their ASCII twins.

Why hand-written scanning rather than one big regex: Python's `re` only skips quickly over
text when a pattern starts with a plain character class; an alternation guarded by
look-behinds runs 5-10x slower on Hangul. So one fast pattern finds where numbers start
(a digit not glued to an ASCII letter or another number, or `+`/`(`, with four digits close
behind), and at each such start the anchored per-type patterns are tried in priority order;
a candidate a validator rejects (bad date, bad Luhn, a year range) lets the next type try.
Emails are found from their `@`, IPv6 addresses from a `:x:` pair. Boundaries are
ASCII-only on purpose: Hangul glued to a number (`주민번호는900101-1234567이고`) does not hide it.

Look-alikes that must survive — dates in every spelling, prices, ISBNs, version strings,
times, law article references, year ranges (`1592-1598`), bill numbers, long numbers that
fail Luhn, section numbers (`8.1.6.1. dpkg` at a line start), amounts (`3500000000원`) — are
kept by the shape of the patterns, by digit boundaries (a number is never matched from the
middle of a longer `1.2.3`/`1-2-3` chain), by the validators and by a few words of context
(24 characters before the number: "ISBN", "version", "timestamp", "주민", ...). What stays
ambiguous is said where it is decided: a bare 13-digit number with a valid YYMMDD and gender
digit is an RRN (unless it reads as a Visa number, an EAN-13 barcode or a timestamp by its
context), a bare 10-digit number shaped like a US number is a phone, and `1.2.3.4` with no
version word before it is an address.
"""

from __future__ import annotations

import calendar
import gzip
import io
import ipaddress
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from datatrove.pipeline.formatters.base import BaseFormatter

from cpt.errors import UserError, require_path

PII_TYPES: tuple[str, ...] = ("EMAIL", "PHONE", "RRN", "CARD", "SSN", "IP", "BRN")
DEFAULT_PLACEHOLDERS: dict[str, str] = {t: f"[{t}]" for t in PII_TYPES}


@dataclass(frozen=True, order=True)
class Span:
    """A detected identifier: `text[start:end]` is of PII type `type`."""

    start: int
    end: int
    type: str


# ---------------------------------------------------------------------------------------------
# building blocks

# hyphen-minus, hyphen, non-breaking hyphen, figure dash, en dash, minus, fullwidth hyphen-minus
_DASH = "-\u2010\u2011\u2012\u2013\u2212\uff0d"
# (_DASH starts with "-", so it must open every character class it goes into, or it makes a range)
_D = f"[{_DASH}]"
# full stop, the middle dots Korean text writes between number groups (·, ㆍ, ∙), and the
# jamo ㅡ typed as a dash on Korean keyboards
_DOTS = ".\u00b7\u318d\u2219\u3161"
# a separator inside a phone number: a dash or dot (spaces allowed around it), or one or two spaces
_SEP = rf"(?:[ \t]?[{_DASH}{_DOTS}][ \t]?|[ \t]{{1,2}})"
# a separator between the groups of a card / SSN / BRN number (the same one throughout)
_GROUP_SEP = rf"(?P<s>[{_DASH} .])"
# right boundary: no further digit, and not the middle of a longer 1-2-3 / 1.2.3 chain
_RB = rf"(?![0-9])(?![{_DASH}.][0-9])"
_EXT = r"(?:[ \t]?(?i:x|ext\.?|#|내선)[ \t]?[0-9]{1,5}(?![0-9]))"

# Where a number may start: a digit not glued to an ASCII letter/digit/underscore (Hangul is
# fine: Korean glues particles to numbers) and not continuing a `digit.`/`digit-` chain; or a
# `+`/`(` that may open a phone number. Starts with a plain character class, so `re` skips
# the text between numbers at C speed.
# The look-ahead drops short numbers ("제12조", "2024년", "1,234원") before any per-type work:
# every identifier here has four more digits close behind its first, but an IPv4 address of
# four one-digit parts ("8.8.4.4").
_START = re.compile(
    rf"[0-9+(\uff10-\uff19](?<![0-9A-Za-z_][0-9])(?<![0-9][{_DASH}.][0-9])"
    rf"(?=(?:[{_DASH}{_DOTS} \t()+]{{0,3}}[0-9\uff10-\uff19]){{4}}|\.[0-9]\.[0-9]\.[0-9])"
)

_UNITS = frozenset("원달엔위개명건회점년월일시분초주배억만천백%$€£¥")

_KEYWORDS = {
    "SSN": re.compile(r"ssn|social\s*security|사회\s*보장", re.IGNORECASE),
    "BRN": re.compile(r"사업자|등록\s*번호|brn|business\s*reg", re.IGNORECASE),
    "PHONE": re.compile(
        r"전화|연락|문의|대표\s*번호|고객\s*센터|콜\s*센터|팩스|tel|phone|call|fax|☎|📞", re.IGNORECASE
    ),
    "ISBN": re.compile(r"isbn|issn", re.IGNORECASE),
    "RRN": re.compile(r"주민|외국인|등록\s*번호|rrn|resident", re.IGNORECASE),
    "IP": re.compile(
        r"\bip(?:v4)?\b|addr|dns|server|host|gateway|router|ping|resolver|주소|서버|아이피|게이트웨이|라우터|호스트|접속",
        re.IGNORECASE,
    ),
    "TIMESTAMP": re.compile(r"time|\bts\b|epoch|\bms\b|millis|시각|시간|타임스탬프", re.IGNORECASE),
    "VERSION": re.compile(
        r"(?:\bv|\bver\.?|version|버전|release|릴리스|build|빌드)\s*[:.]?\s*$", re.IGNORECASE
    ),
}
_CONTEXT_CHARS = 24


def _near(keyword: str, text: str, start: int) -> bool:
    return _KEYWORDS[keyword].search(text, max(0, start - _CONTEXT_CHARS), start) is not None


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def luhn_ok(number: str) -> bool:
    """The Luhn mod-10 check every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _ean13_ok(number: str) -> bool:
    total = sum((ord(c) - 48) * (3 if i % 2 else 1) for i, c in enumerate(number[:12]))
    return (10 - total % 10) % 10 == ord(number[12]) - 48


# The most recent year of birth an RRN with a 2000s century digit can carry (bare 13-digit
# form only, where look-alikes are many). A constant, not today's date: outputs must not
# change with the calendar.
_LATEST_2000S_YY = 30


def _rrn_date_ok(digits: str, strict: bool) -> bool:
    yy, mm, dd, g = int(digits[0:2]), int(digits[2:4]), int(digits[4:6]), digits[6]
    if g not in "12345678" or mm > 12 or dd > 31:
        return False
    if strict and g in "3478" and yy > _LATEST_2000S_YY:
        return False  # bare 13 digits: no birth year in the future
    if mm == 0 or dd == 0:
        # "00" month/day is tolerated: it is how unknown birth dates and partial redactions
        # are written, and what Faker's ko_KR ssn() emits
        return True
    century = 1900 if g in "1256" else 2000
    return dd <= calendar.monthrange(century + yy, mm)[1] or (mm == 2 and dd == 29)


# ---------------------------------------------------------------------------------------------
# anchored per-type patterns (used with .match at a start found by _START)

# (the separator may be the jamo ㅡ that Korean keyboards type for a dash, as in phone numbers)
_RRN = re.compile(
    rf"[0-9]{{6}}(?P<sep>[ \t]?[{_DASH}\u3161][ \t]?|[ \t])?[1-8](?:[0-9]{{6}}(?![0-9])|[*xX●]{{6}}(?![*xX●]))(?!{_D}[0-9])"
)
_CARD_BARE = re.compile(rf"[0-9]{{12,19}}{_RB}")
_CARD_GROUPED = re.compile(rf"[0-9]{{4}}{_GROUP_SEP}[0-9]{{4,6}}(?:(?P=s)[0-9]{{1,5}}){{1,3}}{_RB}")
_SSN = re.compile(rf"[0-9]{{3}}{_GROUP_SEP}[0-9]{{2}}(?P=s)[0-9]{{4}}{_RB}|[0-9]{{9}}{_RB}")
_BRN = re.compile(rf"[0-9]{{3}}{_GROUP_SEP}[0-9]{{2}}(?P=s)[0-9]{{5}}{_RB}|[0-9]{{10}}{_RB}")
_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?![0-9]|\.[0-9])")
# Korean prefixes without the trunk 0: mobile 10/11/16-19, Seoul 2, areas 31-64, 050X, 060/070/080
_KR_PREFIX = r"(?:1[016789]|2|[3-6][1-5]|50[2-8]|[6-8]0|30[3-8])"
_KR_PHONE = re.compile(rf"0{_KR_PREFIX}(?:\)[ \t]?(?:{_D}[ \t]?)?|{_SEP})?[0-9]{{3,4}}{_SEP}?[0-9]{{4}}{_RB}")
_PAREN_PHONE = re.compile(
    rf"\((?:0[0-9]{{1,3}}|[0-9]{{3}})\)[ \t]?(?:{_D}[ \t]?)?[0-9]{{3,4}}{_SEP}?[0-9]{{4}}{_RB}{_EXT}?"
)
_US_SEP = rf"[{_DASH} .]"
_US_PHONE = re.compile(
    rf"(?:(?:1|001){_US_SEP}?)?[0-9]{{3}}{_US_SEP}[0-9]{{3}}{_US_SEP}[0-9]{{4}}{_RB}{_EXT}?"
    rf"|(?:(?:1|001){_US_SEP}?)?\([0-9]{{3}}\)[ ]?{_D}?[0-9]{{3}}{_US_SEP}[0-9]{{4}}{_RB}{_EXT}?"
    rf"|[2-9][0-9]{{2}}[2-9][0-9]{{6}}{_RB}{_EXT}?"
)
# Korean representative numbers: 1588-1234; bare "15881234" only next to a phone keyword
_REP_PHONE = re.compile(rf"1[568][0-9]{{2}}(?P<s>{_SEP})?[0-9]{{4}}{_RB}")
_INTL_GROUP = rf"(?:{_SEP}?\(0\)|{_SEP}?\([0-9]{{1,4}}\)|{_SEP}?[0-9]{{1,5}})"
_INTL_PHONE = re.compile(rf"(?:\+[ \t]?|00(?=[1-9]))[1-9][0-9]{{0,2}}\)?{_INTL_GROUP}{{1,7}}{_EXT}?")
# Korean numbers written with the country code but without "+": 82-10-1234-5678
_KR_CC_PHONE = re.compile(
    rf"82{_SEP}?(?:\(0\)[ \t]?)?0?{_KR_PREFIX}{_SEP}?[0-9]{{3,4}}{_SEP}?[0-9]{{4}}{_RB}"
)
# a Korean number glued to a contact label: "Tel010-1234-5678", "HP010-1234-5678"
_GLUED_KR_PHONE = re.compile(rf"0(?<=[A-Za-z]0){_KR_PREFIX}{_SEP}[0-9]{{3,4}}{_SEP}[0-9]{{4}}{_RB}")
_PHONE_LABELS = frozenset(
    {"tel", "hp", "m", "t", "p", "c", "f", "ph", "phone", "mobile", "mob", "cell", "fax"}
)
_PAREN_CC = re.compile(r"\(\+[ \t]?[0-9]{1,3}\)")
_DIGIT_RUN = re.compile(r"[0-9]+")
_EXT_TAIL = re.compile(r"(?i:x|ext\.?|#|내선)[ \t]?[0-9]+$")

_EMAIL_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9])"
)
# The local part people actually use; RFC 5322 also allows ' = ? { } etc., but those are far
# more often the quote or URL parameter around an address ("?to=kim@x.kr", "'kim@x.kr'").
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*")
_LOCAL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_%+-.")
_AT = re.compile(r"@")
# "hong [at] naver [dot] com", "hong(at)naver.com": written that way to dodge harvesters
_OBFUSCATED_HINT = re.compile(r"[\[({][ \t]?(?i:at)[ \t]?[\])}]")
_OBFUSCATED_EMAIL = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._%+-]*[ \t]?[\[({][ \t]?(?i:at)[ \t]?[\])}][ \t]?[A-Za-z0-9-]+"
    r"(?:(?:[ \t]?[\[({][ \t]?(?i:dot)[ \t]?[\])}][ \t]?|\.)[A-Za-z0-9-]+)+"
)
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
_TO_ASCII = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}


# ---------------------------------------------------------------------------------------------
# validators: (text, match) -> end of the accepted span, or None to let the next type try

Matcher = Callable[[str, int], "int | None"]


def _match_rrn(text: str, pos: int) -> int | None:
    m = _RRN.match(text, pos)
    if not m:
        return None
    raw = m.group(0)
    digits = _digits(raw)
    bare = m.group("sep") is None
    if not _rrn_date_ok(digits, strict=bare):
        return None
    if bare and len(digits) == 13 and not _near("RRN", text, pos):
        # a bare 13-digit number is also an EAN-13 barcode (Korea: 880...), a 13-digit Visa,
        # or a millisecond timestamp; without a 주민/외국인 keyword those readings win
        if digits.startswith("880") and _ean13_ok(digits):
            return None
        if digits[0] == "4" and luhn_ok(digits):
            return None
        if _near("TIMESTAMP", text, pos):
            return None
    return m.end()


# brands that issue 12-15 digit numbers (Maestro issues 12-19)
_MAESTRO = ("5018", "5020", "5038", "56", "57", "58", "5893", "6304", "6759", "676", "0604", "6390")  # fmt: skip
_SHORT_CARD_PREFIXES = {
    12: _MAESTRO,
    13: ("4", *_MAESTRO),  # old Visa
    14: ("30", "36", "38", "39", *_MAESTRO),  # Diners Club
    15: ("34", "37", "1800", "2131", *_MAESTRO),  # Amex, JCB
}


def _card_ok(digits: str) -> bool:
    n = len(digits)
    if not 12 <= n <= 19 or not luhn_ok(digits):
        return False
    # the short lengths belong to a few brands only; other numbers of that length (millisecond
    # timestamps, barcodes, ISBN-13) are not cards
    prefixes = _SHORT_CARD_PREFIXES.get(n)
    return prefixes is None or digits.startswith(prefixes)


def _match_card(text: str, pos: int) -> int | None:
    m = _CARD_BARE.match(text, pos)
    if m:
        return m.end() if _card_ok(m.group(0)) else None
    m = _CARD_GROUPED.match(text, pos)
    if not m:
        return None
    runs = list(_DIGIT_RUN.finditer(text, pos, m.end()))
    # trailing groups may belong to the next number ("4111 1111 1111 1111 2024년"): drop them,
    # but only for spaces — a hyphen/dot chain that goes on is one longer number, not a card
    smallest = len(runs) if m.group("s") != " " else 3
    for k in range(len(runs), smallest - 1, -1):
        if _card_ok("".join(r.group(0) for r in runs[:k])):
            return runs[k - 1].end()
    return None


def _match_ssn(text: str, pos: int) -> int | None:
    m = _SSN.match(text, pos)
    if not m:
        return None
    d = _digits(m.group(0))
    if m.group("s") is None and not _near("SSN", text, pos):
        return None
    if d[:3] in ("000", "666") or d[0] == "9" or d[3:5] == "00" or d[5:] == "0000":
        return None
    return m.end()


def _match_brn(text: str, pos: int) -> int | None:
    m = _BRN.match(text, pos)
    if not m:
        return None
    d = _digits(m.group(0))
    if d[0] == "0":
        return None
    if m.group("s") is None and not _near("BRN", text, pos):  # bare 10 digits: only next to a keyword
        return None
    return m.end()


# Four one-digit parts ("8.8.8.8", "1.1.1.1") also spell section and figure numbers ("see
# 3.2.1.4"): such an address counts only with an address word close before it (`_KEYWORDS["IP"]`)
# or a port / prefix length right after it.
_PORT_OR_PREFIX = re.compile(r"(?::[0-9]{1,5}|/[0-9]{1,2})(?![0-9])")


def _match_ipv4(text: str, pos: int) -> int | None:
    m = _IPV4.match(text, pos)
    if not m:
        return None
    if m.end() - pos == 7 and not (
        _near("IP", text, pos) or _PORT_OR_PREFIX.match(text, m.end())
    ):
        return None
    parts = m.group(0).split(".")
    if any(int(p) > 255 for p in parts):
        return None
    # "1.000.000.000" is a European-style thousands separator, not an address
    if all(p == "000" for p in parts[1:]):
        return None
    if _KEYWORDS["VERSION"].search(text, max(0, pos - _CONTEXT_CHARS), pos):
        return None
    if _is_heading_number(text, pos, m.end()):
        return None
    return m.end()


def _is_heading_number(text: str, start: int, end: int) -> bool:
    """`8.1.6.1. dpkg-deb` at the start of a line is a section number, not an address."""
    if not text.startswith(".", end) or (end + 1 < len(text) and not text[end + 1].isspace()):
        return False
    if any(len(part) > 2 for part in text[start:end].split(".")):
        return False
    line_start = text.rfind("\n", 0, start) + 1
    return text[line_start:start].strip() == ""


# bare 10-digit numbers that have the shape of a US phone number but are famous constants
_NOT_PHONES = frozenset({"2147483647", "2147483648", "4294967295", "4294967296"})


def _is_year_range(a: str, b: str) -> bool:
    x, y = int(a), int(b)
    return 1000 <= x < y <= 2100 and y - x <= 300


def _match_phone(text: str, pos: int) -> int | None:
    ch = text[pos]
    if ch == "+" or text.startswith("00", pos):
        end = _match_intl(text, pos)
        if end is not None:
            return end
        if ch == "+":
            return None
    if ch == "(":
        if _PAREN_CC.match(text, pos):  # "(+82) 10-1234-5678"
            return _match_intl(text, pos + 1)
        m = _PAREN_PHONE.match(text, pos) or _US_PHONE.match(text, pos)
        return m.end() if m else None
    if ch == "0":
        m = _KR_PHONE.match(text, pos)
        if m:
            return m.end()
    if ch == "8":
        m = _KR_CC_PHONE.match(text, pos)
        if m:
            return m.end()
    if ch == "1":
        m = _REP_PHONE.match(text, pos)
        if m:
            if m.group("s") is None:
                if _near("PHONE", text, pos):
                    return m.end()
            else:
                sep = m.group("s").strip()
                # "1592-1598" is a year range; "1588 1600" with a space or a dot is not
                if not (sep and sep in _DASH and _is_year_range(m.group(0)[:4], m.group(0)[-4:])):
                    return m.end()
    m = _US_PHONE.match(text, pos)
    if m:
        if m.group(0).isdigit() and (m.group(0) in _NOT_PHONES or _near("ISBN", text, pos)):
            return None
        return m.end()
    return None


def _match_intl(text: str, pos: int) -> int | None:
    m = _INTL_PHONE.match(text, pos)
    if not m:
        return None
    ext = _EXT_TAIL.search(m.group(0))
    body_end = pos + ext.start() if ext else m.end()
    # a trunk "(0)" (+82 (0)10 ...) is not part of the number; an access code "00" is not either
    runs = [
        r
        for r in _DIGIT_RUN.finditer(text, pos, body_end)
        if not (r.group(0) == "0" and text[r.start() - 1] == "(")
    ]
    access = 2 if text[pos] == "0" else 0
    minimum = 8 if text[pos] == "+" else 10
    # trailing groups may belong to the next number: drop them until the length is plausible
    for k in range(len(runs), 0, -1):
        n = sum(len(r.group(0)) for r in runs[:k]) - access
        if minimum <= n <= 15:
            return m.end() if k == len(runs) else runs[k - 1].end()
    return None


# per-type matchers in priority order: the first that accepts a start wins
_NUMERIC: dict[str, Matcher] = {
    "IP": _match_ipv4,
    "RRN": _match_rrn,
    "CARD": _match_card,
    "SSN": _match_ssn,
    "BRN": _match_brn,
    "PHONE": _match_phone,
}


def _find_glued_phones(text: str, out: list[Span]) -> None:
    for m in _GLUED_KR_PHONE.finditer(text):
        label_start = m.start()
        while label_start > 0 and text[label_start - 1].isascii() and text[label_start - 1].isalpha():
            label_start -= 1
        if text[label_start : m.start()].lower() in _PHONE_LABELS:
            out.append(Span(m.start(), m.end(), "PHONE"))


def _find_emails(text: str, out: list[Span]) -> None:
    if "@" in text:
        _find_plain_emails(text, out)
    if _OBFUSCATED_HINT.search(text):
        out.extend(Span(m.start(), m.end(), "EMAIL") for m in _OBFUSCATED_EMAIL.finditer(text))


def _find_plain_emails(text: str, out: list[Span]) -> None:
    for at in _AT.finditer(text):
        i = at.start()
        d = _EMAIL_DOMAIN.match(text, i + 1)
        if not d:
            continue
        j = i
        while j > 0 and text[j - 1] in _LOCAL_CHARS and i - j < 64:
            j -= 1
        # the longest run before "@" that is a valid local part ("=..kim@x.kr" -> "kim")
        while j < i and not _EMAIL_LOCAL.fullmatch(text, j, i):
            j += 1
        if j < i:
            out.append(Span(j, d.end(), "EMAIL"))


def _find_ipv6(text: str, out: list[Span]) -> None:
    pos = 0
    n = len(text)
    while True:
        m = _IPV6_HINT.search(text, pos)
        if not m:
            return
        a = m.start()
        while a > 0 and text[a - 1] in _IPV6_CHARS:
            a -= 1
        b = m.end()
        while b < n and text[b] in _IPV6_CHARS:
            b += 1
        pos = b
        if b < n and _is_word(text[b]):
            continue
        # a run may hold more than one address ("fe80::1::2" is read as two): take them all,
        # so that anonymizing twice changes nothing the second time
        while a < b:
            span = _ipv6_in(text, a, b)
            if span is None:
                break
            if not (span.start > 0 and _is_word(text[span.start - 1])):
                out.append(span)
            a = span.end


def _is_word(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def _ipv6_in(text: str, a: int, b: int) -> Span | None:
    """The leftmost-longest IPv6 address in the run `text[a:b]` of hex digits, colons, dots.

    The run may carry a label's colon in front (`주소:fe80::1`) or punctuation behind, so
    starts after its first colons/dots and ends before its trailing dots/colons or right
    after a `::` are tried (at most 16 of each: real runs are short).
    """
    while a < b and text[a] == ".":
        a += 1
    ends = [b]
    while b > a and text[b - 1] in ".:":
        b -= 1
        ends.append(b)
    starts = [a]
    for i in range(a, b):
        if len(starts) > 16 or len(ends) > 16:
            break
        if text[i] in ":.":
            starts.append(i + 1)
            if text.startswith("::", i):
                starts.append(i)
                ends.append(i + 2)
    ends = sorted(set(ends), reverse=True)
    for start in sorted(set(starts)):
        for end in ends:
            if end <= start:
                break
            cand = text[start:end]
            if cand.count(":") >= 2 and any(c.isdigit() for c in cand) and _valid_ipv6(cand):
                return Span(start, end, "IP")
    return None


def _valid_ipv6(cand: str) -> bool:
    try:
        ipaddress.IPv6Address(cand)
    except ValueError:
        return False
    return True


class PIIDetector:
    """Finds identifiers of the chosen types; compiled once, reused for every document."""

    def __init__(self, types: Iterable[str] | None = None) -> None:
        chosen = [t.upper() for t in (types if types is not None else PII_TYPES)]
        unknown = sorted(set(chosen) - set(PII_TYPES))
        if unknown:
            raise UserError(f"unknown PII type(s) {unknown}; choose from {list(PII_TYPES)}")
        self.types = frozenset(chosen)
        self._numeric = [(t, f) for t, f in _NUMERIC.items() if t in self.types]

    def find(self, text: str) -> list[Span]:
        # Fullwidth forms ("０１０－１２３４－５６７８", "ｋｉｍ＠ｘ．ｋｒ") are scanned in an ASCII copy;
        # one char maps to one, so spans carry over. The copy is only made when needed: a
        # fullwidth "＠", or a fullwidth digit where a number starts.
        if "\uff20" in text:
            text = text.translate(_TO_ASCII)
        spans: list[Span] = []
        if self._numeric and not self._find_numeric(text, spans):
            text = text.translate(_TO_ASCII)
            spans = []
            self._find_numeric(text, spans)
        if "PHONE" in self.types:
            _find_glued_phones(text, spans)
        if "EMAIL" in self.types:
            _find_emails(text, spans)
        if "IP" in self.types and ("::" in text or text.count(":") >= 7):
            _find_ipv6(text, spans)
        return _resolve(spans)

    def _find_numeric(self, text: str, out: list[Span]) -> bool:
        """Numeric identifiers into `out`; False (stop) at a fullwidth digit: rescan in ASCII."""
        pos = 0
        search = _START.search
        while True:
            m = search(text, pos)
            if not m:
                return True
            start = m.start()
            if text[start] > "\uff00":
                return False
            pos = start + 1
            for kind, matcher in self._numeric:
                end = matcher(text, start)
                if end is not None:
                    # a bare digit run followed by a unit is an amount ("3500000000원"), not an ID
                    if not (end < len(text) and text[end] in _UNITS and text[start:end].isdigit()):
                        out.append(Span(start, end, kind))
                        pos = end
                    break


def _resolve(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans, leftmost first; on a tie the longer (emails and IPv6 first)."""
    if len(spans) < 2:
        return spans
    spans.sort(key=lambda s: (s.start, -s.end))
    kept: list[Span] = []
    for s in spans:
        if kept and s.start < kept[-1].end:
            continue
        kept.append(s)
    return kept


_DEFAULT = PIIDetector()


def find_pii(text: str, types: Iterable[str] | None = None) -> list[Span]:
    """Every identifier in `text`, as non-overlapping spans in text order."""
    detector = _DEFAULT if types is None else PIIDetector(types)
    return detector.find(text)


def _apply(text: str, spans: list[Span], placeholders: dict[str, str]) -> tuple[str, Counter]:
    counts: Counter = Counter()
    if not spans:
        return text, counts
    parts: list[str] = []
    last = 0
    for s in spans:
        parts.append(text[last : s.start])
        parts.append(placeholders[s.type])
        counts[s.type] += 1
        last = s.end
    parts.append(text[last:])
    return "".join(parts), counts


def _placeholders(custom: dict[str, str] | None) -> dict[str, str]:
    merged = dict(DEFAULT_PLACEHOLDERS)
    for key, value in (custom or {}).items():
        if key.upper() not in merged:
            raise UserError(f"placeholder for unknown PII type {key!r}; choose from {list(PII_TYPES)}")
        merged[key.upper()] = value
    return merged


def anonymize(
    text: str, types: Iterable[str] | None = None, placeholders: dict[str, str] | None = None
) -> tuple[str, Counter]:
    """`text` with every identifier replaced by its placeholder, and the count per type."""
    detector = _DEFAULT if types is None else PIIDetector(types)
    return _apply(text, detector.find(text), _placeholders(placeholders))


class PIIAnonymizer(BaseFormatter):
    """datatrove formatter: typed placeholders for emails, phones, RRN, cards, SSN, IPs, BRN.

    Counts every replacement in the step's stats as `pii_<type>` (`pii_email`, `pii_phone`,
    `pii_rrn`, `pii_card`, `pii_ssn`, `pii_ip`, `pii_brn`) and the documents changed as
    `pii_docs`, so a report can say how much was masked.
    """

    name = "🕵 PII anonymizer"

    def __init__(self, types: list[str] | None = None, placeholders: dict[str, str] | None = None) -> None:
        super().__init__()
        self.detector = PIIDetector(types)
        self.placeholders = _placeholders(placeholders)

    def format(self, text: str) -> str:
        spans = self.detector.find(text)
        if not spans:  # most documents: no Counter, no copy
            return text
        new, counts = _apply(text, spans, self.placeholders)
        self.stat_update("pii_docs")
        for kind, n in counts.items():
            self.stat_update(f"pii_{kind.lower()}", value=n)
        return new


# ---------------------------------------------------------------------------------------------
# jsonl in, jsonl out (backs `cpt corpus anonymize IN OUT`)


def _zstandard(path: Path):
    try:
        import zstandard
    except ImportError as exc:
        raise UserError(f"{path}: .zst files need the zstandard package (pip install zstandard)") from exc
    return zstandard


def _open_read(path: Path):
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith((".zst", ".zstd")):
        zstandard = _zstandard(path)
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


def _open_write(stack: ExitStack, path: Path, name: str):
    """A binary writer for `path`, compressed as the final `name` says; closed by `stack`."""
    raw = stack.enter_context(open(path, "wb"))
    lower = name.lower()
    if lower.endswith(".gz"):
        # mtime 0 and no file name in the header: the same records give the same bytes
        return stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0))
    if lower.endswith((".zst", ".zstd")):
        zstandard = _zstandard(path)
        return stack.enter_context(zstandard.ZstdCompressor().stream_writer(raw, closefd=False))
    return raw


def anonymize_jsonl(
    src: Path | str,
    dst: Path | str,
    text_field: str = "text",
    types: list[str] | None = None,
    placeholders: dict[str, str] | None = None,
) -> dict[str, int]:
    """Anonymize the `text_field` of every record of a jsonl(.gz/.zst) file into `dst`.

    Streams line by line (memory does not grow with the file). Nothing crashes the run and
    nothing disappears silently: a line that is not JSON (`dropped_malformed_json`) or not an
    object (`dropped_not_an_object`) cannot be anonymized and is not written; a record without
    the text field (`missing_text_field`) or with a non-string one (`text_not_string`) is
    written unchanged; bytes that are not UTF-8 are decoded with replacement
    (`decoded_with_replacement`). Returns those counts plus `records_in`, `records_out`,
    `docs_with_pii` and `pii_<type>`.
    """
    src, dst = Path(src), Path(dst)
    require_path(src, "input file")
    if src.is_dir():
        raise UserError(f"input must be a jsonl file, got a folder: {src}")
    if dst.resolve() == src.resolve():
        raise UserError(f"output would overwrite the input: {dst} (choose another path)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    detector = PIIDetector(types)
    ph = _placeholders(placeholders)
    counts: Counter = Counter()
    tmp = dst.with_name(dst.name + ".tmp")
    with ExitStack() as stack:
        fin = stack.enter_context(_open_read(src))
        fout = _open_write(stack, tmp, dst.name)
        for raw in fin:
            if not raw.strip():
                counts["blank_lines"] += 1
                continue
            counts["records_in"] += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                line = raw.decode("utf-8", errors="replace")
                counts["decoded_with_replacement"] += 1
            try:
                record = json.loads(line)
            except ValueError:
                counts["dropped_malformed_json"] += 1
                continue
            if not isinstance(record, dict):
                counts["dropped_not_an_object"] += 1
                continue
            value = record.get(text_field)
            if text_field not in record:
                counts["missing_text_field"] += 1
            elif not isinstance(value, str):
                counts["text_not_string"] += 1
            else:
                new, found = _apply(value, detector.find(value), ph)
                if found:
                    counts["docs_with_pii"] += 1
                    for kind, n in found.items():
                        counts[f"pii_{kind.lower()}"] += n
                    record[text_field] = new
            fout.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
            counts["records_out"] += 1
    os.replace(tmp, dst)
    for key in ("records_in", "records_out"):
        counts.setdefault(key, 0)
    return dict(counts)
