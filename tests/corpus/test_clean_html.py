"""The one-pass HTML scanner gives exactly the text of the HTMLParser-based reference.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/corpus/test_clean_html.py -q

`html_to_text` runs `_scan_html` (the stdlib tokenizer's rules with the extractor's handlers
inlined); `_reference_html_to_text` drives the same handlers through `html.parser`. Any
difference would change the corpus a build produces, so they are compared on random markup
built from the constructs that make tokenizers disagree, on random character soup, on real
pages from the installed Python (IDLE's help page, pydoc's pages of standard modules), and
on real LibreOffice help pages when that asset is fetched.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpt.corpus import clean
from cpt.corpus.clean import _COMMENT, _reference_html_to_text, _scan_html, html_to_text

pytestmark = pytest.mark.skipif(not clean._SCAN, reason="this interpreter's html.parser differs: the reference runs")

# start/end tags of every handler class (block, line, cell, skipped, raw text, title, pre, inert),
# malformed tags, declarations, entities with and without `;`, and every kind of whitespace
PIECES = [
    "<p>", "</p>", "<P class=x>", "<br/>", "<br />", "<br clear=all/>", "<td>", "<th>", "</td>", "<tr>", "<li>",
    "<pre>", "</pre>", "<script>", "</script>", "</SCRIPT >", "<style type='a'>", "</style>", "<title>", "</title>",
    "<head>", "</head>", "<body>", '<a href="x>y">', "<a href='q'", "<div\vclass=x>", "<div\xa0x>", "</div>",
    "</ div>", "</>", "</ >", "</3>", "<!doctype html>", "<!DOCTYPE", "<!x>", "<?php ?>", "<?", "<", ">", "&amp;",
    "&amp", "&#10;", "&#x41;", "&notin;", "&", " ", "  ", "\n", "\t", "\r", "\f", "\v", "\xa0", "x", "word", "한글",
    '<span a=b c d="e">', "</span >", "<a/b>", "<a b='c'/>", "<a b = c>", "<a b==c>", "<noscript>", "</noscript>",
    "<iframe/>", "<svg>", "</svg>", "<img src=x>", "<X>", "</X>", "<h1>", "</H1>", "<table>", "<p/ >",
    '<a\nhref="u"\n>', '<a b="c"d>', "<input value=a/b>", "<![CDATA[x]]>", "</title", "<title", "<tr/>", "<td/>",
    "<caption>", "<hr>", "<p", "</p", "<a b=c", "\x00", "<a\x00>", "<b\t/>", "<b/ >", "<b / >", "<!-- c -->",
]


def same_as_reference(markup: str) -> None:
    markup = _COMMENT.sub(" ", markup) if "<!--" in markup else markup
    fast = _scan_html(markup)
    if fast is not None:  # None: a construct the scanner leaves to the reference (<![CDATA[...]]>)
        assert fast == _reference_html_to_text(markup)
    assert html_to_text(markup) == _reference_html_to_text(markup)


@given(st.lists(st.sampled_from(PIECES), max_size=30))
@settings(max_examples=3000, deadline=None)
def test_scanner_matches_reference_on_tag_soup(pieces):
    same_as_reference("".join(pieces))


@given(st.text(alphabet=st.sampled_from(list("<<>/!?&;=\"' abpPrtdh\n\t\x0b\xa0-#x0")), max_size=60))
@settings(max_examples=3000, deadline=None)
def test_scanner_matches_reference_on_character_soup(markup):
    same_as_reference(markup)


@given(st.text(max_size=200))
@settings(max_examples=500, deadline=None)
def test_scanner_matches_reference_on_any_text(markup):
    same_as_reference("<p>" + markup)


@pytest.mark.parametrize(
    "markup",
    [
        "<html><head><title>T</title><style>x{}</style><body><p>Body text.</p></body></html>",
        "<title>a<script>kept in title</script></title><p>b</p>",  # a title shows even a script's text
        "<pre>  keep\n   layout &amp; entities</pre>after   <b>bold</b>",
        "<table><tr><td>a</td><td>b</td></tr><tr><td/><td>c</td></tr></table>",
        "<p>unclosed <script>var x = '</p>'; never closed",
        "text &notin the middle &amp and end &amp",
        "<head><meta charset=utf-8><p>no body tag</p></head><body>shown</body>",
        "<div>a</div\n>b<a href=x/>c</A>",
    ],
)
def test_scanner_matches_reference_on_edge_cases(markup):
    same_as_reference(markup)


def _installed_python_pages() -> list[tuple[str, str]]:
    """Real HTML that every installation has: IDLE's Sphinx-built help page (where idlelib is
    installed) and pydoc's generated pages (tables, fonts, links, entities) of standard modules."""
    import importlib
    import importlib.util
    import pydoc
    from pathlib import Path

    pages = []
    spec = importlib.util.find_spec("idlelib")
    if spec is not None and spec.submodule_search_locations:
        help_html = Path(next(iter(spec.submodule_search_locations))) / "help.html"
        if help_html.is_file():
            pages.append(("idlelib/help.html", help_html.read_text(encoding="utf-8")))
    for name in ("json", "textwrap", "collections", "html.parser", "argparse", "difflib"):
        module = importlib.import_module(name)
        pages.append((f"pydoc {name}", pydoc.html.page(pydoc.describe(module), pydoc.html.document(module, name))))
    return pages


def test_scanner_matches_reference_on_installed_python_pages():
    pages = _installed_python_pages()
    assert len(pages) >= 6
    for where, markup in pages:
        text = html_to_text(markup)
        assert text == _reference_html_to_text(_COMMENT.sub(" ", markup)), where
        assert len(text) > 1000 and "<td" not in text and "<span" not in text, where  # the layout markup is gone
        # every cut of a real page, a tag or an entity sliced in half included, agrees too
        for cut in range(0, len(markup), max(1, len(markup) // 40)):
            same_as_reference(markup[cut : cut + 3000])


def test_scanner_matches_reference_on_libreoffice_help_pages():
    from cpt.assets import asset_path, has_asset

    if not has_asset("libreoffice-help-ko"):
        pytest.skip("asset libreoffice-help-ko not fetched (python -m cpt.assets fetch --only libreoffice-help-ko)")
    pages = sorted(asset_path("libreoffice-help-ko").rglob("*.html"))[::10]
    assert pages
    for page in pages:
        markup = page.read_text(encoding="utf-8", errors="replace")
        text = html_to_text(markup)
        assert text == _reference_html_to_text(_COMMENT.sub(" ", markup)), page
        assert text.strip()


@given(st.text(alphabet=st.sampled_from(list(" \n\t\r\xa0ab")), max_size=40))
@settings(max_examples=2000, deadline=None)
def test_whitespace_rewrites_match_their_regex_definitions(text):
    import re

    assert clean._INNER_SPACES.sub(" ", text) == re.sub(r"(?<=\S)[ ]{2,}", " ", text)
    per_line = "\n".join([line.rstrip(" \t") for line in text.split("\n")])
    assert per_line == re.sub(r"[ \t]+$", "", text, flags=re.M)
