"""UTF-8 units equal Python's strict decoder on adversarial byte strings; invalid bytes stand alone."""

import random

import tensorflow as tf

from roberta_tf.tokenizers import utf8
from roberta_tf.tokenizers.neighbours import Neighbours

# Boundary bytes of Unicode Table 3-7: overlong leads, surrogate and >U+10FFFF second bytes.
_EDGE_BYTES = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
               0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF]


def python_units(data):
    """(position, code point or -1) of each unit: the longest valid sequence, else one byte."""
    units, i = [], 0
    while i < len(data):
        for length in (1, 2, 3, 4):
            try:
                char = data[i : i + length].decode("utf-8")
            except UnicodeDecodeError:
                continue
            units.append((i, ord(char)))
            i += length
            break
        else:
            units.append((i, utf8.INVALID_CODE_POINT))
            i += 1
    return units


def test_units_match_python_decoder_on_random_edge_bytes():
    rng = random.Random(0)
    for _ in range(3000):
        data = bytes(
            rng.choice(_EDGE_BYTES) if rng.random() < 0.8 else rng.randint(0, 255) for _ in range(rng.randint(0, 12))
        )
        byte_values = tf.constant(list(data), tf.int32)
        unit_start, code_points = utf8.decode_units(byte_values, Neighbours(None, tf.size(byte_values)))
        starts, cps = unit_start.numpy(), code_points.numpy()
        assert [(i, int(cps[i])) for i in range(len(data)) if starts[i]] == python_units(data), data


def test_sequences_never_cross_texts():
    # "\xc3" ends text 0 and "\xa9" starts text 1: together they would be "é".
    byte_values = tf.constant([0x61, 0xC3, 0xA9, 0x62], tf.int32)
    text_ids = tf.constant([0, 0, 1, 1], tf.int32)
    unit_start, code_points = utf8.decode_units(byte_values, Neighbours(text_ids))
    assert unit_start.numpy().tolist() == [True, True, True, True]
    assert code_points.numpy().tolist() == [0x61, -1, -1, 0x62]
