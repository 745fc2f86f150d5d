"""`TransformerEncoderLayer`: fairseq's `TransformerSentenceEncoderLayer` (post-LN or pre-LN)."""

import tensorflow as tf
import tf_keras as keras

from roberta_tf.layers import initializers
from roberta_tf.layers.dense import ProjectionDense
from roberta_tf.layers.layer_norm import LayerNorm
from roberta_tf.layers.self_attention import SelfAttention


def _gelu(x):
    return tf.nn.gelu(x, approximate=False)  # erf form: fairseq "gelu", HF "gelu"


def _gelu_tanh(x):
    return tf.nn.gelu(x, approximate=True)  # fairseq "gelu_accurate", HF "gelu_new"


# fairseq's `activation_fn` names. TFLite converts both GELUs to its GELU builtin.
ACTIVATIONS = {"gelu": _gelu, "gelu_accurate": _gelu_tanh, "relu": tf.nn.relu}


@keras.saving.register_keras_serializable(package="roberta_tf")
class TransformerEncoderLayer(keras.layers.Layer):
    """Self-attention and a feed-forward block, each with a residual and a LayerNorm.

    Post-LN (RoBERTa, `normalize_before=False`): `x = LN(x + f(x))`.
    Pre-LN (`encoder_normalize_before=True` checkpoints): `x = x + f(LN(x))`; the backbone then
    adds a final LayerNorm after the last layer, as fairseq does.

    Args:
        num_heads, hidden_dim, intermediate_dim: geometry.
        dropout: after attention, after the feed-forward block and on attention probabilities
            (fairseq's `dropout` and `attention_dropout`; both 0.1 in roberta-base).
        activation: "gelu" (exact, erf), "gelu_accurate" (tanh approximation) or "relu".
        layer_norm_epsilon: 1e-5 in fairseq and Hugging Face RoBERTa.
        normalize_before: pre-LN instead of post-LN.
    """

    def __init__(
        self,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        activation="gelu",
        layer_norm_epsilon=1e-5,
        normalize_before=False,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}. Received: activation={activation!r}")
        self.num_heads = int(num_heads)
        self.hidden_dim = int(hidden_dim)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.normalize_before = bool(normalize_before)
        self.kernel_initializer = keras.initializers.get(kernel_initializer or initializers.roberta_kernel_initializer())
        policy = self.dtype_policy
        self.attention = SelfAttention(
            num_heads, hidden_dim, dropout, kernel_initializer=self.kernel_initializer, dtype=policy, name="attention"
        )
        self.attention_layer_norm = LayerNorm(self.layer_norm_epsilon, policy, "attention_layer_norm")
        self.intermediate = ProjectionDense(
            intermediate_dim,
            activation=ACTIVATIONS[activation],
            kernel_initializer=self.kernel_initializer,
            dtype=policy,
            name="intermediate",
        )
        self.output_dense = ProjectionDense(
            hidden_dim, kernel_initializer=self.kernel_initializer, dtype=policy, name="output"
        )
        self.feedforward_layer_norm = LayerNorm(self.layer_norm_epsilon, policy, "feedforward_layer_norm")
        self.residual_dropout = keras.layers.Dropout(self.dropout, dtype=policy)

    def build(self, input_shape):
        self.attention.build(input_shape)
        self.attention_layer_norm.build(input_shape)
        self.intermediate.build(input_shape)
        self.output_dense.build([None, self.intermediate_dim])
        self.feedforward_layer_norm.build(input_shape)
        super().build(input_shape)

    def _attention_block(self, x, bias, training):
        return self.residual_dropout(self.attention(x, bias, training=training), training=training)

    def _feedforward_block(self, x, training):
        return self.residual_dropout(self.output_dense(self.intermediate(x)), training=training)

    def call(self, x, bias, training=None):
        """x: [batch * length, hidden] (flattened tokens); bias: `attention_bias(padding_mask)`."""
        if self.normalize_before:
            x = x + self._attention_block(self.attention_layer_norm(x), bias, training)
            return x + self._feedforward_block(self.feedforward_layer_norm(x), training)
        x = self.attention_layer_norm(x + self._attention_block(x, bias, training))
        return self.feedforward_layer_norm(x + self._feedforward_block(x, training))

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            hidden_dim=self.hidden_dim,
            intermediate_dim=self.intermediate_dim,
            dropout=self.dropout,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            normalize_before=self.normalize_before,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
