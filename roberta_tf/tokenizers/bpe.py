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


def merge_words(symbols, word_ids, num_words, tables, compact=True):
    """Applies the merges to every word until none applies.

    Two drivers of the same merge step, with identical results:
    - `compact=True` (TF graphs, big batches): a word with nothing left to merge leaves the
      working set at once and is written to its final place, so later passes only touch the
      words still merging; the pass count is set by the longest merge chain.
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
    # Position of each word's first symbol; a merged word is written back from there.
    word_slot = tf.math.unsorted_segment_min(tf.range(size), word_ids, num_words)
    if compact == "auto":
        return tf.cond(
            size > AUTO_COMPACT_SYMBOLS,
            lambda: merge_words(symbols, word_ids, num_words, tables, compact=True),
            lambda: _merge_in_place(symbols, word_ids, num_words, tables, word_slot),
        )
    if not compact:
        return _merge_in_place(symbols, word_ids, num_words, tables, word_slot)

    def one_pass(symbols, word_ids, written):
        rank, word_best = _ranks_and_best(symbols, word_ids, num_words, tables)
        # Words with nothing left to merge: write them out (stored +1 so 0 means empty).
        finished = tf.gather(word_best, word_ids) >= NO_MERGE
        done = tf.reshape(tf.where(finished), [-1])
        done_words = tf.gather(word_ids, done)
        first_in_working_set = tf.math.unsorted_segment_min(tf.range(tf.size(symbols)), word_ids, num_words)
        slot = tf.gather(word_slot, done_words) + tf.cast(done, tf.int32) - tf.gather(first_in_working_set, done_words)
        written += tf.scatter_nd(tf.expand_dims(slot, 1), tf.gather(symbols, done) + 1, [size])

        new_symbols, survives, _ = _merge_best_pairs(symbols, word_ids, rank, word_best, tables)
        kept = tf.reshape(tf.where(survives & tf.logical_not(finished)), [-1])
        return tf.gather(new_symbols, kept), tf.gather(word_ids, kept), written

    _, _, written = tf.while_loop(
        lambda s, w, out: tf.size(s) > 0,
        one_pass,
        (symbols, word_ids, tf.zeros([size], tf.int32)),
        shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None]), tf.TensorShape([None])),
    )
    source = tf.reshape(tf.where(written > 0), [-1])
    return tf.gather(written, source) - 1, tf.cast(source, tf.int32)


def _merge_in_place(symbols, word_ids, num_words, tables, word_slot):
    """The non-compacting driver of `merge_words`."""

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
