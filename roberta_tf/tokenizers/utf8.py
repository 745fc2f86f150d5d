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


def _lead_tables():
    """Per lead byte: sequence length (0 if it cannot start one), the value bits it carries,
    and the allowed range of the second byte (Unicode Table 3-7)."""
    length, bits, second_low, second_high = [0] * 256, [0] * 256, [0x80] * 256, [0xBF] * 256
    for b in range(0x80):
        length[b], bits[b] = 1, b
    for b in range(0xC2, 0xE0):
        length[b], bits[b] = 2, b - 0xC0
    for b in range(0xE0, 0xF0):
        length[b], bits[b] = 3, b - 0xE0
    for b in range(0xF0, 0xF5):
        length[b], bits[b] = 4, b - 0xF0
    second_low[0xE0], second_high[0xED] = 0xA0, 0x9F  # no overlongs, no surrogates
    second_low[0xF0], second_high[0xF4] = 0x90, 0x8F  # no overlongs, nothing past U+10FFFF
    return length, bits, second_low, second_high


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
    length_table, bits_table, low_table, high_table = (tf.constant(t, tf.int32) for t in _lead_tables())
    b0 = byte_values
    b1, b2, b3 = (neighbours.shift(byte_values, k, -1) for k in (1, 2, 3))
    lead_length = tf.gather(length_table, b0)
    second_ok = (b1 >= tf.gather(low_table, b0)) & (b1 <= tf.gather(high_table, b0))

    def continuation(x):
        return (x >= 0x80) & (x <= 0xBF)

    # A lead starts a well-formed sequence when each byte its length asks for is right.
    well_formed = (
        (lead_length >= 1)
        & ((lead_length < 2) | second_ok)
        & ((lead_length < 3) | continuation(b2))
        & ((lead_length < 4) | continuation(b3))
    )
    sequence_length = tf.where(well_formed, lead_length, 0)

    # Continuation bytes claimed by a sequence starting 1, 2 or 3 bytes earlier.
    covered = (
        (neighbours.shift(sequence_length, -1, 0) >= 2)
        | (neighbours.shift(sequence_length, -2, 0) >= 3)
        | (neighbours.shift(sequence_length, -3, 0) >= 4)
    )

    # Code point: the lead's bits, then 6 bits from each continuation byte its length takes.
    code_point = tf.gather(bits_table, b0)
    for k, continuation_byte in enumerate((b1, b2, b3), start=2):
        code_point = tf.where(lead_length >= k, code_point * 64 + (continuation_byte - 0x80), code_point)
    return tf.logical_not(covered), tf.where(well_formed, code_point, INVALID_CODE_POINT)
