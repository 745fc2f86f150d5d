"""Modeling layers of the RoBERTa encoder (tf-keras), written with ops that convert to
builtin TFLite and run in any TensorFlow Serving version: MatMul / BatchMatMul, Gather,
Cumsum, Softmax, Erf (GELU), LayerNorm arithmetic. No TF-Text op, dynamic batch and length."""

from roberta_tf.layers.dense import ProjectionDense
from roberta_tf.layers.embedding import RobertaEmbedding
from roberta_tf.layers.self_attention import SelfAttention, attention_bias
from roberta_tf.layers.transformer_encoder import TransformerEncoderLayer

__all__ = ["ProjectionDense", "RobertaEmbedding", "SelfAttention", "TransformerEncoderLayer", "attention_bias"]
