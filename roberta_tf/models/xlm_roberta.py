"""XLM-RoBERTa: keras-hub's `XLMRoberta*` names over RoBERTa's encoder and head.

XLM-R is RoBERTa's architecture (fairseq's `xlmr.base`/`xlmr.large` are RoBERTa models with a
250,002-row embedding); what differs is the tokenizer (`XLMRobertaTokenizer`, SentencePiece).
The packing is RoBERTa's too: `<s> A </s>` and `<s> A </s></s> B </s>`.
"""

from roberta_tf.models.roberta_backbone import RobertaBackbone
from roberta_tf.models.roberta_text_classifier import RobertaTextClassifier
from roberta_tf.models.roberta_text_classifier_preprocessor import RobertaTextClassifierPreprocessor
from roberta_tf.models.xlm_roberta_tokenizer import XLMRobertaTokenizer
from roberta_tf.presets import registry
from roberta_tf.utils.classproperty import classproperty


def _xlm_roberta_presets():
    return {name: entry for name, entry in registry.PRESETS.items() if name.startswith("xlm_roberta")}


class XLMRobertaBackbone(RobertaBackbone):
    """XLM-RoBERTa's encoder: `RobertaBackbone` under keras-hub's XLM-R name."""

    @classproperty
    def presets(cls):
        return _xlm_roberta_presets()


class XLMRobertaTextClassifierPreprocessor(RobertaTextClassifierPreprocessor):
    """Tokenizes (SentencePiece) and packs single texts or pairs for an XLM-R classifier.

    Args: as `RobertaTextClassifierPreprocessor`, with an `XLMRobertaTokenizer`.

    Examples:
    >>> tokenizer = XLMRobertaTokenizer(proto="../shared/data/bpemb-en/en.wiki.bpe.vs100000.model")
    >>> preprocessor = XLMRobertaTextClassifierPreprocessor(tokenizer, sequence_length=8)
    >>> preprocessor(["hello world!"])["token_ids"].numpy().tolist()
    [[0, 34543, 502, 99961, 2, 1, 1, 1]]
    """

    tokenizer_cls = XLMRobertaTokenizer


class XLMRobertaTextClassifier(RobertaTextClassifier):
    """An XLM-RoBERTa classifier: RoBERTa's head over `XLMRobertaBackbone` (keras-hub's name).

    `from_preset("xlm_roberta_base_multi")` (or an XLM-R Hugging Face directory, a converted
    fairseq `xlmr` checkpoint or a preset directory) builds it with its SentencePiece
    preprocessor; fit/predict take raw strings in any language.
    """

    backbone_cls = XLMRobertaBackbone
    preprocessor_cls = XLMRobertaTextClassifierPreprocessor

    @classproperty
    def presets(cls):
        return _xlm_roberta_presets()
