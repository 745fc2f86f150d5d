"""SentencePiece's unigram segmentation on integer TF ops: normalized UTF-8 in, piece ids out.

The ids equal `sentencepiece`'s `Model::Encode` (unigram_model.cc, the default `kOptimized`
encoder, `EncodeOptimized`) followed by `PopulateSentencePieceText`
(sentencepiece_processor.cc). The rules, as that source has them:

- Lattice: every NORMAL or USER_DEFINED piece spelled by the text from a character boundary
  (`piece_lookup.py`). UNUSED, CONTROL, UNKNOWN and BYTE pieces never enter it.
- Scores: a NORMAL piece scores its model score. A USER_DEFINED piece scores
  `bytes * max_score - 0.1` (`max_score`: the highest NORMAL score, at least FLT_MIN; bytes,
  not characters, in the optimized encoder). A character that no single-character piece
  spells also gets an `<unk>` node of one character scoring `min_score - 10` (`min_score`:
  the lowest NORMAL score).
- Viterbi: the best path score ending at each character boundary, over the candidates ending
  there in the encoder's order (start positions ascending, i.e. longest piece first). A
  candidate replaces the current best only if strictly greater, so on equal scores the
  longest last piece wins.
- Precision: float32 throughout: each candidate is `float32(score + best)` and compared in
  float32. The C++ source as read (mirror, Feb 2025) adds and compares piece candidates in
  double (the `- 0.1` literal makes the conditional a double); the installed `sentencepiece`
  0.2.3 wheel does not: that rule gets exact ties such as `000` = `0`+`00` = `00`+`0` wrong
  on corpus lines, float32 gets every corpus line right. Known gap: on single texts of about
  100,000 characters (path scores near -1e5, float32 steps of 1/128) a few float32 ties are
  broken differently by the wheel, in a way neither float32, double-compare nor all-double
  accumulation reproduces; texts of served lengths are not affected.
- Unknowns: consecutive `<unk>` pieces are merged into one `<unk>` id; with byte fallback
  each `<unk>` character becomes the `<0xXX>` pieces of its UTF-8 bytes instead (not merged).

Cost: one `tf.while_loop` pass per character of the longest text, over the texts still that
long (texts are ordered by length, so the pass sees a prefix of them): O(total characters x
max_piece_chars) work, memory O(total characters x max_piece_chars). The back-trace is pointer
jumping: O(characters x log(characters)), no loop per token. In TFLite the loop's output list
becomes SLICE + CONCATENATION, so one text of n characters also copies O(n^2) bytes (about 1 s
for 80,000 characters); the served models bound the text they segment.

Input is normalized text: valid UTF-8 (the normalizer replaces invalid bytes by U+FFFD). A
byte that is not valid UTF-8 would be one unknown character of its own. Empty texts give no ids.
"""

import numpy as np
import tensorflow as tf

from roberta_tf.tokenizers import piece_lookup
from roberta_tf.tokenizers.neighbours import Neighbours
from roberta_tf.tokenizers.sentencepiece_model import PieceType

_LATTICE_TYPES = (PieceType.NORMAL, PieceType.USER_DEFINED)
UNK_PENALTY = np.float32(10.0)  # kUnkPenalty in unigram_model.cc
_FLT_MAX, _FLT_MIN = np.finfo(np.float32).max, np.finfo(np.float32).tiny
_USER_DEFINED_BONUS = np.float32(0.1)

# The name scope of the float32 path sums (outside and inside the loop): a TFLite int8 export
# keeps ops under it in float (`export/tflite.py` FLOAT_TENSOR_NAMES), since an int8 sum would
# change ids.
FLOAT_SCOPE = "unigram_float_path_scores"

# Candidate kinds in the lattice tables.
_NONE, _PIECE, _UNKNOWN_NODE = 0, 1, 2


def _repeat_index(counts, total):
    """int32 [total]: for each output slot, the index i of `counts` it belongs to, each i
    repeated counts[i] times (counts may hold zeros). No [len x max count] intermediate."""
    non_empty = tf.cast(tf.reshape(tf.where(counts > 0), [-1]), tf.int32)
    starts = tf.gather(tf.cumsum(counts, exclusive=True), non_empty)
    marks = tf.math.unsorted_segment_sum(tf.ones_like(starts), starts, total)
    return tf.gather(non_empty, tf.cumsum(marks) - 1)


class Unigram:
    """SentencePiece unigram segmentation of normalized text.

    Args:
        pieces: UTF-8 bytes of every piece, index = SentencePiece id.
        scores: float32 [num_pieces] piece scores.
        types: int32 [num_pieces], SentencePiece piece types (NORMAL=1 ... BYTE=6).
        unk_id: id of the UNKNOWN piece.
        byte_fallback: the model's `trainer_spec.byte_fallback`.
    """

    def __init__(self, pieces, scores, types, unk_id, byte_fallback):
        pieces = [bytes(p) for p in pieces]
        scores = np.asarray(scores, np.float32)
        types = np.asarray(types, np.int32)
        if not (len(pieces) == scores.shape[0] == types.shape[0]):
            raise ValueError(
                f"pieces, scores and types must have one entry per piece. Received: "
                f"{len(pieces)} pieces, {scores.shape[0]} scores, {types.shape[0]} types."
            )
        if not 0 <= unk_id < len(pieces):
            raise ValueError(f"unk_id must be a piece id. Received: unk_id={unk_id!r} with {len(pieces)} pieces.")
        self.unk_id = int(unk_id)
        self.byte_fallback = bool(byte_fallback)

        in_lattice = np.flatnonzero(np.isin(types, _LATTICE_TYPES))
        self.lookup = piece_lookup.PieceLookup([pieces[i] for i in in_lattice], in_lattice)
        self.max_piece_chars = self.lookup.max_piece_chars

        lattice_scores, self.unk_score = _lattice_scores(pieces, scores, types)
        # The scores enter the graph as int32 bit patterns, bitcast to float32 after the
        # gather (BITCAST is a TFLite builtin): TFLite's quantizers rewrite float32 constants
        # (dynamic-range stores a 250k-entry GATHER table as int8, float16 as float16), which
        # flips near-tied segmentations; integer constants pass through every form unchanged.
        self._score_bits = tf.constant(lattice_scores.view(np.int32))
        self._unk_score_bits = tf.constant(np.float32(self.unk_score).view(np.int32))
        self._byte_piece_ids = tf.constant(_byte_piece_ids(pieces, types, self.unk_id))

    def segment(self, normalized_bytes, text_ids, num_texts):
        """Piece ids of normalized texts given as flat UTF-8 bytes.

        Args:
            normalized_bytes: int32 [num_bytes], the normalizer's output, texts one after
                another.
            text_ids: int32 [num_bytes], non-decreasing text index (< num_texts) of each byte;
                None = all bytes are one text (the TFLite model).
            num_texts: int32 scalar (1 when text_ids is None).

        Returns:
            piece_ids: int32 [num_tokens], SentencePiece ids, texts one after another.
            token_text_ids: int32 [num_tokens], each id's text; None when text_ids is None.
        """
        byte_values = tf.convert_to_tensor(normalized_bytes, tf.int32)
        single = text_ids is None
        if single:
            num_texts = tf.constant(1, tf.int32)
        else:
            text_ids = tf.convert_to_tensor(text_ids, tf.int32)
            num_texts = tf.convert_to_tensor(num_texts, tf.int32)
        chars = piece_lookup.characters(byte_values, text_ids)
        num_chars = tf.size(chars.code_points)
        char_neighbours = Neighbours(chars.text_ids, num_chars)
        char_text = tf.zeros_like(chars.code_points) if single else chars.text_ids

        starting = self.lookup.lookup(chars.code_points, chars.text_ids)  # [num_chars, L]
        ending, kind = self._candidates_ending(starting, char_neighbours)
        texts = _TextLayout(char_text, num_chars, num_texts, single)
        lengths = self._viterbi(ending, kind, texts)  # [num_chars] last piece ending at each char
        piece_at = _gather_columns(ending, self.max_piece_chars - lengths)
        piece_at = tf.where(piece_at < 0, self.unk_id, piece_at)  # the only other winner is <unk>

        token_chars, token_text = _back_trace(lengths, texts)
        token_pieces = tf.gather(piece_at, token_chars)
        if self.byte_fallback:
            piece_ids, token_text = self._bytes_for_unknowns(token_pieces, token_chars, token_text, chars, byte_values)
        else:
            piece_ids, token_text = self._merge_unknown_runs(token_pieces, token_text, single)
        return piece_ids, (None if single else token_text)

    def _candidates_ending(self, starting, char_neighbours):
        """The lattice by end: column j holds the piece of `L - j` characters ending at each
        character (the encoder's order: longest first), and each candidate's kind."""
        width = self.max_piece_chars
        columns = []
        for j in range(width):
            length = width - j
            column = starting[:, length - 1]
            columns.append(column if length == 1 else char_neighbours.shift(column, -(length - 1), piece_lookup.NO_PIECE))
        ending = tf.stack(columns, axis=1)
        is_last_column = tf.equal(tf.range(width), width - 1)
        unknown = is_last_column & (ending < 0)  # no single-character piece: an <unk> node
        kind = tf.where(ending >= 0, _PIECE, tf.where(unknown, _UNKNOWN_NODE, _NONE))
        return ending, kind

    def _viterbi(self, ending, kind, texts):
        """int32 [num_chars]: characters in the best path's piece that ends at each character."""
        with tf.name_scope(FLOAT_SCOPE):
            return self._viterbi_scores(ending, kind, texts)

    def _viterbi_scores(self, ending, kind, texts):
        width = self.max_piece_chars
        piece_scores = tf.bitcast(tf.gather(self._score_bits, tf.maximum(ending, 0)), tf.float32)
        unk_score = tf.bitcast(self._unk_score_bits, tf.float32)
        scores = tf.where(kind == _PIECE, piece_scores, tf.where(kind == _UNKNOWN_NODE, unk_score, -np.inf))
        columns = tf.range(width)

        def step(k, window, chosen):
            with tf.name_scope(FLOAT_SCOPE):  # the loop body is a graph of its own
                return one_character(k, window, chosen)

        def one_character(k, window, chosen):
            active = texts.active[k]
            rows = texts.sorted_char_start[:active] + k  # the k-th character of each active text
            window = window[:active]  # best scores at the `width` boundaries before it
            summed = tf.gather(scores, rows) + window  # float32, as the encoder adds
            best = tf.reduce_max(summed, axis=1)
            # Strictly greater replaces: the first candidate (longest piece) at the maximum wins.
            first = tf.reduce_min(tf.where(tf.equal(summed, best[:, tf.newaxis]), columns, width), axis=1)
            window = tf.concat([window[:, 1:], best[:, tf.newaxis]], 1)
            lengths = width - first
            return k + 1, window, chosen.write(k, lengths[0] if texts.single else lengths)

        # One text: one int per step (TFLite needs a static element shape); a batch: one per
        # text still running.
        element_shape = tf.TensorShape([]) if texts.single else tf.TensorShape([None])
        chosen = tf.TensorArray(tf.int32, size=texts.max_chars, element_shape=element_shape, infer_shape=texts.single)
        _, _, chosen = tf.while_loop(
            lambda k, window, chosen: k < texts.max_chars,
            step,
            (tf.constant(0), tf.zeros(tf.stack([tf.size(texts.sorted_char_start), width])), chosen),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, width]), None),
        )
        by_step = chosen.stack() if texts.single else chosen.concat()  # step-major order
        return tf.gather(by_step, texts.step_major_index)

    def _merge_unknown_runs(self, token_pieces, token_text, single):
        """Drops each <unk> that follows an <unk> of the same text (SentencePiece merges them)."""
        neighbours = Neighbours(None if single else token_text, tf.size(token_pieces))
        is_unknown = tf.equal(token_pieces, self.unk_id)
        after_unknown = tf.equal(neighbours.shift(token_pieces, -1, -1), self.unk_id)
        kept = tf.reshape(tf.where(~(is_unknown & after_unknown)), [-1])
        return tf.gather(token_pieces, kept), tf.gather(token_text, kept)

    def _bytes_for_unknowns(self, token_pieces, token_chars, token_text, chars, byte_values):
        """Replaces each <unk> (one character) by the byte pieces of its UTF-8 bytes."""
        is_unknown = tf.equal(token_pieces, self.unk_id)
        counts = tf.where(is_unknown, tf.gather(chars.byte_lengths, token_chars), 1)
        total = tf.reduce_sum(counts)
        token = _repeat_index(counts, total)
        offset = tf.range(total) - tf.gather(tf.cumsum(counts, exclusive=True), token)
        byte_position = tf.gather(chars.byte_starts, tf.gather(token_chars, token)) + offset
        byte_piece = tf.gather(self._byte_piece_ids, tf.gather(byte_values, byte_position))
        piece_ids = tf.where(tf.gather(is_unknown, token), byte_piece, tf.gather(token_pieces, token))
        return piece_ids, tf.gather(token_text, token)


class _TextLayout:
    """Where each text's characters are, with texts ordered by length (longest first) so that
    the texts still running at step k are the first `active[k]`."""

    def __init__(self, char_text, num_chars, num_texts, single):
        ones = tf.ones_like(char_text)
        self.lengths = tf.math.unsorted_segment_sum(ones, char_text, num_texts)  # chars per text
        self.char_start = tf.cumsum(self.lengths, exclusive=True)
        self.max_chars = tf.reduce_max(tf.concat([self.lengths, [0]], 0))
        self.position = tf.range(num_chars) - tf.gather(self.char_start, char_text)  # k of each char
        self.char_text = char_text
        self.single = single
        if single:
            order = rank = tf.zeros([1], tf.int32)
        else:
            order = tf.argsort(-self.lengths, stable=True)
            rank = tf.math.invert_permutation(order)
        self.sorted_char_start = tf.gather(self.char_start, order)
        texts_per_length = tf.math.unsorted_segment_sum(tf.ones_like(self.lengths), self.lengths, self.max_chars + 1)
        shorter_or_equal = tf.cumsum(texts_per_length)
        self.active = num_texts - shorter_or_equal[:-1]  # [max_chars] texts longer than k
        step_offset = tf.cumsum(self.active, exclusive=True)
        self.step_major_index = tf.gather(step_offset, self.position) + tf.gather(rank, char_text)


def _gather_columns(table, columns):
    """table[i, columns[i]] for a [n, width] table."""
    width = tf.shape(table)[1]
    return tf.gather(tf.reshape(table, [-1]), tf.range(tf.shape(table)[0]) * width + columns)


def _back_trace(lengths, texts):
    """The best path of every text, by pointer jumping.

    Node c + 1 is the boundary after character c, node 0 every text's start; each node
    points to the boundary before its last piece. List ranking gives each node's depth
    (pieces from its text's start); the token at depth d of text t is then the ancestor of
    t's final node at distance D_t - d, found by binary lifting. O(log) passes over O(n).

    Returns:
        token_chars: int32 [num_tokens], the last character of each token, texts in order.
        token_text: int32 [num_tokens], each token's text.
    """
    num_chars = tf.size(lengths)
    starts_text = texts.position + 1 - lengths <= 0
    parents = tf.concat([[0], tf.where(starts_text, 0, tf.range(num_chars) + 1 - lengths)], 0)

    def rank_step(pointers, depth):
        return tf.gather(pointers, pointers), depth + tf.gather(depth, pointers)

    _, depth = tf.while_loop(
        lambda pointers, depth: tf.reduce_any(pointers > 0),
        rank_step,
        (parents, tf.concat([[0], tf.ones_like(lengths)], 0)),
    )
    final_node = texts.char_start + texts.lengths  # node after each text's last character
    num_tokens = tf.gather(depth, final_node)  # 0 for an empty text (its node is another's or 0)
    num_tokens = tf.where(texts.lengths > 0, num_tokens, 0)
    total = tf.reduce_sum(num_tokens)
    token_text = _repeat_index(num_tokens, total)
    index_in_text = tf.range(total) - tf.gather(tf.cumsum(num_tokens, exclusive=True), token_text)
    distance = tf.gather(num_tokens, token_text) - 1 - index_in_text

    def lift_step(pointers, node, distance):
        node = tf.where(tf.equal(distance % 2, 1), tf.gather(pointers, node), node)
        return tf.gather(pointers, pointers), node, distance // 2

    _, node, _ = tf.while_loop(
        lambda pointers, node, distance: tf.reduce_any(distance > 0),
        lift_step,
        (parents, tf.gather(final_node, token_text), distance),
    )
    return node - 1, token_text


def _lattice_scores(pieces, scores, types):
    """float32 [num_pieces]: the score each piece adds in the lattice, and the <unk> node's.

    unigram_model.cc: min/max over NORMAL pieces, starting from FLT_MAX / FLT_MIN; a
    user-defined piece scores `bytes * max_score - 0.1`, here in float32 like every sum.
    """
    normal = scores[types == PieceType.NORMAL]
    min_score = np.float32(min(_FLT_MAX, normal.min())) if normal.size else np.float32(_FLT_MAX)
    max_score = np.float32(max(_FLT_MIN, normal.max())) if normal.size else np.float32(_FLT_MIN)
    lattice = scores.astype(np.float32).copy()
    for i in np.flatnonzero(types == PieceType.USER_DEFINED):
        lattice[i] = np.float32(len(pieces[i])) * max_score - _USER_DEFINED_BONUS
    return lattice, np.float32(min_score - UNK_PENALTY)


def _byte_piece_ids(pieces, types, unk_id):
    """int32 [256]: the id of `<0xXX>` for each byte, as `PieceToId` finds it (reserved
    pieces first, then the others; unk_id if missing)."""
    reserved, others = {}, {}
    for i, (piece, piece_type) in enumerate(zip(pieces, types)):
        table = others if piece_type in (PieceType.NORMAL, PieceType.USER_DEFINED, PieceType.UNUSED) else reserved
        table.setdefault(piece, i)
    return np.array(
        [reserved.get(b"<0x%02X>" % b, others.get(b"<0x%02X>" % b, unk_id)) for b in range(256)], np.int32
    )
