"""Cleaning: HTML to text, structure-keeping whitespace, controls, NFC, mojibake repair or removal.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/corpus/test_clean.py -q
"""

from __future__ import annotations

import importlib.util
import unicodedata
from pathlib import Path

import pytest
from datatrove.data import Document
from hypothesis import given, settings
from hypothesis import strategies as st

from cpt.corpus.clean import (
    MojibakeFilter,
    TextCleaner,
    clean_text,
    looks_like_html,
    mojibake_score,
    repair_mojibake,
)

KONLPY = Path(next(iter(importlib.util.find_spec("konlpy").submodule_search_locations))) / "data" / "corpus"


def korean_paragraphs(n: int = 12) -> list[str]:
    text = (KONLPY / "kolaw" / "constitution.txt").read_text(encoding="utf-8").replace("\r\n", "\n")
    return [p for p in text.split("\n\n") if len(p) > 60][:n]


ENGLISH_ACCENTED = [
    "Café crème brûlée is a naïve dessert — or so the “experts” say.",
    "Señor Muñoz moved to Zürich; his façade of calm fooled nobody.",
    "The résumé listed Göteborg, Kraków and São Paulo as past postings.",
]


def counters(step) -> dict[str, float]:
    return {k: v.total for k, v in step.stats.stats.items()}


# --------------------------------------------------------------------------- HTML


PAGE = """<!DOCTYPE html>
<html><head><title>Notice</title>
<style>body { color: red; } p::after { content: "STYLE" }</style>
<script>var secret = "SCRIPT"; document.write("<p>injected</p>");</script>
</head>
<body>
<noscript>NOSCRIPT fallback</noscript>
<h1>Caf&eacute; &amp; Bar</h1>
<p>First paragraph with <b>bold</b> and
a source line break.</p>
<p>Second&nbsp;paragraph &lt;not a tag&gt; &#8212; done.</p>
<ul><li>one</li><li>two</li></ul>
<table><tr><td>a</td><td>b</td></tr></table>
<pre>keep
   this  layout</pre>
</body></html>"""


def test_html_scripts_styles_dropped_entities_unescaped_blocks_kept():
    out = clean_text(PAGE)
    for hidden in ("SCRIPT", "STYLE", "secret", "NOSCRIPT", "injected", "color: red"):
        assert hidden not in out
    assert "Café & Bar" in out
    assert "Second paragraph <not a tag> — done." in out
    # block structure becomes paragraphs; source line breaks inside a <p> do not
    assert "First paragraph with bold and a source line break." in out
    assert "Café & Bar\n\nFirst paragraph" in out
    assert "one\ntwo" in out
    assert "a\tb" in out
    assert "keep\n   this layout" in out or "keep\n   this  layout" in out
    assert out.startswith("Notice")


def test_page_without_closing_head_still_shows_its_body():
    page = "<html><head><title>T</title><style>x{}</style><body><p>Body text here.</p><p>More.</p></body></html>"
    assert clean_text(page) == "T\n\nBody text here.\n\nMore."


def test_text_that_merely_mentions_tags_is_not_parsed():
    text = "If a < b and b > c, then write <b>bold</b> in your report."
    assert not looks_like_html(text)
    assert clean_text(text) == text


def test_entity_escaped_plain_text_is_unescaped():
    assert clean_text("Tom &amp; Jerry &mdash; 5 &lt; 6") == "Tom & Jerry — 5 < 6"


def test_broken_html_never_raises():
    junk = "<html><body><p>ok</p><!-- unclosed <script>alert(1)" + "<div>" * 500 + "&#99999999;"
    out = clean_text(junk)
    assert "ok" in out and "alert" not in out


# --------------------------------------------------------------------------- whitespace, controls, NFC


def test_crlf_konlpy_text_keeps_its_line_structure():
    raw = (KONLPY / "kolaw" / "constitution.txt").read_bytes().decode("utf-8")
    assert "\r\n" in raw
    out = clean_text(raw)
    assert "\r" not in out
    raw_lines = [ln.strip() for ln in raw.replace("\r\n", "\n").split("\n") if ln.strip()]
    out_lines = [ln.strip() for ln in out.split("\n") if ln.strip()]
    assert len(out_lines) == len(raw_lines)
    assert "\n\n" in out  # paragraphs survive
    assert "\n\n\n" not in out


def test_spaces_normalized_inside_lines_only():
    text = "Title   here  \r\n\r\n\r\n\r\n    indented   code\tand tab\u00a0nbsp\u200bzero\n\n\n\nlast   "
    assert clean_text(text) == "Title here\n\n    indented code\tand tab nbspzero\n\nlast"


def test_control_characters_removed_newline_and_tab_kept():
    text = "a\x00b\x07c\x1bd\x7fe\x85f\tg\nh\x0bi\x0cj\u2028k\ud800l"
    assert clean_text(text) == "abcde\nf\tg\nh\ni\nj\nkl"


def test_unicode_nfc():
    decomposed = unicodedata.normalize("NFD", "한국어 café")
    assert decomposed != "한국어 café"
    assert clean_text(decomposed) == "한국어 café"


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_clean_text_never_raises_on_any_text(text):
    once = clean_text(text)
    assert "\r" not in once and "\x00" not in once
    once.encode("utf-8")  # no lone surrogates left


# Random Latin-1/C1 soup is excluded here: there every pass may find another "layer" of wrong
# decoding to undo (that is what repair is for), so a second pass can legitimately differ.
_NO_LATIN1 = st.characters(blacklist_characters=[chr(c) for c in range(0x80, 0x100)])


@given(st.text(alphabet=_NO_LATIN1, max_size=300))
@settings(max_examples=300, deadline=None)
def test_clean_text_is_idempotent(text):
    once = clean_text(text)
    assert clean_text(once) == once


# --------------------------------------------------------------------------- mojibake


def test_korean_utf8_read_as_latin1_is_repaired():
    for para in korean_paragraphs():
        damaged = para.encode("utf-8").decode("latin-1")
        assert mojibake_score(damaged) > 0.05
        assert repair_mojibake(damaged) == para
        assert clean_text(damaged) == clean_text(para)


def test_korean_utf8_read_as_sloppy_cp1252_is_repaired():
    # what browsers do (WHATWG windows-1252): the 5 undefined bytes become C1 controls
    for para in korean_paragraphs():
        damaged = "".join(
            chr(b) if b in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else bytes([b]).decode("cp1252")
            for b in para.encode("utf-8")
        )
        assert repair_mojibake(damaged) == para


def test_korean_lossy_cp1252_is_repaired_exactly_or_removed():
    # errors="replace" loses bytes; a guessed syllable may be wrong (생/상 differ in the lost
    # byte only), so a document is either restored exactly or removed, never kept altered
    moji = MojibakeFilter()
    for para in korean_paragraphs():
        damaged = para.encode("utf-8").decode("cp1252", errors="replace")
        cleaned = clean_text(damaged)
        kept = moji.filter(Document(text=cleaned, id="x")) is True
        assert (not kept) or cleaned == clean_text(para)


def test_euc_kr_read_as_latin1_is_repaired():
    for para in korean_paragraphs():
        damaged = para.encode("cp949").decode("latin-1")
        assert repair_mojibake(damaged) == para


@pytest.mark.parametrize("wrong", ["latin-1", "cp1252"])
def test_accented_english_mojibake_is_repaired(wrong):
    for sentence in ENGLISH_ACCENTED:
        damaged = sentence.encode("utf-8").decode(wrong, errors="replace")
        assert damaged != sentence
        assert clean_text(damaged) == sentence


def test_double_encoded_text_is_repaired():
    sentence = ENGLISH_ACCENTED[0]
    damaged = sentence.encode("utf-8").decode("latin-1").encode("utf-8").decode("latin-1")
    assert clean_text(damaged) == sentence


def test_lossy_cp1252_holes_filled_only_when_unambiguous():
    # errors="replace" loses the byte; '”' is the only plausible fill for E2 80 ??
    damaged = "“quoted”".encode().decode("cp1252", errors="replace")
    assert "\ufffd" in damaged
    assert clean_text(damaged) == "“quoted”"


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s.encode("utf-8").decode("cp949", errors="replace"),  # UTF-8 shown as Korean Windows
        lambda s: s.encode("cp949").decode("utf-8", errors="replace"),  # EUC-KR shown as UTF-8
        lambda s: s.encode("utf-8").decode("cp874", errors="replace"),  # UTF-8 shown as Thai Windows
        lambda s: s.encode("utf-8").decode("cp1252", errors="ignore"),  # bytes dropped
    ],
    ids=["utf8-as-cp949", "euckr-as-utf8", "utf8-as-cp874", "cp1252-ignore"],
)
def test_unrepairable_korean_mojibake_is_removed_with_its_reason(damage):
    paras = korean_paragraphs()
    docs = [Document(text=damage(p), id=str(i)) for i, p in enumerate(paras)]
    cleaner, moji = TextCleaner(), MojibakeFilter()
    kept = list(moji.run(cleaner.run(iter(docs))))
    assert not kept
    assert counters(moji)["dropped_mojibake"] == len(paras)


def test_clean_text_of_many_scripts_is_not_called_mojibake():
    samples = korean_paragraphs() + ENGLISH_ACCENTED + [
        "日本語の文章です。東京は大きな都市です。",
        "中文文本测试，这是一个句子。",
        "ภาษาไทยเป็นภาษาที่สวยงาม และมีประวัติยาวนาน",
        "Русский текст для проверки.",
        "Ελληνικά κείμενα επίσης.",
        "Grüße aus München — ½ Preis für Bücher, 3×4=12 und 20 °C.",
        "똠방각하 뷁 같은 드문 음절도 가끔 쓰인다.",
    ]
    docs = [Document(text=s, id=str(i)) for i, s in enumerate(samples)]
    kept = list(MojibakeFilter().run(TextCleaner().run(iter(docs))))
    assert len(kept) == len(samples)
    for s in samples:
        assert repair_mojibake(s) == s


def test_cleaner_counts_what_it_changed():
    docs = [
        Document(text=PAGE, id="html"),
        Document(text=ENGLISH_ACCENTED[0].encode("utf-8").decode("latin-1"), id="moji"),
        Document(text="already clean", id="clean"),
    ]
    cleaner = TextCleaner()
    out = list(cleaner.run(iter(docs)))
    assert [d.id for d in out] == ["html", "moji", "clean"]
    c = counters(cleaner)
    assert c["html_stripped"] == 1
    assert c["mojibake_repaired"] == 1
    assert c["changed"] == 2


# --------------------------------------------------------------------------- fast paths equal the plain computation

from html.parser import HTMLParser  # noqa: E402

from cpt.corpus import clean as clean_module  # noqa: E402

# characters around every shortcut: ASCII, Latin-1 and cp1252 look-alikes, Thai, CJK, Hangul,
# U+FFFD, line separators, odd spaces, zero-width and control characters
_TRICKY = st.one_of(
    st.sampled_from("aZé€ÃâìíëÂ\u0e01\u0e31\u0e48가힣漢字\ufffd\r\n\t\x0b\x0c\x85\u2028\u2029\u00a0\u3000\u200b\u00ad\x01\x7f ."),
    st.characters(),
)


@given(st.text(alphabet=_TRICKY, max_size=120))
@settings(max_examples=500, deadline=None)
def test_mojibake_prefilter_agrees_with_the_full_pattern(text):
    assert clean_module.looks_mojibaked(text) == (clean_module._SUSPECT.search(text) is not None)


def _plain_normalize_whitespace(text: str, collapse_spaces: bool = True) -> str:
    text = clean_module._LINE_SEPS.sub("\n", text)
    text = clean_module._SPACE_LIKE.sub(" ", text)
    text = clean_module._ZERO_WIDTH.sub("", text)
    if collapse_spaces:
        text = clean_module._INNER_SPACES.sub(" ", text)
    text = clean_module._TRAILING.sub("", text)
    text = clean_module._BLANK_RUNS.sub("\n\n", text)
    return text.strip("\n")


@given(st.text(alphabet=_TRICKY, max_size=120), st.booleans())
@settings(max_examples=500, deadline=None)
def test_whitespace_shortcuts_equal_every_rewrite(text, collapse):
    assert clean_module.normalize_whitespace(text, collapse) == _plain_normalize_whitespace(text, collapse)


class _StdlibExtractor(clean_module._TextExtractor):
    """The extractor with HTMLParser's own start-tag parser and position tracking."""

    parse_starttag = HTMLParser.parse_starttag
    updatepos = HTMLParser.updatepos


_MARKUP = st.lists(
    st.sampled_from([
        "<p>", "</p>", "<div class='a b'>", "<br/>", "<br>", "<li>", "<td>", "<td x=1>", "</td>", "<tr>",
        "<script>", "</script>", "<style>", "</style>", "<pre>", "</pre>", "<title>", "</title>", "<head>",
        "<body>", '<a href="x?a=1&amp;b=2" title=\'>\'>', "</a>", "<img src=x />", "<p id=x/y>", "<p a='1'b=2>",
        "<!-- c -->", "<!--", "<!doctype html>", "<?x?>", "<", ">", "</", "&amp;", "&lt;", "&#8212;", "&nbsp",
        "text", " ", "\n", "한국어", "<P CLASS=\"X\">", "<span\n  lang=ko>", "<b", "=\"", "'", "\t",
    ]),
    max_size=40,
).map("".join)


@given(_MARKUP)
@settings(max_examples=500, deadline=None)
def test_fast_start_tags_extract_the_same_text_as_htmlparser(markup):
    def extract(cls):
        parser = cls()
        try:
            parser.feed(markup)
            parser.close()
        except (AssertionError, ValueError) as exc:
            return type(exc)
        return "".join(parser.parts)

    assert extract(clean_module._TextExtractor) == extract(_StdlibExtractor)
