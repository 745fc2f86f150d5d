"""A small transformers RobertaForSequenceClassification with perturbed weights, and Hugging
Face checkpoint directories written from it (tokenizer files linked from ../shared/data)."""

import os

import pytest

from conftest import shared_path


def perturbed_classifier():
    torch = pytest.importorskip("torch", reason="the test extra (torch) is not installed")
    transformers = pytest.importorskip("transformers", reason="the test extra (transformers) is not installed")
    config = transformers.RobertaConfig(
        vocab_size=50265, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=66, type_vocab_size=1, layer_norm_eps=1e-5, num_labels=3, pad_token_id=1,
        id2label={0: "negative", 1: "neutral", 2: "positive"}, label2id={"negative": 0, "neutral": 1, "positive": 2},
    )
    torch.manual_seed(0)
    model = transformers.RobertaForSequenceClassification(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    return model


def checkpoint_dir(model, directory, safe_serialization=True):
    import torch

    if safe_serialization:
        model.save_pretrained(directory)
    else:  # transformers 5 no longer writes pytorch_model.bin; older releases did, as torch.save does
        model.config.save_pretrained(directory)
        torch.save(model.state_dict(), directory / "pytorch_model.bin")
    for name in ("vocab.json", "merges.txt"):
        os.symlink(shared_path("roberta-base", name), directory / name)
    return directory
