"""The tf.string front-end: strings <-> flat bytes, with core TF ops only.

These ops (StringSplit, DecodeRaw, StringJoin-style reductions, UnicodeTranscode) are in
every TensorFlow and TF Serving build, so a SavedModel using them loads without
tensorflow_text. They are not TFLite builtins; the TFLite model takes bytes directly.
"""

import tensorflow as tf


def strings_to_bytes(texts):
    """Flat int32 bytes and text index of each byte, for a rank-1 tf.string tensor.

    Returns:
        byte_values: int32 [total_bytes]; text_ids: int32 [total_bytes]; num_texts: int32.
    """
    pieces = tf.strings.bytes_split(texts)  # RaggedTensor of 1-byte strings
    byte_values = tf.reshape(tf.io.decode_raw(pieces.flat_values, tf.uint8), [-1])
    return (
        tf.cast(byte_values, tf.int32),
        tf.cast(pieces.value_rowids(), tf.int32),
        tf.cast(pieces.nrows(), tf.int32),
    )


def ids_to_strings(token_ids, token_bytes):
    """Joins each row's token bytes into one string; invalid UTF-8 becomes U+FFFD.

    Args:
        token_ids: int32 RaggedTensor [batch, None] (or a rank-1 Tensor for one text).
        token_bytes: tf.string [vocabulary_size], the raw bytes each id spells.
    """
    pieces = tf.gather(token_bytes, token_ids)
    joined = tf.strings.reduce_join(pieces, axis=-1)
    return tf.strings.unicode_transcode(joined, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
