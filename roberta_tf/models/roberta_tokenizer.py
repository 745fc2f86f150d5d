"""`RobertaTokenizer`: the Keras layer around the in-graph byte-level BPE (keras-hub's API).

Tokenizing, detokenizing and the vocabulary accessors are `InGraphTokenizer`'s."""

import os

from roberta_tf.converters.converted import BYTE_LEVEL_BPE
from roberta_tf.models.in_graph_tokenizer import InGraphTokenizer
from roberta_tf.presets import loader
from roberta_tf.tokenizers import byte_symbols, vocabulary as vocabulary_lib
from roberta_tf.tokenizers.byte_level_bpe import DEFAULT_MAX_WORD_BYTES, ByteLevelBpe
from roberta_tf.utils.untracked import Untracked

def _as_config_value(value):
    return os.fspath(value) if isinstance(value, os.PathLike) else value


class RobertaTokenizer(InGraphTokenizer):
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

    tokenizer_type = BYTE_LEVEL_BPE  # what preset configs call it

    def __init__(
        self,
        vocabulary=None,
        merges=None,
        match_special_tokens=False,
        max_word_bytes=DEFAULT_MAX_WORD_BYTES,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if vocabulary is None or merges is None:
            raise ValueError("RobertaTokenizer needs both `vocabulary` and `merges` (paths or in-memory).")
        self.match_special_tokens = bool(match_special_tokens)
        self.max_word_bytes = max_word_bytes
        bpe_vocabulary = vocabulary_lib.from_memory(vocabulary, merges)
        id_to_token = [None] * bpe_vocabulary.size
        for token, token_id in bpe_vocabulary.vocabulary.items():
            id_to_token[token_id] = token
        self._data = Untracked(
            vocabulary=_as_config_value(vocabulary),
            merges=_as_config_value(merges),
            bpe_vocabulary=bpe_vocabulary,
        )
        # What each id spells: its bytes, or (not made of byte symbols) its UTF-8 text.
        token_bytes = [byte_symbols.token_to_bytes(t) or t.encode("utf-8") for t in id_to_token]
        self._set_core(ByteLevelBpe(bpe_vocabulary, self.match_special_tokens, max_word_bytes), id_to_token, token_bytes)
        self.start_token_id = self.bpe_vocabulary.vocabulary[vocabulary_lib.BOS]
        self.end_token_id = self.bpe_vocabulary.vocabulary[vocabulary_lib.EOS]
        self.pad_token_id = self.bpe_vocabulary.vocabulary[vocabulary_lib.PAD]
        self.mask_token_id = self.bpe_vocabulary.vocabulary[vocabulary_lib.MASK]

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

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary=self.vocabulary,
            merges=self.merges,
            match_special_tokens=self.match_special_tokens,
            max_word_bytes=self.max_word_bytes,
        )
        return config

    def export_metadata(self):
        """What exports record about this tokenizer (besides the vocabulary size)."""
        return {"max_word_bytes": self.max_word_bytes, "match_special_tokens": self.match_special_tokens}

    @property
    def byte_level_bpe(self):
        """The integer-tensor core (`ByteLevelBpe`)."""
        return self._core
