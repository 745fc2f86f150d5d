"""`ProjectionDense`: a dense layer over the last axis of [batch, length, in] activations."""

import tensorflow as tf
import tf_keras as keras

from roberta_tf.layers import initializers


@keras.saving.register_keras_serializable(package="roberta_tf")
class ProjectionDense(keras.layers.Layer):
    """`x @ kernel + bias` on the last axis, as ONE 2-D MatMul (on [tokens, in] input, nothing else).

    Why not `keras.layers.Dense`: on a rank-3 input it runs `tensordot` (several reshapes,
    a transpose and a gather of the shape per call). Flattening to [batch * length, in]
    gives one MatMul, which TFLite converts to a single FULLY_CONNECTED and which is
    the cheapest path through TF's executor at batch 1.

    Kernel layout is [in, out] (Keras); PyTorch/fairseq Linear weights are [out, in] and are
    transposed by the converters.
    """

    def __init__(self, units, activation=None, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer or initializers.roberta_kernel_initializer())

    def build(self, input_shape):
        in_dim = int(input_shape[-1])
        self.kernel = self.add_weight("kernel", shape=[in_dim, self.units], initializer=initializers.fresh(self.kernel_initializer))
        self.bias = self.add_weight("bias", shape=[self.units], initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        if inputs.shape.rank == 2:  # the encoder keeps its activations as [tokens, hidden]
            # bias_add (not +) lets TF fuse MatMul + BiasAdd (+ GELU) into one kernel.
            return self.activation(tf.nn.bias_add(tf.matmul(inputs, self.kernel), self.bias))
        flat = tf.reshape(inputs, [-1, self.kernel.shape[0]])
        outputs = tf.nn.bias_add(tf.matmul(flat, self.kernel), self.bias)
        outputs = tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], [self.units]], axis=0))
        return self.activation(outputs)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=keras.activations.serialize(self.activation),
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
