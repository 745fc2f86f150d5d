"""SentencePiece's BPE segmentation on integer TF ops, ids equal to `sentencepiece`'s.

What SentencePiece does (`bpe_model.cc` `SampleEncode` with alpha 0, then
`SentencePieceProcessor::PopulateSentencePieceText`), on the whole normalized text at once
(no split into words: a merge may cross `▁` wherever the model has such a piece):
1. Initial symbols: at each position the longest USER_DEFINED piece that starts there
   (frozen: never merged), else one UTF-8 character.
2. Every adjacent pair whose concatenation is a NORMAL, USER_DEFINED or UNUSED piece goes on
   an agenda; the agenda pops the highest score first and, between equal scores, the pair
   further left. Popping merges the pair (if both symbols are still as they were) and puts the
   new symbol's pairs with its neighbours on the agenda. This is not GPT-2's rank order: a
   piece may score higher than one of its parts (`▁the` above `▁th` in BPEmb), so a merge
   can create a pair that outranks the pairs still waiting.
3. Output: each symbol's `PieceToId` (unknown characters give `<unk>`); UNUSED results are
   split back (not supported here: `sentencepiece_bpe_table` rejects such models); then a run
   of adjacent `<unk>` tokens becomes one `<unk>`, or, with byte fallback, each `<unk>` becomes
   the `<0xXX>` pieces of its UTF-8 bytes.

How it is computed here (the merge loop of `bpe.py`, generalised; every op a TFLite builtin).
Each pass works on *pieces* (runs of symbols between final boundaries, `merge_table.py`; no
merge ever crosses one, so SentencePiece's agenda restricted to a piece is SentencePiece on
that piece, and pieces can be merged independently) and merges, in each piece at once:
- B: the pairs of the piece's best level (highest score), leftmost non-overlapping, up to and
  including the first one whose merge creates a pair at that level or above (with its left
  neighbour as B leaves it and its right neighbour as it is). Exact: SentencePiece pops exactly
  these, left to right, before anything else; after a merge that creates an outranking pair
  it would pop that pair next, so the pass stops there and the next pass starts from the
  state SentencePiece is in.
- when B was not cut: also every pair whose level is a strict local best (better than both
  neighbouring pairs) and better than the threshold T of its piece, the best level among the
  pairs merging candidates could create and the non-candidate pairs no candidate touches
  (`bpe._merge_step`'s look-ahead). Exact: such pairs never touch B's pairs nor each other,
  and SentencePiece pops all of them before any pair at T or below; pairs above T that are
  not merged touch a merged candidate that outranks them and goes first.
Every pass merges at least the piece's best pair, so the loop ends after at most one pass
per symbol; finished pieces leave the working set at once (cost falls as text finishes).
"""

import dataclasses

import tensorflow as tf

from roberta_tf.tokenizers import bpe, sentencepiece_bpe_table, utf8
from roberta_tf.tokenizers.merge_table import NO_MERGE
from roberta_tf.tokenizers.neighbours import Neighbours, shifted

_BLOCK_SIZE = 256


@dataclasses.dataclass(frozen=True)
class _Tensors:
    """The tables as TF constants (attribute names shared with `bpe.final_boundary`)."""

    block_index: tf.Tensor
    blocks: tf.Tensor
    offsets: tf.Tensor
    check: tf.Tensor
    levels: tf.Tensor
    merged: tf.Tensor
    junction_lengths: tf.Tensor
    symbol_lengths: tf.Tensor
    first_bytes: tf.Tensor
    last_bytes: tf.Tensor
    output_ids: tf.Tensor
    byte_piece_ids: tf.Tensor


class SentencePieceBpe:
    """Segments normalized UTF-8 bytes with a SentencePiece BPE model.

    Args:
        pieces: the pieces' UTF-8 bytes (or str), index = SentencePiece id.
        scores: float [n]; types: int [n] SentencePiece piece types (NORMAL=1 ... BYTE=6).
        unk_id: id of the UNKNOWN piece.
        byte_fallback: whether unknown characters become `<0xXX>` pieces (the model needs all
            256 of them).

    Raises:
        ValueError: inconsistent arrays, or a model with UNUSED pieces that merges can make
            (see `sentencepiece_bpe_table.build_tables`).
    """

    def __init__(self, pieces, scores, types, unk_id, byte_fallback):
        self._tables = sentencepiece_bpe_table.build_tables(pieces, scores, types, unk_id, byte_fallback)

    @property
    def tables(self):
        """The numpy `SentencePieceBpeTables`."""
        return self._tables

    def _constants(self):
        # Made per call, so they are constants of the graph being traced (a Keras layer, a
        # serving function and a TFLite function each embed their own copy).
        t = self._tables
        return _Tensors(*(tf.constant(getattr(t, f.name), tf.int32) for f in dataclasses.fields(_Tensors)))

    def segment(self, normalized_bytes, text_ids, num_texts):
        """Normalized UTF-8 bytes -> SentencePiece piece ids.

        Args:
            normalized_bytes: int32 [num_bytes] (0..255), the normalizer's output, texts
                contiguous. Invalid UTF-8 (which the normalizer never outputs) is segmented
                as one unknown character per invalid byte.
            text_ids: int32 [num_bytes] non-decreasing text of each byte, or None for one text
                (the TFLite model).
            num_texts: int32 scalar (ignored when text_ids is None).

        Returns:
            (piece_ids int32 [num_tokens], token_text_ids int32 [num_tokens] or None when
            text_ids is None). Empty texts give no tokens.
        """
        tables = self._constants()
        byte_values = tf.cast(tf.reshape(normalized_bytes, [-1]), tf.int32)
        single = text_ids is None
        num_bytes = tf.size(byte_values)
        if single:
            text_ids = tf.zeros([num_bytes], tf.int32)
            num_texts = tf.constant(1, tf.int32)
        text_ids = tf.cast(tf.reshape(text_ids, [-1]), tf.int32)
        neighbours = Neighbours(None if single else text_ids, num_bytes)

        starts, symbols = self._initial_symbols(byte_values, neighbours, tables)
        symbol_texts = tf.gather(text_ids, starts)
        merged, source = merge_symbols(symbols, symbol_texts, tables)
        token_starts = tf.gather(starts, source)
        token_texts = tf.gather(symbol_texts, source)
        ids, token_texts = self._output_ids(merged, token_starts, token_texts, byte_values, num_bytes, tables)
        return ids, (None if single else token_texts)

    def _initial_symbols(self, byte_values, neighbours, tables):
        """(byte position of each symbol's start, its symbol): one per character, or per
        user-defined piece match."""
        unit_start, code_points = utf8.decode_units(byte_values, neighbours)
        starts = tf.cast(tf.reshape(tf.where(unit_start), [-1]), tf.int32)
        code_points = tf.gather(code_points, starts)
        valid = code_points >= 0
        safe = tf.where(valid, code_points, 0)
        high = tf.math.floordiv(safe, _BLOCK_SIZE)
        symbols = tf.gather(tables.blocks, tf.gather(tables.block_index, high) * _BLOCK_SIZE + (safe - high * _BLOCK_SIZE))
        symbols = tf.where(valid, symbols, self._tables.other_symbol)
        if self._tables.user_defined:
            starts, symbols = _match_user_defined(byte_values, neighbours, starts, symbols, self._tables)
        return starts, symbols

    def _output_ids(self, merged, token_starts, token_texts, byte_values, num_bytes, tables):
        """Symbols -> ids, with SentencePiece's handling of unknowns (one `<unk>` per run, or
        the byte pieces of each unknown character)."""
        ids = tf.gather(tables.output_ids, merged)
        unknown = tf.equal(ids, self._tables.unk_id)
        same_text_before = tf.equal(shifted(token_texts, -1, -1), token_texts)
        if not self._tables.byte_fallback:
            keep = tf.reshape(tf.where(~(unknown & shifted(unknown, -1, False) & same_text_before)), [-1])
            return tf.gather(ids, keep), tf.gather(token_texts, keep)
        # Each unknown token spans up to the next token's start (texts are contiguous).
        lengths = tf.concat([token_starts[1:], tf.reshape(num_bytes, [1])], 0) - token_starts
        counts = tf.where(unknown, lengths, 1)
        slot_starts = tf.cumsum(counts, exclusive=True)
        total = tf.reduce_sum(counts)
        marks = tf.scatter_nd(tf.expand_dims(slot_starts, 1), tf.ones_like(slot_starts), tf.reshape(total, [1]))
        token_of_slot = tf.cumsum(marks) - 1
        offset = tf.range(total) - tf.gather(slot_starts, token_of_slot)
        byte_ids = tf.gather(tables.byte_piece_ids, tf.gather(byte_values, tf.gather(token_starts, token_of_slot) + offset))
        slot_ids = tf.where(tf.gather(unknown, token_of_slot), byte_ids, tf.gather(ids, token_of_slot))
        return slot_ids, tf.gather(token_texts, token_of_slot)


def _pair_levels(left, right, tables):
    """(level, merged symbol) of each (left[i], right[i]) pair; NO_MERGE where none."""
    slot = tf.gather(tables.offsets, left) + right
    found = tf.equal(tf.gather(tables.check, slot), left)
    return tf.where(found, tf.gather(tables.levels, slot), NO_MERGE), tf.gather(tables.merged, slot)


def _level_of(left, right, tables):
    return _pair_levels(left, right, tables)[0]


def merge_symbols(symbols, segment_ids, tables):
    """SentencePiece's BPE merges over each segment (text) of `symbols`.

    Args:
        symbols: int32 [n] initial symbols, segments contiguous.
        segment_ids: int32 [n] non-decreasing segment of each symbol.
        tables: the `_Tensors`.

    Returns:
        merged: int32 [m] final symbols in order; source: int32 [m] index in `symbols` of
        each one's first initial symbol.
    """

    def merge_pairs(symbols, piece_ids, num_pieces, level, merged, piece_best, joinable):
        merge_here = _pairs_to_merge(symbols, piece_ids[:-1], num_pieces, level, merged, piece_best, joinable, tables)
        new_symbols = tf.concat([tf.where(merge_here, merged, symbols[:-1]), symbols[-1:]], 0)
        return new_symbols, tf.concat([[True], tf.logical_not(merge_here)], 0)

    return bpe.merge_compacting(symbols, segment_ids, tables, lambda left, right: _pair_levels(left, right, tables), merge_pairs)


def _pairs_to_merge(symbols, pair_piece, num_pieces, level, merged, piece_best, joinable, tables):
    """bool [n - 1]: the pairs this pass merges (B and the look-ahead; module docstring)."""
    present = level < NO_MERGE
    is_best = tf.equal(level, tf.gather(piece_best, pair_piece)) & present
    overlapping = tf.reduce_any(is_best[1:] & is_best[:-1])
    best = tf.cond(overlapping, lambda: bpe.leftmost_non_overlapping(is_best), lambda: is_best)

    left_ok = shifted(joinable, -1, False)  # pair i - 1 exists in the same piece
    right_ok = shifted(joinable, 1, False)  # pair i + 1 exists in the same piece
    left_symbol, right_symbol = shifted(symbols[:-1], -1, 0), shifted(symbols[1:], 1, 0)
    left_merged, right_merged = shifted(merged, -2, 0), shifted(merged, 2, 0)

    # B: cut after the first best pair whose merge creates a pair at its level or above.
    left_after_best = tf.where(left_ok & shifted(best, -2, False), left_merged, left_symbol)
    creates = tf.minimum(
        tf.where(left_ok, _level_of(left_after_best, merged, tables), NO_MERGE),
        tf.where(right_ok, _level_of(merged, right_symbol, tables), NO_MERGE),
    )
    position = tf.range(tf.size(level))
    outranked = best & (creates <= level)
    cut = tf.math.unsorted_segment_min(tf.where(outranked, position, NO_MERGE), pair_piece, num_pieces)
    piece_cut = tf.gather(cut, pair_piece)
    chosen = best & (position <= piece_cut)

    # Look-ahead (only where B was not cut, which T below ensures by itself: the cut pair's
    # created level is <= the best level, so T is too and no strict local best is below T).
    strict = present & (level < shifted(level, -1, NO_MERGE)) & (level < shifted(level, 1, NO_MERGE))
    candidate = best | strict
    touched = shifted(candidate, -1, False) | shifted(candidate, 1, False)
    untouched = tf.where(present & ~candidate & ~touched, level, NO_MERGE)
    left_both = left_ok & shifted(candidate, -2, False)
    right_both = right_ok & shifted(candidate, 2, False)
    created = tf.reduce_min(tf.stack([
        tf.where(candidate & left_ok, _level_of(left_symbol, merged, tables), NO_MERGE),
        tf.where(candidate & left_both, _level_of(left_merged, merged, tables), NO_MERGE),
        tf.where(candidate & right_ok, _level_of(merged, right_symbol, tables), NO_MERGE),
        tf.where(candidate & right_both, _level_of(merged, right_merged, tables), NO_MERGE),
        untouched,
    ]), axis=0)
    threshold = tf.math.unsorted_segment_min(created, pair_piece, num_pieces)
    return chosen | (strict & (level < tf.gather(threshold, pair_piece)))


def _match_user_defined(byte_values, neighbours, starts, symbols, tables):
    """SentencePiece's prefix matcher: from the text's start, the longest USER_DEFINED piece
    at the current position becomes one (frozen) symbol and matching resumes after it;
    elsewhere one character is one symbol.

    Matches at every character start come from a byte trie walked `max length` steps in
    parallel; which of them the left-to-right scan takes is the orbit of the first character
    under "next symbol start", found by pointer doubling (log2(characters) passes of
    GATHER + UNSORTED_SEGMENT_MAX, instead of a scan per character).

    Returns (starts, symbols) of the kept symbols.
    """
    trie = sentencepiece_bpe_table.user_defined_trie(tables.user_defined, tables.user_defined_ids)
    offsets, check, children, terminal_ids, terminal_lengths = (
        tf.constant(a, tf.int32) for a in (trie.offsets, trie.check, trie.children, trie.terminal_ids, trie.terminal_lengths)
    )
    state = tf.zeros_like(starts)
    alive = tf.ones_like(starts, tf.bool)
    match_length, match_id = tf.zeros_like(starts), tf.fill(tf.shape(starts), -1)
    for k in range(trie.max_length):
        shifted = byte_values if k == 0 else neighbours.shift(byte_values, k, -1)
        byte = tf.gather(shifted, starts)
        slot = tf.gather(offsets, state) + tf.maximum(byte, 0)
        alive &= (byte >= 0) & tf.equal(tf.gather(check, slot), state)
        state = tf.where(alive, tf.gather(children, slot), 0)
        ends_here = alive & (tf.gather(terminal_ids, state) >= 0)
        match_length = tf.where(ends_here, tf.gather(terminal_lengths, state), match_length)
        match_id = tf.where(ends_here, tf.gather(terminal_ids, state), match_id)

    count = tf.size(starts)
    num_bytes = tf.size(byte_values)
    is_start = tf.scatter_nd(tf.expand_dims(starts, 1), tf.ones_like(starts), tf.reshape(num_bytes, [1]))
    symbol_of_byte = tf.concat([tf.cumsum(is_start) - 1, tf.reshape(count, [1])], 0)  # [num_bytes + 1]
    following = tf.range(1, count + 1)
    next_start = tf.where(match_length > 0, tf.gather(symbol_of_byte, starts + match_length), following)
    jump = tf.concat([next_start, tf.reshape(count, [1])], 0)  # position `count` is the end
    reached = tf.concat([tf.ones([1], tf.int32), tf.zeros([count], tf.int32)], 0)

    def double(reached, jump):
        landed = tf.math.unsorted_segment_max(reached, jump, count + 1)
        return tf.maximum(reached, landed), tf.gather(jump, jump)

    # After k passes `reached` holds the first 2**k symbols of the scan and `jump` leaps 2**k.
    reached, _ = tf.while_loop(
        lambda reached, jump: jump[0] < count, double, (reached, jump),
        shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None])),
    )
    kept = tf.reshape(tf.where(reached[:count] > 0), [-1])
    symbols = tf.where(match_length > 0, match_id, symbols)
    return tf.gather(starts, kept), tf.gather(symbols, kept)
