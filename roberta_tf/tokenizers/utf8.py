"""UTF-8 decoding on int32 byte tensors, lossless for invalid input.

Input is the flat bytes of a batch of texts (int32, 0..255) with the text each byte belongs
to. Output is a list of *units*: each well-formed UTF-8 sequence (Unicode Table 3-7: no
overlongs, no surrogates, nothing above U+10FFFF) is one unit with its code point; every
byte that is not part of a well-formed sequence is a unit of its own, marked invalid. An
invalid byte keeps its byte value, so the byte-level BPE spells it exactly and detokenizing
gives the original bytes back (nothing is replaced by U+FFFD).

All validity tests look at most 3 bytes ahead and never across texts, so they are plain
elementwise int32 ops (TFLite builtins); there is no sequential scan.
"""

import tensorflow as tf

INVALID_CODE_POINT = -1  # code point reported for invalid-byte units


def shifted(values, text_ids, distance, fill):
    """values[i + distance] where that position exists in the same text, else `fill`.

    `distance` may be negative (look behind). Works on any int32 vector.
    """
    n = tf.shape(values)[0]
    pad = tf.fill([abs(distance)], tf.constant(fill, values.dtype))
    pad_ids = tf.fill([abs(distance)], tf.constant(-1, text_ids.dtype))
    if distance > 0:
        moved, moved_ids = tf.concat([values[distance:], pad], 0), tf.concat([text_ids[distance:], pad_ids], 0)
    else:
        moved = tf.concat([pad, values[: n + distance]], 0)
        moved_ids = tf.concat([pad_ids, text_ids[: n + distance]], 0)
    # Shorter inputs than `distance` leave only padding; cut back to n so shapes always agree.
    moved, moved_ids = moved[:n], moved_ids[:n]
    return tf.where(tf.equal(moved_ids, text_ids), moved, tf.constant(fill, values.dtype))


def _between(x, low, high):
    return tf.logical_and(x >= low, x <= high)


def decode_units(byte_values, text_ids):
    """Splits UTF-8 bytes into units.

    Args:
        byte_values: int32 [num_bytes], each 0..255.
        text_ids: int32 [num_bytes], non-decreasing text index of each byte.

    Returns:
        unit_start: bool [num_bytes], True where a unit begins.
        code_points: int32 [num_bytes], the unit's code point at its first byte
            (INVALID_CODE_POINT for invalid bytes; meaningless elsewhere).
    """
    b0 = byte_values
    b1, b2, b3 = (shifted(byte_values, text_ids, k, -1) for k in (1, 2, 3))

    def continuation(x):
        return _between(x, 0x80, 0xBF)

    # The second byte's range depends on the lead byte (excludes overlongs and surrogates).
    second_low = tf.where(tf.equal(b0, 0xE0), 0xA0, tf.where(tf.equal(b0, 0xF0), 0x90, 0x80))
    second_high = tf.where(tf.equal(b0, 0xED), 0x9F, tf.where(tf.equal(b0, 0xF4), 0x8F, 0xBF))
    second_ok = _between(b1, second_low, second_high)
    valid1 = b0 < 0x80
    valid2 = _between(b0, 0xC2, 0xDF) & continuation(b1)
    valid3 = _between(b0, 0xE0, 0xEF) & second_ok & continuation(b2)
    valid4 = _between(b0, 0xF0, 0xF4) & second_ok & continuation(b2) & continuation(b3)

    # Continuation bytes claimed by a valid sequence starting 1, 2 or 3 bytes earlier.
    def claimed_by(valid, distance):
        return shifted(tf.cast(valid, tf.int32), text_ids, -distance, 0) > 0

    covered = (
        claimed_by(valid2 | valid3 | valid4, 1)
        | claimed_by(valid3 | valid4, 2)
        | claimed_by(valid4, 3)
    )
    unit_start = tf.logical_not(covered)

    c1, c2, c3 = (b - 0x80 for b in (b1, b2, b3))
    code_points = tf.where(
        valid1,
        b0,
        tf.where(
            valid2,
            (b0 - 0xC0) * 64 + c1,
            tf.where(
                valid3,
                (b0 - 0xE0) * 4096 + c1 * 64 + c2,
                tf.where(valid4, (b0 - 0xF0) * 262144 + c1 * 4096 + c2 * 64 + c3, INVALID_CODE_POINT),
            ),
        ),
    )
    return unit_start, code_points
