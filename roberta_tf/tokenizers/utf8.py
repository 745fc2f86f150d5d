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


def _between(x, low, high):
    return tf.logical_and(x >= low, x <= high)


def decode_units(byte_values, neighbours):
    """Splits UTF-8 bytes into units.

    Args:
        byte_values: int32 [num_bytes], each 0..255.
        neighbours: a `Neighbours` for the bytes' texts.

    Returns:
        unit_start: bool [num_bytes], True where a unit begins.
        code_points: int32 [num_bytes], the unit's code point at its first byte
            (INVALID_CODE_POINT for invalid bytes; meaningless elsewhere).
    """
    b0 = byte_values
    b1, b2, b3 = (neighbours.shift(byte_values, k, -1) for k in (1, 2, 3))

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
        return neighbours.shift(tf.cast(valid, tf.int32), -distance, 0) > 0

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
