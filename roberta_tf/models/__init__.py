"""Public model API, named as in keras-hub (`keras_hub.models.Roberta*`)."""

from roberta_tf.models.roberta_text_classifier_preprocessor import RobertaTextClassifierPreprocessor
from roberta_tf.models.roberta_tokenizer import RobertaTokenizer

__all__ = ["RobertaTokenizer", "RobertaTextClassifierPreprocessor"]
