"""`RobertaTokenizer`: the Keras layer around the in-graph byte-level BPE (keras-hub's API)."""

import os

import numpy as np
import tensorflow as tf
import tf_keras as keras

from roberta_tf.presets import loader
from roberta_tf.tokenizers import byte_symbols, strings, vocabulary as vocabulary_lib
from roberta_tf.tokenizers.byte_level_bpe import DEFAULT_MAX_WORD_BYTES, ByteLevelBpe
from roberta_tf.utils.untracked import Untracked

_REPLACEMENT = "\ufffd".encode("utf-8")  # what detokenize writes for an id outside the vocabulary


def _as_config_value(value):
    return os.fspath(value) if isinstance(value, os.PathLike) else value


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


class RobertaTokenizer(keras.layers.Layer):
    """RoBERTa's byte-level BPE tokenizer, computed entirely with integer TF ops.

    Token ids equal Hugging Face `tokenizers`' for roberta-base on every line of the shared
    test corpora. Works eagerly, inside `tf.function`, in `tf.data` pipelines and in exported
    SavedModels (core TF ops only, no tensorflow_text).

    Args:
        vocabulary: dict token -> id, or the path of a Hugging Face `vocab.json`.
        merges: list of "a b" strings or (a, b) pairs, or the path of a `merges.txt`.
        match_special_tokens: False (default, as fairseq): `<s>`, `</s>`, `<mask>`... in text
            are ordinary text, so user text cannot inject control tokens. True: they are
            matched and mapped to their ids, as Hugging Face tokenizers do by default.
        max_word_bytes: words longer than this are merged in chunks (bounds the work on
            adversarial input; far above any real word).

    Call arguments:
        inputs: a string (-> int32 Tensor [num_tokens]) or a rank-1 batch of strings
            (-> int32 RaggedTensor [batch, None]).

    Examples:
    >>> tokenizer = RobertaTokenizer(
    ...     vocabulary="../shared/data/roberta-base/vocab.json",
    ...     merges="../shared/data/roberta-base/merges.txt")
    >>> tokenizer("The quick brown fox.").numpy().tolist()
    [133, 2119, 6219, 23602, 4]
    >>> tokenizer.detokenize(tokenizer(["Hello world!"])).numpy().tolist()
    [b'Hello world!']
    >>> custom = RobertaTokenizer(
    ...     vocabulary={"<s>": 0, "<pad>": 1, "</s>": 2, "<mask>": 3, "a": 4, "\u0120quick": 5, "\u0120fox": 6},
    ...     merges=["\u0120 q", "u i", "c k", "ui ck", "\u0120q uick", "\u0120 f", "o x", "\u0120f ox"])
    >>> custom("a quick fox").numpy().tolist()
    [4, 5, 6]
    """

    def __init__(
        self,
        vocabulary=None,
        merges=None,
        match_special_tokens=False,
        max_word_bytes=DEFAULT_MAX_WORD_BYTES,
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        if vocabulary is None or merges is None:
            raise ValueError("RobertaTokenizer needs both `vocabulary` and `merges` (paths or in-memory).")
        self.match_special_tokens = bool(match_special_tokens)
        self.max_word_bytes = max_word_bytes
        # Big Python containers stay untracked: as layer attributes, tf_keras would wrap and
        # walk all 50k entries on every call (measured: 19 ms per call).
        bpe_vocabulary = vocabulary_lib.from_memory(vocabulary, merges)
        id_to_token = [None] * bpe_vocabulary.size
        for token, token_id in bpe_vocabulary.vocabulary.items():
            id_to_token[token_id] = token
        self._data = Untracked(
            vocabulary=_as_config_value(vocabulary),
            merges=_as_config_value(merges),
            bpe_vocabulary=bpe_vocabulary,
            id_to_token=tuple(id_to_token),
        )
        self._bpe = ByteLevelBpe(bpe_vocabulary, self.match_special_tokens, max_word_bytes)
        # What each id spells: its bytes, or (not made of byte symbols) its UTF-8 text.
        token_bytes = [byte_symbols.token_to_bytes(t) or t.encode("utf-8") for t in self._data.id_to_token]
        self._token_bytes = tf.constant(token_bytes + [_REPLACEMENT], tf.string)
        self.start_token_id = self.bpe_vocabulary.vocabulary[vocabulary_lib.BOS]
        self.end_token_id = self.bpe_vocabulary.vocabulary[vocabulary_lib.EOS]
        self.pad_token_id = self.bpe_vocabulary.vocabulary[vocabulary_lib.PAD]
        self.mask_token_id = self.bpe_vocabulary.vocabulary[vocabulary_lib.MASK]
        self._data.traced = {}  # max_tokens -> the tokenize_batch graph run eagerly

    @classmethod
    def from_preset(cls, preset):
        """The tokenizer of a preset directory, a Hugging Face checkpoint directory, a named
        preset or an `hf://` handle (`roberta_tf.presets.loader`)."""
        return loader.load_tokenizer(cls, preset)

    @classmethod
    def from_fairseq(cls, encoder_json, vocab_bpe, dict_txt, **kwargs):
        """A tokenizer from fairseq's GPT-2 BPE files, ids remapped through `dict.txt`."""
        bpe_vocabulary = vocabulary_lib.from_fairseq_files(encoder_json, vocab_bpe, dict_txt)
        return cls(
            vocabulary=bpe_vocabulary.vocabulary,
            merges=[f"{a} {b}" for a, b in bpe_vocabulary.merges],
            **kwargs,
        )

    def tokenize_batch(self, texts, max_tokens=None):
        """Graph-mode core: rank-1 tf.string -> int32 RaggedTensor [batch, None].

        `max_tokens` (a python int): only each text's first `max_tokens` ids are needed; they
        are exact, and the rows hold at least that many where the text has them (later ids may
        be missing). What packing to a sequence length needs, at a bounded cost per text."""
        byte_values, text_ids, num_texts = strings.strings_to_bytes(texts)
        token_ids, token_text_ids = self._bpe.tokenize_bytes(byte_values, text_ids, num_texts, max_tokens)
        return tf.RaggedTensor.from_value_rowids(
            token_ids, tf.cast(token_text_ids, tf.int64), nrows=tf.cast(num_texts, tf.int64), validate=False
        )

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
        if max_tokens not in self._data.traced:
            self._data.traced[max_tokens] = tf.function(
                lambda texts: self.tokenize_batch(texts, max_tokens),
                input_signature=[tf.TensorSpec([None], tf.string)],
                autograph=False,
            )
        return self._data.traced[max_tokens]

    def call(self, inputs):
        return self.tokenize(inputs)

    def detokenize(self, inputs):
        """Ids (Tensor [n] or RaggedTensor/Tensor [batch, n]) -> UTF-8 strings.

        Special tokens are written as their text (`<s>`); byte sequences that are not valid
        UTF-8 become U+FFFD; an id outside the vocabulary becomes U+FFFD.
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
        return strings.ids_to_strings(ids, self._token_bytes)

    @property
    def vocabulary(self):
        """The `vocabulary` argument as given (a path or a dict)."""
        return self._data.vocabulary

    @property
    def merges(self):
        """The `merges` argument as given (a path or a list)."""
        return self._data.merges

    @property
    def bpe_vocabulary(self):
        """The validated `BpeVocabulary` (token -> id map and ranked merges)."""
        return self._data.bpe_vocabulary

    def vocabulary_size(self):
        return self.bpe_vocabulary.size

    def get_vocabulary(self):
        return list(self._data.id_to_token)

    def id_to_token(self, id):  # noqa: A002 (keras-hub's argument name)
        if not isinstance(id, (int, np.integer)) or not 0 <= id < self.vocabulary_size():
            raise ValueError(f"id must be an int in [0, {self.vocabulary_size()}). Received: id={id!r}")
        return self._data.id_to_token[id]

    def token_to_id(self, token):
        if token not in self.bpe_vocabulary.vocabulary:
            raise ValueError(f"Token {token!r} is not in the vocabulary.")
        return self.bpe_vocabulary.vocabulary[token]

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary=self.vocabulary,
            merges=self.merges,
            match_special_tokens=self.match_special_tokens,
            max_word_bytes=self.max_word_bytes,
        )
        return config

    @property
    def byte_level_bpe(self):
        """The integer-tensor core (`ByteLevelBpe`), for exporters."""
        return self._bpe
