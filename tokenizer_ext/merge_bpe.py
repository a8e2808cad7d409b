"""Append learned merges and their tokens to a BPE `tokenizer.json`.

Byte-level bases get the merges learned on their own segmentation (`append_merges`);
SentencePiece-style bases in json form (`▁` for spaces, byte fallback) get the pieces
planned for a SentencePiece proto, with every way of reaching each as a merge
(`append_pieces`). New merges rank after every base merge and new ids follow the largest
base id (added tokens included), so all base ids and merges keep their meaning. Nothing
goes into `added_tokens`: thousands of added tokens make loading and encoding far slower.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from cpt.tokenizer_ext.load import bpe_vocab_size, json_tokenizer


@dataclass
class BpeMerge:
    tokenizer_json: dict[str, Any]
    added: list[str]
    merges: list[tuple[str, str]]


def base_segmentation(data: dict[str, Any], pretokens: dict[str, int]) -> dict[tuple[str, ...], int]:
    """How the base model splits each pre-token (already cut and byte-mapped by the base)."""
    tok = json_tokenizer(data)
    out: dict[tuple[str, ...], int] = {}
    for piece in sorted(pretokens):
        seq = tuple(t.value for t in tok.model.tokenize(piece))
        out[seq] = out.get(seq, 0) + pretokens[piece]
    return out


def append_merges(data: dict[str, Any], merges: list[tuple[str, str]]) -> BpeMerge:
    out = copy.deepcopy(data)
    model = out["model"]
    vocab = model["vocab"]
    next_id = bpe_vocab_size(out)
    string_form = bool(model["merges"]) and isinstance(model["merges"][0], str)
    existing = {tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]}
    added: list[str] = []
    kept: list[tuple[str, str]] = []
    for left, right in merges:
        if (left, right) in existing:
            continue
        merged = left + right
        if merged not in vocab:
            vocab[merged] = next_id
            next_id += 1
            added.append(merged)
        kept.append((left, right))
        model["merges"].append(f"{left} {right}" if string_form else [left, right])
    return BpeMerge(out, added, kept)


def append_pieces(data: dict[str, Any], pieces: list[str]) -> BpeMerge:
    """Append pieces (best first, closed under splitting, as `plan_pieces` gives them) with their merges.

    SentencePiece joins any two adjacent pieces whose concatenation is a piece, best
    score first; a BPE json joins only the pairs its merges list, by rank. So every split
    of a new piece into two pieces of the vocabulary becomes a merge, ranked with its
    piece: the json then reaches each new piece by whatever path the text takes, as the
    proto would.
    """
    out = copy.deepcopy(data)
    model = out["model"]
    vocab = model["vocab"]
    next_id = bpe_vocab_size(out)
    added = [piece for piece in pieces if piece not in vocab]
    for piece in added:
        vocab[piece] = next_id
        next_id += 1
    string_form = not model["merges"] or isinstance(model["merges"][0], str)
    merges = [(piece[:i], piece[i:]) for piece in added for i in range(1, len(piece)) if piece[:i] in vocab and piece[i:] in vocab]
    model["merges"].extend(f"{a} {b}" if string_form else [a, b] for a, b in merges)
    return BpeMerge(out, added, merges)
