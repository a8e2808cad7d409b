"""Fixtures for the tokenizer-extension tests: real tokenizers and text from installed packages only.

- SentencePiece family: Mistral v1 from `mistral_common`.
- byte-level BPE family: a small GPT-2-style BPE trained here on English from `pydoc_data`.
- Korean: the law texts inside konlpy (located without importing konlpy, which needs a JVM).
Extended tokenizers are built once per session: each extension takes a few seconds.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from cpt.tokenizer_ext.extend import extend_tokenizer


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{name} not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="session")
def mistral_model() -> Path:
    path = _package_dir("mistral_common") / "data" / "tokenizer.model.v1"
    assert path.is_file()
    return path


@pytest.fixture(scope="session")
def korean_dirs() -> list[Path]:
    root = _package_dir("konlpy") / "data" / "corpus"
    return [root / "kolaw", root / "kobill"]


@pytest.fixture(scope="session")
def korean_texts(korean_dirs) -> list[str]:
    return [p.read_text(encoding="utf-8").replace("\r\n", "\n") for d in korean_dirs for p in sorted(d.glob("*.txt"))]


@pytest.fixture(scope="session")
def english_texts() -> list[str]:
    from pydoc_data.topics import topics

    return [topics[k] for k in sorted(topics)]


@pytest.fixture(scope="session")
def bpe_base(tmp_path_factory, english_texts) -> Path:
    """A byte-level BPE tokenizer.json (GPT-2 style) trained on English only: Korean falls to bytes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(english_texts, trainer)
    folder = tmp_path_factory.mktemp("bpe_base")
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "TokenizersBackend", "eos_token": "<|endoftext|>"}))
    return folder


def _extended(tmp_path_factory, name: str, base: Path, korean_dirs: list[Path], new_tokens: int) -> Path:
    out = tmp_path_factory.mktemp(name)
    extend_tokenizer(str(base), "ko", korean_dirs, new_tokens, out)
    return out


@pytest.fixture(scope="session")
def sp_extended(tmp_path_factory, mistral_model, korean_dirs) -> Path:
    return _extended(tmp_path_factory, "sp_ext", mistral_model, korean_dirs, 600)


@pytest.fixture(scope="session")
def bpe_extended(tmp_path_factory, bpe_base, korean_dirs) -> Path:
    return _extended(tmp_path_factory, "bpe_ext", bpe_base, korean_dirs, 400)


@pytest.fixture(scope="session")
def sp_json_base(tmp_path_factory, mistral_model) -> Path:
    """Mistral v1 as a Hugging Face folder holding tokenizer.json alone (`▁` for spaces, byte fallback), no tokenizer.model."""
    from cpt.tokenizer_ext.load import hf_face, load_base

    full = tmp_path_factory.mktemp("sp_json_full")
    hf_face(load_base(str(mistral_model)), cache=full)
    folder = tmp_path_factory.mktemp("sp_json_base")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((full / name).read_bytes())
    return folder


@pytest.fixture(scope="session")
def sp_json_extended(tmp_path_factory, sp_json_base, korean_dirs) -> Path:
    return _extended(tmp_path_factory, "sp_json_ext", sp_json_base, korean_dirs, 600)
