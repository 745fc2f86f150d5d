"""`RobertaTextClassifierPreprocessor`: raw strings (or pairs) -> `token_ids`, `padding_mask`."""

import tensorflow as tf
import tf_keras as keras

from roberta_tf.models.in_graph_tokenizer import string_tensor
from roberta_tf.models.roberta_tokenizer import RobertaTokenizer
from roberta_tf.preprocessing import options, packer
from roberta_tf.presets import loader


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

    tokenizer_cls = RobertaTokenizer

    def __init__(
        self,
        tokenizer,
        sequence_length=512,
        truncate=options.DEFAULT_TRUNCATE,
        padding=options.DEFAULT_PADDING,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = options.check_sequence_length(sequence_length)
        self.truncate = options.check_truncate(truncate)
        self.padding = options.check_padding(padding)

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
        token_ids, padding_mask = packer.pack_texts(
            self.tokenizer, segments, self.sequence_length, truncate=self.truncate, padding=self.padding
        )
        if scalar:
            token_ids, padding_mask = token_ids[0], padding_mask[0]
        x = {"token_ids": token_ids, "padding_mask": padding_mask}
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    @classmethod
    def from_preset(cls, preset, sequence_length=None, **kwargs):
        """The preprocessor (tokenizer and packing options) of a preset directory, a Hugging
        Face checkpoint directory, a named preset or an `hf://` handle; keyword arguments
        override the preset's (`sequence_length`, `truncate`, `padding`)."""
        return loader.load_preprocessor(cls, preset, sequence_length=sequence_length, **kwargs)

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
                config["tokenizer"], custom_objects={cls.tokenizer_cls.__name__: cls.tokenizer_cls}
            )
        return cls(**config)
