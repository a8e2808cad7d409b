"""Integer n-gram ids give exactly the tuple-based repetition measures (long documents use them).

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/corpus/test_quality_grams.py -q
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cpt.corpus.quality import QualityFilter, _TokenGrams, dup_ngram_char_frac, top_ngram_stats

# few distinct tokens of different lengths: many repeats and many ties between n-grams
TOKENS = st.lists(st.sampled_from(["a", "bb", "ccc", "dddd", "가", "나다", "the", "of"]), max_size=120)


@given(TOKENS, st.integers(min_value=1, max_value=10), st.sampled_from([0, 1000]))
@settings(max_examples=1500, deadline=None)
def test_token_grams_equal_tuple_counting(tokens, n, prior):
    grams = _TokenGrams(tokens)
    total = sum(map(len, tokens)) + prior
    assert grams.top(n, total) == top_ngram_stats(tokens, n, total)
    assert grams.dup(n, total) == dup_ngram_char_frac(tokens, n, total)


def test_long_repetitive_document_judged_the_same_either_way(monkeypatch):
    import cpt.corpus.quality as quality

    line = "the quick brown fox jumps over the lazy dog and runs away from the farm."
    text = "\n".join(f"{line} {i % 7} {'again ' * (i % 3)}" for i in range(200))
    fast = QualityFilter().judge(text, "en")
    monkeypatch.setattr(quality, "_GRAMS_MIN_TOKENS", 10**9)  # the tuple-based functions only
    slow = QualityFilter().judge(text, "en")
    assert fast[0] == slow[0] and fast[1].values == slow[1].values
