"""Helpers and fixtures shared by the preset tests (imported by test_presets.py and test_hub.py).

Not a conftest.py: test folders have no __init__.py, so a second module named `conftest`
would shadow tests/conftest.py for the `from conftest import ...` of other test modules.
"""

import numpy as np
import pytest

from conftest import shared_path

# A small geometry with roberta-base's real vocabulary (so the real tokenizer files fit).
VOCABULARY_SIZE = 50265
NUM_LAYERS = 2
HIDDEN_DIM = 32
NUM_HEADS = 2
INTERMEDIATE_DIM = 64
MAX_SEQUENCE_LENGTH = 64

TEXTS = [
    "The movie was wonderful, I loved every minute of it!",
    "Terrible.",
    "An okay film: not great, not bad. Some scenes dragged on   far too long...",
    "Café déjà vu — naïve résumé 🙂",
]


@pytest.fixture(autouse=True)
def isolated_hub_environment(tmp_path, monkeypatch):
    """Every test gets its own cache under tmp_path and an endpoint on 127.0.0.1 (the discard
    port, where nothing listens), so nothing reaches the internet or writes to ~/.cache."""
    monkeypatch.setenv("ROBERTA_TF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("ROBERTA_TF_HUB_TIMEOUT", "5")
    for name in ("HF_HUB_OFFLINE", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def small_backbone(seed=0, **overrides):
    from roberta_tf.models import RobertaBackbone
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    return RobertaBackbone(
        **{
            "vocabulary_size": VOCABULARY_SIZE,
            "num_layers": NUM_LAYERS,
            "num_heads": NUM_HEADS,
            "hidden_dim": HIDDEN_DIM,
            "intermediate_dim": INTERMEDIATE_DIM,
            "max_sequence_length": MAX_SEQUENCE_LENGTH,
            **overrides,
        }
    )


def link_tokenizer_files(directory):
    """Symlinks the shared roberta-base vocab.json and merges.txt into `directory` (a tmp dir)."""
    for name in ("vocab.json", "merges.txt"):
        (directory / name).symlink_to(shared_path("roberta-base", name))


def named_values(model):
    return {name: variable.numpy() for name, variable in model.named_weights().items()}


# === Hugging Face reference checkpoints (torch) ===


def _perturbed(model, torch, seed):
    """Adds noise to every parameter, so biases and LayerNorms are not their 0/1 init."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.02)
    return model.eval()


def _hf_config(transformers, **overrides):
    return transformers.RobertaConfig(
        **{
            "vocab_size": VOCABULARY_SIZE,
            "hidden_size": HIDDEN_DIM,
            "num_hidden_layers": NUM_LAYERS,
            "num_attention_heads": NUM_HEADS,
            "intermediate_size": INTERMEDIATE_DIM,
            "max_position_embeddings": MAX_SEQUENCE_LENGTH + 2,
            "type_vocab_size": 1,
            "layer_norm_eps": 1e-5,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
            **overrides,
        }
    )


def _torch_modules():
    transformers = pytest.importorskip(
        "transformers", reason="transformers is not installed (needed to build Hugging Face reference checkpoints)"
    )
    torch = pytest.importorskip("torch", reason="torch is not installed (needed to run the Hugging Face reference)")
    return torch, transformers


# Built once per session although both test modules import the fixtures (each import makes
# its own fixture definition, so pytest's session cache alone would build them twice).
_BUILT = {}


def _once(key, tmp_path_factory, build):
    if _BUILT.get(key, (None,))[0] is not tmp_path_factory:
        _BUILT[key] = (tmp_path_factory, build())
    return _BUILT[key][1]


@pytest.fixture(scope="session")
def hf_classifier_checkpoint(tmp_path_factory):
    """(directory, torch model): a perturbed 3-class RobertaForSequenceClassification written by
    save_pretrained (model.safetensors + config.json), plus links to the real tokenizer files."""
    return _once("classifier", tmp_path_factory, lambda: _build_hf_classifier(tmp_path_factory))


@pytest.fixture(scope="session")
def hf_backbone_checkpoint(tmp_path_factory):
    """(directory, torch model): a perturbed RobertaModel (no head) written by save_pretrained."""
    return _once("backbone", tmp_path_factory, lambda: _build_hf_backbone(tmp_path_factory))


def _build_hf_classifier(tmp_path_factory):
    torch, transformers = _torch_modules()
    torch.manual_seed(0)
    config = _hf_config(
        transformers, num_labels=3, id2label={0: "neg", 1: "neu", 2: "pos"}, label2id={"neg": 0, "neu": 1, "pos": 2}
    )
    model = _perturbed(transformers.RobertaForSequenceClassification(config), torch, seed=1)
    directory = tmp_path_factory.mktemp("hf_classifier")
    model.save_pretrained(str(directory))
    assert (directory / "model.safetensors").is_file() and (directory / "config.json").is_file()
    link_tokenizer_files(directory)
    return directory, model


def _build_hf_backbone(tmp_path_factory):
    torch, transformers = _torch_modules()
    torch.manual_seed(2)
    model = _perturbed(transformers.RobertaModel(_hf_config(transformers)), torch, seed=3)
    directory = tmp_path_factory.mktemp("hf_backbone")
    model.save_pretrained(str(directory))
    link_tokenizer_files(directory)
    return directory, model


def torch_forward(model, token_ids, padding_mask):
    """A Hugging Face model on numpy ids and mask -> logits (classifier) or last_hidden_state."""
    import torch

    with torch.no_grad():
        output = model(
            input_ids=torch.from_numpy(np.asarray(token_ids, np.int64)),
            attention_mask=torch.from_numpy(np.asarray(padding_mask).astype(np.int64)),
        )
    result = output.logits if getattr(output, "logits", None) is not None else output.last_hidden_state
    return result.numpy()
