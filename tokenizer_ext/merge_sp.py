"""Append target-script pieces to a SentencePiece model proto (the Chinese-LLaMA approach, made safe).

Three rules keep every base id and every non-target tokenization as it was:
1. Only pieces holding at least one target-script character, otherwise punctuation,
   symbols or digits, optionally after the word-start marker `▁`, are added (`▁사용`,
   `니다.`, `▁(예`). Such a piece only matches where the text has the target script.
   An ASCII piece trained on Korean pages (`▁(`, `▁the`) would outrank base merges
   and change English ids.
2. New pieces score below every ranked base piece, in the order they were learned
   (consecutive integers, exact in float32). Both SentencePiece (by score) and
   transformers' conversion (by id) then apply every base merge first, and the new
   pieces only join what the base leaves.
3. Every new piece is reachable by merging two pieces of the vocabulary, and every
   character it uses is itself a piece. SentencePiece starts from characters and can
   join two pieces it does not know; transformers' BPE starts from known tokens (byte
   fallback otherwise), so without this closure the two faces would disagree.
"""

from __future__ import annotations

from cpt.tokenizer_ext.lang import WORD_START, is_anchored_string, is_target_string
from cpt.tokenizer_ext.load import load_proto

SPACE = WORD_START
NORMAL = 1
SENTINEL = -1e8  # scores at or below this are "merge last" markers, not ranks


def target_piece(piece: str, lang: str) -> bool:
    """A piece that may be added: target characters (with attached punctuation, symbols
    or digits) after an optional `▁`."""
    body = piece[1:] if piece.startswith(SPACE) else piece
    return is_anchored_string(body, lang)


def script_only_piece(piece: str, lang: str) -> bool:
    """The stricter rule: target-script characters only, after an optional `▁`."""
    body = piece[1:] if piece.startswith(SPACE) else piece
    return is_target_string(body, lang)


def plan_pieces(candidates: list[str], base_vocab: set[str], lang: str, limit: int) -> tuple[list[str], int, int]:
    """Choose up to `limit` new pieces from candidates (best first), closed under splitting.

    A candidate whose closure (missing characters, then a missing half) would pass the
    limit is left out and the next one tried, so small budgets still fill up.
    """
    vocab = set(base_vocab)
    added: list[str] = []
    in_base = other = 0

    def closure(piece: str, plan: list[str], have: set[str]) -> None:
        if piece in have:
            return
        if len(piece) > 1 and not any(piece[:i] in have and piece[i:] in have for i in range(1, len(piece))):
            # no split of known halves yet: make the longest known prefix's remainder reachable
            cut = max((i for i in range(1, len(piece)) if piece[:i] in have), default=len(piece) - 1)
            closure(piece[:cut], plan, have)
            closure(piece[cut:], plan, have)
        have.add(piece)
        plan.append(piece)

    for piece in candidates:
        if len(added) >= limit:
            break
        if not target_piece(piece, lang):
            other += 1
            continue
        if piece in vocab:
            in_base += piece in base_vocab
            continue
        plan: list[str] = []
        have = set(vocab)
        closure(piece, plan, have)
        if len(added) + len(plan) > limit:
            continue
        added.extend(plan)
        vocab.update(plan)
    return added, in_base, other


def extend_proto(proto_bytes: bytes, pieces: list[str]) -> bytes:
    """The proto with `pieces` (from `plan_pieces`) appended, scored below every ranked base piece, in their order."""
    proto = load_proto(proto_bytes)
    # Mistral v1 parks its whitespace-run pieces (`▁▁`, `▁▁▁▁`, ...) at -1e9 so SentencePiece
    # merges them last; below those, float32 could no longer tell consecutive scores apart.
    floor = min((p.score for p in proto.pieces if p.type == NORMAL and p.score > SENTINEL), default=0.0)
    for i, piece in enumerate(pieces):
        entry = proto.pieces.add()
        entry.piece = piece
        entry.score = floor - 1.0 - i
        entry.type = NORMAL
    proto.trainer_spec.vocab_size = len(proto.pieces)
    return proto.SerializeToString()
