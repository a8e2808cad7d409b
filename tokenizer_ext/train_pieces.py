"""Train candidate pieces on target-language text.

Two learners, one per family, because the two families reach a piece differently:
- SentencePiece bases: BPE continued from the base's own segmentation of the target
  words (or the SentencePiece unigram trainer on them). Letters of other scripts inside
  words are masked to one placeholder letter, so the trainer sees where a target run
  starts mid-word (`Linux를` gives `를`, not `▁를`) but never learns a piece that
  crosses into other scripts; punctuation and digits stay, as pieces may carry them.
- byte-level BPE bases: BPE training *continued* from the base's own segmentation. A
  byte-level model applies its merges by rank; appended merges rank after every base
  merge, so they act on exactly the tokens the base leaves behind. Learning from that
  segmentation (instead of from raw bytes) makes every learned merge reachable, and
  each merge is kept only when its result is bytes that only target text holds.
"""

from __future__ import annotations

import heapq
import io
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from cpt.errors import UserError
from cpt.tokenizer_ext.lang import is_attachable_char, is_target_bytes, is_target_char, run_pattern
from cpt.tokenizer_ext.load import json_tokenizer

PLACEHOLDER = "x"  # stands for any run of other-script letters next to a target run


def target_words(
    texts: Iterable[str], lang: str, on_target: Callable[[str], None] | None = None, raw: Counter[str] | None = None
) -> tuple[Counter[str], dict[str, int]]:
    """Whitespace words that contain the target script, with other-script letters masked.

    Returns the word counts and the size of the text read (documents, characters,
    target characters), which `extension.json` reports as the training corpus size.
    Each document with target text is passed to `on_target`, and the unmasked words are
    counted in `raw`, when those are given: one streaming pass over a corpus of any size.
    """
    pattern = run_pattern(lang)
    words: Counter[str] = Counter()
    stats = {"documents": 0, "chars": 0, "target_chars": 0, "target_documents": 0}
    for text in texts:
        stats["documents"] += 1
        stats["chars"] += len(text)
        hits = 0
        for word in text.split():
            runs = pattern.findall(word)
            if not runs:
                continue
            hits += sum(len(r) for r in runs)
            words[_mask_other_letters(word, lang)] += 1
            if raw is not None:
                raw[word] += 1
        if hits:
            stats["target_documents"] += 1
            if on_target is not None:
                on_target(text)
        stats["target_chars"] += hits
    return words, stats


def _mask_other_letters(word: str, lang: str) -> str:
    """Each run of characters that may not share a piece with target text, as one placeholder."""
    out: list[str] = []
    for ch in word:
        if is_target_char(ch, lang) or is_attachable_char(ch):
            out.append(ch)
        elif not out or out[-1] != PLACEHOLDER:
            out.append(PLACEHOLDER)
    return "".join(out)


def train_sentencepiece(words: Counter[str], vocab_size: int, algorithm: str, min_frequency: int, seed: int = 0) -> list[str]:
    """Pieces of a SentencePiece model trained on the word counts, best first.

    One thread and a fixed seed: the same words give the same pieces.
    """
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
    # every word trains (a rare word still teaches frequent pieces); --min-frequency is
    # applied below, to how often the trained model actually uses each piece
    rows = [f"{w}\t{c}" for w, c in sorted(words.items())]
    if not rows:
        raise UserError("no target-language words to train on")

    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "words.tsv"
        tsv.write_text("\n".join(rows) + "\n", encoding="utf-8")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            input=str(tsv),
            input_format="tsv",
            model_writer=model,
            model_type=algorithm,
            vocab_size=vocab_size,
            hard_vocab_limit=False,  # a small corpus may not support the whole size: take what it gives
            character_coverage=1.0,
            byte_fallback=False,
            split_by_unicode_script=True,
            split_by_whitespace=True,
            max_sentencepiece_length=16,
            num_threads=1,  # one thread: the same words give the same pieces
            minloglevel=2,
            bos_id=-1,
            eos_id=-1,
            unk_id=0,
        )
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    ordered = sorted(words)
    used: Counter[str] = Counter()
    for word, pieces in zip(ordered, sp.encode(ordered, out_type=str), strict=True):
        for piece in pieces:
            used[piece] += words[word]
    scored = [
        (sp.get_score(i), i, sp.id_to_piece(i))
        for i in range(sp.get_piece_size())
        if not sp.is_unknown(i) and not sp.is_control(i) and used[sp.id_to_piece(i)] >= min_frequency
    ]
    # BPE: the score is the merge order; unigram: the log probability. Either way best first.
    return [piece for _, _, piece in sorted(scored, key=lambda t: (-t[0], t[1]))]


# ------------------------------------------------------------ byte-level BPE, continued


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (as in `tokenizers` ByteLevel)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


UNICODE_TO_BYTE = {c: b for b, c in bytes_to_unicode().items()}


def token_bytes(token: str) -> bytes | None:
    """The bytes a byte-level token stands for (None for a token outside the byte alphabet)."""
    try:
        return bytes(UNICODE_TO_BYTE[c] for c in token)
    except KeyError:
        return None


def mergeable(left: str, right: str, lang: str) -> bool:
    """A merge can only fire in target text: its result is target bytes (after an optional
    leading space), so it starts on a character boundary and, when it ends inside a
    character, only target characters begin that way.

    The halves themselves may be bytes other scripts share (`EA` then `B0`): only the result
    is new, and only Hangul puts `EA B0` side by side.
    """
    lb, rb = token_bytes(left), token_bytes(right)
    if lb is None or rb is None:
        return False
    return is_target_bytes(lb + rb, lang)


def continue_bpe(
    segmented: dict[tuple[str, ...], int],
    vocab: set[str],
    lang: str,
    new_tokens: int,
    min_frequency: int,
) -> list[tuple[str, str]]:
    """Greedy BPE merges on top of the base segmentation, until `new_tokens` new ids.

    `segmented` maps a word (as the base tokenizes it) to its count. Ties on count are
    broken by the pair itself, so the result is deterministic.
    """
    words = [list(w) for w in segmented]
    freqs = list(segmented.values())
    counts: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    ok_cache: dict[tuple[str, str], bool] = {}

    def ok(pair: tuple[str, str]) -> bool:
        hit = ok_cache.get(pair)
        if hit is None:
            hit = ok_cache[pair] = mergeable(pair[0], pair[1], lang)
        return hit

    def add_word(idx: int, sign: int) -> list[tuple[str, str]]:
        w, f = words[idx], freqs[idx]
        touched = []
        for pair in zip(w, w[1:], strict=False):
            if ok(pair):
                counts[pair] += sign * f
                if sign > 0:
                    where[pair].add(idx)
                touched.append(pair)
        return touched

    for i in range(len(words)):
        add_word(i, +1)
    heap = [(-c, p) for p, c in counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    seen = set(vocab)
    added = 0
    while heap and added < new_tokens:
        neg, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -neg:
            continue  # stale entry
        if -neg < min_frequency:
            break
        merged = pair[0] + pair[1]
        merges.append(pair)
        if merged not in seen:
            seen.add(merged)
            added += 1
        changed: set[tuple[str, str]] = set()
        for idx in sorted(where.pop(pair, ())):
            changed.update(add_word(idx, -1))
            w, out, i = words[idx], [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == pair[0] and w[i + 1] == pair[1]:
                    out.append(merged)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[idx] = out
            changed.update(add_word(idx, +1))
        counts.pop(pair, None)
        for p in changed:
            c = counts.get(p, 0)
            if c > 0 and p != pair:
                heapq.heappush(heap, (-c, p))
            elif c <= 0:
                counts.pop(p, None)
    return merges


# ------------------------------------------------------------ SentencePiece, continued


def sp_segmentation(sp_proto: bytes, words: Counter[str]) -> dict[tuple[str, ...], int]:
    """How the base SentencePiece model splits each whole word (with its `▁`).

    Byte-fallback pieces are joined back into their character: a character the base
    lacks is a single unknown symbol that extension may add as a piece.
    """
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=sp_proto)
    ordered = sorted(words)
    return _join_segmentations(ordered, sp.encode(ordered, out_type=str), words)


def sp_json_segmentation(data: dict, words: Counter[str]) -> dict[tuple[str, ...], int]:
    """`sp_segmentation` for a base that comes as a SentencePiece-style tokenizer.json
    (`▁` for spaces, byte fallback): the same pieces, from the json's own normaliser and model."""
    tok = json_tokenizer(data)
    ordered = sorted(words)
    pieces = [e.tokens for e in tok.encode_batch(ordered, add_special_tokens=False)]
    return _join_segmentations(ordered, pieces, words)


def _join_segmentations(ordered: list[str], segmentations: list[list[str]], words: Counter[str]) -> dict[tuple[str, ...], int]:
    out: dict[tuple[str, ...], int] = {}
    for word, pieces in zip(ordered, segmentations, strict=True):
        symbols: list[str] = []
        pending = bytearray()
        for piece in pieces:
            if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
                pending.append(int(piece[3:5], 16))
                text = pending.decode("utf-8", errors="ignore")
                if text:
                    symbols.append(text)
                    pending.clear()
                continue
            symbols.append(piece)
        key = tuple(symbols)
        out[key] = out.get(key, 0) + words[word]
    return out


def continue_sp(
    segmented: dict[tuple[str, ...], int],
    vocab: set[str],
    lang: str,
    new_tokens: int,
    min_frequency: int,
) -> list[str]:
    """Greedy BPE on top of a SentencePiece base's segmentation, until `new_tokens` pieces.

    Two kinds of step compete on the tokens they save: adding a missing target character
    (its UTF-8 bytes stop falling back to byte pieces: saves len(bytes) - 1 a use) and
    merging two adjacent known pieces into a target piece (saves 1 a use). Pairs are only
    merged when both halves are pieces, so transformers' converted BPE reaches them too.
    """
    from cpt.tokenizer_ext.merge_sp import target_piece

    words = [list(w) for w in segmented]
    freqs = list(segmented.values())
    known = set(vocab)
    pair_counts: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    char_counts: Counter[str] = Counter()
    char_where: dict[str, set[int]] = defaultdict(set)
    valid: dict[str, bool] = {}

    def good(piece: str) -> bool:
        hit = valid.get(piece)
        if hit is None:
            hit = valid[piece] = piece not in vocab and target_piece(piece, lang)
        return hit

    def scan(idx: int, sign: int) -> set[tuple[str, str]]:
        w, f = words[idx], freqs[idx]
        touched = set()
        for a, b in zip(w, w[1:], strict=False):
            if a in known and b in known and good(a + b):
                pair_counts[(a, b)] += sign * f
                if sign > 0:
                    where[(a, b)].add(idx)
                touched.add((a, b))
        return touched

    for i, w in enumerate(words):
        scan(i, +1)
        for s in w:
            if s not in known and len(s) == 1 and good(s):
                char_counts[s] += freqs[i]
                char_where[s].add(i)
    # heap entries: (-gain, kind, key); kind 0 = add a character, 1 = merge a pair
    heap: list[tuple[int, int, tuple[str, ...]]] = [(-c * (len(ch.encode()) - 1), 0, (ch,)) for ch, c in char_counts.items()]
    heap += [(-c, 1, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)
    added: list[str] = []
    while heap and len(added) < new_tokens:
        neg, kind, key = heapq.heappop(heap)
        if kind == 0:
            ch = key[0]
            if ch in known or char_counts[ch] * (len(ch.encode()) - 1) != -neg:
                continue
            if char_counts[ch] < min_frequency:
                continue
            idxs = sorted(char_where.pop(ch, ()))
            changed: set[tuple[str, str]] = set()
            for idx in idxs:
                changed |= scan(idx, -1)
            known.add(ch)
            added.append(ch)
            for idx in idxs:  # pairs with the new character now count
                changed |= scan(idx, +1)
        else:
            pair = key
            if pair_counts.get(pair, 0) != -neg:
                continue
            if -neg < min_frequency:
                break
            merged = pair[0] + pair[1]
            known.add(merged)
            added.append(merged)
            valid[merged] = False
            changed = set()
            for idx in sorted(where.pop(pair, ())):
                changed |= scan(idx, -1)
                words[idx] = _merge(words[idx], pair, merged)
                changed |= scan(idx, +1)
            pair_counts.pop(pair, None)
        for p in changed:
            c = pair_counts.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, 1, p))
            else:
                pair_counts.pop(p, None)
    return added


def _merge(word: list[str], pair: tuple[str, str], merged: str) -> list[str]:
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(merged)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out
