"""The byte-level BPE merge loop on flat int32 symbol tensors.

Each pass finds, in every word at once, the lowest-ranked adjacent pair present in the merge
table and merges all its occurrences left to right (overlapping ones, as in `a a a`, merge
the leftmost first) — the same result as GPT-2's `bpe()` and Hugging Face's BPE model for
merge lists in which every merge's parts are made by earlier merges. The loop is a
`tf.while_loop` over shape-changing vectors; per pass it uses GATHER, ADD, EQUAL, SELECT,
UNSORTED_SEGMENT_MIN, CUMSUM, FLOOR_MOD, WHERE, SCATTER_ND and IF, all TFLite builtins.

It does not split text into words (`pretokenizer.py`) or build the tables (`merge_table.py`).
"""

import tensorflow as tf

from roberta_tf.tokenizers.merge_table import NO_MERGE


def pair_ranks(left, right, tables):
    """Rank of each (left[i], right[i]) merge, NO_MERGE where there is none."""
    slot = tf.gather(tables.offsets, left) + right
    return tf.where(tf.equal(tf.gather(tables.check, slot), left), tf.gather(tables.ranks, slot), NO_MERGE)


def leftmost_non_overlapping(is_candidate):
    """Keeps every other position of each run of adjacent candidates, starting with the first.

    Two adjacent candidate pairs share a symbol (only possible for a pair `x x`, as in
    `x x x`); merging left to right keeps the 1st, 3rd, ... pair of the run.
    """
    flags = tf.cast(is_candidate, tf.int32)
    before = tf.cumsum(flags, exclusive=True)  # candidates strictly before i
    run_id = tf.cumsum(1 - flags)  # constant over a run (and the non-candidate before it)
    run_base = tf.math.unsorted_segment_min(before, run_id, tf.size(flags) + 1)
    position_in_run = before - tf.gather(run_base, run_id)
    return is_candidate & tf.equal(tf.math.floormod(position_in_run, 2), 0)


def _ranks_and_best(symbols, word_ids, num_words, tables):
    """Pair ranks (NO_MERGE across words) and each word's lowest rank (INT32_MAX if none)."""
    left, right, pair_word = symbols[:-1], symbols[1:], word_ids[:-1]
    rank = tf.where(tf.equal(pair_word, word_ids[1:]), pair_ranks(left, right, tables), NO_MERGE)
    return rank, tf.math.unsorted_segment_min(rank, pair_word, num_words)


def _merge_best_pairs(symbols, word_ids, rank, word_best, tables):
    """One merge step: every word merges all leftmost non-overlapping copies of its best pair.

    Returns:
        new_symbols: int32 [n], merged symbol at each merged pair's left position.
        survives: bool [n], False on each merged pair's right symbol.
        merged_any: bool scalar.
    """
    is_best = tf.equal(rank, tf.gather(word_best, word_ids[:-1])) & (rank < NO_MERGE)
    # Adjacent candidates (a run of `x x x`) are rare: pay for resolving them only then.
    overlapping = tf.reduce_any(is_best[1:] & is_best[:-1])
    merge_here = tf.cond(overlapping, lambda: leftmost_non_overlapping(is_best), lambda: is_best)
    merged = tf.gather(tables.merged_symbol, tf.where(merge_here, rank, 0))
    new_symbols = tf.concat([tf.where(merge_here, merged, symbols[:-1]), symbols[-1:]], 0)
    survives = tf.concat([[True], tf.logical_not(merge_here)], 0)
    return new_symbols, survives, tf.reduce_any(merge_here)


AUTO_COMPACT_SYMBOLS = 2048


def final_boundary(left, right, tables):
    """bool: the boundary between adjacent symbols `left` and `right` can never be merged
    across (their lengths add up past the longest merge with their junction; see
    `merge_table.py`). Such a pair has no rank either."""
    junction = tf.gather(tables.last_bytes, left) * 256 + tf.gather(tables.first_bytes, right)
    length = tf.gather(tables.symbol_lengths, left) + tf.gather(tables.symbol_lengths, right)
    return length > tf.gather(tables.junction_lengths, junction)


def merge_words(symbols, word_ids, num_words, tables, compact=True):
    """Applies the merges to every word until none applies.

    Two drivers of the same merge step, with identical results:
    - `compact=True` (TF graphs, big batches): each pass splits the words at final
      boundaries (`final_boundary`) into pieces, and a piece with nothing left to merge
      leaves the working set at once, written to its final place; later passes only touch
      the pieces still merging. BPE on the pieces is BPE on the words, so this changes no id;
      it is what keeps the loop fast on long merge chains (1 MB of random digits: 3x fewer
      symbol visits).
    - `compact=False` (TFLite, one text): every pass works on the whole text; fewer ops per
      pass, which is what counts when tensors are tiny and per-op overhead dominates.
    - `compact="auto"`: in place below `AUTO_COMPACT_SYMBOLS` symbols, compacting above (an
      IF between the two loops), so one long text is not merged in place pass after pass.

    Args:
        symbols: int32 [n] symbol ids, words contiguous.
        word_ids: int32 [n] non-decreasing word index of each symbol, < num_words.
        num_words: int32 scalar.
        tables: a `BpeTensors` (tf constants of `merge_table.MergeTables`).
        compact: which driver (see above).

    Returns:
        merged: int32 [m], the merged symbols, words in their original order.
        source: int32 [m], for each merged symbol an input position inside its word (so
            per-symbol data such as the text index can be gathered from the input).
    """
    size = tf.size(symbols)
    if compact == "auto":
        return tf.cond(
            size > AUTO_COMPACT_SYMBOLS,
            lambda: merge_words(symbols, word_ids, num_words, tables, compact=True),
            lambda: _merge_in_place(symbols, word_ids, num_words, tables),
        )
    if not compact:
        return _merge_in_place(symbols, word_ids, num_words, tables)

    def one_pass(symbols, piece_ids, origin, written):
        left, right = symbols[:-1], symbols[1:]
        # Pieces only ever split: a pair joins within last pass's piece, across no final
        # boundary. (Carrying piece ids, not word ids, also keeps the two sides of a finished
        # piece that left the working set from looking adjacent.) A pair belongs to its left
        # symbol's piece.
        joinable = tf.equal(piece_ids[:-1], piece_ids[1:]) & tf.logical_not(final_boundary(left, right, tables))
        rank = tf.where(joinable, pair_ranks(left, right, tables), NO_MERGE)
        piece_ids = tf.cumsum(tf.cast(tf.concat([[True], tf.logical_not(joinable)], 0), tf.int32)) - 1
        piece_best = tf.math.unsorted_segment_min(rank, piece_ids[:-1], tf.size(symbols))
        finished = tf.gather(piece_best, piece_ids) >= NO_MERGE  # nothing left to merge
        # Each symbol is written at its origin (the input position of its first byte symbol),
        # stored +1 so 0 means empty; most passes finish nothing and skip the update.
        written = tf.cond(
            tf.reduce_any(finished),
            lambda: _write(written, origin, symbols, tf.reshape(tf.where(finished), [-1])),
            lambda: written,
        )
        new_symbols, survives, _ = _merge_best_pairs(symbols, piece_ids, rank, piece_best, tables)
        kept = tf.reshape(tf.where(survives & tf.logical_not(finished)), [-1])
        return tf.gather(new_symbols, kept), tf.gather(piece_ids, kept), tf.gather(origin, kept), written

    _, _, _, written = tf.while_loop(
        lambda s, w, o, out: tf.size(s) > 0,
        one_pass,
        (symbols, word_ids, tf.range(size), tf.zeros([size], tf.int32)),
        shape_invariants=(tf.TensorShape([None]),) * 4,
    )
    source = tf.reshape(tf.where(written > 0), [-1])
    return tf.gather(written, source) - 1, tf.cast(source, tf.int32)


def _write(written, origin, symbols, done):
    return tf.tensor_scatter_nd_update(written, tf.expand_dims(tf.gather(origin, done), 1), tf.gather(symbols, done) + 1)


def _merge_in_place(symbols, word_ids, num_words, tables):
    """The non-compacting driver of `merge_words`."""
    # Position of each word's first symbol: every symbol of a word reports it as its source.
    word_slot = tf.math.unsorted_segment_min(tf.range(tf.size(symbols)), word_ids, num_words)

    def one_pass(symbols, word_ids, _):
        rank, word_best = _ranks_and_best(symbols, word_ids, num_words, tables)
        new_symbols, survives, merged_any = _merge_best_pairs(symbols, word_ids, rank, word_best, tables)
        kept = tf.reshape(tf.where(survives), [-1])
        return tf.gather(new_symbols, kept), tf.gather(word_ids, kept), merged_any

    symbols, word_ids, _ = tf.while_loop(
        lambda s, w, changed: changed,
        one_pass,
        (symbols, word_ids, tf.size(symbols) > 1),
        shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None]), tf.TensorShape([])),
    )
    return symbols, tf.gather(word_slot, word_ids)
