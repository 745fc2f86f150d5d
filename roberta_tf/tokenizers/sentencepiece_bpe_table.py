"""The tables of SentencePiece's BPE segmentation, built once in numpy.

SentencePiece's BPE (`bpe_model.cc`) has no merge list: two adjacent symbols may merge when
their concatenation is a piece of the model, and the pair's priority is that piece's score.
So the pair table here lists, for every mergeable piece Q, every split of Q into two symbols
a segment can hold (a merge-eligible piece or a single character each): `("▁", "the")`,
`("▁t", "he")`, `("▁th", "e")` all give `▁the`, at `▁the`'s level.

Symbols: a piece keeps its SentencePiece id as its symbol id; a character that occurs inside
pieces without being one gets an id after the pieces (it can still be merged: SentencePiece
looks up the concatenation only); every other character is one shared `other_symbol`, which
never merges and is reported as `<unk>`.

Which pieces take part (SentencePiece's `pieces_` map, `model_interface.cc`): NORMAL,
USER_DEFINED and UNUSED pieces are looked up; CONTROL, UNKNOWN and BYTE pieces never result
from a merge. USER_DEFINED pieces are matched whole on the text before merging and are frozen
(never merged), so they are neither parts nor results of a pair here. A final symbol's id is
SentencePiece's `PieceToId` of its text: reserved pieces (control, unknown, byte) first, then
the others, else `<unk>`.

Levels: pieces ordered by score, highest first; equal scores share a level (SentencePiece
breaks those ties by position, which the merge loop does). Level 0 merges first.

Lookup is row displacement, as in `merge_table.py`: the pair (l, r) sits at `offsets[l] + r`
when `check` there holds l; `levels` and `merged` at that slot give its level and the symbol it
makes. SentencePiece's tables have far more pairs than a merge list (every split of every
piece: 249k in BPEmb), so the rows are packed here by a block-vectorised first fit
(`_row_displacement`) instead of `merge_table`'s, which takes over a minute on them. Final boundaries (see `merge_table.py`) use
`junction_lengths`, `symbol_lengths`, `first_bytes`, `last_bytes` built the same way.
"""

import dataclasses

import numpy as np

from roberta_tf.tokenizers.merge_table import NO_MERGE
from roberta_tf.tokenizers.sentencepiece_model import PieceType

_BLOCK_SIZE = 256
_MAX_CODE_POINT = 0x10FFFF
# Length given to symbols no merge ever touches (user-defined pieces, `other_symbol`): any
# boundary next to them is final. Two of them add up far below int32 overflow.
_NEVER_MERGED_LENGTH = 1 << 20


_LOOKED_UP = (PieceType.NORMAL, PieceType.USER_DEFINED, PieceType.UNUSED)  # SentencePiece's `pieces_`
_LOOKED_UP_VALUES = frozenset(int(t) for t in _LOOKED_UP)


@dataclasses.dataclass(frozen=True)
class SentencePieceBpeTables:
    """numpy tables of one SentencePiece BPE model (see the module docstring)."""

    block_index: np.ndarray  # [4352] code point >> 8 -> row of `blocks`
    blocks: np.ndarray  # [rows * 256] initial symbol of each code point
    other_symbol: int  # symbol of characters that are no piece and in no piece
    offsets: np.ndarray  # [num_symbols] row displacement of each left symbol
    check: np.ndarray  # [table_size] left symbol owning each slot, -1 if free
    levels: np.ndarray  # [table_size] merge level of the pair in each slot (NO_MERGE if free)
    merged: np.ndarray  # [table_size] symbol the pair in each slot makes
    junction_lengths: np.ndarray  # [65536] longest merge result with junction (x, y) at 256 * x + y
    symbol_lengths: np.ndarray  # [num_symbols] bytes of each symbol
    first_bytes: np.ndarray  # [num_symbols]
    last_bytes: np.ndarray  # [num_symbols]
    output_ids: np.ndarray  # [num_symbols] SentencePiece id of each symbol
    user_defined: tuple  # UTF-8 bytes of each USER_DEFINED piece (matched whole, frozen)
    user_defined_ids: tuple  # their ids
    byte_piece_ids: np.ndarray  # [256] id of `<0xXX>` (byte fallback), -1 without it
    unk_id: int
    byte_fallback: bool
    num_symbols: int


def build_tables(pieces, scores, types, unk_id, byte_fallback):
    """Builds the `SentencePieceBpeTables` of a BPE model given as plain arrays.

    Args:
        pieces: sequence of the pieces' UTF-8 bytes (or str), index = SentencePiece id.
        scores: float [n]; types: int [n] SentencePiece piece types; unk_id: int.
        byte_fallback: whether unknown characters become `<0xXX>` byte pieces.

    Raises:
        ValueError: malformed arrays, or a model this implementation cannot reproduce exactly
            (an UNUSED piece that merges can make: SentencePiece splits it back by the last
            split it saw in the text, which depends on the text, not only on the model).
    """
    texts = [p.decode("utf-8") if isinstance(p, (bytes, bytearray)) else str(p) for p in pieces]
    scores = np.asarray(scores, np.float32).reshape(-1)
    types = np.asarray(types, np.int64).reshape(-1)
    count = len(texts)
    if not (len(scores) == len(types) == count) or count == 0:
        raise ValueError(f"pieces, scores and types must have one equal, non-zero length; got {count}, {len(scores)}, {len(types)}.")
    if not 0 <= unk_id < count or types[unk_id] != PieceType.UNKNOWN:
        raise ValueError(f"unk_id {unk_id} is not the model's UNKNOWN piece.")
    if any(not text for text in texts):
        raise ValueError("a SentencePiece piece must not be empty.")

    looked_up, reserved = {}, {}
    for index, (text, kind) in enumerate(zip(texts, types)):
        target = looked_up if kind in _LOOKED_UP_VALUES else reserved
        target.setdefault(text, index)  # SentencePiece rejects duplicates; keep the first

    def output_id(text):  # SentencePiece's `PieceToId`
        return reserved.get(text, looked_up.get(text, unk_id))

    user_defined_type = int(PieceType.USER_DEFINED)
    mergeable = {t: i for t, i in looked_up.items() if types[i] != user_defined_type}
    extra_chars = sorted({c for t in mergeable for c in t if len(t) > 1 and c not in looked_up})
    symbol_of_text = dict(mergeable)
    symbol_of_text.update((c, count + k) for k, c in enumerate(extra_chars))
    other_symbol = count + len(extra_chars)
    num_symbols = other_symbol + 1

    lefts, rights, results = _pair_entries(mergeable, symbol_of_text)
    _reject_unused_results(texts, types, results)
    # Renumber symbols: the pair table's columns are right symbols, and packing its rows is
    # fast and tight when those are few small ids (27k of 100k in BPEmb), most frequent first.
    new_id = _right_symbols_first(rights, num_symbols)
    symbol_texts = [None] * num_symbols
    for text, old in symbol_of_text.items():
        symbol_texts[new_id[old]] = text
    output_ids = np.full(num_symbols, unk_id, np.int32)
    output_ids[new_id[:count]] = [output_id(t) for t in texts]
    output_ids[new_id[count:other_symbol]] = [output_id(c) for c in extra_chars]
    lefts, rights, results = new_id[lefts], new_id[rights], results  # results stay piece ids here

    level_of_piece = _levels(scores)
    offsets, check, entry = _row_displacement(lefts, rights, num_symbols)
    used = entry >= 0
    entry = np.where(used, entry, 0)
    levels = np.where(used, level_of_piece[results[entry]], NO_MERGE) if len(results) else np.full(len(check), NO_MERGE)
    merged = np.where(used, new_id[results[entry]], 0) if len(results) else np.zeros(len(check))

    block_index, blocks = _character_table(texts, types, extra_chars, count, other_symbol, new_id)
    user_defined = [(t.encode("utf-8"), i) for t, i in looked_up.items() if types[i] == PieceType.USER_DEFINED]
    result_texts = [texts[r] for r in results]
    return SentencePieceBpeTables(
        block_index, blocks, int(new_id[other_symbol]), offsets, check, levels.astype(np.int32), merged.astype(np.int32),
        *_final_boundary_tables(symbol_texts, lefts, rights, result_texts),
        output_ids, tuple(u for u, _ in user_defined), tuple(int(new_id[i]) for _, i in user_defined),
        _byte_piece_ids(texts, types, byte_fallback), int(unk_id), bool(byte_fallback), num_symbols,
    )


def _right_symbols_first(rights, num_symbols):
    """new_id[old_symbol]: symbols by how often they are a pair's right part (most first),
    ties and the rest in their old order."""
    frequency = np.bincount(rights, minlength=num_symbols) if len(rights) else np.zeros(num_symbols, np.int64)
    order = np.lexsort((np.arange(num_symbols), -frequency))  # old ids, in new order
    new_id = np.empty(num_symbols, np.int64)
    new_id[order] = np.arange(num_symbols)
    return new_id


def _pair_entries(mergeable, symbol_of_text):
    """(lefts, rights, results): every split of every mergeable piece of two or more
    characters into two symbols that exist."""
    lefts, rights, results = [], [], []
    for text, index in mergeable.items():
        for cut in range(1, len(text)):
            left, right = symbol_of_text.get(text[:cut]), symbol_of_text.get(text[cut:])
            if left is not None and right is not None:
                lefts.append(left)
                rights.append(right)
                results.append(index)
    return np.array(lefts, np.int64), np.array(rights, np.int64), np.array(results, np.int64)


def _reject_unused_results(texts, types, results):
    unused = [texts[i] for i in np.unique(results) if types[i] == PieceType.UNUSED] if len(results) else []
    if unused:
        raise ValueError(
            f"{len(unused)} UNUSED piece(s) can result from a merge (e.g. {unused[0]!r}); SentencePiece "
            "splits such a piece back by the last split of it that the text produced, which this "
            "segmenter does not reproduce. Mark them NORMAL or remove them from the model."
        )


_FIT_BLOCK = 4096  # offsets tried at once per row


def _row_displacement(lefts, rights, num_symbols):
    """(offsets [num_symbols], check [size], entry [size]): row displacement of the sparse
    matrix whose entry k sits at (lefts[k], rights[k]); `entry` holds k in its slot (-1: free)
    and `check` the row owning the slot. Every `offsets[l] + r` for symbols l, r is inside.

    Rows go longest first to the lowest offset >= 0 where their columns are all free; offsets
    are tried `_FIT_BLOCK` at a time (one vectorised test per column, or one gather for short
    rows), starting where the row's first column meets the first free slot.
    """
    offsets = np.zeros(num_symbols, np.int64)
    order = np.lexsort((rights, lefts))
    row_starts = np.flatnonzero(np.r_[True, lefts[order][1:] != lefts[order][:-1]]) if len(order) else np.zeros(0, np.int64)
    row_ends = np.r_[row_starts[1:], len(order)]
    capacity = 2 * len(order) + num_symbols + 2 * _FIT_BLOCK
    occupied = np.zeros(capacity, bool)
    entry = np.full(capacity, -1, np.int64)
    first_free, previous = 0, 0
    window = np.arange(_FIT_BLOCK)
    by_length = np.argsort(row_starts - row_ends, kind="stable")
    lengths = row_ends - row_starts
    for row in by_length[lengths[by_length] > 1]:
        members = order[row_starts[row] : row_ends[row]]
        cols = rights[members]
        # Start near the previous (longer) row: searching up from the lowest hole each time
        # costs a pass over the whole table per row. Holes left below go to one-entry rows.
        start = max(0, first_free - int(cols[0]), previous - _FIT_BLOCK)
        while True:
            needed = start + _FIT_BLOCK + int(cols[-1]) + 1
            if needed > capacity:
                grow = needed - capacity + capacity // 2
                occupied, entry = np.r_[occupied, np.zeros(grow, bool)], np.r_[entry, np.full(grow, -1, np.int64)]
                capacity = len(occupied)
            if len(cols) * _FIT_BLOCK <= 1 << 20:
                free = ~occupied[start + cols[:, None] + window[None, :]].any(axis=0)
            else:
                free = np.ones(_FIT_BLOCK, bool)
                for col in cols:
                    free &= ~occupied[start + col : start + col + _FIT_BLOCK]
                    if not free.any():
                        break
            if free.any():
                offset = start + int(np.argmax(free))
                break
            start += _FIT_BLOCK
        occupied[offset + cols] = True
        entry[offset + cols] = members
        offsets[lefts[members[0]]] = previous = offset
        while occupied[first_free]:
            first_free += 1
    # One-entry rows, in column order, each take the lowest free slot at or after its column.
    singles = by_length[lengths[by_length] == 1]
    singles = singles[np.argsort(rights[order[row_starts[singles]]], kind="stable")]
    free_slots = np.flatnonzero(~occupied)
    pointer = 0
    for row in singles:
        member = order[row_starts[row]]
        col = int(rights[member])
        pointer = max(pointer, int(np.searchsorted(free_slots, col)))
        if pointer >= len(free_slots):  # no free slot left at or after `col`: grow
            grow = max(col + 1, capacity) + len(singles) - capacity
            free_slots = np.r_[free_slots, capacity + np.arange(grow)]
            occupied, entry = np.r_[occupied, np.zeros(grow, bool)], np.r_[entry, np.full(grow, -1, np.int64)]
            capacity += grow
            pointer = int(np.searchsorted(free_slots, col))
        slot = int(free_slots[pointer])
        pointer += 1
        occupied[slot] = True
        entry[slot] = member
        offsets[lefts[member]] = slot - col
    size = int(offsets.max(initial=0)) + num_symbols
    if size > capacity:
        entry = np.r_[entry, np.full(size - capacity, -1, np.int64)]
    entry = entry[:size]
    check = np.where(entry >= 0, lefts[np.maximum(entry, 0)] if len(lefts) else -1, -1)
    return offsets.astype(np.int32), check.astype(np.int32), entry


def _levels(scores):
    """Level of each piece: 0 for the highest score; equal scores share a level."""
    distinct, inverse = np.unique(-scores.astype(np.float64), return_inverse=True)
    if len(distinct) >= NO_MERGE:
        raise ValueError("too many distinct scores")
    return inverse.astype(np.int64).reshape(-1)


def _character_table(texts, types, extra_chars, count, other_symbol, new_id):
    """Two-level table code point -> initial symbol (see `unicode_classes.two_level_table`)."""
    symbols = np.full(_MAX_CODE_POINT + 1, other_symbol, np.int32)
    for index, text in enumerate(texts):
        # A one-character piece is its own symbol; reserved ones (a one-character control
        # piece) too, since SentencePiece's `PieceToId` finds them first.
        if len(text) == 1 and types[index] != int(PieceType.USER_DEFINED) and ord(text) <= _MAX_CODE_POINT:
            if symbols[ord(text)] == other_symbol or types[index] in _LOOKED_UP_VALUES:
                symbols[ord(text)] = index
    for k, char in enumerate(extra_chars):
        symbols[ord(char)] = count + k
    per_block = new_id[symbols].astype(np.int32).reshape(-1, _BLOCK_SIZE)
    unique_blocks, block_index = np.unique(per_block, axis=0, return_inverse=True)
    return block_index.astype(np.int32).reshape(-1), unique_blocks.astype(np.int32).reshape(-1)


def _final_boundary_tables(symbol_texts, lefts, rights, result_texts):
    """(junction_lengths, symbol_lengths, first_bytes, last_bytes) as in `merge_table.py`.
    Symbols that are no merge part keep `_NEVER_MERGED_LENGTH`, so every boundary next to
    them is final (they also have no pair)."""
    count = len(symbol_texts)
    lengths = np.full(count, _NEVER_MERGED_LENGTH, np.int32)
    first, last = np.zeros(count, np.int32), np.zeros(count, np.int32)
    for symbol in np.unique(np.concatenate([lefts, rights])) if len(lefts) else []:
        raw = symbol_texts[symbol].encode("utf-8")
        lengths[symbol], first[symbol], last[symbol] = len(raw), raw[0], raw[-1]
    junction_lengths = np.zeros(1 << 16, np.int32)
    if len(lefts):
        junction = last[lefts] * 256 + first[rights]
        result_lengths = np.array([len(t.encode("utf-8")) for t in result_texts], np.int32)
        np.maximum.at(junction_lengths, junction, result_lengths)
    return junction_lengths, lengths, first, last


def _byte_piece_ids(texts, types, byte_fallback):
    ids = np.full(256, -1, np.int32)
    if not byte_fallback:
        return ids
    for index, text in enumerate(texts):
        if types[index] == PieceType.BYTE and len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
            ids[int(text[3:5], 16)] = index
    if (ids < 0).any():
        raise ValueError("byte_fallback needs the 256 byte pieces <0x00>..<0xFF>.")
    return ids


@dataclasses.dataclass(frozen=True)
class UserDefinedTrie:
    """A byte trie of the USER_DEFINED pieces in row-displacement form: from state s, byte b
    leads to `children[offsets[s] + b]` when `check` there holds s (state 0 is the root).
    `terminal_ids[s]` is the piece ending at s (-1: none), `terminal_lengths[s]` its bytes."""

    offsets: np.ndarray
    check: np.ndarray
    children: np.ndarray
    terminal_ids: np.ndarray
    terminal_lengths: np.ndarray
    max_length: int


def user_defined_trie(user_defined, user_defined_ids):
    """The `UserDefinedTrie` of the given pieces (UTF-8 bytes) and ids."""
    transitions = {}  # (state, byte) -> child
    terminal = {}
    for raw, piece_id in zip(user_defined, user_defined_ids):
        state = 0
        for byte in raw:
            state = transitions.setdefault((state, byte), len(transitions) + 1)
        terminal[state] = (piece_id, len(raw))
    num_states = len(transitions) + 1
    items = sorted(transitions.items())
    lefts = np.array([s for (s, _), _ in items], np.int64)
    rights = np.array([b for (_, b), _ in items], np.int64)
    child_of_entry = np.array([c for _, c in items], np.int32)
    # Columns are bytes, so every row needs 256 slots past its offset.
    offsets, check, entry = _row_displacement(lefts, rights, max(num_states, 256))
    children = np.where(entry >= 0, child_of_entry[np.maximum(entry, 0)], 0).astype(np.int32)
    terminal_ids = np.full(num_states, -1, np.int32)
    terminal_lengths = np.zeros(num_states, np.int32)
    for state, (piece_id, length) in terminal.items():
        terminal_ids[state], terminal_lengths[state] = piece_id, length
    return UserDefinedTrie(
        offsets[:num_states].copy(), check, children, terminal_ids, terminal_lengths,
        max((len(raw) for raw in user_defined), default=0),
    )
