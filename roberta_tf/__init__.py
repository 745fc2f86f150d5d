"""roberta-tf: RoBERTa text classifiers on TensorFlow, tokenizer to logits in one graph."""

__version__ = "0.1.0"
