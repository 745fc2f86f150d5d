"""LayerNorm that keeps float32 statistics and parameters whatever the dtype policy."""

import tf_keras as keras

_MIXED = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def layer_norm_policy(dtype):
    """The policy for a LayerNorm inside a layer running under `dtype`.

    tf-keras' LayerNormalization computes in float32 only when its *variables* are float32
    (a "mixed_*" policy). Under a pure 16-bit policy ("bfloat16": the serving-time encoder
    whose weights are stored in bfloat16) it would compute mean and variance in bfloat16,
    which loses about 3 digits; so LayerNorm gets the matching mixed policy instead: float32
    gamma/beta and math, 16-bit input and output.
    """
    if dtype is None:
        policy = keras.mixed_precision.global_policy()
    elif isinstance(dtype, keras.mixed_precision.Policy):
        policy = dtype
    else:
        policy = keras.mixed_precision.Policy(getattr(dtype, "name", dtype))  # a name or a tf.DType
    if policy.variable_dtype in _MIXED:
        return keras.mixed_precision.Policy(_MIXED[policy.variable_dtype])
    return policy


def LayerNorm(epsilon, dtype, name):  # noqa: N802 (a layer factory, named like the layer)
    """A `keras.layers.LayerNormalization` over the last axis with `layer_norm_policy(dtype)`."""
    return keras.layers.LayerNormalization(epsilon=epsilon, dtype=layer_norm_policy(dtype), name=name)
