"""`RobertaTextClassifierPreprocessor`: raw strings (or pairs) -> `token_ids`, `padding_mask`."""

import tensorflow as tf
import tf_keras as keras

from roberta_tf.models.roberta_tokenizer import RobertaTokenizer, string_tensor
from roberta_tf.preprocessing import packer


def _segments(x):
    """A tuple (or a list of batches) is segments; a list of strings is one batch."""
    is_batch_of_strings = isinstance(x, list) and all(isinstance(e, (str, bytes)) for e in x)
    if isinstance(x, (tuple, list)) and not is_batch_of_strings:
        if len(x) not in (1, 2):
            raise ValueError(f"RoBERTa packs one or two segments. Received: {len(x)} segments.")
        return list(x)
    return [x]


class RobertaTextClassifierPreprocessor(keras.layers.Layer):
    """Tokenizes and packs single texts or text pairs for a RoBERTa classifier (keras-hub's API).

    Layout `<s> A </s>` or `<s> A </s></s> B </s>`, padded with `<pad>` (id 1).

    Args:
        tokenizer: a `RobertaTokenizer`.
        sequence_length: the packed length (and the truncation limit).
        truncate: "round_robin" (keras-hub's default) or "longest_first" (Hugging Face's).
        padding: "max_length" pads every row to `sequence_length` (keras-hub); "longest" pads
            to the longest row of the batch (what a server wants: no compute on padding).

    Call arguments:
        x: a string, a batch of strings, or a tuple/list of two batches (pairs).
        y, sample_weight: passed through, as in keras-hub.

    Returns:
        `{"token_ids": int32 [batch, width], "padding_mask": bool [batch, width]}` (without a
        batch axis for a scalar string), packed with `y` and `sample_weight` when given.

    Examples:
    >>> tokenizer = RobertaTokenizer(
    ...     vocabulary="../shared/data/roberta-base/vocab.json",
    ...     merges="../shared/data/roberta-base/merges.txt")
    >>> preprocessor = RobertaTextClassifierPreprocessor(tokenizer, sequence_length=8)
    >>> preprocessor(["The quick brown fox."])["token_ids"].numpy().tolist()
    [[0, 133, 2119, 6219, 23602, 4, 2, 1]]
    >>> preprocessor((["Premise."], ["Hypothesis."]))["token_ids"].numpy().tolist()
    [[0, 35132, 1496, 2, 2, 47177, 1242, 2]]
    """

    def __init__(self, tokenizer, sequence_length=512, truncate="round_robin", padding="max_length", **kwargs):
        super().__init__(**kwargs)
        if truncate not in packer.TRUNCATION_STRATEGIES:
            raise ValueError(f"truncate must be one of {packer.TRUNCATION_STRATEGIES}. Received: truncate={truncate!r}")
        if padding not in packer.PADDING_STRATEGIES:
            raise ValueError(f"padding must be one of {packer.PADDING_STRATEGIES}. Received: padding={padding!r}")
        if not isinstance(sequence_length, int) or sequence_length < 5:
            raise ValueError(f"sequence_length must be an int >= 5. Received: sequence_length={sequence_length!r}")
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.truncate = truncate
        self.padding = padding

    def call(self, x, y=None, sample_weight=None):
        segments = [string_tensor(s, name=f"segment {i}") for i, s in enumerate(_segments(x))]
        scalar = segments[0].shape.rank == 0
        if any((s.shape.rank == 0) != scalar for s in segments):
            raise ValueError("All segments must be scalars or all batches of the same size.")
        if scalar:
            segments = [tf.reshape(s, [1]) for s in segments]
        if len(segments) == 2:
            tf.debugging.assert_equal(
                tf.shape(segments[0]), tf.shape(segments[1]), message="Both segments need the same batch size."
            )
        ragged = [self.tokenizer(s) for s in segments]
        token_ids, padding_mask = packer.pack(
            [(r.flat_values, r.row_splits) for r in ragged],
            self.sequence_length,
            start_id=self.tokenizer.start_token_id,
            end_id=self.tokenizer.end_token_id,
            pad_id=self.tokenizer.pad_token_id,
            truncate=self.truncate,
            padding=self.padding,
        )
        if scalar:
            token_ids, padding_mask = token_ids[0], padding_mask[0]
        x = {"token_ids": token_ids, "padding_mask": padding_mask}
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            tokenizer=keras.layers.serialize(self.tokenizer),
            sequence_length=self.sequence_length,
            truncate=self.truncate,
            padding=self.padding,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("tokenizer"), dict):
            config["tokenizer"] = keras.layers.deserialize(
                config["tokenizer"], custom_objects={"RobertaTokenizer": RobertaTokenizer}
            )
        return cls(**config)
