"""`InGraphTokenizer`: what every tokenizer layer shares (RoBERTa's BPE, XLM-R's SentencePiece).

A subclass builds an integer-tensor core (`tokenize_bytes` for a batch as flat bytes,
`tokenize_text_bytes` for one text) and says what each id spells; this base turns strings
into bytes, runs the core eagerly through one traced graph or inline inside a graph, and
implements `detokenize` and keras-hub's vocabulary accessors on top.
"""

import numpy as np
import tensorflow as tf
import tf_keras as keras

from roberta_tf.tokenizers import strings
from roberta_tf.utils.untracked import Untracked


def string_tensor(inputs, name="inputs"):
    """`inputs` as a tf.string tensor of rank 0 or 1, or a ValueError saying what was wrong."""
    if isinstance(inputs, tf.RaggedTensor):
        raise ValueError(f"{name} must be a dense string tensor of rank 0 or 1. Received a RaggedTensor.")
    if not isinstance(inputs, tf.Tensor):
        if isinstance(inputs, (list, tuple)) and not inputs:
            inputs = tf.constant([], tf.string)
        else:
            try:
                inputs = tf.convert_to_tensor(inputs)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{name} must be strings. Received: {type(inputs).__name__} ({e})") from e
    if inputs.dtype != tf.string:
        raise ValueError(f"{name} must have dtype tf.string. Received: dtype={inputs.dtype.name}")
    if inputs.shape.rank not in (0, 1):
        raise ValueError(
            f"{name} must be a scalar string or a batch of strings (rank 0 or 1). Received: shape={inputs.shape}"
        )
    return inputs


class InGraphTokenizer(keras.layers.Layer):
    """Base of the tokenizer layers. Subclasses call `_set_core(core, id_to_token, token_bytes)`
    in `__init__` and set `start_token_id`, `end_token_id`, `pad_token_id`, `mask_token_id`."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trainable", False)
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)

    def _set_core(self, core, id_to_token, token_bytes):
        """core: has `tokenize_bytes` and `tokenize_text_bytes`; id_to_token: the token of
        each id; token_bytes: the raw bytes each id spells (what `detokenize` joins)."""
        self._core = core
        # Out of tf_keras' attribute tracking: wrapping and walking 50k-250k entries on every
        # call costs milliseconds (measured: 19 ms per call).
        self._vocabulary_lists = Untracked(
            id_to_token=tuple(id_to_token),
            token_to_id={token: i for i, token in enumerate(id_to_token)},
            traced={},  # max_tokens -> the tokenize_batch graph run eagerly
        )
        replacement = "\ufffd".encode("utf-8")  # an id outside the vocabulary
        self._token_bytes = tf.constant(list(token_bytes) + [replacement], tf.string)

    def tokenize_batch(self, texts, max_tokens=None):
        """Graph-mode core: rank-1 tf.string -> int32 RaggedTensor [batch, None].

        `max_tokens` (a python int): only each text's first `max_tokens` ids are needed; they
        are exact, and the rows hold at least that many where the text has them (later ids may
        be missing). What packing to a sequence length needs, at a bounded cost per text."""
        byte_values, text_ids, num_texts = strings.strings_to_bytes(texts)
        token_ids, token_text_ids = self._core.tokenize_bytes(byte_values, text_ids, num_texts, max_tokens)
        return tf.RaggedTensor.from_value_rowids(
            token_ids, tf.cast(token_text_ids, tf.int64), nrows=tf.cast(num_texts, tf.int64), validate=False
        )

    def tokenize_text_bytes(self, byte_values, max_tokens=None):
        """Ids of ONE text given as int32 bytes: the TFLite models' tokenizer (builtin ops)."""
        return self._core.tokenize_text_bytes(byte_values, max_tokens)

    def tokenize(self, inputs, max_tokens=None):
        """Ids of a string (int32 [n]) or a batch of strings (int32 RaggedTensor [batch, None]);
        `max_tokens` as in `tokenize_batch`."""
        inputs = string_tensor(inputs)
        scalar = inputs.shape.rank == 0
        batch = tf.reshape(inputs, [1]) if scalar else inputs
        if tf.executing_eagerly():  # run one traced graph (one trace for every batch size)
            ids = self._traced_tokenize_batch(max_tokens)(batch)
        else:  # inside a graph: inline
            ids = self.tokenize_batch(batch, max_tokens)
        return ids[0] if scalar else ids

    def _traced_tokenize_batch(self, max_tokens):
        traced = self._vocabulary_lists.traced
        if max_tokens not in traced:
            traced[max_tokens] = tf.function(
                lambda texts: self.tokenize_batch(texts, max_tokens),
                input_signature=[tf.TensorSpec([None], tf.string)],
                autograph=False,
            )
        return traced[max_tokens]

    def call(self, inputs):
        return self.tokenize(inputs)

    def detokenize(self, inputs):
        """Ids (Tensor [n] or RaggedTensor/Tensor [batch, n]) -> UTF-8 strings.

        Byte sequences that are not valid UTF-8 become U+FFFD, and so does an id outside the
        vocabulary. Special tokens: RoBERTa writes their text (`<s>`); XLM-R writes what
        SentencePiece's decode writes (nothing for `<s>`, " ⁇ " for `<unk>`).
        """
        if not isinstance(inputs, (tf.Tensor, tf.RaggedTensor)):
            nested = isinstance(inputs, (list, tuple)) and any(isinstance(r, (list, tuple)) for r in inputs)
            inputs = tf.ragged.constant(inputs, dtype=tf.int32) if nested else tf.constant(np.asarray(inputs, np.int64))
        if not inputs.dtype.is_integer:
            raise ValueError(f"detokenize takes integer ids. Received: dtype={inputs.dtype.name}")
        ids = tf.cast(inputs, tf.int32)
        size = self.vocabulary_size()
        in_range = lambda x: tf.where((x >= 0) & (x < size), x, size)  # noqa: E731
        ids = tf.ragged.map_flat_values(in_range, ids) if isinstance(ids, tf.RaggedTensor) else in_range(ids)
        return self._finish_detokenized(strings.ids_to_strings(ids, self._token_bytes))

    def _finish_detokenized(self, texts):
        """Hook for a subclass's last step on joined strings (SentencePiece's dummy prefix)."""
        return texts

    def vocabulary_size(self):
        return len(self._vocabulary_lists.id_to_token)

    def get_vocabulary(self):
        return list(self._vocabulary_lists.id_to_token)

    def id_to_token(self, id):  # noqa: A002 (keras-hub's argument name)
        if not isinstance(id, (int, np.integer)) or not 0 <= id < self.vocabulary_size():
            raise ValueError(f"id must be an int in [0, {self.vocabulary_size()}). Received: id={id!r}")
        return self._vocabulary_lists.id_to_token[id]

    def token_to_id(self, token):
        token_id = self._vocabulary_lists.token_to_id.get(token)
        if token_id is None:
            raise ValueError(f"Token {token!r} is not in the vocabulary.")
        return token_id
