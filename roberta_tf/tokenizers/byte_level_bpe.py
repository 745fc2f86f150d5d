"""The whole in-graph tokenizer: UTF-8 bytes (int32) in, RoBERTa token ids out.

`ByteLevelBpe._tokenize` is the one implementation behind every target: the Keras layer and
the SavedModel call it through `tokenize_bytes` (a batch), the builtin-only TFLite model
through `tokenize_text_bytes` (one text). Stages, each in its own module: UTF-8 units
(`utf8.py`) -> code-point classes (`unicode_classes.py`) -> special-token matching (Hugging
Face mode only, here) -> words (`pretokenizer.py`) -> byte symbols (`byte_symbols.py`) ->
whole-word cache (`word_cache.py`) -> merges (`bpe.py`) -> vocabulary ids. Every stage reads
its neighbours through `neighbours.py`, so no rule ever looks across two texts.

Defined results for odd input: empty or whitespace-only texts as the regex gives (empty ->
no ids); NUL is an ordinary control character (class other); bytes that are not valid UTF-8
are single units of class other whose byte symbol is kept, so they are tokenized like
punctuation and detokenize back to the same bytes (lossless). Words longer than
`max_word_bytes` are merged in chunks of that many bytes: this bounds the merge loop's work
on adversarial input (a megabyte of letters with no space) and changes nothing on real text,
where no word comes near the default.
"""

import dataclasses

import tensorflow as tf

from roberta_tf.tokenizers import bpe, merge_table, unicode_classes, utf8, vocabulary as vocabulary_lib, word_cache
from roberta_tf.tokenizers.neighbours import Neighbours
from roberta_tf.tokenizers.pretokenizer import word_starts

DEFAULT_MAX_WORD_BYTES = 4096
_SPECIAL_CODE_POINT = -2  # not a letter, apostrophe or space: no regex rule fires on it
# Hugging Face's RoBERTa added tokens; `<mask>` has lstrip=True (absorbs whitespace before it).
_HF_ADDED_TOKENS = (
    vocabulary_lib.BOS,
    vocabulary_lib.PAD,
    vocabulary_lib.EOS,
    vocabulary_lib.UNK,
    vocabulary_lib.MASK,
)
_HF_LSTRIP_TOKENS = (vocabulary_lib.MASK,)


@dataclasses.dataclass(frozen=True)
class BpeTensors:
    """`merge_table.MergeTables` as tf constants, plus the code-point class table."""

    byte_symbol_ids: tf.Tensor
    offsets: tf.Tensor
    check: tf.Tensor
    ranks: tf.Tensor
    merged_symbol: tf.Tensor
    output_ids: tf.Tensor
    junction_lengths: tf.Tensor
    symbol_lengths: tf.Tensor
    first_bytes: tf.Tensor
    last_bytes: tf.Tensor
    byte_max_lengths: tf.Tensor
    class_block_index: tf.Tensor
    class_blocks: tf.Tensor


class ByteLevelBpe:
    """RoBERTa's byte-level BPE on integer tensors.

    Args:
        bpe_vocabulary: a validated `vocabulary.BpeVocabulary`.
        match_special_tokens: False (default, fairseq's behaviour): `<s>`, `</s>`, `<mask>`...
            in the text are ordinary text. True (Hugging Face's default): they are matched
            and emitted as their ids, `<mask>` absorbing whitespace before it.
        max_word_bytes: merge words longer than this in chunks of this many bytes.
    """

    def __init__(self, bpe_vocabulary, match_special_tokens=False, max_word_bytes=DEFAULT_MAX_WORD_BYTES):
        if not isinstance(max_word_bytes, int) or max_word_bytes < 1:
            raise ValueError(f"max_word_bytes must be a positive int. Received: max_word_bytes={max_word_bytes!r}")
        self.vocabulary = bpe_vocabulary
        self.match_special_tokens = bool(match_special_tokens)
        self.max_word_bytes = max_word_bytes
        tables = merge_table.build_merge_tables(bpe_vocabulary)
        block_index, blocks = unicode_classes.two_level_table()
        self.tables = BpeTensors(
            *(tf.constant(getattr(tables, f.name), tf.int32) for f in dataclasses.fields(BpeTensors)[:11]),
            class_block_index=tf.constant(block_index),
            class_blocks=tf.constant(blocks),
        )
        cache = word_cache.build_word_cache(bpe_vocabulary, self.tables)
        self.word_cache = cache
        self._cache_tensors = (
            tf.constant(cache.keys_hi, tf.int64),
            tf.constant(cache.keys_lo, tf.int64),
            tf.constant(cache.symbols, tf.int32),
        )
        self._may_drop_symbols = bool((tables.output_ids < 0).any())
        self._special_patterns = [
            (list(token.encode("utf-8")), bpe_vocabulary.vocabulary[token], token in _HF_LSTRIP_TOKENS)
            for token in _HF_ADDED_TOKENS
            if token in bpe_vocabulary.vocabulary
        ]

    def tokenize_bytes(self, byte_values, text_ids, num_texts, max_tokens=None):
        """Token ids of a batch of texts given as flat bytes.

        Args:
            byte_values: int32 [num_bytes], values 0..255.
            text_ids: int32 [num_bytes], non-decreasing index (< num_texts) of each byte's text.
            num_texts: int32 scalar.
            max_tokens: None (every token) or a python int: only each text's first
                `max_tokens` tokens are needed (see `_needed_bytes`). They are exact; tokens
                after them may be missing.

        Returns:
            token_ids: int32 [num_tokens], vocabulary ids, texts one after another.
            token_text_ids: int32 [num_tokens], the text of each token.
        """
        text_ids = tf.convert_to_tensor(text_ids, tf.int32)
        return self._tokenize(tf.convert_to_tensor(byte_values, tf.int32), text_ids, num_texts, max_tokens)

    def tokenize_text_bytes(self, byte_values, max_tokens=None):
        """Token ids of ONE text given as int32 bytes (what the TFLite model computes).

        Same ids as `tokenize_bytes`; with one text there are no text boundaries to check and
        the merge loop runs in place (fewer ops per pass, which is what tiny tensors need)
        unless the text is long. `max_tokens`: as in `tokenize_bytes`.
        """
        token_ids, _ = self._tokenize(tf.convert_to_tensor(byte_values, tf.int32), None, 1, max_tokens)
        return token_ids

    def _tokenize(self, byte_values, text_ids, num_texts, max_tokens):
        """The pipeline; `text_ids` None means a single text."""
        byte_neighbours = Neighbours(text_ids, tf.size(byte_values))
        unit_start, code_points = utf8.decode_units(byte_values, byte_neighbours)
        if self.match_special_tokens:
            symbols, word_start, kept_bytes = self._special_token_words(
                byte_values, text_ids, byte_neighbours, unit_start, code_points
            )
            byte_values = tf.gather(byte_values, kept_bytes)
            text_ids = None if text_ids is None else tf.gather(text_ids, kept_bytes)
        else:
            symbols = tf.gather(self.tables.byte_symbol_ids, byte_values)
            word_start = self._word_start_bytes(unit_start, code_points, text_ids)

        word_start = self._chunk_long_words(word_start | self._final_boundaries(byte_values, text_ids))
        if max_tokens is not None:
            needed = tf.reshape(tf.where(self._needed_bytes(byte_values, word_start, text_ids, num_texts, max_tokens)), [-1])
            byte_values, symbols, word_start = (tf.gather(t, needed) for t in (byte_values, symbols, word_start))
            text_ids = None if text_ids is None else tf.gather(text_ids, needed)
        word_ids = tf.cumsum(tf.cast(word_start, tf.int32)) - 1
        num_words = tf.reduce_sum(tf.cast(word_start, tf.int32))
        symbols, word_ids, kept = self._apply_word_cache(byte_values, symbols, word_ids, num_words)
        compact = True if text_ids is not None else "auto"  # one text: in place unless long
        symbols, source = bpe.merge_words(symbols, word_ids, num_words, self.tables, compact=compact)

        token_ids = tf.gather(self.tables.output_ids, symbols)
        token_text_ids = None if text_ids is None else tf.gather(text_ids, tf.gather(kept, source))
        if self._may_drop_symbols:  # only vocabularies without <unk> that lack some symbols
            present = tf.reshape(tf.where(token_ids >= 0), [-1])
            token_ids = tf.gather(token_ids, present)
            token_text_ids = None if text_ids is None else tf.gather(token_text_ids, present)
        return token_ids, token_text_ids

    def _classify_units(self, unit_cp):
        """Class of each unit; invalid bytes (negative code points) are OTHER."""
        valid_cp = tf.clip_by_value(unit_cp, 0, unicode_classes.MAX_CODE_POINT)
        classes = unicode_classes.lookup_classes(valid_cp, self.tables.class_block_index, self.tables.class_blocks)
        return tf.where(unit_cp < 0, unicode_classes.OTHER, classes)

    def _word_start_bytes(self, unit_start, code_points, text_ids):
        """bool [num_bytes]: the first byte of each pre-tokenizer word (default mode)."""
        unit_positions = tf.reshape(tf.where(unit_start), [-1])
        unit_cp = tf.gather(code_points, unit_positions)
        unit_neighbours = _unit_neighbours(text_ids, unit_positions)
        starts = word_starts(unit_cp, self._classify_units(unit_cp), unit_neighbours)
        # Every text's first byte starts a unit, so this index is never negative.
        unit_of_byte = tf.cumsum(tf.cast(unit_start, tf.int32)) - 1
        return unit_start & tf.gather(starts, unit_of_byte)

    def _special_token_words(self, byte_values, text_ids, byte_neighbours, unit_start, code_points):
        """Hugging Face mode: word starts with special tokens matched and `<mask>` lstripped.

        Returns:
            symbols, word_start: for the kept bytes only; kept_bytes: their positions.
        """
        special_ids, keep_byte, lstrip = self._match_special_tokens(byte_values, byte_neighbours)
        unit_positions = tf.reshape(tf.where(unit_start & keep_byte), [-1])
        unit_cp = tf.gather(code_points, unit_positions)
        unit_special = tf.gather(special_ids, unit_positions)
        unit_text = tf.zeros_like(unit_cp) if text_ids is None else tf.gather(text_ids, unit_positions)
        is_special = unit_special >= 0
        unit_class = tf.where(is_special, unicode_classes.SPECIAL, self._classify_units(unit_cp))
        unit_cp = tf.where(is_special, _SPECIAL_CODE_POINT, unit_cp)
        unit_keep = tf.logical_not(_whitespace_before_lstrip(unit_class, unit_text, tf.gather(lstrip, unit_positions)))
        kept_units = tf.reshape(tf.where(unit_keep), [-1])
        starts_kept = word_starts(
            tf.gather(unit_cp, kept_units),
            tf.gather(unit_class, kept_units),
            _unit_neighbours(None if text_ids is None else unit_text, kept_units),
        )
        unit_word_start = tf.scatter_nd(tf.expand_dims(kept_units, 1), starts_kept, tf.shape(unit_positions, out_type=tf.int64))

        # Back to bytes: each byte takes its unit's keep flag; a word starts at its first byte.
        unit_of_byte = tf.cumsum(tf.cast(unit_start & keep_byte, tf.int32)) - 1
        unit_of_byte_safe = tf.maximum(unit_of_byte, 0)
        byte_keep = keep_byte & tf.gather(unit_keep, unit_of_byte_safe) & (unit_of_byte >= 0)
        byte_word_start = unit_start & tf.gather(unit_word_start, unit_of_byte_safe)
        kept_bytes = tf.reshape(tf.where(byte_keep), [-1])
        symbols = tf.where(special_ids >= 0, special_ids, tf.gather(self.tables.byte_symbol_ids, byte_values))
        return tf.gather(symbols, kept_bytes), tf.gather(byte_word_start, kept_bytes), kept_bytes

    def _apply_word_cache(self, byte_values, symbols, word_ids, num_words):
        """Replaces each cached word's byte symbols by its one merged symbol.

        Returns:
            symbols, word_ids: without the dropped bytes of cached words;
            kept: int32 positions (in the input) of the symbols that remain.
        """
        position = tf.range(tf.size(symbols))
        word_first = tf.math.unsorted_segment_min(position, word_ids, num_words)
        word_length = tf.math.unsorted_segment_sum(tf.ones_like(word_ids), word_ids, num_words)
        cached = word_cache.lookup_words(
            byte_values, word_first, word_length, self._cache_tensors, self.word_cache.moduli
        )
        cached_symbol = tf.gather(cached, word_ids)  # -1 where the word is not cached
        is_first = tf.equal(position, tf.gather(word_first, word_ids))
        symbols = tf.where((cached_symbol >= 0) & is_first, cached_symbol, symbols)
        kept = tf.reshape(tf.where((cached_symbol < 0) | is_first), [-1])
        return tf.gather(symbols, kept), tf.gather(word_ids, kept), tf.cast(kept, tf.int32)

    def _final_boundaries(self, byte_values, text_ids):
        """bool [num_bytes]: True before a byte that no merge can ever join to the byte before
        it (their pair is no merge's junction, `merge_table.py`). Splitting words there changes
        no id: no merge can cross, and BPE on the pieces is BPE on the word. It keeps merge
        chains short on random text (a random lowercase word falls into pieces of about 7
        letters), which is where the merge loop's passes go."""
        previous = Neighbours(text_ids, tf.size(byte_values)).shift(byte_values, -1, -1)
        junction_length = tf.gather(self.tables.junction_lengths, tf.maximum(previous, 0) * 256 + byte_values)
        return (previous >= 0) & (junction_length < 2)

    def _needed_bytes(self, byte_values, word_start, text_ids, num_texts, max_tokens):
        """bool [num_bytes]: the bytes of the pieces that can hold one of their text's first
        `max_tokens` tokens. Every piece merges on its own and gives at least
        `ceil(sum(1 / byte_max_lengths[b]))` tokens (`merge_table.py`), so once the pieces
        before it are sure to give `max_tokens` tokens, a piece cannot matter: it is dropped
        before merging. Exact for the first `max_tokens` tokens; bounds the work on any text
        to about `max_tokens` tokens' worth of pieces (a served model needs no more)."""
        word_ids = tf.cumsum(tf.cast(word_start, tf.int32)) - 1
        num_words = tf.reduce_sum(tf.cast(word_start, tf.int32))
        share = 1.0 / tf.cast(tf.gather(self.tables.byte_max_lengths, byte_values), tf.float32)
        # Minus a little float error: a lower bound must never round up past the truth.
        least = tf.cast(tf.math.ceil(tf.math.unsorted_segment_sum(share, word_ids, num_words) - 1e-3), tf.int32)
        least = tf.maximum(least, 1)
        before = tf.cumsum(least, exclusive=True)  # sure tokens of the pieces before, all texts
        if text_ids is not None:
            word_text = tf.math.unsorted_segment_min(text_ids, word_ids, num_words)
            text_start = tf.math.unsorted_segment_min(before, word_text, num_texts)
            before -= tf.gather(text_start, word_text)
        return tf.gather(before < max_tokens, word_ids)

    def _chunk_long_words(self, word_start):
        """Adds a word start every `max_word_bytes` bytes inside a word."""
        position = tf.range(tf.size(word_start))
        word_ids = tf.cumsum(tf.cast(word_start, tf.int32)) - 1  # >= 0: a text's first byte starts a word
        num_words = tf.reduce_sum(tf.cast(word_start, tf.int32))
        word_first = tf.math.unsorted_segment_min(position, word_ids, num_words)
        offset = position - tf.gather(word_first, word_ids)
        return word_start | tf.equal(tf.math.floormod(offset, self.max_word_bytes), 0)

    def _match_special_tokens(self, byte_values, neighbours):
        """Hugging Face added-token matching on bytes.

        Every RoBERTa special token starts with `<` and contains no other `<`, so matches
        never overlap and a per-position comparison finds them all.

        Returns:
            special_ids: int32 [num_bytes], the token id where a match starts, else -1.
            keep_byte: bool [num_bytes], False on a match's bytes after its first.
            lstrip: bool [num_bytes], True where a match of an lstrip token starts.
        """
        longest = max(len(p) for p, _, _ in self._special_patterns)
        ahead = [byte_values] + [neighbours.shift(byte_values, k, -1) for k in range(1, longest)]
        special_ids = tf.fill(tf.shape(byte_values), -1)
        lengths = tf.zeros_like(byte_values)
        lstrip = tf.zeros_like(byte_values, dtype=tf.bool)
        for pattern, token_id, strips in self._special_patterns:
            match = tf.ones_like(lstrip)
            for k, b in enumerate(pattern):
                match = match & tf.equal(ahead[k], b)
            special_ids = tf.where(match, token_id, special_ids)
            lengths = tf.where(match, len(pattern), lengths)
            if strips:
                lstrip = lstrip | match
        inside = tf.zeros_like(lstrip)
        for k in range(1, longest):
            inside = inside | (neighbours.shift(lengths, -k, 0) > k)
        return special_ids, tf.logical_not(inside), lstrip


def _unit_neighbours(text_ids, positions):
    """`Neighbours` of the units at `positions` (text_ids None: one text)."""
    if text_ids is None:
        return Neighbours(None, tf.size(positions))
    return Neighbours(tf.gather(text_ids, positions))


def _whitespace_before_lstrip(classes, text_ids, lstrip):
    """True on whitespace units directly before (through whitespace) an lstrip special unit."""
    not_space = tf.not_equal(classes, unicode_classes.WHITESPACE)
    # Units sharing `group` are a whitespace run plus the non-space unit that ends it.
    group = tf.cumsum(tf.cast(not_space, tf.int32), reverse=True)
    ends_in_lstrip = tf.math.unsorted_segment_max(
        tf.where(lstrip & not_space, text_ids + 1, 0), group, tf.size(group) + 1
    )
    return tf.logical_not(not_space) & tf.equal(tf.gather(ends_in_lstrip, group), text_ids + 1)
