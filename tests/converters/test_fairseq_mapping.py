"""fairseq key mapping without fairseq: both key generations and the fused in_proj_weight
give the same named weights."""

import numpy as np
import pytest

from roberta_tf.converters import fairseq
from roberta_tf.converters.layout import ConversionError

D, F, LAYERS = 8, 16, 2


def _state(rng, prefix="encoder.sentence_encoder.", embedding_norm="layernorm_embedding", fused=False):
    state = {f"{prefix}embed_tokens.weight": rng.normal(size=(30, D)), f"{prefix}embed_positions.weight": rng.normal(size=(12, D)),
             f"{prefix}{embedding_norm}.weight": rng.normal(size=D), f"{prefix}{embedding_norm}.bias": rng.normal(size=D)}
    for i in range(LAYERS):
        layer = f"{prefix}layers.{i}."
        q, k, v = (rng.normal(size=(D, D)) for _ in range(3))
        qb, kb, vb = (rng.normal(size=D) for _ in range(3))
        if fused:
            state[layer + "self_attn.in_proj_weight"] = np.concatenate([q, k, v])
            state[layer + "self_attn.in_proj_bias"] = np.concatenate([qb, kb, vb])
        else:
            for name, w, b in (("q", q, qb), ("k", k, kb), ("v", v, vb)):
                state[f"{layer}self_attn.{name}_proj.weight"], state[f"{layer}self_attn.{name}_proj.bias"] = w, b
        for name, shape in (("self_attn.out_proj", (D, D)), ("fc1", (F, D)), ("fc2", (D, F))):
            state[f"{layer}{name}.weight"], state[f"{layer}{name}.bias"] = rng.normal(size=shape), rng.normal(size=shape[0])
        for name in ("self_attn_layer_norm", "final_layer_norm"):
            state[f"{layer}{name}.weight"], state[f"{layer}{name}.bias"] = rng.normal(size=D), rng.normal(size=D)
    state["classification_heads.mnli.dense.weight"] = rng.normal(size=(D, D))
    state["classification_heads.mnli.dense.bias"] = rng.normal(size=D)
    state["classification_heads.mnli.out_proj.weight"] = rng.normal(size=(3, D))
    state["classification_heads.mnli.out_proj.bias"] = rng.normal(size=3)
    return state


def _same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_pre_0_10_keys_and_fused_in_proj_map_like_0_12_keys():
    modern = fairseq.named_weights(_state(np.random.default_rng(0)), LAYERS, head="mnli")
    old = fairseq.named_weights(
        _state(np.random.default_rng(0), prefix="decoder.sentence_encoder.", embedding_norm="emb_layer_norm"), LAYERS, head="mnli"
    )
    fused = fairseq.named_weights(_state(np.random.default_rng(0), fused=True), LAYERS, head="mnli")
    _same(modern, old)
    _same(modern, fused)
    assert modern["layers.0.attention.qkv.kernel"].shape == (D, 3 * D)
    assert modern["head.logits.kernel"].shape == (D, 3)


def test_missing_tensor_and_extra_layer_are_named():
    state = _state(np.random.default_rng(0))
    del state["encoder.sentence_encoder.layers.1.fc2.bias"]
    with pytest.raises(ConversionError, match="layers.1.fc2.bias"):
        fairseq.named_weights(state, LAYERS)
    with pytest.raises(ConversionError, match="more than the 1 layers"):
        fairseq.named_weights(_state(np.random.default_rng(0)), 1)


def test_unsupported_architecture_fields_are_refused():
    args = {"encoder_layers": 2, "encoder_attention_heads": 2, "encoder_embed_dim": 8, "encoder_ffn_embed_dim": 16}
    assert fairseq.backbone_arguments({**args, "activation_fn": "gelu_accurate"})["activation"] == "gelu_accurate"
    with pytest.raises(ConversionError, match="activation_fn='swish'"):
        fairseq.backbone_arguments({**args, "activation_fn": "swish"})
