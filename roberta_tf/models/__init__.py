"""Public model API, named as in keras-hub (`keras_hub.models.Roberta*`)."""

from roberta_tf.models.roberta_backbone import RobertaBackbone
from roberta_tf.models.roberta_text_classifier import RobertaTextClassifier
from roberta_tf.models.roberta_text_classifier_preprocessor import RobertaTextClassifierPreprocessor
from roberta_tf.models.roberta_tokenizer import RobertaTokenizer

# keras-hub's older alias.
RobertaClassifier = RobertaTextClassifier

__all__ = [
    "RobertaBackbone",
    "RobertaClassifier",
    "RobertaTextClassifier",
    "RobertaTextClassifierPreprocessor",
    "RobertaTokenizer",
]
