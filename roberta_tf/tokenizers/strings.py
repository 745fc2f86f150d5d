"""The tf.string front-end: strings <-> flat bytes, with core TF ops only.

These ops (StringSplit, DecodeRaw, StringJoin-style reductions, UnicodeTranscode) are in
every TensorFlow and TF Serving build, so a SavedModel using them loads without
tensorflow_text. They are not TFLite builtins; the TFLite model takes bytes directly.
"""

import tensorflow as tf


def strings_to_bytes(texts):
    """Flat int32 bytes and text index of each byte, for a rank-1 tf.string tensor.

    Two core-op routes, chosen per batch: DecodeRaw into a [batch, longest] grid (fast; used
    when the grid is at most 4x the real bytes), else StringSplit into 1-byte strings (no
    padding blow-up when one text is much longer than the others, e.g. a 1 MB outlier).

    Returns:
        byte_values: int32 [total_bytes]; text_ids: int32 [total_bytes]; num_texts: int32.
    """
    texts = tf.reshape(texts, [-1])
    lengths = tf.strings.length(texts)  # bytes
    num_texts = tf.size(texts)
    longest = tf.reduce_max(tf.concat([lengths, [0]], 0))
    total = tf.reduce_sum(lengths)
    text_ids = tf.repeat(tf.range(num_texts), lengths)

    def via_grid():
        # fixed_length must be >= 1; empty texts pad to zeros and are masked away.
        grid = tf.io.decode_raw(texts, tf.uint8, fixed_length=tf.maximum(longest, 1))
        grid = tf.reshape(grid, [num_texts, tf.maximum(longest, 1)])
        mask = tf.sequence_mask(lengths, tf.maximum(longest, 1))
        return tf.cast(tf.boolean_mask(grid, mask), tf.int32)

    def via_split():
        pieces = tf.strings.bytes_split(texts)
        return tf.cast(tf.reshape(tf.io.decode_raw(pieces.flat_values, tf.uint8), [-1]), tf.int32)

    dense_size = tf.cast(num_texts, tf.int64) * tf.cast(longest, tf.int64)
    byte_values = tf.cond(dense_size <= 4 * tf.cast(total, tf.int64) + 4096, via_grid, via_split)
    return byte_values, text_ids, num_texts


def ids_to_strings(token_ids, token_bytes):
    """Joins each row's token bytes into one string; invalid UTF-8 becomes U+FFFD.

    Args:
        token_ids: int32 RaggedTensor [batch, None] (or a rank-1 Tensor for one text).
        token_bytes: tf.string [vocabulary_size], the raw bytes each id spells.
    """
    pieces = tf.gather(token_bytes, token_ids)
    joined = tf.strings.reduce_join(pieces, axis=-1)
    return tf.strings.unicode_transcode(joined, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
