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

from roberta_tf.tokenizers.unicode_classes import OTHER, SPECIAL, WHITESPACE

_NONE = -1  # class of the position before the first / after the last unit of a text
_SPACE, _APOSTROPHE = 0x20, 0x27
_TWO_UNIT_CONTRACTIONS = ("s", "t", "m", "d")  # 's 't 'm 'd
_THREE_UNIT_CONTRACTIONS = (("r", "e"), ("v", "e"), ("l", "l"))  # 're 've 'll


def _equal_any(x, values):
    result = tf.zeros_like(x, dtype=tf.bool)
    for v in values:
        result = result | tf.equal(x, v)
    return result


def word_starts(code_points, classes, neighbours):
    """Marks the units that start a pre-tokenizer word.

    Args:
        code_points: int32 [num_units] (any value for invalid bytes and special tokens that
            is not an ASCII letter, apostrophe or space).
        classes: int32 [num_units], values from `unicode_classes`.
        neighbours: a `neighbours.Neighbours` for the units' texts.

    Returns:
        bool [num_units], True where a word starts.
    """
    prev_class = neighbours.shift(classes, -1, _NONE)
    next_class = neighbours.shift(classes, 1, _NONE)
    prev_cp = neighbours.shift(code_points, -1, _NONE)
    is_space = tf.equal(classes, WHITESPACE)
    is_special = tf.equal(classes, SPECIAL)

    # Whitespace: start of a run, or the run's last unit when a non-space follows in-segment.
    followed_by_char = tf.logical_not(_equal_any(next_class, (WHITESPACE, SPECIAL, _NONE)))
    space_starts = is_space & (tf.not_equal(prev_class, WHITESPACE) | followed_by_char)

    # A U+0020 space right before a non-space unit belongs to that unit's word.
    after_attached_space = tf.equal(prev_cp, _SPACE) & tf.equal(prev_class, WHITESPACE)

    # Contractions, only where a match can start.
    next1 = neighbours.shift(code_points, 1, _NONE)
    next2 = neighbours.shift(code_points, 2, _NONE)
    can_start_match = tf.not_equal(prev_class, OTHER) & tf.logical_not(after_attached_space)
    apostrophe = tf.equal(code_points, _APOSTROPHE) & can_start_match
    two = _equal_any(next1, [ord(c) for c in _TWO_UNIT_CONTRACTIONS])
    three = tf.zeros_like(two)
    for a, b in _THREE_UNIT_CONTRACTIONS:
        three = three | (tf.equal(next1, ord(a)) & tf.equal(next2, ord(b)))
    contraction_length = tf.where(apostrophe & two, 2, tf.where(apostrophe & three, 3, 0))

    def contraction_reaches(distance):
        """True where a contraction starting `distance` units earlier covers this unit."""
        return neighbours.shift(contraction_length, -distance, 0) > distance

    inside_contraction = contraction_reaches(1) | contraction_reaches(2)
    prev_inside = neighbours.shift(tf.cast(inside_contraction, tf.int32), -1, 0) > 0
    after_contraction = prev_inside & tf.logical_not(inside_contraction)

    class_change = tf.not_equal(classes, prev_class) & tf.logical_not(after_attached_space)
    char_starts = (
        (class_change | after_contraction | tf.equal(prev_class, SPECIAL))
        & tf.logical_not(inside_contraction)
    )
    return tf.where(is_space, space_starts, char_starts | is_special)
