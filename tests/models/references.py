"""Reference models (fairseq, Hugging Face transformers) with perturbed random weights, and
their weights mapped into roberta_tf models through the converters' mappings."""

import argparse
import types

import numpy as np
import pytest

from conftest import shared_path

SMALL = {"encoder_layers": 2, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64, "encoder_attention_heads": 4}
MAX_POSITIONS = 64
NUM_CLASSES = 3


def sst2_lines(count):
    with open(shared_path("sst2", "dev.tsv"), encoding="utf-8") as f:
        return [line.split("\t")[0] for line in f.read().splitlines()[1:]][:count]


def xnli_pairs(count, language="en"):
    with open(shared_path("xnli-dev", f"dev-{language}.tsv"), encoding="utf-8") as f:
        rows = [line.split("\t") for line in f.read().splitlines()]
    return [r[0] for r in rows[:count]], [r[1] for r in rows[:count]]


def perturb(module, seed=0):
    """Adds noise to every parameter, so no weight keeps its initial value (LayerNorm gamma=1,
    beta=0, zero biases) and any mis-mapped tensor shows in the outputs."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)


def fairseq_classifier(**overrides):
    """A fairseq RobertaModel (sentence prediction: head "cls") over the real roberta-base
    dictionary, small geometry, every parameter perturbed. Returns (model, args)."""
    pytest.importorskip("torch", reason="the reference extra (torch) is not installed")
    pytest.importorskip("fairseq", reason="fairseq (pip install fairseq-fixed) is not installed")
    from fairseq.data import Dictionary
    from fairseq.models.roberta import RobertaModel
    from fairseq.models.roberta.model import base_architecture

    dictionary = Dictionary.load(str(shared_path("fairseq-gpt2-bpe", "dict.txt")))
    dictionary.add_symbol("<mask>")
    args = argparse.Namespace(max_positions=MAX_POSITIONS, **{**SMALL, **overrides})
    base_architecture(args)
    model = RobertaModel.build_model(args, types.SimpleNamespace(source_dictionary=dictionary))
    model.register_classification_head("cls", num_classes=NUM_CLASSES)
    perturb(model)
    return model.eval(), args


def transformers_classifier():
    """A transformers RobertaForSequenceClassification, small geometry, perturbed."""
    pytest.importorskip("torch", reason="the reference extra (torch) is not installed")
    transformers = pytest.importorskip("transformers", reason="the reference extra (transformers) is not installed")
    config = transformers.RobertaConfig(
        vocab_size=50265,
        hidden_size=SMALL["encoder_embed_dim"],
        num_hidden_layers=SMALL["encoder_layers"],
        num_attention_heads=SMALL["encoder_attention_heads"],
        intermediate_size=SMALL["encoder_ffn_embed_dim"],
        max_position_embeddings=MAX_POSITIONS + 2,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        num_labels=NUM_CLASSES,
        pad_token_id=1,
    )
    model = transformers.RobertaForSequenceClassification(config)
    perturb(model, seed=1)
    return model.eval(), config


def state_numpy(model):
    return {key: value.detach().cpu().numpy() for key, value in model.state_dict().items()}


def roberta_tf_from_fairseq(model, args):
    from roberta_tf.converters import fairseq
    from roberta_tf.models import RobertaBackbone, RobertaTextClassifier
    from roberta_tf.presets import weights

    arguments = fairseq.backbone_arguments(args)
    state = state_numpy(model)
    backbone = RobertaBackbone(vocabulary_size=state["encoder.sentence_encoder.embed_tokens.weight"].shape[0], **arguments)
    classifier = RobertaTextClassifier(backbone, NUM_CLASSES, compile=False)
    weights.assign(classifier.named_weights(), fairseq.named_weights(state, arguments["num_layers"], head="cls"), "fairseq")
    return classifier


def roberta_tf_from_transformers(model, config):
    from roberta_tf.converters import huggingface
    from roberta_tf.models import RobertaBackbone, RobertaTextClassifier
    from roberta_tf.presets import weights

    arguments = huggingface.backbone_arguments(config.to_dict())
    backbone = RobertaBackbone(**arguments)
    classifier = RobertaTextClassifier(backbone, NUM_CLASSES, compile=False)
    weights.assign(classifier.named_weights(), huggingface.named_weights(state_numpy(model), arguments["num_layers"]), "hf")
    return classifier


def packed(preprocessor, x):
    """Preprocessor output as numpy int32 arrays (padding mask 0/1)."""
    out = preprocessor(x)
    return {key: np.asarray(value).astype(np.int32) for key, value in out.items()}
