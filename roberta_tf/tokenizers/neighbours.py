"""Looking a few positions ahead or behind in flat per-text vectors, never across texts.

Every regex and UTF-8 rule of the tokenizer reads at most 3 neighbours, so "the value d
positions away, if it is in the same text" is the one primitive they all share. A
`Neighbours` is built once per vector length: it keeps the same-text masks it has computed
(one per distance), and with a single text (the TFLite model) it needs no mask at all, so a
shift is just SLICE + CONCATENATION.
"""

import tensorflow as tf


def shifted(values, distance, fill):
    """values[i + distance], `fill` past either end, whatever text each position is in: one
    CONCATENATION and one slice with constant bounds (the result has the input's length even
    when it is shorter than `distance`). `Neighbours.shift` is the per-text form."""
    pad = tf.constant([fill] * abs(distance), values.dtype)
    if distance > 0:
        return tf.concat([values, pad], 0)[distance:]
    return tf.concat([pad, values], 0)[:distance]


class Neighbours:
    """Shifts vectors that are laid out like `text_ids`.

    Args:
        text_ids: int32 [n] non-decreasing text index per position, or None when all
            positions belong to one text.
        size: int32 scalar n (needed when `text_ids` is None).
    """

    def __init__(self, text_ids=None, size=None):
        if text_ids is None and size is None:
            raise ValueError("Neighbours needs text_ids or size.")
        self._text_ids = text_ids
        self._size = tf.size(text_ids) if size is None else size
        self._same_text = {}

    def same_text(self, distance):
        """bool [n]: position i + distance exists and is in i's text (cached per distance)."""
        if distance not in self._same_text:
            if self._text_ids is None:
                position = tf.range(self._size) + distance
                self._same_text[distance] = (position >= 0) & (position < self._size)
            else:
                self._same_text[distance] = tf.equal(shifted(self._text_ids, distance, -1), self._text_ids)
        return self._same_text[distance]

    def shift(self, values, distance, fill):
        """values[i + distance] where that position is in the same text, else `fill`."""
        moved = shifted(values, distance, fill)
        if self._text_ids is None:
            return moved  # the padding already holds `fill` past both ends
        return tf.where(self.same_text(distance), moved, tf.constant(fill, values.dtype))
