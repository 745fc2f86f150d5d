"""Code-point classes for the GPT-2 pre-tokenizer, as a two-level lookup table.

The pre-tokenizer regex only asks whether a code point is a letter (`\\p{L}`), a number
(`\\p{N}`), whitespace (`\\s`) or anything else. The answer comes from the generated runs in
`unicode_class_ranges.py` (read off Hugging Face `tokenizers`, whose Oniguruma tables are the
reference; fairseq's `regex`-based encoder disagrees on about 17,000 recently assigned letters
and 336 numbers, so ids can differ from fairseq's BPE on those rare characters).

The lookup is two GATHERs, which TFLite runs as builtins: the high bits of a code point pick
one of a few hundred distinct 256-entry blocks, the low byte picks the class inside it.
This does not handle code points above U+10FFFF or surrogates: the UTF-8 decoder never
produces them (such bytes become single invalid-byte units of class OTHER).
"""

import functools

import numpy as np
import tensorflow as tf

from roberta_tf.tokenizers import unicode_class_ranges

OTHER, LETTER, NUMBER, WHITESPACE = 0, 1, 2, 3
# Not a Unicode class: the pre-tokenizer gives matched special tokens (`<s>`, ...) this class.
SPECIAL = 4

MAX_CODE_POINT = 0x10FFFF
_BLOCK_BITS = 8
_BLOCK_SIZE = 1 << _BLOCK_BITS


def class_array():
    """The class of every code point 0..U+10FFFF as a uint8 numpy array."""
    classes = np.zeros(MAX_CODE_POINT + 1, dtype=np.uint8)
    for first, last, class_id in unicode_class_ranges.RANGES:
        classes[first : last + 1] = class_id
    return classes


@functools.lru_cache(maxsize=1)
def two_level_table():
    """`(block_index, blocks)`: class(cp) = blocks[block_index[cp >> 8] * 256 + (cp & 255)]."""
    per_block = class_array().reshape(-1, _BLOCK_SIZE)  # [4352, 256]
    unique_blocks, block_index = np.unique(per_block, axis=0, return_inverse=True)
    return block_index.astype(np.int32).reshape(-1), unique_blocks.astype(np.int32).reshape(-1)


def lookup_classes(code_points, block_index, blocks):
    """Classes of int32 `code_points` (all in 0..U+10FFFF) with the tensors of `two_level_table`.

    Written with integer division rather than shifts and masks so that every op is a TFLite
    builtin on int32 (FLOOR_DIV, MUL, SUB, GATHER).
    """
    high = tf.math.floordiv(code_points, _BLOCK_SIZE)
    low = code_points - high * _BLOCK_SIZE
    return tf.gather(blocks, tf.gather(block_index, high) * _BLOCK_SIZE + low)
