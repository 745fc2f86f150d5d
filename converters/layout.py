"""Tensor layout helpers shared by the converters (PyTorch -> Keras)."""

import numpy as np


class ConversionError(ValueError):
    """A checkpoint that cannot be converted: the message names the key or file at fault."""


def linear(weight, bias, source):
    """A PyTorch `Linear` (`weight` [out, in]) -> Keras kernel [in, out] and bias."""
    weight = np.asarray(weight)
    if weight.ndim != 2:
        raise ConversionError(f"{source}: expected a 2-D Linear weight, got shape {weight.shape}.")
    return np.ascontiguousarray(weight.T), np.asarray(bias)


def fused_qkv(q, k, v, source):
    """Separate q/k/v Linear (weight, bias) pairs -> the fused [in, 3 * hidden] kernel and bias,
    in q, k, v order (the order `SelfAttention` splits them)."""
    kernels, biases = zip(*(linear(w, b, f"{source}.{name}") for (w, b), name in zip((q, k, v), "qkv")))
    return np.concatenate(kernels, axis=1), np.concatenate(biases, axis=0)


def take(state, key, source):
    """`state[key]` or a ConversionError naming the missing key."""
    if key not in state:
        raise ConversionError(f"{source}: missing tensor {key!r}.")
    return np.asarray(state[key])


def put_linear(out, target, state, source, tag):
    """`out[target.kernel], out[target.bias]` from the PyTorch Linear `state[source.weight/.bias]`."""
    out[f"{target}.kernel"], out[f"{target}.bias"] = linear(
        take(state, f"{source}.weight", tag), take(state, f"{source}.bias", tag), source
    )


def put_layer_norm(out, target, state, source, tag, names=(("weight", "bias"),)):
    """`out[target.gamma/.beta]` from a LayerNorm's parameters, trying each (weight, bias) naming."""
    for weight, bias in names:
        if f"{source}.{weight}" in state:
            out[f"{target}.gamma"] = np.asarray(state[f"{source}.{weight}"])
            out[f"{target}.beta"] = take(state, f"{source}.{bias}", tag)
            return
    raise ConversionError(f"{tag}: missing tensor {source + '.' + names[0][0]!r}.")


def check_shapes(state, expected, source):
    """Raises, naming the checkpoint key, for the first tensor whose shape differs from what the
    checkpoint's own configuration implies (`expected`: key -> shape, in the file's layout).
    Checked before any mapping, so the message speaks the checkpoint's language."""
    for key, shape in expected.items():
        if key in state and tuple(np.shape(state[key])) != tuple(shape):
            raise ConversionError(
                f"{source}: tensor {key!r} has shape {tuple(np.shape(state[key]))}; "
                f"the checkpoint's configuration implies {tuple(shape)}."
            )


# Per transformer layer, every roberta_tf weight besides the fused QKV projection (each
# converter maps these names to its own keys): Linear layers and LayerNorms.
LAYER_LINEARS = ("attention.output", "feedforward.intermediate", "feedforward.output")
LAYER_NORMS = ("attention_layer_norm", "feedforward_layer_norm")


def put_layer(out, index, state, source_prefix, key_map, tag, norm_names=(("weight", "bias"),)):
    """`out[layers.{index}.*]` (all but the QKV projection) from `state[source_prefix + key]`,
    where `key_map` names the checkpoint's key of each part in LAYER_LINEARS + LAYER_NORMS."""
    target = f"layers.{index}."
    for name in LAYER_LINEARS:
        put_linear(out, target + name, state, source_prefix + key_map[name], tag)
    for name in LAYER_NORMS:
        put_layer_norm(out, target + name, state, source_prefix + key_map[name], tag, names=norm_names)


def linear_shapes(source, out_dim, in_dim):
    """{source.weight: [out, in], source.bias: [out]}: a PyTorch Linear's expected shapes."""
    return {f"{source}.weight": (out_dim, in_dim), f"{source}.bias": (out_dim,)}


def layer_shapes(source_prefix, key_map, hidden_dim, intermediate_dim, norm_names=(("weight", "bias"),)):
    """Expected shapes of one layer's parts in LAYER_LINEARS + LAYER_NORMS under a converter's
    `key_map` (the same map `put_layer` reads), in the checkpoint's [out, in] layout."""
    d, f = hidden_dim, intermediate_dim
    dims = {"attention.output": (d, d), "feedforward.intermediate": (f, d), "feedforward.output": (d, f)}
    shapes = {}
    for name in LAYER_LINEARS:
        shapes.update(linear_shapes(source_prefix + key_map[name], *dims[name]))
    for name in LAYER_NORMS:
        shapes.update({f"{source_prefix}{key_map[name]}.{part}": (d,) for pair in norm_names for part in pair})
    return shapes
