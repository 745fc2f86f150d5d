"""The byte-level BPE merge loop on flat int32 symbol tensors.

Each pass merges, in every word (or piece) at once, the lowest-ranked adjacent pair present in
the merge table (all its occurrences left to right; overlapping ones, as in `a a a`, the
leftmost first) and every other pair that provably comes next in that order (`_merge_step`)
— the same result as GPT-2's `bpe()` and Hugging Face's BPE model, in far fewer passes on long
merge chains. The loop is a `tf.while_loop` over shape-changing vectors; per pass it uses
GATHER, ADD, EQUAL, SELECT, MINIMUM, UNSORTED_SEGMENT_MIN, CUMSUM, FLOOR_MOD, WHERE,
SCATTER_ND and IF, all TFLite builtins.

It does not split text into words (`pretokenizer.py`) or build the tables (`merge_table.py`).
"""

import tensorflow as tf

from roberta_tf.tokenizers.merge_table import NO_MERGE
from roberta_tf.tokenizers.neighbours import shifted


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
    """Pair ranks (NO_MERGE across words), which pairs are within a word, and each word's
    lowest rank (INT32_MAX if none)."""
    left, right, pair_word = symbols[:-1], symbols[1:], word_ids[:-1]
    same_word = tf.equal(pair_word, word_ids[1:])
    rank = tf.where(same_word, pair_ranks(left, right, tables), NO_MERGE)
    return rank, same_word, tf.math.unsorted_segment_min(rank, pair_word, num_words)


def _merge_step(symbols, segment_ids, num_segments, rank, segment_best, joinable, tables, ahead=True):
    """One merge pass over every segment (a word or a piece) at once.

    GPT-2's BPE merges a segment's lowest-ranked pair (all its leftmost non-overlapping
    copies), then looks again. This step also merges, in the same pass, every pair that is
    provably the next merges of that sequence, so long merge chains take few passes (4,096
    random digits: 436 passes one rank at a time, 17 here) with identical results:

    - candidates: the lowest pairs, and every *strict local minimum* (ranked below both
      neighbouring pairs). Candidates never share a symbol.
    - threshold T of a segment: the lowest rank among the pairs merging candidates would
      create (with each neighbour as it is, or as its own candidate merge would make it: the
      sequence may apply them in either order) and among the non-candidate pairs that no
      candidate touches.
    - merged: the lowest pairs, and the local minima ranked below T.
    Why it is exact: below T, the sequence meets only merged candidates (every other pair
    below T is a non-candidate next to a candidate, which that candidate's merge removes
    first), candidates do not overlap, and no pair created by them ranks below T; so the
    sequence merges exactly them, in rank order, before anything else happens.

    `ahead=False` merges only the lowest pairs (GPT-2's step): fewer ops per pass, which wins
    where passes are few and per-op overhead dominates (one short text in TFLite).

    Args:
        symbols: int32 [n]; segment_ids: int32 [n] segment of each symbol (< num_segments).
        rank: int32 [n - 1] pair ranks, NO_MERGE across segments; segment_best: each
            segment's lowest rank; joinable: bool [n - 1], the pair is within a segment.

    Returns:
        new_symbols: int32 [n], merged symbol at each merged pair's left position.
        survives: bool [n], False on each merged pair's right symbol.
        merged_any: bool scalar.
    """
    pair_segment = segment_ids[:-1]
    present = rank < NO_MERGE
    is_best = tf.equal(rank, tf.gather(segment_best, pair_segment)) & present
    # Adjacent copies of the best pair (a run of `x x x`) are rare: resolve them only then.
    overlapping = tf.reduce_any(is_best[1:] & is_best[:-1])
    best = tf.cond(overlapping, lambda: leftmost_non_overlapping(is_best), lambda: is_best)
    if ahead:
        merge_here, merged = _merge_ahead(symbols, pair_segment, num_segments, rank, present, best, joinable, tables)
    else:
        merge_here, merged = best, tf.gather(tables.merged_symbol, tf.where(best, rank, 0))
    new_symbols = tf.concat([tf.where(merge_here, merged, symbols[:-1]), symbols[-1:]], 0)
    survives = tf.concat([[True], tf.logical_not(merge_here)], 0)
    return new_symbols, survives, tf.reduce_any(merge_here)


def _merge_ahead(symbols, pair_segment, num_segments, rank, present, best, joinable, tables):
    """(pairs to merge, merged symbol of each candidate pair): `best` plus the strict local
    minima below their segment's threshold (see `_merge_step`)."""
    strict = present & (rank < shifted(rank, -1, NO_MERGE)) & (rank < shifted(rank, 1, NO_MERGE))
    candidate = best | strict

    touched = shifted(candidate, -1, False) | shifted(candidate, 1, False)
    untouched_rank = tf.where(present & ~candidate & ~touched, rank, NO_MERGE)
    merged = tf.gather(tables.merged_symbol, tf.where(candidate, rank, 0))
    left_ok, right_ok = candidate & shifted(joinable, -1, False), candidate & shifted(joinable, 1, False)
    left_symbol, right_symbol = shifted(symbols[:-1], -1, 0), shifted(symbols[1:], 1, 0)
    left_merged, right_merged = shifted(merged, -2, 0), shifted(merged, 2, 0)
    left_both, right_both = left_ok & shifted(candidate, -2, False), right_ok & shifted(candidate, 2, False)
    created = tf.reduce_min(tf.stack([
        tf.where(left_ok, pair_ranks(left_symbol, merged, tables), NO_MERGE),
        tf.where(left_both, pair_ranks(left_merged, merged, tables), NO_MERGE),
        tf.where(right_ok, pair_ranks(merged, right_symbol, tables), NO_MERGE),
        tf.where(right_both, pair_ranks(merged, right_merged, tables), NO_MERGE),
        untouched_rank,
    ]), axis=0)
    threshold = tf.math.unsorted_segment_min(created, pair_segment, num_segments)
    return best | (strict & (rank < tf.gather(threshold, pair_segment))), merged


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

    def merge_pairs(symbols, piece_ids, num_pieces, rank, _, piece_best, joinable):
        new_symbols, survives, _ = _merge_step(symbols, piece_ids, num_pieces, rank, piece_best, joinable, tables)
        return new_symbols, survives

    return merge_compacting(symbols, word_ids, tables, lambda left, right: (pair_ranks(left, right, tables), None), merge_pairs)


def merge_compacting(symbols, segment_ids, tables, pair_levels, merge_pairs):
    """The compacting merge loop, shared by GPT-2's rank merges (`merge_words`) and
    SentencePiece's score-ordered ones (`sentencepiece_bpe.merge_symbols`), which differ only
    in how a pair is ranked and which pairs one pass merges.

    Each pass splits the segments at final boundaries (`final_boundary`) into pieces; a piece
    with nothing left to merge leaves the working set at once, written to its final place.

    Args:
        symbols: int32 [n]; segment_ids: int32 [n] non-decreasing segment of each symbol.
        tables: what `final_boundary` reads.
        pair_levels: (left, right) -> (level int32, NO_MERGE where no merge; merged symbol
            int32 or None): how each adjacent pair ranks (lowest merges first).
        merge_pairs: (symbols, piece_ids, num_pieces, level, merged, piece_best, joinable)
            -> (new_symbols int32 [n], survives bool [n]): one pass's merges.

    Returns:
        merged: int32 [m] final symbols in order; source: int32 [m] index in `symbols` of
        each one's first input symbol.
    """
    size = tf.size(symbols)

    def one_pass(symbols, piece_ids, origin, written):
        left, right = symbols[:-1], symbols[1:]
        # Pieces only ever split: a pair joins within last pass's piece, across no final
        # boundary. (Carrying piece ids, not segment ids, also keeps the two sides of a
        # finished piece that left the working set from looking adjacent.) A pair belongs to
        # its left symbol's piece.
        joinable = tf.equal(piece_ids[:-1], piece_ids[1:]) & tf.logical_not(final_boundary(left, right, tables))
        level, merged = pair_levels(left, right)
        level = tf.where(joinable, level, NO_MERGE)
        piece_ids = tf.cumsum(tf.cast(tf.concat([[True], tf.logical_not(joinable)], 0), tf.int32)) - 1
        count = tf.size(symbols)
        piece_best = tf.math.unsorted_segment_min(level, piece_ids[:-1], count)
        finished = tf.gather(piece_best, piece_ids) >= NO_MERGE  # nothing left to merge
        # Each symbol is written at its origin (the input position of its first symbol),
        # stored +1 so 0 means empty; most passes finish nothing and skip the update.
        written = tf.cond(
            tf.reduce_any(finished),
            lambda: _write(written, origin, symbols, tf.reshape(tf.where(finished), [-1])),
            lambda: written,
        )
        new_symbols, survives = merge_pairs(symbols, piece_ids, count, level, merged, piece_best, joinable)
        kept = tf.reshape(tf.where(survives & tf.logical_not(finished)), [-1])
        return tf.gather(new_symbols, kept), tf.gather(piece_ids, kept), tf.gather(origin, kept), written

    _, _, _, written = tf.while_loop(
        lambda s, p, o, w: tf.size(s) > 0,
        one_pass,
        (symbols, segment_ids, tf.range(size), tf.zeros([size], tf.int32)),
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
        rank, same_word, word_best = _ranks_and_best(symbols, word_ids, num_words, tables)
        new_symbols, survives, merged_any = _merge_step(
            symbols, word_ids, num_words, rank, word_best, same_word, tables, ahead=False
        )
        kept = tf.reshape(tf.where(survives), [-1])
        return tf.gather(new_symbols, kept), tf.gather(word_ids, kept), merged_any

    symbols, word_ids, _ = tf.while_loop(
        lambda s, w, changed: changed,
        one_pass,
        (symbols, word_ids, tf.size(symbols) > 1),
        shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None]), tf.TensorShape([])),
    )
    return symbols, tf.gather(word_slot, word_ids)
