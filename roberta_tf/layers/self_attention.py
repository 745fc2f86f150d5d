"""`SelfAttention`: multi-head self-attention with a fused QKV projection and a bounded mask."""

import math

import tensorflow as tf
import tf_keras as keras

from roberta_tf.layers import initializers
from roberta_tf.layers.dense import ProjectionDense

# Added to the attention scores of padded keys. Not -1e9 or -1e4: in a full-int8 TFLite
# model the mask addend sets the quantization range of the scores, and a huge constant
# leaves no resolution for the real scores (measured: argmax agreement 14-17/20 with
# -1e9/-1e4, exact with -30; ../shared/FACTS.md). exp(-30) ~ 1e-13, so a padded key's weight
# stays below float32 resolution unless its raw score beats the row's best real key by
# more than ~13, which trained RoBERTa heads do not produce.
MASK_BIAS = -30.0


def attention_bias(padding_mask, dtype=tf.float32):
    """[batch, length] mask -> additive [batch, 1, 1, length] bias: 0 for tokens, MASK_BIAS for pads."""
    keep = tf.cast(padding_mask, dtype)
    # expand_dims, not [:, None, None, :]: TFLite has no builtin for StridedSlice's new_axis_mask.
    return tf.expand_dims(tf.expand_dims((1.0 - keep) * MASK_BIAS, 1), 1)


@keras.saving.register_keras_serializable(package="roberta_tf")
class SelfAttention(keras.layers.Layer):
    """Scaled dot-product self-attention, fairseq's `MultiheadAttention` in self-attention mode.

    Query, key and value come from one [hidden, 3 * hidden] projection (one MatMul instead of
    three); fairseq's q/k/v (or fused `in_proj_weight`) are concatenated by the converters in
    that order. Softmax runs in float32 whatever the compute dtype.
    """

    def __init__(self, num_heads, hidden_dim, dropout=0.0, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim ({hidden_dim}) must be divisible by num_heads ({num_heads}).")
        self.num_heads = int(num_heads)
        self.hidden_dim = int(hidden_dim)
        self.head_dim = self.hidden_dim // self.num_heads
        self.dropout = float(dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer or initializers.roberta_kernel_initializer())
        self.qkv = ProjectionDense(
            3 * self.hidden_dim, kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy, name="qkv"
        )
        self.output_projection = ProjectionDense(
            self.hidden_dim, kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy, name="output"
        )
        self.probabilities_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.qkv.build(input_shape)
        self.output_projection.build([None, self.hidden_dim])
        super().build(input_shape)

    def call(self, x, bias, training=None):
        """x: [batch * length, hidden] (tokens flattened, as the encoder keeps them);
        bias: [batch, 1, 1, length] from `attention_bias`, which also gives the batch shape."""
        # A static batch (1 in the TFLite export) makes every reshape shape a constant, which
        # lets TFLite's XNNPACK delegate take the reshapes too.
        batch = bias.shape[0] if bias.shape[0] is not None else tf.shape(bias)[0]
        # SPLIT + 4-D reshapes, not one 5-D reshape/transpose and three slices: same values,
        # but XNNPACK runs these ops and not the 5-D ones, and in a full-int8 model the slices
        # fell back to reference kernels (measured: 26 -> 3 delegate partitions for
        # roberta-base, 0.75x the dynamic-range model's time at 16-128 tokens).
        query, key, value = (self._split_heads(part, batch) for part in tf.split(self.qkv(x), 3, axis=-1))
        query = query * tf.cast(1.0 / math.sqrt(self.head_dim), query.dtype)  # fairseq scales q
        scores = tf.matmul(query, key, transpose_b=True)
        scores = tf.cast(scores, tf.float32) + tf.cast(bias, tf.float32)
        probabilities = tf.cast(tf.nn.softmax(scores, axis=-1), x.dtype)
        probabilities = self.probabilities_dropout(probabilities, training=training)
        context = tf.matmul(probabilities, value)  # [batch, heads, length, head_dim]
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [-1, self.hidden_dim])
        return self.output_projection(context)

    def _split_heads(self, part, batch):
        """[batch * length, hidden] -> [batch, heads, length, head_dim]."""
        return tf.transpose(tf.reshape(part, [batch, -1, self.num_heads, self.head_dim]), [0, 2, 1, 3])

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            hidden_dim=self.hidden_dim,
            dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
