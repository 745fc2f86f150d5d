"""`XLMRobertaTokenizer`: the Keras layer around the in-graph SentencePiece (keras-hub's API).

Tokenizing, detokenizing and the vocabulary accessors are `InGraphTokenizer`'s; this module
reads the SentencePiece model, maps its ids to fairseq's (XLM-R's embedding rows) and says
what each id spells.
"""

import base64
import os

import tensorflow as tf

from roberta_tf.converters.converted import SENTENCEPIECE
from roberta_tf.models.in_graph_tokenizer import InGraphTokenizer
from roberta_tf.presets import loader
from roberta_tf.tokenizers import sentencepiece as sentencepiece_lib, sentencepiece_vocabulary
from roberta_tf.tokenizers.sentencepiece_model import PieceType, read_model

_BASE64_PREFIX = "base64:"  # a `proto` given as bytes, in get_config (JSON has no bytes)
# SentencePiece's decode: control pieces write nothing, an unknown piece its `unk_surface`
# (the trainer's default, " ⁇ ").
_UNK_SURFACE = " \u2047 ".encode("utf-8")
_SILENT_SPECIALS = ("<s>", "<pad>", "</s>")


def _proto_config_value(proto):
    if isinstance(proto, (bytes, bytearray)):
        return _BASE64_PREFIX + base64.b64encode(bytes(proto)).decode("ascii")
    return os.fspath(proto)


def _proto_source(proto):
    """A `proto` argument as `read_model` takes it (path or bytes; base64 from a config)."""
    if isinstance(proto, str) and proto.startswith(_BASE64_PREFIX):
        return base64.b64decode(proto[len(_BASE64_PREFIX):])
    return proto


def _piece_bytes(piece, kind):
    """What a piece spells in text, `▁` kept (`detokenize` strips the dummy prefix, then
    makes every `▁` a space); `<0x41>` is the byte 0x41."""
    if kind == PieceType.BYTE:
        return bytes([int(piece[3:5], 16)])  # b"<0xAB>"
    return piece


class XLMRobertaTokenizer(InGraphTokenizer):
    """XLM-RoBERTa's SentencePiece tokenizer, computed entirely with integer TF ops.

    The ids are fairseq's, as XLM-R's embedding expects them and as Hugging Face's
    `XLMRobertaTokenizer` gives them: `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, every other
    SentencePiece piece shifted by one (or placed by `dict.txt`), `<mask>` last. Works with
    unigram and BPE SentencePiece models. Works eagerly, inside `tf.function`, in `tf.data`
    and in exported SavedModels (core TF ops only, no tensorflow_text) and TFLite models
    (builtin ops only).

    Args:
        proto: the SentencePiece model: a path (e.g. `sentencepiece.bpe.model`) or the
            serialized `ModelProto` bytes.
        dict_pieces: None (XLM-R's layout: SentencePiece's order) or the pieces of a fairseq
            `dict.txt` in order (`from_fairseq`).

    Call arguments:
        inputs: a string (-> int32 Tensor [num_tokens]) or a rank-1 batch of strings
            (-> int32 RaggedTensor [batch, None]).

    Examples:
    >>> tokenizer = XLMRobertaTokenizer(proto="../shared/data/bpemb-en/en.wiki.bpe.vs100000.model")
    >>> tokenizer(["hello world!"]).to_list()  # BPEmb is lower-cased: "H" would be <unk> (3)
    [[34543, 502, 99961]]
    >>> tokenizer.detokenize(tokenizer(["hello world!"])).numpy().tolist()
    [b'hello world!']
    """

    tokenizer_type = SENTENCEPIECE  # what preset configs call it

    def __init__(self, proto=None, dict_pieces=None, **kwargs):
        super().__init__(**kwargs)
        if proto is None:
            raise ValueError("XLMRobertaTokenizer needs `proto`: a SentencePiece model path or its bytes.")
        self._proto_config = _proto_config_value(proto)
        self._dict_pieces = None if dict_pieces is None else list(dict_pieces)
        model = read_model(_proto_source(proto))
        self.sentencepiece_model = model
        tokens, id_map = sentencepiece_vocabulary.fairseq_vocabulary(model, self._dict_pieces)
        self._set_core(sentencepiece_lib.SentencePiece(model, id_map), tokens, _token_bytes(model, tokens))
        self.start_token_id, self.pad_token_id, self.end_token_id, self.unk_token_id = range(4)
        self.mask_token_id = len(tokens) - 1

    @classmethod
    def from_preset(cls, preset):
        """The tokenizer of a preset directory, a Hugging Face XLM-R directory, a named preset
        or an `hf://` handle (`roberta_tf.presets.loader`)."""
        return loader.load_tokenizer(cls, preset)

    @classmethod
    def from_fairseq(cls, sentencepiece_model, dict_txt, **kwargs):
        """A tokenizer with the ids of a fairseq checkpoint's `dict.txt`."""
        pieces = sentencepiece_vocabulary.read_dict_pieces(dict_txt)
        return cls(proto=sentencepiece_model, dict_pieces=pieces, **kwargs)

    @property
    def proto(self):
        """The `proto` argument as given (a path), or the model's bytes."""
        source = _proto_source(self._proto_config)
        return source if isinstance(source, bytes) else self._proto_config

    def _finish_detokenized(self, texts):
        # As SentencePiece's decode: the dummy prefix (a `▁` that starts the first piece) is
        # not part of the text; every other `▁` is a space. An unknown piece's surface has
        # real spaces, so it is never taken for the prefix.
        if self.sentencepiece_model.normalizer.add_dummy_prefix:
            texts = tf.strings.regex_replace(texts, "^\u2581", "")
        return tf.strings.regex_replace(texts, "\u2581", " ")

    @property
    def dict_pieces(self):
        """fairseq `dict.txt` pieces (None: XLM-R's layout, SentencePiece's order)."""
        return self._dict_pieces

    def export_metadata(self):
        """What exports record about this tokenizer (besides the vocabulary size)."""
        model = self.sentencepiece_model
        return {"type": SENTENCEPIECE, "model_type": model.model_type, "normalizer": model.normalizer.name,
                "byte_fallback": model.byte_fallback, "splits_into_words": self._core.splits_into_words}

    def get_config(self):
        config = super().get_config()
        config.update(proto=self._proto_config, dict_pieces=self._dict_pieces)
        return config


def _token_bytes(model, tokens):
    """What each fairseq token spells, as SentencePiece decodes it: `<s>`, `<pad>`, `</s>`
    nothing, `<unk>` " ⁇ ", `<mask>` its text, pieces their text."""
    kinds = {piece.decode("utf-8", "replace"): kind for piece, kind in zip(model.pieces, model.types)}
    spelled = {special: b"" for special in _SILENT_SPECIALS}
    spelled.update({"<unk>": _UNK_SURFACE, sentencepiece_vocabulary.FAIRSEQ_MASK: b"<mask>"})
    return [
        spelled[token] if token in spelled else _piece_bytes(token.encode("utf-8"), kinds.get(token))
        for token in tokens
    ]
