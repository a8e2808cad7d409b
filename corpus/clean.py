"""Step 1 of `cpt corpus build`: turn raw text into clean text without destroying its structure.

`clean_text` is a pure function (markup to text, mojibake repair, NFC, control characters,
whitespace); `TextCleaner` wraps it as a datatrove formatter and counts what it changed;
`MojibakeFilter` removes what the cleaner could not repair, under its own reason.

The cleaner and the filter are two steps on purpose: a datatrove formatter cannot drop a
document, and a filter should not rewrite one. Run them in this order:

    TextCleaner() -> MojibakeFilter()

Whitespace is normalized *inside* lines only: paragraph and line breaks carry the
structure that later steps (quality heuristics on lines and paragraphs, code parsing)
depend on, so a `\\s+ -> ' '` rewrite is never done here.
"""

from __future__ import annotations

import hashlib
import html
import inspect
import re
import unicodedata
from functools import lru_cache
from html import parser as _html_parser
from html.parser import HTMLParser

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.formatters.base import BaseFormatter
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.typeshelper import StatHints

# --------------------------------------------------------------------------- HTML

# A text "looks like HTML" when it has a document marker or several real tags; a lone
# `a < b > c` in prose or code must not send it through the parser.
_HTML_DOC = re.compile(r"<!doctype\s+html|<html[\s>]|<body[\s>]|<head[\s>]", re.I)
_HTML_TAG = re.compile(
    r"</?(?:p|div|span|a|br|hr|li|ul|ol|table|tr|td|th|h[1-6]|script|style|img|meta|link|"
    r"section|article|nav|header|footer|em|strong|b|i|pre|code|blockquote|form|input|label)\b[^<>]{0,2000}>",
    re.I,
)
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object", "head"})
_KEEP_IN_HEAD = frozenset({"title"})
# Block elements end a paragraph; line-level elements end a line.
_PARA_TAGS = frozenset(
    {"p", "div", "section", "article", "header", "footer", "nav", "aside", "main", "blockquote",
     "pre", "table", "ul", "ol", "dl", "form", "fieldset", "figure", "h1", "h2", "h3", "h4", "h5",
     "h6", "title", "body", "html"}
)
_LINE_TAGS = frozenset({"br", "li", "tr", "dt", "dd", "hr", "option", "caption", "figcaption"})
_CELL_TAGS = frozenset({"td", "th"})
_VOID_TAGS = frozenset({"br", "hr", "img", "meta", "link", "input", "base", "area", "col", "wbr", "source"})


def looks_like_html(text: str) -> bool:
    """True for documents that are markup; plain text with the odd `<` stays untouched."""
    head = text[:100_000]
    if _HTML_DOC.search(head):
        return True
    return len(_HTML_TAG.findall(head, 0, 100_000)) >= 3


_LAYOUT_SPACE = re.compile(r"[ \t\r\n\f]+")
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_RAW_BLOCK = re.compile(r"<(script|style|noscript)\b.*?</\1\s*>", re.I | re.S)
_ANY_TAG = re.compile(r"<[^>]{0,2000}>")
_ENTITY = re.compile(r"&(?:[a-z]{2,8}|#\d{2,6}|#x[0-9a-f]{2,5});", re.I)

# `HTMLParser.parse_starttag` as shipped with CPython 3.11: it parses, lower-cases and
# unescapes every attribute, and the extractor never looks at attributes. `_fast_parse_starttag`
# is the same function without that work; it is used only when the running interpreter's
# parse_starttag is this exact source (other versions changed the tokenizer), so the text
# extracted never depends on which one runs.
_PARSE_STARTTAG_SHA1 = "7adcbc45a12a180324f5960d3b5191730bc81c11"


def _stdlib_parse_starttag_is_known() -> bool:
    try:
        source = inspect.getsource(HTMLParser.parse_starttag)
    except (OSError, TypeError):
        return False
    return hashlib.sha1(source.encode("utf-8")).hexdigest() == _PARSE_STARTTAG_SHA1


def _fast_parse_starttag(self: HTMLParser, i: int) -> int:
    """`HTMLParser.parse_starttag` (CPython 3.11) minus the attribute values nobody reads."""
    self._HTMLParser__starttag_text = None
    endpos, tag, closing, data = _parse_starttag(self.rawdata, i)
    if endpos < 0:
        return endpos
    self._HTMLParser__starttag_text = self.rawdata[i:endpos]
    self.lasttag = tag
    if data is not None:
        self.handle_data(data)
    elif closing:
        self.handle_startendtag(tag, ())
    else:
        self.handle_starttag(tag, ())
        if tag in self.CDATA_CONTENT_ELEMENTS:
            self.set_cdata_mode(tag)
    return endpos


class _TextExtractor(HTMLParser):
    """Collects visible text, turning block structure into blank lines and line breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_stack: list[str] = []  # open <script>/<style>/<head>/...: their text is dropped
        self.in_title = False
        self.pre_depth = 0
        # whether the text so far ends a line (or a table cell): the last non-empty part ends in \n or \t
        self.line_start = True

    def updatepos(self, i: int, j: int) -> int:
        # HTMLParser counts lines and columns on every token for getpos(); nothing here reads them
        return j

    def _emit(self, part: str) -> None:
        self.parts.append(part)
        self.line_start = part[-1] in "\n\t"

    def handle_starttag(self, tag: str, attrs) -> None:  # noqa: ANN001 - HTMLParser signature
        if tag == "body" and "head" in self.skip_stack:
            # HTML5 lets a page omit </head>: the body still shows
            del self.skip_stack[self.skip_stack.index("head") :]
        if tag in _SKIP_TAGS and tag not in _VOID_TAGS:
            self.skip_stack.append(tag)
            return
        if tag in _KEEP_IN_HEAD:
            self.in_title = True
        if self.skip_stack:
            return
        if tag == "pre":
            self.pre_depth += 1
        self._break(tag)

    def handle_startendtag(self, tag: str, attrs) -> None:  # noqa: ANN001
        if not self.skip_stack:
            self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
            self._emit("\n\n")
            return
        if self.skip_stack:
            if tag in self.skip_stack:
                # close everything opened after it too (unclosed tags inside <head> etc.)
                while self.skip_stack and self.skip_stack.pop() != tag:
                    pass
            return
        if tag == "pre" and self.pre_depth:
            self.pre_depth -= 1
        self._break(tag, start=False)

    def handle_data(self, data: str) -> None:
        if self.skip_stack and not self.in_title:
            return
        if self.pre_depth:
            if data:
                self._emit(data)
            return
        # outside <pre>, source line breaks and indentation are layout, not structure
        data = _LAYOUT_SPACE.sub(" ", data)
        if self.line_start:
            data = data.lstrip(" ")
        if data:
            self._emit(data)

    def _break(self, tag: str, start: bool = True) -> None:
        if tag in _PARA_TAGS:
            self._emit("\n\n")
        elif tag in _LINE_TAGS and start:
            self._emit("\n")
        elif tag in _CELL_TAGS and start and not self.line_start:
            self._emit("\t")


if _stdlib_parse_starttag_is_known():
    _TextExtractor.parse_starttag = _fast_parse_starttag


def _reference_html_to_text(markup: str) -> str:
    """`html_to_text` through `HTMLParser` events: the definition `_scan_html` must reproduce."""
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
    except (AssertionError, ValueError):
        # HTMLParser gives up on some broken declarations; fall back to tag stripping
        stripped = _RAW_BLOCK.sub(" ", markup)
        return html.unescape(_ANY_TAG.sub(" ", stripped))
    return "".join(parser.parts)


# ---- the same events without HTMLParser's per-token method calls
#
# `HTMLParser` spends most of its time in Python bookkeeping around each tag (position
# tracking, attribute parsing and unescaping, one method call per step). `_scan_html` walks
# the markup once, with the tokenizer's own rules of CPython 3.11 (`goahead` with
# `convert_charrefs=True`, as `feed` + `close` run it) and `_TextExtractor`'s handlers
# inlined. Tags in the form nearly all generated HTML uses (`<name attr="v" flag>`, no
# spaces around `=`) are read by one regex whose matches the stdlib tokenizer provably reads
# the same way; every other tag goes through the stdlib's own regexes, step by step as
# `parse_starttag` / `parse_endtag` do. A construct it does not reproduce (a comment or
# `<![...]>` section) hands the whole document to `_reference_html_to_text`.

# Separators are ASCII only: the stdlib ends a tag name at [\t\n\r\f /], not at \v or
# Unicode spaces. An unquoted value must end at a space or `>` (`<br clear=all/>` is a start
# tag to the stdlib, its value being `all/`).
_SIMPLE_TAG = re.compile(
    r"<([a-zA-Z][a-zA-Z0-9]*)"
    r"(?:[ \t\n\r\f]+[a-zA-Z_:][-a-zA-Z0-9_:.]*"
    r"(?:=(?:\"[^\"<>]*\"|'[^'<>]*'|[a-zA-Z0-9_.:-]+(?=[ \t\n\r\f>])))?)*"
    r"[ \t\n\r\f]*(/?)>"
)
_BREAK_START = {
    **{t: "\n\n" for t in _PARA_TAGS},
    **{t: "\n" for t in _LINE_TAGS},
    **{t: "\t" for t in _CELL_TAGS},
}
_BREAK_END = {t: "\n\n" for t in _PARA_TAGS}
_CDATA_END = {t: re.compile(rf"</\s*{t}\s*>", re.I) for t in HTMLParser.CDATA_CONTENT_ELEMENTS}
_STDLIB_SOURCES_SHA1 = "c80ad4cf6a298e13f9b9739f10215d08c2813d75"


def _stdlib_tokenizer_is_known() -> bool:
    """Whether html.parser tokenizes as the CPython 3.11 code `_scan_html` reproduces."""
    hp = _html_parser
    try:
        parts = [
            inspect.getsource(f)
            for f in (
                HTMLParser.goahead, HTMLParser.parse_starttag, HTMLParser.check_for_whole_start_tag,
                HTMLParser.parse_endtag, HTMLParser.parse_pi, HTMLParser.parse_html_declaration,
                HTMLParser.parse_bogus_comment, HTMLParser.set_cdata_mode, HTMLParser.feed, HTMLParser.close,
            )
        ]
        parts += [
            r.pattern
            for r in (hp.starttagopen, hp.tagfind_tolerant, hp.attrfind_tolerant, hp.locatestarttagend_tolerant,
                      hp.endendtag, hp.endtagfind, hp.piclose)
        ]
        parts.append(repr(HTMLParser.CDATA_CONTENT_ELEMENTS))
    except (AttributeError, OSError, TypeError):
        return False
    return hashlib.sha1("\0".join(parts).encode("utf-8")).hexdigest() == _STDLIB_SOURCES_SHA1


def _parse_starttag(markup: str, i: int) -> tuple[int, str | None, bool, str | None]:
    """`check_for_whole_start_tag` + `parse_starttag` at `i`: (end, tag, self-closing, raw data).

    end < 0: the tag is incomplete. data not None: the stdlib emits it as text instead of a tag.
    """
    hp = _html_parser
    m = hp.locatestarttagend_tolerant.match(markup, i)
    j = m.end()
    nxt = markup[j : j + 1]
    if nxt == ">":
        endpos = j + 1
    elif nxt == "/":
        if not markup.startswith("/>", j):
            return -1, None, False, None
        endpos = j + 2
    elif nxt == "" or nxt in "abcdefghijklmnopqrstuvwxyz=/ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        return -1, None, False, None
    else:
        endpos = j if j > i else i + 1
    match = hp.tagfind_tolerant.match(markup, i + 1)
    k = match.end()
    tag = match.group(1).lower()
    attrfind = hp.attrfind_tolerant.match
    while k < endpos:
        am = attrfind(markup, k)
        if not am:
            break
        k = am.end()
    end = markup[k:endpos].strip()
    if end not in (">", "/>"):
        return endpos, tag, False, markup[i:endpos]
    return endpos, tag, end.endswith("/>"), None


# Text before the next `<`, then the tag there when it is a simple start tag or an end tag
# `endtagfind` accepts (its `>` is the first one after `</`, as `parse_endtag` requires).
_TOKEN = re.compile(
    r"([^<]*)(?:<([a-zA-Z][a-zA-Z0-9]*)"
    r"(?:[ \t\n\r\f]+[a-zA-Z_:][-a-zA-Z0-9_:.]*"
    r"(?:=(?:\"[^\"<>]*\"|'[^'<>]*'|[a-zA-Z0-9_.:-]+(?=[ \t\n\r\f>])))?)*"
    r"[ \t\n\r\f]*(/?)>"
    r"|</\s*([a-zA-Z][-.a-zA-Z0-9:_]*)\s*>)?"
)
# the tags any handler acts on; every other tag is a no-op for the extractor
_ACTIVE_TAGS = frozenset(_BREAK_START) | _SKIP_TAGS | _KEEP_IN_HEAD | {"body", "pre", "script", "style"}


def _other_construct(markup: str, i: int, cdata: str | None) -> tuple[int, str | None, int, str | None]:
    """What the stdlib tokenizer makes of the `<` at `i` when `_TOKEN` did not read a tag there.

    Returns (end, tag, kind, data): kind 1 = start tag, 2 = self-closing tag, 3 = end tag,
    0 = nothing (a declaration, processing instruction or bogus comment) or text `data`.
    end -1: a comment or marked section, which `_scan_html` leaves to the reference.
    """
    hp = _html_parser
    n = len(markup)
    c = markup[i + 1 : i + 2]
    k = -1
    if "a" <= c <= "z" or "A" <= c <= "Z":
        k, tag, closing, data = _parse_starttag(markup, i)
        if k >= 0:
            return (k, tag, 2 if closing else 1, None) if data is None else (k, None, 0, data)
    elif c == "/":
        gt = markup.find(">", i + 1)
        if gt >= 0:
            k = gt + 1
            m = hp.endtagfind.match(markup, i)
            if m is not None:
                tag = m.group(1).lower()
                if cdata is not None and tag != cdata:
                    return k, None, 0, markup[i:k]
                return k, tag, 3, None
            if cdata is not None:
                return k, None, 0, markup[i:k]
            nm = hp.tagfind_tolerant.match(markup, i + 2)
            if nm is None:
                if not markup.startswith("</>", i):
                    k = markup.find(">", i + 2) + 1  # a bogus comment, ignored
                return k, None, 0, None
            return markup.find(">", nm.end()) + 1, nm.group(1).lower(), 3, None
    elif c == "!":
        if markup.startswith("<!--", i) or markup.startswith("<![", i):
            return -1, None, 0, None
        gt = markup.find(">", i + 9) if markup[i : i + 9].lower() == "<!doctype" else markup.find(">", i + 2)
        if gt >= 0:
            return gt + 1, None, 0, None
    elif c == "?":
        gt = markup.find(">", i + 2)
        if gt >= 0:
            return gt + 1, None, 0, None
    elif i + 1 < n:
        return i + 1, None, 0, "<"
    else:
        return n, None, 0, html.unescape(markup[i:])  # a `<` ending the input: text after the loop
    # incomplete at the end of input: the rest up to the next `>` (or `<`) is text
    k = markup.find(">", i + 1)
    if k < 0:
        k = markup.find("<", i + 1)
        if k < 0:
            k = i + 1
    else:
        k += 1
    data = markup[i:k]
    return k, None, 0, data if cdata is not None else html.unescape(data)


def _scan_html(markup: str) -> str | None:
    """`_reference_html_to_text(markup)` in one pass; None where it must run the reference instead."""
    unescape = html.unescape
    layout_sub = _LAYOUT_SPACE.sub
    token = _TOKEN.match
    active = _ACTIVE_TAGS
    break_start, break_end, skip_tags = _BREAK_START, _BREAK_END, _SKIP_TAGS
    parts: list[str] = []
    emit = parts.append

    def put(text: str, line_start: bool, pre: bool) -> bool:
        """Emit a non-empty text chunk (laid out unless inside <pre>); returns whether output is at a line start."""
        if not pre:
            text = layout_sub(" ", text)
            if line_start:
                text = text.lstrip(" ")
            if not text:
                return line_start
        emit(text)
        return text[-1] in "\n\t"

    def open_break(tag: str, line_start: bool) -> bool:
        """The break a start tag opens (a tab only where the line already has text)."""
        brk = break_start.get(tag)
        if brk is not None and (brk != "\t" or not line_start):
            emit(brk)
            return True
        return line_start

    skip: list[str] = []  # open <script>/<style>/<head>/...: their text is dropped
    in_title = False
    pre_depth = 0
    line_start = True  # the last non-empty part ends in \n or \t
    cdata: str | None = None  # inside <script>/<style>: raw text up to the matching end tag
    n = len(markup)
    i = 0
    while i < n:
        kind = 0
        data = tag = None
        if cdata is None:
            m = token(markup, i)
            text, stag, closing, etag = m.groups()
            k = m.end()
            if text and (in_title or not skip):
                line_start = put(unescape(text) if "&" in text else text, line_start, pre_depth > 0)
            if stag is not None:
                tag = stag.lower()
                if tag not in active:
                    i = k
                    continue
                kind = 2 if closing else 1
            elif etag is not None:
                tag = etag.lower()
                if tag not in active:
                    i = k
                    continue
                kind = 3
            elif k >= n:
                break
            else:
                k, tag, kind, data = _other_construct(markup, k, None)
                if k < 0:
                    return None
        else:
            m = _CDATA_END[cdata].search(markup, i)
            if m is None:
                break  # an unclosed <script> hides the rest
            j = m.start()
            if i < j and in_title:  # raw text, kept only inside <title> (it is in `skip`)
                line_start = put(markup[i:j], line_start, pre_depth > 0)
            k, tag, kind, data = _other_construct(markup, j, cdata)
        # ---- the handlers of `_TextExtractor`, inlined
        if kind == 1:  # start tag
            if tag == "body" and "head" in skip:
                del skip[skip.index("head") :]
            if tag in skip_tags:
                skip.append(tag)
            else:
                if tag == "title":
                    in_title = True
                if not skip:
                    if tag == "pre":
                        pre_depth += 1
                    line_start = open_break(tag, line_start)
            if tag == "script" or tag == "style":
                cdata = tag
        elif kind == 2:  # <tag/>
            if not skip:
                line_start = open_break(tag, line_start)
        elif kind == 3:  # end tag
            if tag == "title":
                in_title = False
                emit("\n\n")
                line_start = True
            elif skip:
                if tag in skip:
                    while skip and skip.pop() != tag:
                        pass
            else:
                if tag == "pre" and pre_depth:
                    pre_depth -= 1
                if tag in break_end:
                    emit("\n\n")
                    line_start = True
            cdata = None
        elif data and (in_title or not skip):
            line_start = put(data, line_start, pre_depth > 0)
        i = k
    return "".join(parts)


_SCAN = _stdlib_tokenizer_is_known() and _stdlib_parse_starttag_is_known()


def html_to_text(markup: str) -> str:
    """Visible text of an HTML document: scripts/styles dropped, entities unescaped, blocks kept as breaks."""
    # an unclosed comment hides the rest of the page in a browser; HTMLParser would emit it
    if "<!--" in markup:
        markup = _COMMENT.sub(" ", markup)
    if _SCAN:
        text = _scan_html(markup)
        if text is not None:
            return text
    return _reference_html_to_text(markup)


# --------------------------------------------------------------------------- mojibake

# Characters a wrong single-byte decode of UTF-8 produces: a Latin-1 lead (Ã, â, ë, ì, í, ...)
# followed by a continuation byte shown as a cp1252/latin-1 character, C1 control or U+FFFD.
_CP1252_HIGH = "\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u017d\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u017e\u0178"
_CONT = "\u0080-\u00bf" + _CP1252_HIGH + "\ufffd"
_SUSPECT = re.compile(
    rf"[\u00c2-\u00f4][{_CONT}]"  # UTF-8 read as latin-1 / cp1252
    r"|\ufffd"  # bytes already lost
    r"|[\u0e00-\u0e7f][\u0e00-\u0e7f\u20ac\u2026\u2018-\u201d\u2022\u2013\u2014\ufffd]{2}"  # UTF-8 read as cp874
    r"|[A-Za-z][\u0e01-\u0e5b]"
    r"|[\u00a1-\u00fe]{4}"  # EUC-KR read as latin-1
    r"|[\u4e00-\u9fff\uf900-\ufaff][\uac00-\ud7a3][\u4e00-\u9fff\uf900-\ufaff]"  # UTF-8 read as cp949
    r"|[A-Za-z][\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7a3]{1,2}[A-Za-z]"  # accented Latin read as cp949/GBK
)
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
# UTF-8 read as cp874 puts Thai vowel/tone marks where Thai never has them (after a space,
# a Latin letter or another script) and glues Thai letters to Latin ones inside a word.
_THAI_MISPLACED = re.compile(
    r"(?<![\u0e01-\u0e2e\u0e31\u0e34-\u0e3a\u0e47-\u0e4e])[\u0e31\u0e34-\u0e3a\u0e47-\u0e4e]"
    r"|[A-Za-z\u00c0-\u00ff][\u0e01-\u0e5b]|[\u0e01-\u0e5b][\u20ac\u2026\u2018-\u201d\u2022\u2013\u2014\ufffd]"
)
_HANJA_IN_HANGUL = re.compile(r"(?<=[\uac00-\ud7a3])[\u4e00-\u9fff\uf900-\ufaff\u2460-\u24ff\uff01-\uff5e](?=[\uac00-\ud7a3\ufffd])")
# One or two CJK characters inside a Latin word ("D챕bian", "it鈥檚"): a multi-byte decode of
# UTF-8 accents and quotes. Real mixed text puts Latin and CJK side by side, not Latin-CJK-Latin.
_CJK_IN_LATIN_WORD = re.compile(r"(?<=[A-Za-z])[\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7a3]{1,2}(?=[A-Za-z])")
# The bytes cp1252 leaves undefined: Python's strict cp1252 decode turns each into U+FFFD.
_CP1252_HOLES = (0x81, 0x8D, 0x8F, 0x90, 0x9D)


@lru_cache(maxsize=1)
def _common_hangul() -> frozenset[str]:
    """The 2,350 syllables of KS X 1001: real Korean text is almost entirely made of them."""
    out = set()
    for cp in range(0xAC00, 0xD7A4):
        try:
            if len(chr(cp).encode("euc_kr")) == 2:
                out.add(chr(cp))
        except UnicodeEncodeError:
            pass
    return frozenset(out)


# Every `_SUSPECT` alternative but the last needs one of these characters; the last needs CJK or
# Hangul between Latin letters. Searching for them first settles most clean text at C speed:
# the full alternation tries a branch at every Latin letter.
_SUSPECT_CHARS = re.compile(r"[\u00a1-\u00fe\ufffd\u0e00-\u0e7f\u4e00-\u9fff\uf900-\ufaff]")
_SUSPECT_LATIN_HANGUL = re.compile(r"[A-Za-z][\uac00-\ud7a3]{1,2}[A-Za-z]")


def looks_mojibaked(text: str) -> bool:
    """Whether `text` has any trace `_SUSPECT` looks for; the same answer as `_SUSPECT.search`, sooner."""
    if text.isascii():
        return False
    if _SUSPECT_CHARS.search(text):
        return _SUSPECT.search(text) is not None
    # only the last alternative can match: one or two Hangul syllables inside a Latin word
    return _SUSPECT_LATIN_HANGUL.search(text) is not None


def mojibake_count(text: str) -> int:
    """How many traces of a wrong decode a text carries (0 for clean text)."""
    if not looks_mojibaked(text):
        return 0
    from ftfy import badness

    count = text.count("\ufffd") + badness.badness(text)
    count += len(_THAI_MISPLACED.findall(text))
    count += len(_CJK_IN_LATIN_WORD.findall(text))
    hangul = _HANGUL.findall(text)
    if hangul:
        common = _common_hangul()
        count += sum(1 for ch in hangul if ch not in common)
        count += len(_HANJA_IN_HANGUL.findall(text))
    return count


def mojibake_score(text: str) -> float:
    """Traces of a wrong decode per non-ASCII character; clean text of any language scores ≈ 0."""
    count = mojibake_count(text)
    if not count:
        return 0.0
    non_ascii = sum(1 for ch in text if ord(ch) > 0x7F and not ch.isspace())
    return count / max(1, non_ascii)


# Frequency priors for guessing a lost byte. The Hangul string is the 300 most frequent
# syllables of the Debian FAQ and LibreOffice help in Korean, most frequent first; the
# Latin string ranks the non-ASCII characters common in European text.
_FREQUENT_HANGUL = (
    "다니이는수을에의를합하로자지시가서기입정은한사일용스트있할값데습식대제터나선리문열으면함어상그위구인"
    "택셀표된드변고도화환되계해파산반포프주경우개됩비관오모여키과안만호유또행려적설요음소보조동분러배부라범"
    "숫른력아간명결련단내필크성치목매패확전역거않및번예저마참텍본름집형장연추체각항영중날작들출원현재짜와것"
    "레없타록게두당든령블클테버통릭바실달세때쪽미콘야템삽준메십잘색편속같못램래방공브복최코며임류차진따페점"
    "누무발롤션율초업새디째생언능옵쇄럿불증월줄될별삭권찾첫년감링판까검더베률액카룹곱운법릴후커특듈신글절웨"
    "었너알처순건종활튼뉴렬했회채태양떻규존빈렉왼축막급엇립루효백약숨많눅끝취눌평플금놓떤탭냅논머"
)
_FREQUENT_OTHER = "”“’‘—–…éèàáíóúñçüöäâêîôûëïÁÉÍÓÚÀÈÇÑÜÖÄ€£©®™°·•"


def _char_prior(ch: str) -> float:
    """How plausible a character is in real text, for choosing between repair guesses."""
    if "\uac00" <= ch <= "\ud7a3":
        rank = _FREQUENT_HANGUL.find(ch)
        if rank >= 0:
            return 3.0 + (300 - rank) / 300
        return 2.0 if ch in _common_hangul() else -1.0
    rank = _FREQUENT_OTHER.find(ch)
    if rank >= 0:
        return 2.0 + (len(_FREQUENT_OTHER) - rank) / len(_FREQUENT_OTHER)
    if ch.isascii():
        return 0.0
    return -1.0 if unicodedata.category(ch)[0] in "CZ" else 0.5


def _fill_cp1252_holes(text: str) -> str | None:
    """Undo `bytes.decode('cp1252', errors='replace')` of UTF-8 where the lost bytes are certain.

    cp1252 leaves five bytes undefined, so each U+FFFD stood for one of them. A guess must
    make the character around it valid UTF-8 and plausible (a KS X 1001 syllable, a curly
    quote); a hole is filled only when exactly one guess is plausible. Ambiguous holes
    (은 vs 쏀, 생 vs 상) stay U+FFFD: a wrong syllable would be silent corruption, while a
    left hole lets `MojibakeFilter` drop the document. Returns None when the text is not
    that kind of damage.
    """
    try:
        pieces = [p.encode("cp1252") for p in text.split("\ufffd")]
    except UnicodeEncodeError:
        return None
    out = bytearray(pieces[0])
    for piece in pieces[1:]:
        # the character holding the hole: its lead byte is in `out`, its tail in `piece`
        start = len(out)
        while start > 0 and len(out) - start < 3 and 0x80 <= out[start - 1] < 0xC0:
            start -= 1
        if start > 0 and out[start - 1] >= 0xC0:
            start -= 1
        head = bytes(out[start:])
        plausible = []
        for hole in _CP1252_HOLES:
            seq = head + bytes([hole])
            need = _utf8_length(seq[0])
            tail = piece[: max(0, need - len(seq))]
            try:
                ch = (seq + tail).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(ch) == 1 and _char_prior(ch) >= 2.0:
                plausible.append(hole)
        out.append(plausible[0] if len(plausible) == 1 else 0xFF)  # 0xFF: stays U+FFFD
        out.extend(piece)
    return bytes(out).decode("utf-8", errors="replace")


def _utf8_length(lead: int) -> int:
    if lead < 0x80:
        return 1
    if lead >= 0xF0:
        return 4
    if lead >= 0xE0:
        return 3
    return 2 if lead >= 0xC0 else 1


def _round_trips(text: str):
    """Candidate repairs: each re-encodes with the wrong codec and decodes with the right one."""
    import ftfy

    yield ftfy.fix_encoding(text)
    for wrong, right in (("cp874", "utf-8"), ("cp949", "utf-8"), ("latin-1", "cp949"), ("cp1252", "cp949"), ("latin-1", "utf-8")):
        try:
            yield text.encode(wrong).decode(right)
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    if "\ufffd" in text:
        filled = _fill_cp1252_holes(text)
        if filled is not None:
            yield filled
            yield ftfy.fix_encoding(filled)


def repair_mojibake(text: str) -> str:
    """Best repair of a wrongly decoded text, or the text itself when nothing beats it.

    A candidate must remove traces of the wrong decode without adding new ones; among those
    the one with the fewest traces wins. Text without any trace is returned untouched, so
    clean documents pay for one regex scan only.
    """
    before = mojibake_count(text)
    if before == 0:
        return text
    best, best_count = text, before
    for candidate in _round_trips(text):
        if candidate == text:
            continue
        count = mojibake_count(candidate)
        if count < best_count:
            best, best_count = candidate, count
            if count == 0:
                break
    return best


# --------------------------------------------------------------------------- whitespace, controls

_SPACE_LIKE = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_ZERO_WIDTH = re.compile(r"[\u200b\u2060\ufeff\u00ad]")  # invisible; ZWJ/ZWNJ are kept (emoji, Indic)
_EARLY_LINE_SEPS = re.compile(r"\r\n|\r|[\u2028\u2029\x0b\x0c]")
_LINE_SEPS = re.compile(r"\r\n|\r|[\u2028\u2029\u0085\x0b\x0c]")
_NON_ASCII_LINE_SEP = re.compile(r"[\u2028\u2029\u0085]")
# a run of 2+ spaces after a non-space, found from its literal "  " prefix (a fast scan) before the
# lookbehind looks back: the same matches as (?<=\S)[ ]{2,}, without a lookbehind at every position
_INNER_SPACES = re.compile(r"  (?<=\S  ) *")
_TRAILING = re.compile(r"[ \t]+$", re.M)
_BLANK_RUNS = re.compile(r"\n(?:[ \t]*\n){2,}")


def _strip_controls(text: str) -> str:
    """Drop control, surrogate and unassigned-format characters; keep newline and tab."""
    return "".join(
        ch for ch in text
        if ch in "\n\t" or not (unicodedata.category(ch) in ("Cc", "Cs") or ch in "\ufffe\uffff")
    )


_HAS_C0 = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_HAS_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def normalize_whitespace(text: str, collapse_spaces: bool = True) -> str:
    """LF line ends, no trailing spaces, at most one blank line in a row; indentation kept.

    Runs of spaces inside a line become one space (when `collapse_spaces`); leading
    indentation is left alone because code and verse depend on it.
    """
    # Each rewrite runs only when a substring test (far faster than a regex scan) shows it can match.
    ascii_only = text.isascii()
    if "\r" in text or "\x0b" in text or "\x0c" in text or (not ascii_only and _NON_ASCII_LINE_SEP.search(text)):
        text = _LINE_SEPS.sub("\n", text)
    if not ascii_only:
        text = _SPACE_LIKE.sub(" ", text)
        text = _ZERO_WIDTH.sub("", text)
    if collapse_spaces and "  " in text:
        text = _INNER_SPACES.sub(" ", text)
    if " \n" in text or "\t\n" in text or text.endswith((" ", "\t")):
        # per line, as `_TRAILING.sub("", text)` does (`$` under re.M ends a line at "\n" only), faster
        text = "\n".join([line.rstrip(" \t") for line in text.split("\n")])
    # no line holds only spaces or tabs any more, so a run of blank lines is a run of newlines
    if "\n\n\n" in text:
        text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip("\n")


def clean_text(
    text: str,
    strip_html: bool = True,
    fix_mojibake: bool = True,
    normalization: str | None = "NFC",
    collapse_spaces: bool = True,
) -> str:
    """Markup to text, mojibake repaired, Unicode normalized, controls dropped, whitespace tidied.

    Line and paragraph breaks survive; see the module docstring for why.
    """
    return _clean(text, strip_html, fix_mojibake, normalization, collapse_spaces)[0]


def _clean(
    text: str, strip_html: bool, fix_mojibake: bool, normalization: str | None, collapse_spaces: bool
) -> tuple[str, bool, bool]:
    """`clean_text` plus whether markup was stripped and whether mojibake was repaired."""
    if not text:
        return "", False, False
    was_html = repaired = False
    if strip_html and looks_like_html(text):
        text = html_to_text(text)
        was_html = True
    elif strip_html and "&" in text and _ENTITY.search(text):
        # entity-escaped plain text (exported from a CMS): unescape only, no tag parsing
        text = html.unescape(text)
    # line separators first: a lone CR is a line break, not a control character to delete
    if "\r" in text or "\x0b" in text or "\x0c" in text or "\u2028" in text or "\u2029" in text:
        text = _EARLY_LINE_SEPS.sub("\n", text)  # NEL (U+0085) waits: it is also a UTF-8 byte in latin-1 mojibake
    if _HAS_C0.search(text):
        text = _HAS_C0.sub("", text)
    for _ in range(3):
        if fix_mojibake:
            # after C0 controls go (they are never part of a wrong decode) but before C1 controls
            # go: UTF-8 read as latin-1 shows its continuation bytes as C1 controls
            fixed = repair_mojibake(text)
            repaired, text = repaired or fixed != text, fixed
        if not _HAS_CONTROL.search(text):
            break
        text = _strip_controls(text.replace("\x85", "\n"))
        # dropping controls can join two halves of a wrong decode: look once more
        if not fix_mojibake or not mojibake_count(text):
            break
    if normalization:
        text = unicodedata.normalize(normalization, text)
    return normalize_whitespace(text, collapse_spaces=collapse_spaces), was_html, repaired


class TextCleaner(BaseFormatter):
    """datatrove formatter around `clean_text`; counts the documents each fix touched.

    Counters: `html_stripped`, `mojibake_repaired`, `changed`. A document that ends up empty
    is passed on (a length filter downstream counts it as too short) rather than dropped
    silently here, because a formatter has no drop reason to report.
    """

    name = "🧽 Clean text"

    def __init__(
        self,
        strip_html: bool = True,
        fix_mojibake: bool = True,
        normalization: str | None = "NFC",
        collapse_spaces: bool = True,
    ) -> None:
        super().__init__()
        self.strip_html = strip_html
        self.fix_mojibake = fix_mojibake
        self.normalization = normalization
        self.collapse_spaces = collapse_spaces

    def format(self, text: str) -> str:
        return clean_text(
            text,
            strip_html=self.strip_html,
            fix_mojibake=self.fix_mojibake,
            normalization=self.normalization,
            collapse_spaces=self.collapse_spaces,
        )

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update(StatHints.total)
            with self.track_time():
                text = doc.text if isinstance(doc.text, str) else ""
                cleaned, was_html, repaired = _clean(
                    text, self.strip_html, self.fix_mojibake, self.normalization, self.collapse_spaces
                )
                if was_html:
                    self.stat_update("html_stripped")
                if repaired:
                    self.stat_update("mojibake_repaired")
                if cleaned != text:
                    self.stat_update("changed")
                doc.text = cleaned
            yield doc


class MojibakeFilter(BaseFilter):
    """Drops documents still carrying a wrong decode after `TextCleaner` tried to repair them.

    The score is traces of mojibake (U+FFFD, ftfy's badness sequences, rare Hangul
    syllables, Hanja glued inside Hangul words) per non-ASCII character; a document goes when
    it has at least `min_count` traces and the score exceeds `max_score`, or when at least two
    traces make up half its non-ASCII text (an English page whose only accents are garbled).
    Both bounds are needed: one stray U+FFFD in a long article is noise, a page of them is garbage.
    """

    name = "🈴 Mojibake"

    def __init__(
        self,
        max_score: float = 0.02,
        min_count: int = 3,
        exclusion_writer: DiskWriter | None = None,
    ) -> None:
        super().__init__(exclusion_writer)
        self.max_score = max_score
        self.min_count = min_count

    def filter(self, doc) -> bool | tuple[bool, str]:  # noqa: ANN001 - datatrove Document
        text = doc.text or ""
        count = mojibake_count(text)
        if count == 0:
            return True
        score = mojibake_score(text)
        if (count >= self.min_count and score > self.max_score) or (count >= 2 and score >= 0.5):
            return False, "mojibake"
        return True
