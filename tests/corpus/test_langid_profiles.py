"""The language model is read from langdetect's profiles without DetectorFactory: same numbers, same fallback.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/corpus/test_langid_profiles.py -q
"""

from __future__ import annotations

from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

from cpt.corpus.langid import _load_profiles, _model


def test_profiles_read_directly_equal_langdetects_own_loading():
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    langs, ngrams, probs = _load_profiles(PROFILES_DIRECTORY)
    assert langs == factory.langlist  # langdetect's load order, which its fallback sums in
    assert ngrams == sorted(factory.word_lang_prob_map)
    for row, gram in enumerate(ngrams):
        assert probs[row].tolist() == factory.word_lang_prob_map[gram], gram


def test_fallback_detector_gives_langdetects_probabilities():
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    texts = [
        "Le chat est sur la table et il regarde la rue.",
        "Der Hund schläft im Garten, weil es warm ist.",
        "debian package manager apt dpkg",
        "Ola, como estas? Muito bem, obrigado.",
    ]
    ours = _model().factory
    for text in texts:
        runs = []
        for f in (factory, ours):
            detector = f.create()
            detector.seed = 0
            detector.append(text)
            runs.append([(r.lang, r.prob) for r in detector.get_probabilities()])
        assert runs[0] == runs[1], text
