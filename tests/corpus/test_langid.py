"""Language ID: real Korean/English text from installed packages, Faker text per locale,
mixed Korean-English, symbol soup, determinism, and the filter in a datatrove pipeline.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/corpus/test_langid.py -q
"""

from __future__ import annotations

import importlib.util
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from faker import Faker

from cpt.corpus.langid import UNKNOWN, LanguageDetector, LanguageFilter, detect, known_languages
from cpt.errors import UserError


def _konlpy_corpus() -> Path:
    spec = importlib.util.find_spec("konlpy")
    assert spec is not None and spec.submodule_search_locations, "konlpy (data only) must be installed"
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "corpus"


def _chunks(text: str, size: int = 600) -> list[str]:
    """Group non-empty lines into ~size-char documents (kobill has one paragraph per line)."""
    out, cur = [], ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip():
            cur = f"{cur} {line.strip()}" if cur else line.strip()
        if len(cur) >= size:
            out.append(cur)
            cur = ""
    return out


@pytest.fixture(scope="module")
def korean_docs() -> list[str]:
    corpus = _konlpy_corpus()
    docs = _chunks((corpus / "kolaw" / "constitution.txt").read_text(encoding="utf-8"))
    for path in sorted((corpus / "kobill").glob("*.txt")):
        docs += _chunks(path.read_text(encoding="utf-8"))
    assert len(docs) > 50
    return docs


@pytest.fixture(scope="module")
def english_docs() -> list[str]:
    from pydoc_data.topics import topics

    docs = []
    for key in sorted(topics):
        for para in topics[key].split("\n\n"):
            para = " ".join(para.split())
            letters = sum(ch.isalpha() for ch in para)
            if len(para) >= 200 and letters >= 0.75 * len(para.replace(" ", "")):
                docs.append(para)
    assert len(docs) > 100
    return docs[:200]


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(seed=0)


def test_korean_law_and_bills_are_korean(detector, korean_docs):
    results = [detector.detect(doc) for doc in korean_docs]
    assert all(lang == "ko" for lang, _ in results)
    assert min(score for _, score in results) >= 0.8  # bills carry some digits/Latin, still clearly Korean


def test_python_reference_prose_is_english(detector, english_docs):
    labels = Counter(detector.detect(doc)[0] for doc in english_docs)
    assert labels["en"] == len(english_docs), labels


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("ja_JP", "ja"),
        ("zh_CN", "zh-cn"),
        ("zh_TW", "zh-tw"),
        ("de_DE", "de"),
        ("fr_FR", "fr"),
        ("en_US", "en"),
        ("it_IT", "it"),
        ("es_ES", "es"),
        ("nl_NL", "nl"),
        ("ru_RU", "ru"),
    ],
)
def test_faker_paragraphs_per_language(detector, locale, expected):
    """Latin-script languages must be told apart from each other, not just from Hangul."""
    fake = Faker(locale)
    fake.seed_instance(7)
    texts = [fake.text(max_nb_chars=300) for _ in range(20)]
    labels = Counter(detector.detect(t)[0] for t in texts)
    assert labels[expected] >= 19, labels


@pytest.mark.parametrize(
    ("locale", "expected"), [("de_DE", "de"), ("fr_FR", "fr"), ("en_US", "en"), ("ja_JP", "ja")]
)
def test_faker_short_sentences(detector, locale, expected):
    fake = Faker(locale)
    fake.seed_instance(3)
    texts = [fake.sentence() for _ in range(40)]
    assert all(len(t) <= 90 for t in texts)
    labels = Counter(detector.detect(t)[0] for t in texts)
    assert labels[expected] >= 34, labels  # bag-of-words sentences with no function words: hard


def test_korean_addresses_and_names(detector):
    fake = Faker("ko_KR")
    fake.seed_instance(5)
    texts = [fake.address() for _ in range(20)] + [f"{fake.name()} {fake.company()}" for _ in range(20)]
    assert all(detector.detect(t)[0] == "ko" for t in texts)


def test_mixed_korean_english(detector, korean_docs, english_docs):
    korean = korean_docs[3]
    mixed = f"{korean[:300]} The kernel is configured with make menuconfig before the build. {korean[300:]}"
    lang, score = detector.detect(mixed)
    pure_lang, pure_score = detector.detect(korean)
    assert (lang, pure_lang) == ("ko", "ko")
    assert score < pure_score  # the English share lowers the confidence, as a mixture should
    words = english_docs[0].split()
    for i in range(0, len(words), 12):
        words.insert(i, "데비안")  # a Korean word every dozen English words
    assert detector.detect(" ".join(words))[0] == "en"


def test_hangul_alone_does_not_decide_latin_text(detector):
    """German with a Korean name in it is German, not 'Hangul share, else English'."""
    text = "Der Vertrag wurde von Herrn 김민수 und der Firma in Berlin unterschrieben, weil die Bedingungen gut waren."
    assert detector.detect(text)[0] == "de"


@pytest.mark.parametrize(
    "text", ["", "   \n\t", "$$$ %%% ^^^ *** !!! 12345 67.89", "→ ← ↑ ↓ ★ ☆ ♥ ♦", "(((( )))) ---- ++++"]
)
def test_symbol_soup_is_unknown(detector, text):
    assert detector.detect(text) == (UNKNOWN, 0.0)


def test_langdetect_itself_raises_on_symbols():
    """Why `unknown` exists: plain langdetect has no answer for text without letters."""
    from langdetect import detect as ld_detect
    from langdetect.lang_detect_exception import LangDetectException

    with pytest.raises(LangDetectException):
        ld_detect("12345 !!! ###")


def test_deterministic_across_instances_and_global_seeds(korean_docs, english_docs):
    fake = Faker("it_IT")
    fake.seed_instance(11)
    texts = (
        korean_docs[:5]
        + english_docs[:5]
        + [fake.sentence() for _ in range(20)]
        + ["Non si deve pagare niente."]
    )
    from langdetect import DetectorFactory

    # fallback_below > 1 sends every text through langdetect: its seeding is what is tested
    first = [LanguageDetector(seed=1, fallback_below=1.01).detect(t) for t in texts]
    old = DetectorFactory.seed
    try:
        DetectorFactory.seed = 999  # another component re-seeding langdetect globally must not matter
        random.seed(12345)
        second = [LanguageDetector(seed=1, fallback_below=1.01).detect(t) for t in texts]
    finally:
        DetectorFactory.seed = old
    assert first == second
    fast = [LanguageDetector(fallback=None).detect(t) for t in texts]
    assert fast == [LanguageDetector(fallback=None).detect(t) for t in texts]


def test_fallback_paths():
    text = "Non si deve pagare niente."
    via_langdetect = LanguageDetector(fallback_below=1.01).classify(text)
    assert via_langdetect.method == "langdetect" and via_langdetect.lang in known_languages()
    ours = LanguageDetector(fallback=None).classify(text)
    assert ours.method == "ngram"
    assert LanguageDetector().classify("대한민국은 민주공화국이다.").method == "script"
    with pytest.raises(UserError):
        LanguageDetector(fallback="fasttext")


def test_ngrams_match_langdetects_own_extraction(english_docs):
    """We reuse langdetect's model, so we must feed it the same n-grams langdetect does."""
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
    from langdetect.utils.ngram import NGram

    from cpt.corpus.langid import _model, _run_ids

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    model = _model()
    cases = [
        ("latin", english_docs[0]),
        ("latin", "Über die HTTPServer-Klasse und NASA schreibt Herr Müller."),
        ("latin", "Ça coûte 3 €, n'est-ce pas ?"),
        ("cjk", "所有软件包文件的完整性由文件里的值来验证。这是一个很长的中文句子没有空格"),
    ]
    for group, text in cases:
        script = model.scripts[group]
        inverse = {i: g for g, i in script.vocab.items()}
        ld = factory.create()
        ld.append(text + " ")  # a trailing space so the last word's closing n-grams exist in both
        theirs = Counter(g for g in ld._extract_ngrams() if g in script.vocab)
        ours: Counter[str] = Counter()
        for word in NGram.normalize_vi(text).translate(model.normalize).split(" "):
            if word:
                fast = LanguageDetector._word_ids(word, script.vocab)
                assert sorted(fast) == sorted(_run_ids(word, script.vocab))  # shortcut == exact loop
                ours.update(inverse[i] for i in fast)
        assert ours == theirs


def test_long_documents_are_sampled_but_seen_whole():
    korean = "대한민국은 민주공화국이다. 모든 권력은 국민으로부터 나온다. " * 200
    english = "The quick brown fox jumps over the lazy dog near the river bank. " * 200
    det = LanguageDetector(max_chars=600)
    assert det.detect(korean)[0] == "ko"
    assert det.detect(english)[0] == "en"
    lang, score = det.detect(korean + english)  # half and half: the sample sees both
    assert score < 0.9


def test_module_level_detect():
    assert detect("Das ist ein ganz normaler deutscher Satz über das Wetter.")[0] == "de"


# -- the datatrove filter -------------------------------------------------------------


def _docs(korean_docs, english_docs) -> list[Document]:
    fake = Faker("fr_FR")
    fake.seed_instance(2)
    docs = [Document(text=t, id=f"ko-{i}") for i, t in enumerate(korean_docs[:6])]
    docs += [Document(text=t, id=f"en-{i}") for i, t in enumerate(english_docs[:4])]
    docs += [Document(text=fake.text(max_nb_chars=300), id=f"fr-{i}") for i in range(3)]
    docs += [Document(text="%%% 123 ### ***", id="junk-0"), Document(text="", id="empty-0")]
    half = korean_docs[0][:200] + " " + english_docs[0][:500]
    docs += [Document(text=half, id="mixed-0")]
    return docs


def test_filter_reasons_and_metadata(korean_docs, english_docs):
    flt = LanguageFilter(["ko", "en"], min_score=0.65)
    kept = list(flt.run(iter(_docs(korean_docs, english_docs))))
    ids = {d.id for d in kept}
    assert ids == {f"ko-{i}" for i in range(6)} | {f"en-{i}" for i in range(4)}
    for d in kept:
        assert d.metadata["language"] == d.id.split("-")[0]
        assert 0.65 <= d.metadata["language_score"] <= 1.0
    counts = {k: v.total for k, v in flt.stats.stats.items()}
    assert counts["dropped_lang_other"] == 3
    assert counts["dropped_lang_unknown"] == 2
    assert counts["dropped_lang_low_score"] == 1  # the Korean-English half-and-half page
    assert counts["forwarded"] == 10
    assert counts["lid_script"] >= 6 and counts["lid_ngram"] >= 7  # Korean by script, the rest by n-grams


def test_filter_in_a_datatrove_pipeline(tmp_path, korean_docs, english_docs):
    from datatrove.pipeline.writers import JsonlWriter

    docs = _docs(korean_docs, english_docs)
    executor = LocalPipelineExecutor(
        pipeline=[docs, LanguageFilter(["ko"], seed=0), JsonlWriter(str(tmp_path / "out"), compression=None)],
        tasks=1,
        logging_dir=str(tmp_path / "logs"),
        skip_completed=False,
    )
    executor.run()
    lines = [
        json.loads(x) for f in sorted((tmp_path / "out").glob("*.jsonl")) for x in f.read_text().splitlines()
    ]
    assert [r["id"] for r in lines] == [f"ko-{i}" for i in range(6)]
    assert all(r["metadata"]["language"] == "ko" for r in lines)
    stats = json.loads((tmp_path / "logs" / "stats.json").read_text())
    lid = next(s for s in stats if "Language ID" in s["name"])
    assert lid["stats"]["dropped_lang_other"] == 7  # 4 English, 3 French
    assert lid["stats"]["dropped_lang_unknown"] == 2
    assert lid["stats"]["forwarded"] == 6


def test_filter_options():
    with pytest.raises(UserError):
        LanguageFilter(["kr"])  # a common typo for ko
    with pytest.raises(UserError):
        LanguageFilter(["ko"], min_score=1.5)
    zh = LanguageFilter(["zh"])
    assert zh.filter(Document(text="这是一个中文句子，我们正在测试语言识别的过滤器。", id="z")) is True
    labels = LanguageFilter(["ko"], label_only=True)
    doc = Document(text="The weather is nice today and we walk in the park.", id="e")
    assert labels.filter(doc) is True and doc.metadata["language"] == "en"
    anything = LanguageFilter(None)
    assert anything.filter(Document(text="Das ist ein ganz normaler deutscher Satz.", id="d")) is True


def test_results_do_not_depend_on_what_the_memo_holds(english_docs):
    """Word memos live per thread across detectors (and datatrove tasks): a cold and a warm
    memo, and a memo that evicts every few documents, give the same scores to the last bit."""
    fake = Faker(["de_DE", "fr_FR", "es_ES", "en_US"])
    fake.seed_instance(5)
    texts = english_docs[:40] + [fake.paragraph(nb_sentences=4) for _ in range(40)]
    warm = LanguageDetector(fallback=None)
    for text in reversed(texts):  # fills the shared memo with every word, in another order
        warm.classify(text)
    on_warm = [warm.classify(t) for t in texts]
    tiny = LanguageDetector(fallback=None, cache_words=1)  # its own memo, cleared every few dozen documents
    assert [tiny.classify(t) for t in texts] == on_warm
    assert [LanguageDetector(fallback=None).classify(t) for t in texts] == on_warm


def test_compiled_profiles_are_cached_and_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    import numpy as np

    from cpt.corpus import langid

    monkeypatch.setenv("CPT_CACHE_DIR", str(tmp_path))
    fresh = langid.compile_profiles(langid.PROFILES_DIRECTORY)
    first = langid.compiled_profiles()
    (cached,) = (tmp_path / "langid").glob("profiles-*.npz")
    second = langid.compiled_profiles()  # read back from the file
    for arrays in (first, second):
        assert arrays.keys() == fresh.keys()
        for key in fresh:
            np.testing.assert_array_equal(arrays[key], fresh[key], err_msg=key)
            assert arrays[key].dtype == fresh[key].dtype
    model = langid._Model(second)
    assert model.scripts["latin"].logp.dtype == np.float32 and "en" in model.scripts["latin"].langs
    cached.write_bytes(cached.read_bytes()[:1000])  # a torn file (a run killed mid-write, before the rename)
    again = langid.compiled_profiles()
    np.testing.assert_array_equal(again["latin.logp"], fresh["latin.logp"])
    assert cached.stat().st_size > 1000  # replaced by a whole one
    assert not list((tmp_path / "langid").glob("*.tmp"))
    monkeypatch.setenv("CPT_CACHE_DIR", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a folder")  # an unwritable cache costs time, never the run
    np.testing.assert_array_equal(langid.compiled_profiles()["hangul.vocab"], fresh["hangul.vocab"])
