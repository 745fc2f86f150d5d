"""Public model API, named as in keras-hub (`keras_hub.models.Roberta*`, `XLMRoberta*`)."""

from roberta_tf.models.roberta_backbone import RobertaBackbone
from roberta_tf.models.roberta_text_classifier import RobertaTextClassifier
from roberta_tf.models.roberta_text_classifier_preprocessor import RobertaTextClassifierPreprocessor
from roberta_tf.models.roberta_tokenizer import RobertaTokenizer
from roberta_tf.models.xlm_roberta import (
    XLMRobertaBackbone,
    XLMRobertaTextClassifier,
    XLMRobertaTextClassifierPreprocessor,
)
from roberta_tf.models.xlm_roberta_tokenizer import XLMRobertaTokenizer

# keras-hub's older aliases.
RobertaClassifier = RobertaTextClassifier
XLMRobertaClassifier = XLMRobertaTextClassifier

_TOKENIZERS = {cls.tokenizer_type: cls for cls in (RobertaTokenizer, XLMRobertaTokenizer)}


def tokenizer_class(tokenizer_type):
    """The tokenizer layer for a preset's tokenizer type ("byte_level_bpe", "sentencepiece")."""
    if tokenizer_type not in _TOKENIZERS:
        raise ValueError(f"No tokenizer for {tokenizer_type!r}; roberta_tf reads {', '.join(sorted(_TOKENIZERS))}.")
    return _TOKENIZERS[tokenizer_type]


__all__ = [
    "RobertaBackbone",
    "RobertaClassifier",
    "RobertaTextClassifier",
    "RobertaTextClassifierPreprocessor",
    "RobertaTokenizer",
    "XLMRobertaBackbone",
    "XLMRobertaClassifier",
    "XLMRobertaTextClassifier",
    "XLMRobertaTextClassifierPreprocessor",
    "XLMRobertaTokenizer",
    "tokenizer_class",
]
