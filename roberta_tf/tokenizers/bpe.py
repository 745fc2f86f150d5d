"""The byte-level BPE merge loop on flat int32 symbol tensors.

Each pass finds, in every word at once, the lowest-ranked adjacent pair present in the merge
table and merges all its occurrences left to right (overlapping ones, as in `a a a`, merge
the leftmost first) — the same result as GPT-2's `bpe()` and Hugging Face's BPE model for
merge lists in which every merge's parts are made by earlier merges. The loop is a
`tf.while_loop` over shape-changing vectors; per pass it uses GATHER, ADD, EQUAL, SELECT,
UNSORTED_SEGMENT_MIN, CUMSUM, FLOOR_MOD and WHERE, all TFLite builtins.

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


def merge_words(symbols, word_ids, num_words, tables):
    """Applies the merges to every word until none applies.

    Args:
        symbols: int32 [n] symbol ids, words contiguous.
        word_ids: int32 [n] non-decreasing word index of each symbol, < num_words.
        num_words: int32 scalar.
        tables: a `BpeTensors` (tf constants of `merge_table.MergeTables`).

    Returns:
        (symbols, word_ids) after merging.
    """

    def one_pass(symbols, word_ids, _):
        left, right, pair_word = symbols[:-1], symbols[1:], word_ids[:-1]
        same_word = tf.equal(pair_word, word_ids[1:])
        rank = tf.where(same_word, pair_ranks(left, right, tables), NO_MERGE)
        word_best = tf.math.unsorted_segment_min(rank, pair_word, num_words)
        is_best = tf.equal(rank, tf.gather(word_best, pair_word)) & (rank < NO_MERGE)
        merge_here = leftmost_non_overlapping(is_best)
        merged = tf.gather(tables.merged_symbol, tf.where(merge_here, rank, 0))
        new_symbols = tf.concat([tf.where(merge_here, merged, left), symbols[-1:]], 0)
        # The right symbol of each merged pair disappears.
        keep = tf.concat([[True], tf.logical_not(merge_here)], 0)
        kept = tf.reshape(tf.where(keep), [-1])
        return tf.gather(new_symbols, kept), tf.gather(word_ids, kept), tf.reduce_any(merge_here)

    symbols, word_ids, _ = tf.while_loop(
        lambda s, w, changed: changed,
        one_pass,
        (symbols, word_ids, tf.size(symbols) > 1),
        shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None]), tf.TensorShape([])),
        maximum_iterations=None,
    )
    return symbols, word_ids
