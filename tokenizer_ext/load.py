"""Read a base tokenizer of either family, its Hugging Face face, and corpus text.

Two families are extended, and they need different surgery:
- SentencePiece (`.model` proto; Mistral, Llama-2): pieces are appended to the proto.
  The same tokenizers often come as a `tokenizer.json` alone (`▁` for spaces, byte
  fallback): the same pieces are then appended to its vocab, with merges that reach them.
- byte-level BPE (`tokenizer.json`; GPT-2, Llama-3, Qwen, SmolLM2): vocab and merges
  are appended to the json.
A base is recognised by its content, not its name, so a wrong file fails here with one
line instead of deep inside a trainer.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cpt.errors import UserError
from cpt.paths import resolve

SP_FILE = "tokenizer.model"
JSON_FILE = "tokenizer.json"
# files of a Hugging Face tokenizer folder that carry settings, copied to the output
HF_SETTINGS = ("tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "chat_template.jinja")
# keys that `save_pretrained` records about where a tokenizer was loaded from, not how it tokenizes
VOLATILE_KEYS = ("is_local", "local_files_only", "name_or_path")


@dataclass
class BaseTokenizer:
    """A base tokenizer in its original form, plus the settings files of its HF form."""

    family: Literal["sentencepiece", "sentencepiece_json", "bpe"]
    source: str
    sp_proto: bytes | None = None
    tokenizer_json: dict[str, Any] | None = None
    settings: dict[str, bytes] = field(default_factory=dict)

    @property
    def vocab_size(self) -> int:
        if self.family == "sentencepiece":
            return len(load_proto(self.sp_proto).pieces)
        return bpe_vocab_size(self.tokenizer_json)


def load_proto(blob: bytes):
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(blob)
    return proto


def bpe_vocab_size(data: dict[str, Any]) -> int:
    ids = list(data["model"]["vocab"].values()) + [t["id"] for t in data.get("added_tokens", [])]
    return max(ids) + 1


def _sp_from_bytes(blob: bytes, source: str) -> BaseTokenizer | None:
    """A SentencePiece proto, or None: a protobuf parse alone accepts many files, so check it has pieces."""
    from google.protobuf.message import DecodeError

    try:
        proto = load_proto(blob)
    except (DecodeError, ValueError, RuntimeError):
        return None
    if len(proto.pieces) < 3 or not proto.pieces[0].piece:
        return None
    return BaseTokenizer("sentencepiece", source, sp_proto=blob)


def _bpe_from_json(path: Path, source: str) -> BaseTokenizer:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{source}: not a tokenizer.json ({exc.__class__.__name__}); pass a SentencePiece .model or a tokenizer.json") from None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE" or not isinstance(model.get("merges"), list):
        kind = model.get("type") if isinstance(model, dict) else "no model"
        raise UserError(f"{source}: a tokenizer.json with a {kind} model; only BPE tokenizer.json and SentencePiece .model bases can be extended")
    if _has_node(data.get("pre_tokenizer"), _is_byte_level):
        return BaseTokenizer("bpe", source, tokenizer_json=data)
    if model.get("byte_fallback") and _has_node([data.get("normalizer"), data.get("pre_tokenizer")], _writes_word_start):
        return BaseTokenizer("sentencepiece_json", source, tokenizer_json=data)
    raise UserError(
        f"{source}: a BPE tokenizer.json that is neither byte-level nor SentencePiece-style (`▁` for spaces, byte fallback); "
        "only those two can be extended without changing the ids of other text"
    )


def json_tokenizer(data: dict[str, Any]):
    """The `tokenizers.Tokenizer` of a tokenizer.json held as a dict."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False))


def _is_byte_level(node: dict[str, Any]) -> bool:
    return node.get("type") == "ByteLevel"


def _writes_word_start(node: dict[str, Any]) -> bool:
    """A normaliser or pre-tokenizer step that turns spaces into SentencePiece's `▁`."""
    kind = node.get("type")
    return kind == "Metaspace" or (kind == "Replace" and node.get("content") == "▁") or (kind == "Prepend" and node.get("prepend") == "▁")


def _has_node(node: Any, test: Callable[[dict[str, Any]], bool]) -> bool:
    if isinstance(node, dict):
        return test(node) or any(_has_node(v, test) for v in node.values())
    if isinstance(node, list):
        return any(_has_node(v, test) for v in node)
    return False


def _gpt2_files_to_json(vocab: Path, merges: Path) -> dict[str, Any]:
    """GPT-2's original pair of files (encoder.json/vocab.json + vocab.bpe/merges.txt) as a tokenizer.json.

    transformers 5 builds an empty vocab from `GPT2TokenizerFast(vocab_file=, merges_file=)`,
    so the json is built with `tokenizers` directly.
    """
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE

    tok = Tokenizer(BPE.from_file(str(vocab), str(merges)))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return json.loads(tok.to_str())


def load_base(ref: str | Path) -> BaseTokenizer:
    """Recognise a base tokenizer: a SentencePiece `.model`, a `tokenizer.json`, an HF folder, or a hub name."""
    text = str(ref)
    path = resolve(text, must_exist=False)
    if not path.exists():
        return _from_hub(text)
    settings: dict[str, bytes] = {}
    if path.is_dir():
        settings = {name: (path / name).read_bytes() for name in HF_SETTINGS if (path / name).is_file()}
        if (path / SP_FILE).is_file():
            base = _sp_from_bytes((path / SP_FILE).read_bytes(), text)
            if base is None:
                raise UserError(f"{path / SP_FILE}: not a SentencePiece model")
        elif (path / JSON_FILE).is_file():
            base = _bpe_from_json(path / JSON_FILE, text)
        else:
            pairs = [(path / v, path / m) for v in ("vocab.json", "encoder.json") for m in ("merges.txt", "vocab.bpe")]
            found = [(v, m) for v, m in pairs if v.is_file() and m.is_file()]
            if not found:
                raise UserError(f"{text}: a folder without tokenizer.model, tokenizer.json or vocab/merges files")
            base = BaseTokenizer("bpe", text, tokenizer_json=_gpt2_files_to_json(*found[0]))
        base.settings = settings
        return base
    if path.suffix == ".json":
        return _bpe_from_json(path, text)
    blob = path.read_bytes()
    base = _sp_from_bytes(blob, text)
    if base is None:
        raise UserError(f"{text}: neither a SentencePiece model nor a tokenizer.json; pass a .model file, a tokenizer.json or a tokenizer folder")
    return base


def _from_hub(name: str) -> BaseTokenizer:
    """A hub name (online only): download the tokenizer files and read them as a folder."""
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(name, allow_patterns=[SP_FILE, JSON_FILE, *HF_SETTINGS, "vocab.json", "merges.txt"])
    except Exception as exc:  # noqa: BLE001 - any hub failure is the same user-facing problem
        raise UserError(f"base tokenizer {name!r}: not a local path, and the hub did not provide it ({exc.__class__.__name__})") from None
    return load_base(folder)


def default_settings(base: BaseTokenizer) -> dict[str, bytes]:
    """Settings of the base's HF form when the base came as a bare file."""
    if base.settings:
        return dict(base.settings)
    if base.family == "sentencepiece":
        cls = "LlamaTokenizer"  # transformers' class for SentencePiece BPE with byte fallback (Llama, Mistral)
    else:
        cls = "TokenizersBackend"  # what AutoTokenizer makes of a folder holding only tokenizer.json
    return {"tokenizer_config.json": json.dumps({"tokenizer_class": cls}).encode()}


def write_hf_folder(folder: Path, base: BaseTokenizer, *, sp_proto: bytes | None = None, tokenizer_json: dict | None = None) -> Path:
    """Write a folder that `AutoTokenizer.from_pretrained` loads, with the base's class and settings.

    SentencePiece: transformers converts `tokenizer.model` (the same conversion it applies
    to the base), the result is saved as `tokenizer.json` and the proto is kept beside it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = default_settings(base)
    if base.family == "sentencepiece":
        from transformers import AutoTokenizer

        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / SP_FILE).write_bytes(sp_proto)
            for name, blob in settings.items():
                (Path(tmp) / name).write_bytes(blob)
            tok = AutoTokenizer.from_pretrained(tmp)
            tok.save_pretrained(str(folder))
        (folder / SP_FILE).write_bytes(sp_proto)
    else:
        for name, blob in settings.items():
            (folder / name).write_bytes(blob)
        (folder / JSON_FILE).write_text(json.dumps(tokenizer_json, ensure_ascii=False, indent=None), encoding="utf-8")
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        data = json.loads(cfg.read_text(encoding="utf-8"))
        for key in VOLATILE_KEYS:
            data.pop(key, None)
        cfg.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def hf_face(base: BaseTokenizer, cache: Path | None = None):
    """The base's Hugging Face form, built the same way as the extended one (for fair comparisons)."""
    from transformers import AutoTokenizer

    if cache is not None:
        write_hf_folder(cache, base, sp_proto=base.sp_proto, tokenizer_json=base.tokenizer_json)
        return AutoTokenizer.from_pretrained(str(cache))
    with tempfile.TemporaryDirectory() as tmp:
        write_hf_folder(Path(tmp), base, sp_proto=base.sp_proto, tokenizer_json=base.tokenizer_json)
        return AutoTokenizer.from_pretrained(tmp)


# ---------------------------------------------------------------- corpus text

TEXT_SUFFIXES = (".jsonl.gz", ".jsonl", ".json.gz", ".txt", ".txt.gz")


def corpus_files(refs: list[str | Path]) -> list[Path]:
    """The text files named by --corpus: files as given, folders searched recursively (sorted)."""
    files: list[Path] = []
    for ref in refs:
        path = resolve(str(ref))
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(TEXT_SUFFIXES) and "rejects" not in p.relative_to(path).parts)
            if not found:
                raise UserError(f"--corpus {ref}: no *.jsonl.gz, *.jsonl or *.txt files in this folder")
            files.extend(found)
        else:
            files.append(path)
    return files


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def iter_texts(files: list[Path], counts: dict[str, int] | None = None, text_field: str = "text") -> Iterator[str]:
    """Documents from jsonl (one record a line, `text` field) or plain text (one file a document).

    Lines that are not JSON objects with a string text field are counted, not dropped silently.
    """
    counts = counts if counts is not None else {}
    for path in files:
        is_jsonl = ".jsonl" in path.name or path.name.endswith(".json.gz")
        with _open_text(path) as fh:
            if not is_jsonl:
                text = fh.read()
                counts["documents"] = counts.get("documents", 0) + 1
                yield text
                continue
            for line in fh:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    counts["skipped_bad_json"] = counts.get("skipped_bad_json", 0) + 1
                    continue
                text = record.get(text_field) if isinstance(record, dict) else None
                if not isinstance(text, str):
                    counts["skipped_no_text_field"] = counts.get("skipped_no_text_field", 0) + 1
                    continue
                counts["documents"] = counts.get("documents", 0) + 1
                yield text

