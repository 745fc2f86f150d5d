"""fairseq RoBERTa: hyper-parameters and state dict -> roberta_tf arguments and named weights.

Reading `model.pt` itself (torch-free, safe unpickling) is the converters issue's work; this
module maps what is inside. Both key generations are handled: fairseq >= 0.10
(`encoder.sentence_encoder.`, `layernorm_embedding`) and older (`decoder.sentence_encoder.`,
`emb_layer_norm`), separate q/k/v projections and the fused `in_proj_weight`.
"""

import numpy as np

from roberta_tf.converters import layout
from roberta_tf.converters.layout import ConversionError, fused_qkv, take

_ENCODER_PREFIXES = ("encoder.sentence_encoder.", "decoder.sentence_encoder.")
_EMBEDDING_LAYER_NORMS = ("layernorm_embedding", "emb_layer_norm")


def backbone_arguments(args):
    """fairseq model args (`cfg["model"]` or legacy `args`: a Namespace or dict) -> RobertaBackbone
    keyword arguments. Unsupported variants raise, naming the field."""
    get = (lambda key, default=None: args.get(key, default)) if isinstance(args, dict) else (
        lambda key, default=None: getattr(args, key, default)
    )
    activation = get("activation_fn", "gelu")
    if activation not in ("gelu", "gelu_accurate", "relu"):
        raise ConversionError(f"activation_fn={activation!r} is not supported (gelu, gelu_accurate, relu).")
    normalize_before = bool(get("encoder_normalize_before", False))
    return {
        "num_layers": int(get("encoder_layers")),
        "num_heads": int(get("encoder_attention_heads")),
        "hidden_dim": int(get("encoder_embed_dim")),
        "intermediate_dim": int(get("encoder_ffn_embed_dim")),
        "dropout": float(get("dropout", 0.1)),
        "max_sequence_length": int(get("max_positions", 512)),
        "activation": activation,
        "normalize_before": normalize_before,
        "embedding_layer_norm": bool(get("layernorm_embedding", not normalize_before)),
    }


def encoder_prefix(state):
    for prefix in _ENCODER_PREFIXES:
        if f"{prefix}embed_tokens.weight" in state:
            return prefix
    raise ConversionError(
        "Not a fairseq RoBERTa state dict: no 'encoder.sentence_encoder.embed_tokens.weight' "
        "(or the pre-0.10 'decoder.sentence_encoder.' form)."
    )


def classification_heads(state):
    """Names of the classification heads present (`classification_heads.NAME.*`)."""
    return sorted({key.split(".")[1] for key in state if key.startswith("classification_heads.")})


def named_weights(state, num_layers, head=None):
    """fairseq state dict (numpy) -> `{name: array}` in roberta_tf's preset names.

    Args:
        state: the checkpoint's `model` mapping, tensors as numpy arrays.
        num_layers: encoder depth (from `backbone_arguments`).
        head: a classification head name to include as `head.*`, or None.
    """
    prefix = encoder_prefix(state)
    out = {
        "embeddings.token_embedding": take(state, f"{prefix}embed_tokens.weight", "fairseq"),
        "embeddings.position_embedding": take(state, f"{prefix}embed_positions.weight", "fairseq"),
    }
    for norm in _EMBEDDING_LAYER_NORMS:
        if f"{prefix}{norm}.weight" in state:
            _layer_norm(out, "embeddings.layer_norm", state, f"{prefix}{norm}")
    for i in range(num_layers):
        layer = f"{prefix}layers.{i}."
        target = f"layers.{i}."
        out[target + "attention.qkv.kernel"], out[target + "attention.qkv.bias"] = _qkv(state, layer + "self_attn.")
        _linear(out, target + "attention.output", state, layer + "self_attn.out_proj")
        _layer_norm(out, target + "attention_layer_norm", state, layer + "self_attn_layer_norm")
        _linear(out, target + "feedforward.intermediate", state, layer + "fc1")
        _linear(out, target + "feedforward.output", state, layer + "fc2")
        _layer_norm(out, target + "feedforward_layer_norm", state, layer + "final_layer_norm")
    if f"{prefix}layer_norm.weight" in state:
        _layer_norm(out, "final_layer_norm", state, f"{prefix}layer_norm")
    if f"{prefix}layers.{num_layers}.fc1.weight" in state:
        raise ConversionError(f"The checkpoint has more than the {num_layers} layers its config names.")
    if head is not None:
        if head not in classification_heads(state):
            raise ConversionError(
                f"No classification head {head!r}; the checkpoint has {classification_heads(state) or 'none'}."
            )
        _linear(out, "head.pooled_dense", state, f"classification_heads.{head}.dense")
        _linear(out, "head.logits", state, f"classification_heads.{head}.out_proj")
    return out


def _qkv(state, attention):
    if f"{attention}in_proj_weight" in state:  # older checkpoints: one fused [3d, d] projection
        weight = take(state, f"{attention}in_proj_weight", "fairseq")
        bias = take(state, f"{attention}in_proj_bias", "fairseq")
        return np.ascontiguousarray(weight.T), bias
    return fused_qkv(
        *[
            (take(state, f"{attention}{p}_proj.weight", "fairseq"), take(state, f"{attention}{p}_proj.bias", "fairseq"))
            for p in "qkv"
        ],
        source=attention.rstrip("."),
    )


def _linear(out, target, state, source):
    layout.put_linear(out, target, state, source, "fairseq")


def _layer_norm(out, target, state, source):
    layout.put_layer_norm(out, target, state, source, "fairseq")
