"""Hugging Face checkpoint directories (safetensors and pytorch_model.bin) -> presets with
outputs identical to transformers' RobertaForSequenceClassification."""

import json
import os

import hf_fixtures
import numpy as np
import pytest

from conftest import shared_path
from roberta_tf.cli.convert import write_preset

TEXTS = ["A gripping, funny film.", "Dull and far too long.", "", "It is what it is."]


@pytest.fixture(scope="module")
def hf_classifier():
    return hf_fixtures.perturbed_classifier()


@pytest.mark.parametrize("safe_serialization", [True, False], ids=["safetensors", "pytorch_model.bin"])
def test_converted_preset_matches_transformers(hf_classifier, tmp_path, safe_serialization):
    import torch

    from roberta_tf.converters import huggingface
    from roberta_tf.models import RobertaTextClassifier

    source = hf_fixtures.checkpoint_dir(hf_classifier, tmp_path / "hf", safe_serialization)
    weights_file = "model.safetensors" if safe_serialization else "pytorch_model.bin"
    assert (source / weights_file).is_file()
    preset = write_preset(huggingface.convert(source), tmp_path / "preset")
    classifier = RobertaTextClassifier.from_preset(str(preset))
    assert classifier.label_names == ["negative", "neutral", "positive"]
    packed = classifier.preprocessor(TEXTS)
    ids, mask = np.array(packed["token_ids"]), np.array(packed["padding_mask"]).astype(np.int64)
    with torch.inference_mode():
        expected = hf_classifier(input_ids=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(mask)).logits.numpy()
    assert np.abs(classifier.predict(TEXTS, verbose=0) - expected).max() <= 1e-5
    metadata = json.loads((preset / "metadata.json").read_text())
    assert metadata["source"]["type"] == "huggingface" and metadata["source"]["weights"] == weights_file
    assert len(metadata["source"]["sha256"]) == 64


def test_tokenizer_size_must_match_the_embedding(hf_classifier, tmp_path):
    from roberta_tf.converters import huggingface
    from roberta_tf.converters.layout import ConversionError

    source = tmp_path / "hf"
    hf_classifier.save_pretrained(source)
    vocabulary = json.loads(shared_path("roberta-base", "vocab.json").read_text(encoding="utf-8"))
    vocabulary["\u0120extra_token"] = len(vocabulary)
    (source / "vocab.json").write_text(json.dumps(vocabulary), encoding="utf-8")
    os.symlink(shared_path("roberta-base", "merges.txt"), source / "merges.txt")
    with pytest.raises(ConversionError, match="50266 ids.*50265"):
        huggingface.convert(source)


def test_directory_without_weights_is_refused(tmp_path):
    from roberta_tf.converters import huggingface
    from roberta_tf.converters.layout import ConversionError

    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "roberta", "vocab_size": 10, "num_hidden_layers": 1, "num_attention_heads": 1,
        "hidden_size": 4, "intermediate_size": 8, "max_position_embeddings": 10,
    }))
    with pytest.raises(ConversionError, match="no model.safetensors or pytorch_model.bin"):
        huggingface.convert(tmp_path)


def test_tensor_of_the_wrong_shape_is_named(hf_classifier, tmp_path):
    from safetensors.numpy import load_file, save_file

    from roberta_tf.converters import huggingface
    from roberta_tf.converters.layout import ConversionError

    source = hf_fixtures.checkpoint_dir(hf_classifier, tmp_path / "hf")
    state = load_file(str(source / "model.safetensors"))
    key = "roberta.encoder.layer.1.intermediate.dense.weight"
    state[key] = state[key][:-1]
    save_file(state, str(source / "model.safetensors"))
    with pytest.raises(ConversionError, match=r"layer\.1\.intermediate\.dense\.weight.*\(63, 32\).*\(64, 32\)"):
        huggingface.convert(source)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_checkpoints_convert_exactly(hf_classifier, tmp_path, dtype):
    """float16/bfloat16 weights become the float32 values they stand for (bfloat16 widened
    bit-exactly by the reader)."""
    import copy

    import torch

    from roberta_tf.converters import huggingface
    from roberta_tf.models import RobertaTextClassifier

    rounded = copy.deepcopy(hf_classifier).to(getattr(torch, dtype))
    source = tmp_path / "hf"
    source.mkdir()
    rounded.config.save_pretrained(source)
    torch.save(rounded.state_dict(), source / "pytorch_model.bin")
    for name in ("vocab.json", "merges.txt"):
        os.symlink(shared_path("roberta-base", name), source / name)
    reference = rounded.float().eval()
    classifier = RobertaTextClassifier.from_preset(str(write_preset(huggingface.convert(source), tmp_path / "preset")))
    packed = classifier.preprocessor(TEXTS)
    ids, mask = np.array(packed["token_ids"]), np.array(packed["padding_mask"]).astype(np.int64)
    with torch.inference_mode():
        expected = reference(input_ids=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(mask)).logits.numpy()
    assert np.abs(classifier.predict(TEXTS, verbose=0) - expected).max() <= 1e-5


def test_a_converted_checkpoint_loads_once_with_a_clear_error_after(hf_classifier, tmp_path):
    from roberta_tf.converters import huggingface
    from roberta_tf.converters.layout import ConversionError
    from roberta_tf.models import RobertaTextClassifier

    converted = huggingface.convert(hf_fixtures.checkpoint_dir(hf_classifier, tmp_path / "hf"))
    RobertaTextClassifier.from_preset(converted, preprocessor=None)
    with pytest.raises(ConversionError, match="already loaded into a model"):
        RobertaTextClassifier.from_preset(converted, preprocessor=None)
