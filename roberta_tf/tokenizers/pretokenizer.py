"""The GPT-2 pre-tokenizer regex, reproduced as neighbour logic on unit classes.

The regex `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`,
scanned left to right, cuts text into words exactly where these rules say a word starts:

- a letter, number or other unit starts a word when its class differs from the previous
  unit's, except that a single U+0020 space right before it joins its word (` ?` in the
  regex), so the space starts the word instead;
- a whitespace unit starts a word at the start of a whitespace run, and as the last unit of
  a run followed by a non-space (`\\s+(?!\\S)` leaves that unit to the next match: it joins
  the next word if it is U+0020, else it stands alone by the final `\\s+`);
- an apostrophe followed by s, t, m, d, re, ve or ll is a contraction (a word of its own)
  only where a match can start, i.e. not inside a run of other-class units and not right
  after an attached space; the unit after a contraction starts a word;
- SPECIAL units (matched special tokens, Hugging Face mode) are words of their own and end
  the text segment around them: regex context never crosses them.

Every rule looks at most three units ahead or behind, so this is elementwise int32/bool
work, the same ops in TF and TFLite. It does not decide what the classes are
(`unicode_classes.py`) nor how words become tokens (`bpe.py`).
"""

import tensorflow as tf

from roberta_tf.tokenizers.unicode_classes import LETTER, NUMBER, OTHER, SPECIAL, WHITESPACE

_SPACE, _APOSTROPHE = 0x20, 0x27
_TWO_UNIT_CONTRACTIONS = ("s", "t", "m", "d")  # 's 't 'm 'd
_THREE_UNIT_CONTRACTIONS = ("re", "ve", "ll")  # 're 've 'll

# Context codes: the class, with U+0020 told apart from other whitespace (only U+0020 joins
# the next word), and NONE beyond either end of a text.
_CODE_SPACE, _CODE_OTHER_WHITESPACE, _CODE_SPECIAL, _CODE_NONE = 3, 4, 5, 6
_NUM_CODES = 7
_CHARS = (OTHER, LETTER, NUMBER)  # classes whose runs make words


def _start_rule(previous, current, following):
    """Does a unit of code `current` start a word between these neighbours (no contractions)?"""
    if current in (_CODE_SPACE, _CODE_OTHER_WHITESPACE):
        # Start of a whitespace run, or its last unit when a character follows in-segment.
        run_starts = previous not in (_CODE_SPACE, _CODE_OTHER_WHITESPACE)
        return run_starts or following in _CHARS
    if current == _CODE_SPECIAL:
        return True
    if current == _CODE_NONE:
        return False
    # A character: starts when its class changes, unless a U+0020 space joined it.
    return previous != current and previous != _CODE_SPACE


def _start_table():
    """`_start_rule` for every (previous, current, following) code, flattened."""
    codes = range(_NUM_CODES)
    return [_start_rule(p, c, f) for p in codes for c in codes for f in codes]


def _contraction_length_table():
    """Length of the contraction an apostrophe starts, by the next two ASCII code points."""
    table = [0] * (128 * 128)
    for first in range(128):
        for second in range(128):
            if chr(first) in _TWO_UNIT_CONTRACTIONS:
                table[first * 128 + second] = 2
            elif chr(first) + chr(second) in _THREE_UNIT_CONTRACTIONS:
                table[first * 128 + second] = 3
    return table


def _ascii_or_zero(code_points):
    return tf.where((code_points >= 0) & (code_points < 128), code_points, 0)


def word_starts(code_points, classes, neighbours):
    """Marks the units that start a pre-tokenizer word.

    The class-context rules are one lookup in a 7x7x7 table of (previous, current, following)
    codes; contractions are one lookup in a 128x128 table of the two code points after an
    apostrophe. A few dozen ops in all, which matters in TFLite where each op costs ~0.5 us.

    Args:
        code_points: int32 [num_units] (any value for invalid bytes and special tokens that
            is not an ASCII letter, apostrophe or space).
        classes: int32 [num_units], values from `unicode_classes`.
        neighbours: a `neighbours.Neighbours` for the units' texts.

    Returns:
        bool [num_units], True where a word starts.
    """
    # class -> code: WHITESPACE (3) -> 4 unless U+0020 (3); SPECIAL (4) -> 5.
    codes = classes + tf.cast(classes >= WHITESPACE, tf.int32) - tf.cast(tf.equal(code_points, _SPACE), tf.int32)
    previous = neighbours.shift(codes, -1, _CODE_NONE)
    following = neighbours.shift(codes, 1, _CODE_NONE)
    start_table = tf.constant(_start_table(), tf.bool)
    starts = tf.gather(start_table, (previous * _NUM_CODES + codes) * _NUM_CODES + following)

    # Contractions, only where a match can start: not inside a run of other-class units and
    # not right after a joined space.
    next1 = _ascii_or_zero(neighbours.shift(code_points, 1, 0))
    next2 = _ascii_or_zero(neighbours.shift(code_points, 2, 0))
    contraction_table = tf.constant(_contraction_length_table(), tf.int32)
    can_start_match = tf.not_equal(previous, OTHER) & tf.not_equal(previous, _CODE_SPACE)
    apostrophe = tf.equal(code_points, _APOSTROPHE) & can_start_match
    contraction_length = tf.where(apostrophe, tf.gather(contraction_table, next1 * 128 + next2), 0)
    inside = (neighbours.shift(contraction_length, -1, 0) > 1) | (neighbours.shift(contraction_length, -2, 0) > 2)
    after = (neighbours.shift(tf.cast(inside, tf.int32), -1, 0) > 0) & tf.logical_not(inside)
    return (starts | after) & tf.logical_not(inside)
