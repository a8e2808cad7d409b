"""The script rules that decide which pieces and merges are safe to add."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpt.errors import UserError
from cpt.tokenizer_ext.lang import (
    check_lang,
    is_anchored_string,
    is_target_bytes,
    is_target_char,
    target_share,
    utf8_prefixes,
)
from cpt.tokenizer_ext.merge_sp import plan_pieces, script_only_piece, target_piece
from cpt.tokenizer_ext.train_pieces import bytes_to_unicode, mergeable, target_words

B2U = bytes_to_unicode()


def bl(data: bytes) -> str:
    """Bytes as a byte-level token string."""
    return "".join(B2U[b] for b in data)


def test_target_bytes():
    han = "한".encode()  # ED 95 9C
    assert is_target_bytes(han, "ko") and is_target_bytes(b" " + han, "ko")
    assert is_target_bytes(han[:2], "ko")  # ED 95 begins Hangul syllables only (U+D540-D57F)
    assert not is_target_bytes(han[:1], "ko")  # ED alone also begins Hangul Jamo Extended-B (U+D7B0-)
    assert is_target_bytes("변".encode()[:1], "ko")  # EB begins U+B000-BFFF: Hangul syllables only
    assert not is_target_bytes(han[1:], "ko")  # starts mid-character
    assert not is_target_bytes(b" ", "ko") and not is_target_bytes(b"a", "ko")
    assert not is_target_bytes("中".encode(), "ko") and not is_target_bytes("ꀀ".encode()[:2], "ko")  # Yi shares lead byte EA


def test_mergeable_needs_target_left_side_and_result():
    han = "한국".encode()
    assert mergeable(bl(han[:1]), bl(han[1:3]), "ko")
    assert mergeable(bl(b" "), bl(han[:2]), "ko")
    assert not mergeable(bl(han[1:2]), bl(han[2:3]), "ko")  # two continuation bytes: could be any script
    assert not mergeable(bl(b"x"), bl(han[:3]), "ko")  # crosses from Latin into Hangul
    assert not mergeable(bl(b" "), bl(han[:1]), "ko")  # ` ` + ED: would fire on ` ힰ` (Jamo Extended-B) too
    assert mergeable(bl(han[:3]), bl("국".encode()[:2]), "ko")  # ends in EA B5: Hangul only


def test_every_prefix_is_begun_by_target_characters_only():
    """No character outside the target script, in the whole of Unicode, begins with a prefix counted as target."""
    prefixes = utf8_prefixes("ko")
    assert prefixes
    for cp in range(0x80, 0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        if is_target_char(ch, "ko"):
            continue
        b = ch.encode()
        assert not any(b[:k] in prefixes for k in range(1, len(b))), hex(cp)


NOT_KOREAN = st.characters(codec="utf-8").filter(lambda c: not is_target_char(c, "ko"))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=NOT_KOREAN, max_size=4), st.text(alphabet=NOT_KOREAN, max_size=4))
def test_no_merge_of_non_korean_text(left, right):
    """Text without Korean characters never yields a mergeable pair."""
    if left and right:
        assert not mergeable(bl(left.encode()), bl(right.encode()), "ko")


def test_target_pieces_and_closure():
    assert target_piece("▁한국", "ko") and target_piece("국어", "ko")
    # punctuation, symbols and digits may ride along with Hangul
    assert target_piece("다.", "ko") and target_piece("▁(예", "ko") and target_piece("3월", "ko") and target_piece("▁“한국”", "ko")
    assert not target_piece("▁", "ko") and not target_piece("▁the", "ko") and not target_piece("▁(.", "ko") and not target_piece("12", "ko")
    assert not target_piece("x를", "ko") and not target_piece("다▁", "ko") and not target_piece("다 나", "ko") and not target_piece("▁▁다", "ko")
    assert script_only_piece("▁한국", "ko") and not script_only_piece("다.", "ko")
    added, _, other = plan_pieces(["▁대한민국", "▁the", "민국"], {"▁", "대"}, "ko", 100)
    assert other == 1 and len(set(added)) == len(added)
    vocab = {"▁", "대"} | set(added)
    for piece in added:
        assert len(piece) == 1 or any(piece[:i] in vocab and piece[i:] in vocab for i in range(1, len(piece)))
    limited, _, _ = plan_pieces(["▁대한민국", "한"], {"▁", "대"}, "ko", 1)
    assert limited == ["한"]  # the long piece needs more than the budget; the next one fits


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=NOT_KOREAN, max_size=8))
def test_no_piece_without_korean(text):
    """A piece may be added only if it holds Korean: text without Korean can never match it."""
    assert not is_anchored_string(text, "ko") and not target_piece(text, "ko") and not target_piece("▁" + text, "ko")


def test_target_words_masks_other_scripts():
    words, stats = target_words(["Linux를 설치한다. English only. (GNU/Linux용)", "no korean"], "ko")
    assert words == {"x를": 1, "설치한다.": 1, "(x/x용)": 1}  # letters masked, punctuation kept
    assert stats["target_documents"] == 1 and stats["documents"] == 2 and stats["target_chars"] == 6
    assert target_share("한국 ab", "ko") == pytest.approx(0.5)


def test_unknown_language():
    with pytest.raises(UserError, match="no script table"):
        check_lang("fr")
