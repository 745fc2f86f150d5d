"""The BPE symbol space and merge-pair lookup tables, built once in numpy.

Symbols are what the merge loop moves around: every vocabulary token keeps its vocabulary id,
and byte symbols or merge results missing from the vocabulary (keras-hub's small example
vocabularies have them) get ids after the vocabulary. `output_ids` maps symbols back to
vocabulary ids at the end.

Final boundaries. A merge joins a part ending in byte x to a part starting with byte y: its
junction is (x, y). `junction_lengths[256 * x + y]` is the longest merge result with that
junction (0: no merge has it). Symbols only grow, so the boundary between adjacent symbols X
and Y can only ever be crossed by a merge with junction (last byte of X, first byte of Y)
whose result holds all of X and Y: if `len(X) + len(Y)` exceeds that junction's length, the
boundary is final. BPE on the pieces between final boundaries is BPE on the word, so the
tokenizer splits words there (before merging: byte pairs no merge joins; while merging:
symbols grown past their junction's length), which keeps merge chains short on adversarial
text. `symbol_lengths`, `first_bytes` and `last_bytes` describe each symbol for that test.

Merge-pair lookup uses row displacement (the classic compression of sparse parser tables):
all merges with left symbol `l` sit at `offsets[l] + right` in one flat array, so finding a
pair's rank is GATHER, ADD, GATHER, EQUAL, GATHER: five TFLite builtins on int32 and no hash
table, whatever the vocabulary size. `check[i]` holds the left symbol owning slot i, so a
pair absent from the merges reads a slot owned by another row (or none) and gets NO_MERGE.
"""

import dataclasses
import functools

import numpy as np

from roberta_tf.tokenizers import byte_symbols, vocabulary as vocabulary_lib

NO_MERGE = np.int32(2**30)  # larger than any rank; min-reductions ignore it
DROPPED = -1  # output id of a symbol that has no vocabulary id and no `<unk>` to stand in


@dataclasses.dataclass(frozen=True)
class MergeTables:
    """numpy tables for one `BpeVocabulary` (see the module docstring)."""

    byte_symbol_ids: np.ndarray  # [256] symbol id of each byte value
    offsets: np.ndarray  # [num_symbols] row displacement of each left symbol
    check: np.ndarray  # [table_size] owner (left symbol) of each slot, -1 if free
    ranks: np.ndarray  # [table_size] merge rank stored in each slot
    merged_symbol: np.ndarray  # [num_merges] symbol id produced by merge k
    output_ids: np.ndarray  # [num_symbols] vocabulary id of each symbol, or DROPPED
    junction_lengths: np.ndarray  # [65536] longest merge result with junction (x, y) at 256 * x + y
    symbol_lengths: np.ndarray  # [num_symbols] bytes in each symbol
    first_bytes: np.ndarray  # [num_symbols] first byte of each symbol
    last_bytes: np.ndarray  # [num_symbols] last byte of each symbol
    byte_max_lengths: np.ndarray  # [256] length of the longest symbol holding each byte (>= 1)
    num_symbols: int


def build_merge_tables(bpe_vocabulary):
    """Builds the `MergeTables` of a validated `BpeVocabulary` (about 2 s for roberta-base;
    the last few distinct vocabularies are remembered)."""
    # Keyed in id order: the same vocabulary read from a file in another key order (a saved
    # preset writes vocab.json sorted by id) must hit the cache.
    return _build_cached(tuple(sorted(bpe_vocabulary.vocabulary.items(), key=lambda item: item[1])), bpe_vocabulary.merges)


@functools.lru_cache(maxsize=4)
def _build_cached(vocabulary_items, merges):
    vocab = dict(vocabulary_items)
    symbol_ids = dict(vocab)

    def symbol_id(token):
        if token not in symbol_ids:
            symbol_ids[token] = len(symbol_ids)
        return symbol_ids[token]

    to_symbol = byte_symbols.byte_to_symbol()
    byte_symbol_ids = np.array([symbol_id(to_symbol[b]) for b in range(256)], np.int32)
    lefts = np.array([symbol_id(a) for a, _ in merges], np.int64)
    rights = np.array([symbol_id(b) for _, b in merges], np.int64)
    merged_symbol = np.array([symbol_id(a + b) for a, b in merges], np.int32)
    num_symbols = len(symbol_ids)

    unk = vocab.get(vocabulary_lib.UNK, DROPPED)
    output_ids = np.full(num_symbols, unk, np.int32)
    output_ids[: len(vocab)] = np.arange(len(vocab), dtype=np.int32)

    offsets, check, ranks = _row_displacement(lefts, rights, num_symbols)
    return MergeTables(
        byte_symbol_ids, offsets, check, ranks, merged_symbol, output_ids,
        *_final_boundary_tables(merges, symbol_ids), _byte_max_lengths(symbol_ids), num_symbols,
    )


def _byte_max_lengths(symbol_ids):
    """[256]: the longest symbol (in bytes) that holds each byte value, at least 1. A piece of
    bytes b_1..b_n becomes at least sum(1 / byte_max_lengths[b_i]) tokens, whatever the
    merges do (each token of length l holds l bytes, each counting at most 1 / l)."""
    longest = np.ones(256, np.int32)
    for token in symbol_ids:
        raw = byte_symbols.token_to_bytes(token)
        if raw:
            values = np.frombuffer(raw, np.uint8)
            longest[values] = np.maximum(longest[values], len(raw))
    return longest


def _final_boundary_tables(merges, symbol_ids):
    """(junction_lengths, symbol_lengths, first_bytes, last_bytes); see the module docstring.
    When some symbol is not made of byte symbols (possible in in-memory vocabularies), no
    boundary is provably final: every junction gets an unreachable length."""
    count = len(symbol_ids)
    lengths, first, last = np.ones(count, np.int32), np.zeros(count, np.int32), np.zeros(count, np.int32)
    junction_lengths = np.zeros(1 << 16, np.int32)
    for token, index in symbol_ids.items():
        raw = byte_symbols.token_to_bytes(token)
        if not raw:  # e.g. `<s>`: never a merge part in a valid vocabulary
            continue
        lengths[index], first[index], last[index] = len(raw), raw[0], raw[-1]
    for a, b in merges:
        left, right = byte_symbols.token_to_bytes(a), byte_symbols.token_to_bytes(b)
        if not left or not right:
            junction_lengths[:] = NO_MERGE
            break
        slot = 256 * left[-1] + right[0]
        junction_lengths[slot] = max(junction_lengths[slot], len(left) + len(right))
    return junction_lengths, lengths, first, last


def _row_displacement(lefts, rights, num_symbols):
    """First-fit row displacement of the sparse [left, right] -> rank matrix.

    Rows are placed longest first at the lowest offset where none of their columns collide.
    The flat table is `max(offset) + num_symbols` long, so `offset + right` never leaves it.
    """
    offsets = np.zeros(num_symbols, np.int32)
    order = np.lexsort((rights, lefts))
    lefts, rights = lefts[order], rights[order]
    ranks_sorted = order.astype(np.int32)
    row_starts = np.flatnonzero(np.r_[True, lefts[1:] != lefts[:-1]]) if len(lefts) else np.array([], np.int64)
    row_ends = np.r_[row_starts[1:], len(lefts)]
    by_length = sorted(range(len(row_starts)), key=lambda r: row_starts[r] - row_ends[r])
    singles = [r for r in by_length if row_ends[r] - row_starts[r] == 1]
    by_length = by_length[: len(by_length) - len(singles)]

    capacity = 2 * len(lefts) + 2 * num_symbols + 1024
    occupied = np.zeros(capacity, bool)
    check = np.full(capacity, -1, np.int32)
    ranks = np.full(capacity, NO_MERGE, np.int32)
    first_free = 0
    for r in by_length:
        start, end = row_starts[r], row_ends[r]
        cols = rights[start:end]
        window = 64
        # Try offsets that put the row's first column on a free slot, lowest first.
        low = max(first_free, int(cols[0]))
        while True:
            needed = low + window + int(cols[-1]) + 1
            if needed > capacity:
                grow = needed - capacity + capacity // 2
                occupied = np.r_[occupied, np.zeros(grow, bool)]
                check = np.r_[check, np.full(grow, -1, np.int32)]
                ranks = np.r_[ranks, np.full(grow, NO_MERGE, np.int32)]
                capacity = len(occupied)
            candidates = low + np.flatnonzero(~occupied[low : low + window]) - int(cols[0])
            fits = ~occupied[candidates[:, None] + cols[None, :]].any(axis=1)  # [candidates]
            if fits.any():
                candidate = int(candidates[np.argmax(fits)])
                break
            low += window
            # The free space is far above: gallop, keeping each trial under ~256k lookups.
            window = min(2 * window, max(64, (1 << 18) // len(cols)))
        slots = candidate + cols
        occupied[slots] = True
        check[slots] = lefts[start]
        ranks[slots] = ranks_sorted[start:end]
        offsets[lefts[start]] = candidate
        while first_free < capacity and occupied[first_free]:
            first_free += 1
    # One-entry rows (about half of GPT-2's) fill the holes left: in increasing column order,
    # each takes the lowest unused free slot at or after its column (so its offset is >= 0).
    singles.sort(key=lambda r: rights[row_starts[r]])
    free_slots = np.flatnonzero(~occupied)
    pointer = 0
    for r in singles:
        start = row_starts[r]
        pointer = max(pointer, int(np.searchsorted(free_slots, rights[start])))
        slot = int(free_slots[pointer])
        pointer += 1
        check[slot] = lefts[start]
        ranks[slot] = ranks_sorted[start]
        offsets[lefts[start]] = slot - int(rights[start])
    table_size = int(offsets.max(initial=0)) + num_symbols
    if table_size > capacity:  # a late single near the end: `offset + right` may pass the arrays
        check = np.r_[check, np.full(table_size - capacity, -1, np.int32)]
        ranks = np.r_[ranks, np.full(table_size - capacity, NO_MERGE, np.int32)]
    return offsets, check[:table_size].copy(), ranks[:table_size].copy()
