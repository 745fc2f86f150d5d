"""Hugging Face RoBERTa (`RobertaModel`, `RobertaForSequenceClassification`): config.json and
state dict -> roberta_tf arguments and named weights.

Hugging Face adds a token-type embedding (one row for RoBERTa) to every token; fairseq has
none. It is folded into the position table (`position + token_type[0]`), exact up to float
rounding, so the converted model has fairseq's structure.
"""

import json
import pathlib

import numpy as np

from roberta_tf.converters import layout
from roberta_tf.converters.layout import ConversionError, fused_qkv, take

# Hugging Face `hidden_act` -> fairseq `activation_fn` names (RobertaBackbone's).
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_accurate", "gelu_pytorch_tanh": "gelu_accurate", "relu": "relu"}
_PADDING_INDEX = 1


def read_config(model_dir):
    path = pathlib.Path(model_dir) / "config.json"
    if not path.is_file():
        raise ConversionError(f"{path}: not found (a Hugging Face checkpoint directory has config.json).")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConversionError(f"{path}: not valid JSON ({error}).") from None


def backbone_arguments(config):
    """config.json (dict) -> RobertaBackbone keyword arguments."""
    model_type = config.get("model_type")
    if model_type not in ("roberta", "xlm-roberta", "camembert"):
        raise ConversionError(f"config.json: model_type {model_type!r} is not a RoBERTa model.")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ConversionError(f"config.json: position_embedding_type {config['position_embedding_type']!r} is not supported.")
    if config.get("pad_token_id", _PADDING_INDEX) != _PADDING_INDEX:
        raise ConversionError(f"config.json: pad_token_id must be {_PADDING_INDEX} (fairseq's positions).")
    activation = config.get("hidden_act", "gelu")
    if activation not in _ACTIVATIONS:
        raise ConversionError(f"config.json: hidden_act {activation!r} is not supported ({sorted(_ACTIVATIONS)}).")
    return {
        "vocabulary_size": int(config["vocab_size"]),
        "num_layers": int(config["num_hidden_layers"]),
        "num_heads": int(config["num_attention_heads"]),
        "hidden_dim": int(config["hidden_size"]),
        "intermediate_dim": int(config["intermediate_size"]),
        "dropout": float(config.get("hidden_dropout_prob", 0.1)),
        "max_sequence_length": int(config["max_position_embeddings"]) - _PADDING_INDEX - 1,
        "activation": _ACTIVATIONS[activation],
        "layer_norm_epsilon": float(config.get("layer_norm_eps", 1e-5)),
    }


def label_names(config):
    """`id2label` as a list, or None when it holds only the default LABEL_i names."""
    id2label = config.get("id2label")
    if not id2label:
        return None
    names = [id2label.get(str(i), id2label.get(i)) for i in range(len(id2label))]
    if any(name is None for name in names) or names == [f"LABEL_{i}" for i in range(len(names))]:
        return None
    return [str(name) for name in names]


def has_classifier(state):
    return "classifier.out_proj.weight" in state


def named_weights(state, num_layers):
    """HF state dict (numpy) -> `{name: array}` in roberta_tf's names; the classification
    head is included when present, the pooler and LM head are ignored (RoBERTa classifiers
    do not use them)."""
    prefix = "roberta." if "roberta.embeddings.word_embeddings.weight" in state else ""
    if f"{prefix}embeddings.word_embeddings.weight" not in state:
        raise ConversionError("Not a Hugging Face RoBERTa state dict: no 'roberta.embeddings.word_embeddings.weight'.")
    embeddings = f"{prefix}embeddings."
    positions = take(state, embeddings + "position_embeddings.weight", "huggingface")
    token_type_key = embeddings + "token_type_embeddings.weight"
    if token_type_key in state:
        token_types = np.asarray(state[token_type_key])
        positions = positions + token_types[0]  # RoBERTa's token_type_ids are all 0
    out = {
        "embeddings.token_embedding": take(state, embeddings + "word_embeddings.weight", "huggingface"),
        "embeddings.position_embedding": positions,
    }
    _layer_norm(out, "embeddings.layer_norm", state, embeddings + "LayerNorm")
    for i in range(num_layers):
        layer = f"{prefix}encoder.layer.{i}."
        target = f"layers.{i}."
        attention = layer + "attention.self."
        out[target + "attention.qkv.kernel"], out[target + "attention.qkv.bias"] = fused_qkv(
            *[(take(state, f"{attention}{p}.weight", "huggingface"), take(state, f"{attention}{p}.bias", "huggingface"))
              for p in ("query", "key", "value")],
            source=attention.rstrip("."),
        )
        _linear(out, target + "attention.output", state, layer + "attention.output.dense")
        _layer_norm(out, target + "attention_layer_norm", state, layer + "attention.output.LayerNorm")
        _linear(out, target + "feedforward.intermediate", state, layer + "intermediate.dense")
        _linear(out, target + "feedforward.output", state, layer + "output.dense")
        _layer_norm(out, target + "feedforward_layer_norm", state, layer + "output.LayerNorm")
    if f"{prefix}encoder.layer.{num_layers}.output.dense.weight" in state:
        raise ConversionError(f"The checkpoint has more than the {num_layers} layers config.json names.")
    if has_classifier(state):
        _linear(out, "head.pooled_dense", state, "classifier.dense")
        _linear(out, "head.logits", state, "classifier.out_proj")
    return out


def _linear(out, target, state, source):
    layout.put_linear(out, target, state, source, "huggingface")


def _layer_norm(out, target, state, source):
    # Checkpoints from before 2020 name LayerNorm parameters gamma/beta.
    layout.put_layer_norm(out, target, state, source, "huggingface", names=(("weight", "bias"), ("gamma", "beta")))
