"""SentencePiece (XLM-RoBERTa's tokenizer) on integer TF ops: bytes -> normalized bytes ->
words -> pieces -> ids.

The one implementation behind every consumer, as `byte_level_bpe.py` is for RoBERTa: the
Keras layer and the SavedModel call `tokenize_bytes` (a batch as flat bytes), the TFLite
model calls `tokenize_text_bytes` (one text). The parts:

    sentencepiece_normalizer.py   the model's normalizer_spec (charsmap, whitespace, `▁`)
    unigram.py / sentencepiece_bpe.py   the model's segmentation (Viterbi / score-ordered merges)
    this module                   word split, the `max_tokens` budget, the id map (sentencepiece_vocabulary.py: fairseq's)

Words. When no piece has `▁` (U+2581, the escaped space) anywhere but at its start, and `▁`
alone is a piece, no piece can span the position before a `▁`: every segmentation of a text
is the concatenation of segmentations of its words (each `▁` and what follows up to the next
one). Then:
  * `max_tokens` drops every word after the first `max_tokens` of a text (each word yields at
    least one token), which bounds the cost of a long text with exact ids: the pieces of a
    word depend only on the text before it (BPE: on the word alone; unigram: Viterbi's best
    path to a position is computed from what precedes it);
  * BPE segments words rather than texts (merges compare scores and never cross a word), so
    its loop is as long as the longest word instead of the longest text.
Unigram still segments whole texts: SentencePiece sums the path's float32 scores from the
start of the text, and restarting the sum at each word rounds differently, which flips a
near-tie about once in 100,000 texts (`0`+`000` against `000`+`0`, found on the naughty
strings). Models where the word rule does not hold (trained with
`split_by_whitespace=false`, or with pieces like `a▁b`) are segmented text by text, with no
`max_tokens` shortcut.
"""

import numpy as np
import tensorflow as tf

from roberta_tf.tokenizers.sentencepiece_bpe import SentencePieceBpe
from roberta_tf.tokenizers.sentencepiece_model import PieceType
from roberta_tf.tokenizers.sentencepiece_normalizer import SentencePieceNormalizer
from roberta_tf.tokenizers.unigram import Unigram

WORD_BOUNDARY = "\u2581".encode("utf-8")  # b"\xe2\x96\x81", what escape_whitespaces writes for " "

_SEGMENTERS = {"unigram": Unigram, "bpe": SentencePieceBpe}


def splits_into_words(model):
    """True when words can be segmented independently (see the module docstring)."""
    usable = (PieceType.NORMAL, PieceType.USER_DEFINED)
    pieces = [piece for piece, kind in zip(model.pieces, model.types) if kind in usable]
    if model.treat_whitespace_as_suffix or WORD_BOUNDARY not in pieces:
        return False
    return not any(WORD_BOUNDARY in piece[1:] for piece in pieces)


class SentencePiece:
    """A SentencePiece model's `Encode` on integer tensors.

    Args:
        model: a `sentencepiece_model.SentencePieceModel`.
        id_map: None (SentencePiece's own ids) or int32 [num_pieces], the output id of each
            SentencePiece id (`sentencepiece_vocabulary.fairseq_vocabulary`).
    """

    def __init__(self, model, id_map=None):
        if model.model_type not in _SEGMENTERS:
            raise ValueError(f"Unsupported SentencePiece model type {model.model_type!r}; supported: unigram, bpe.")
        self.model = model
        user_defined = [p for p, kind in zip(model.pieces, model.types) if kind == PieceType.USER_DEFINED]
        self.normalizer = SentencePieceNormalizer(model.normalizer, user_defined, model.treat_whitespace_as_suffix)
        self.segmenter = _SEGMENTERS[model.model_type](
            model.pieces, model.scores, model.types, model.unk_id, model.byte_fallback
        )
        self.splits_into_words = splits_into_words(model)
        # Unigram's float32 path sums must start where SentencePiece's start: at the text.
        self.segments_words = self.splits_into_words and model.model_type == "bpe"
        self._id_map = None if id_map is None else tf.constant(np.asarray(id_map, np.int32))

    def tokenize_bytes(self, byte_values, text_ids, num_texts, max_tokens=None):
        """Ids of a batch of texts given as flat bytes (the layout of `strings.strings_to_bytes`).

        `max_tokens` (None or a python int): only each text's first `max_tokens` ids are
        needed; they are exact. Honoured by dropping whole words where the model splits into
        words (see the module docstring), else every id is computed.

        Returns:
            token_ids: int32 [num_tokens], texts one after another; token_text_ids: int32.
        """
        byte_values = tf.convert_to_tensor(byte_values, tf.int32)
        text_ids = tf.convert_to_tensor(text_ids, tf.int32)
        normalized, normalized_text_ids = self.normalizer.normalize_bytes(byte_values, text_ids, num_texts)
        return self._segment(normalized, normalized_text_ids, num_texts, max_tokens)

    def tokenize_text_bytes(self, byte_values, max_tokens=None):
        """Ids of ONE text given as int32 bytes (what the TFLite model computes): the
        segmenters' one-text paths, which need no text boundaries."""
        normalized, _ = self.normalizer.normalize_bytes(tf.convert_to_tensor(byte_values, tf.int32), None, 1)
        token_ids, _ = self._segment(normalized, None, 1, max_tokens)
        return token_ids if max_tokens is None else token_ids[:max_tokens]

    def _segment(self, normalized, text_ids, num_texts, max_tokens):
        """text_ids None: one text."""
        if self.splits_into_words:
            word_start = _word_starts(normalized, text_ids)
            if max_tokens is not None:
                rank = _word_rank_in_text(word_start, text_ids, num_texts)
                kept = tf.reshape(tf.where(rank < max_tokens), [-1])
                normalized, word_start = tf.gather(normalized, kept), tf.gather(word_start, kept)
                text_ids = None if text_ids is None else tf.gather(text_ids, kept)
            if self.segments_words:
                return self._segment_words(normalized, text_ids, word_start)
        piece_ids, token_text_ids = self.segmenter.segment(normalized, text_ids, num_texts)
        return self._output_ids(piece_ids), token_text_ids

    def _segment_words(self, normalized, text_ids, word_start):
        word_ids = tf.cumsum(tf.cast(word_start, tf.int32)) - 1
        num_words = tf.reduce_sum(tf.cast(word_start, tf.int32))
        piece_ids, token_word_ids = self.segmenter.segment(normalized, word_ids, num_words)
        if text_ids is None:
            return self._output_ids(piece_ids), None
        word_text_ids = tf.gather(text_ids, tf.reshape(tf.where(word_start), [-1]))
        return self._output_ids(piece_ids), tf.gather(word_text_ids, token_word_ids)

    def _output_ids(self, piece_ids):
        return piece_ids if self._id_map is None else tf.gather(self._id_map, piece_ids)


def _word_starts(normalized, text_ids):
    """bool [n]: the first byte of each text, and each `▁` (a text's normalized bytes are
    valid UTF-8, so the three bytes of a `▁` are always in one text). text_ids None: one text."""
    padded = tf.concat([normalized, [0, 0]], 0)
    size = tf.size(normalized)
    is_boundary = (
        tf.equal(padded[:size], WORD_BOUNDARY[0])
        & tf.equal(padded[1 : size + 1], WORD_BOUNDARY[1])
        & tf.equal(padded[2 : size + 2], WORD_BOUNDARY[2])
    )
    if text_ids is None:
        return is_boundary | tf.equal(tf.range(size), 0)
    previous_text = tf.concat([[-1], text_ids[:-1]], 0)
    return is_boundary | tf.not_equal(previous_text, text_ids)


def _word_rank_in_text(word_start, text_ids, num_texts):
    """int32 [n]: the index, within its text, of the word of each byte (text_ids None: one text)."""
    word_ids = tf.cumsum(tf.cast(word_start, tf.int32)) - 1
    if text_ids is None:
        return word_ids
    first_word = tf.math.unsorted_segment_min(word_ids, text_ids, num_texts)
    return word_ids - tf.gather(first_word, text_ids)
