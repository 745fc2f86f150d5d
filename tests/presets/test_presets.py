"""Preset directories: save/load round trips, atomic saves, broken presets, and Hugging Face
checkpoint directories compared with transformers' own forward pass."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from preset_helpers import (  # noqa: F401 (fixtures)
    MAX_SEQUENCE_LENGTH,
    TEXTS,
    hf_backbone_checkpoint,
    hf_classifier_checkpoint,
    isolated_hub_environment,
    named_values,
    small_backbone,
    torch_forward,
)
from roberta_tf.models import (
    RobertaBackbone,
    RobertaTextClassifier,
    RobertaTextClassifierPreprocessor,
)
from roberta_tf.presets import weights
from roberta_tf.presets.preset_format import PresetError

LABELS = ["negative", "neutral", "positive"]
SEQUENCE_LENGTH = 32


def _classifier(tokenizer, seed=0, label_names=LABELS):
    backbone = small_backbone(seed=seed)
    preprocessor = RobertaTextClassifierPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
    tf_keras.utils.set_random_seed(seed + 100)
    return RobertaTextClassifier(
        backbone, num_classes=3, preprocessor=preprocessor, label_names=label_names, dropout=0.1
    )


@pytest.fixture(scope="module")
def classifier(roberta_tokenizer):
    return _classifier(roberta_tokenizer)


@pytest.fixture(scope="module")
def classifier_preset(classifier, tmp_path_factory):
    directory = tmp_path_factory.mktemp("saved") / "classifier"
    classifier.save_to_preset(str(directory))
    return directory


@pytest.fixture(scope="module")
def loaded_classifier(classifier_preset):
    return RobertaTextClassifier.from_preset(str(classifier_preset))


@pytest.fixture(scope="module")
def backbone_preset(tmp_path_factory):
    backbone = small_backbone(seed=7)
    directory = tmp_path_factory.mktemp("saved") / "backbone"
    backbone.save_to_preset(str(directory))
    return directory, backbone


def _ids(batch=3, length=12, seed=0):
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(3, 50265, size=(batch, length)).astype("int32")
    padding_mask = np.ones((batch, length), "int32")
    padding_mask[1, 7:] = 0
    token_ids[1, 7:] = 1
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def _copy(directory, tmp_path):
    copy = tmp_path / "preset"
    shutil.copytree(directory, copy)
    return copy


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# === Round trips ===


def test_classifier_round_trip_gives_identical_predictions(classifier, loaded_classifier):
    expected = classifier.predict(TEXTS, verbose=0)
    actual = loaded_classifier.predict(TEXTS, verbose=0)
    assert expected.shape == (len(TEXTS), 3)
    assert np.max(np.abs(actual - expected)) == 0


def test_classifier_round_trip_keeps_labels_head_and_preprocessor(classifier, loaded_classifier):
    assert loaded_classifier.label_names == LABELS
    assert loaded_classifier.num_classes == 3
    assert loaded_classifier.hidden_dim == classifier.hidden_dim
    assert loaded_classifier.dropout == classifier.dropout
    assert loaded_classifier.activation == classifier.activation
    assert loaded_classifier.preprocessor.sequence_length == SEQUENCE_LENGTH
    assert loaded_classifier.preprocessor.truncate == classifier.preprocessor.truncate
    assert loaded_classifier.preprocessor.padding == classifier.preprocessor.padding
    expected = classifier.preprocessor(tf.constant(TEXTS))
    actual = loaded_classifier.preprocessor(tf.constant(TEXTS))
    np.testing.assert_array_equal(actual["token_ids"], expected["token_ids"])
    np.testing.assert_array_equal(actual["padding_mask"], expected["padding_mask"])
    assert loaded_classifier.backbone.get_config() | {"name": None} == classifier.backbone.get_config() | {"name": None}


def test_classifier_round_trip_weights_are_equal(classifier, loaded_classifier):
    expected, actual = named_values(classifier), named_values(loaded_classifier)
    assert actual.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def test_backbone_only_round_trip(backbone_preset):
    directory, backbone = backbone_preset
    config = json.loads((directory / "config.json").read_text())
    assert config["task"] == "RobertaBackbone" and config["classifier"] is None and config["tokenizer"] is None
    loaded = RobertaBackbone.from_preset(str(directory))
    assert loaded.get_config() | {"name": None} == backbone.get_config() | {"name": None}
    expected, actual = named_values(backbone), named_values(loaded)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    inputs = _ids()
    assert np.max(np.abs(loaded(inputs).numpy() - backbone(inputs).numpy())) == 0


def test_backbone_from_classifier_preset_ignores_the_head(classifier, classifier_preset):
    loaded = RobertaBackbone.from_preset(str(classifier_preset))
    expected = named_values(classifier.backbone)
    actual = named_values(loaded)
    assert actual.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def test_other_num_classes_builds_new_head_over_saved_backbone(classifier, classifier_preset):
    loaded = RobertaTextClassifier.from_preset(str(classifier_preset), num_classes=5, preprocessor=None)
    assert loaded.num_classes == 5
    assert loaded.output_dense.kernel.shape == (loaded.hidden_dim, 5)
    assert loaded.label_names is None  # the saved names belong to the 3-class head
    expected = named_values(classifier.backbone)
    actual = named_values(loaded.backbone)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert loaded.predict(_ids(), verbose=0).shape == (3, 5)


def test_same_num_classes_keeps_the_saved_head(classifier, classifier_preset):
    loaded = RobertaTextClassifier.from_preset(str(classifier_preset), num_classes=3, preprocessor=None)
    np.testing.assert_array_equal(loaded.output_dense.kernel.numpy(), classifier.output_dense.kernel.numpy())
    assert loaded.label_names == LABELS


def test_classifier_from_backbone_only_preset_needs_num_classes(backbone_preset):
    directory, _ = backbone_preset
    with pytest.raises(PresetError, match="no classification head: pass num_classes"):
        RobertaTextClassifier.from_preset(str(directory))


def test_classifier_from_backbone_only_preset_with_num_classes(backbone_preset):
    directory, backbone = backbone_preset
    loaded = RobertaTextClassifier.from_preset(str(directory), num_classes=2, preprocessor=None)
    assert loaded.num_classes == 2
    np.testing.assert_array_equal(
        loaded.backbone.embedding.token_embedding.numpy(), backbone.embedding.token_embedding.numpy()
    )


def test_classifier_from_preset_without_tokenizer_files_asks_for_preprocessor_none(backbone_preset):
    directory, _ = backbone_preset
    with pytest.raises(PresetError, match="no tokenizer files: pass preprocessor=None"):
        RobertaTextClassifier.from_preset(str(directory), num_classes=2)


def test_load_weights_false_gives_same_architecture_with_other_weights(classifier, classifier_preset):
    tf_keras.utils.set_random_seed(12345)
    fresh = RobertaTextClassifier.from_preset(str(classifier_preset), load_weights=False, preprocessor=None)
    expected, actual = named_values(classifier), named_values(fresh)
    assert {k: v.shape for k, v in actual.items()} == {k: v.shape for k, v in expected.items()}
    assert fresh.label_names == LABELS
    assert not np.array_equal(actual["embeddings.token_embedding"], expected["embeddings.token_embedding"])
    assert not np.array_equal(actual["layers.0.attention.qkv.kernel"], expected["layers.0.attention.qkv.kernel"])


def test_preset_directory_holds_the_files_and_their_checksums(classifier_preset):
    names = sorted(p.name for p in classifier_preset.iterdir())
    assert names == ["config.json", "merges.txt", "metadata.json", "model.safetensors", "vocab.json"]
    metadata = json.loads((classifier_preset / "metadata.json").read_text())
    assert set(metadata["files"]) == {"config.json", "merges.txt", "model.safetensors", "vocab.json"}
    for name, digest in metadata["files"].items():
        assert _sha256(classifier_preset / name) == digest, name
    config = json.loads((classifier_preset / "config.json").read_text())
    assert config["format"] == "roberta_tf.preset" and config["format_version"] == 1
    assert config["task"] == "RobertaTextClassifier"
    assert config["classifier"]["label_names"] == LABELS
    assert config["preprocessor"]["sequence_length"] == SEQUENCE_LENGTH


def test_saved_tokenizer_files_match_the_source_vocabulary(classifier_preset):
    from conftest import shared_path

    saved = json.loads((classifier_preset / "vocab.json").read_text(encoding="utf-8"))
    original = json.loads(shared_path("roberta-base", "vocab.json").read_text(encoding="utf-8"))
    assert saved == original
    saved_merges = (classifier_preset / "merges.txt").read_text(encoding="utf-8").splitlines()
    original_merges = shared_path("roberta-base", "merges.txt").read_text(encoding="utf-8").splitlines()
    assert [m for m in saved_merges[1:] if m] == [m for m in original_merges[1:] if m]


# === Atomic saves ===


def test_save_refuses_a_non_empty_directory(backbone_preset, tmp_path):
    _, backbone = backbone_preset
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("user data")
    with pytest.raises(PresetError, match="not empty; pass overwrite=True"):
        backbone.save_to_preset(str(target))
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing staged


def test_save_into_an_existing_empty_directory(backbone_preset, tmp_path):
    _, backbone = backbone_preset
    target = tmp_path / "parent" / "out"
    target.mkdir(parents=True)
    backbone.save_to_preset(str(target))
    assert (target / "model.safetensors").is_file()
    assert [p.name for p in target.parent.iterdir()] == ["out"]


def test_overwrite_replaces_the_whole_directory(classifier, classifier_preset, roberta_tokenizer, tmp_path):
    target = tmp_path / "parent" / "preset"
    shutil.copytree(classifier_preset, target)
    (target / "stale.bin").write_bytes(b"left over from an older preset")
    other = _classifier(roberta_tokenizer, seed=3, label_names=["a", "b", "c"])
    with pytest.raises(PresetError):
        other.save_to_preset(str(target))
    other.save_to_preset(str(target), overwrite=True)
    assert [p.name for p in target.parent.iterdir()] == ["preset"]  # no .tmp-preset-* / .old-preset-*
    assert sorted(p.name for p in target.iterdir()) == [
        "config.json", "merges.txt", "metadata.json", "model.safetensors", "vocab.json",
    ]
    loaded = RobertaTextClassifier.from_preset(str(target), preprocessor=None)
    assert loaded.label_names == ["a", "b", "c"]
    for name, value in named_values(other).items():
        np.testing.assert_array_equal(named_values(loaded)[name], value, err_msg=name)
    assert not np.array_equal(
        loaded.backbone.embedding.token_embedding.numpy(), classifier.backbone.embedding.token_embedding.numpy()
    )


def test_failed_save_leaves_no_directory(backbone_preset, tmp_path, monkeypatch):
    _, backbone = backbone_preset

    def failing_write(*args, **kwargs):
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(weights, "write_variables", failing_write)
    parent = tmp_path / "parent"
    with pytest.raises(RuntimeError, match="simulated"):
        backbone.save_to_preset(str(parent / "preset"))
    assert not (parent / "preset").exists()
    assert list(parent.iterdir()) == []


def test_failed_overwrite_keeps_the_old_preset(backbone_preset, tmp_path, monkeypatch):
    directory, backbone = backbone_preset
    target = tmp_path / "parent" / "preset"
    shutil.copytree(directory, target)
    before = {p.name: _sha256(p) for p in target.iterdir()}

    def failing_write(*args, **kwargs):
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(weights, "write_variables", failing_write)
    with pytest.raises(RuntimeError, match="simulated"):
        small_backbone(seed=9).save_to_preset(str(target), overwrite=True)
    assert [p.name for p in target.parent.iterdir()] == ["preset"]
    assert {p.name: _sha256(p) for p in target.iterdir()} == before


# === Broken presets ===


def test_config_that_is_not_json(backbone_preset, tmp_path):
    directory = _copy(backbone_preset[0], tmp_path)
    (directory / "config.json").write_text('{"format": "roberta_tf.preset", ', encoding="utf-8")
    with pytest.raises(PresetError, match=r"config\.json: not valid JSON"):
        RobertaBackbone.from_preset(str(directory))


def test_config_with_an_unknown_format_version(backbone_preset, tmp_path):
    directory = _copy(backbone_preset[0], tmp_path)
    config = json.loads((directory / "config.json").read_text())
    config["format_version"] = 99
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(PresetError, match=r"config\.json: format_version 99; this roberta_tf reads version 1"):
        RobertaBackbone.from_preset(str(directory))


def test_weight_missing_from_the_safetensors_file(classifier_preset, tmp_path):
    from safetensors.numpy import save_file

    directory = _copy(classifier_preset, tmp_path)
    arrays = weights.read(directory / "model.safetensors")
    del arrays["layers.1.attention.qkv.bias"]
    save_file(arrays, str(directory / "model.safetensors"))
    with pytest.raises(PresetError, match=r"missing weights 'layers\.1\.attention\.qkv\.bias'") as error:
        RobertaTextClassifier.from_preset(str(directory), preprocessor=None)
    assert str(directory) in str(error.value)


def test_weight_with_the_wrong_shape(classifier_preset, tmp_path):
    from safetensors.numpy import save_file

    directory = _copy(classifier_preset, tmp_path)
    arrays = weights.read(directory / "model.safetensors")
    arrays["embeddings.position_embedding"] = arrays["embeddings.position_embedding"][:10]
    save_file(arrays, str(directory / "model.safetensors"))
    with pytest.raises(
        PresetError,
        match=rf"weight 'embeddings\.position_embedding' has shape \(10, 32\), the model expects "
        rf"\({MAX_SEQUENCE_LENGTH + 2}, 32\)",
    ):
        RobertaBackbone.from_preset(str(directory))


def test_weight_with_no_place_in_the_model(backbone_preset, tmp_path):
    from safetensors.numpy import save_file

    directory = _copy(backbone_preset[0], tmp_path)
    arrays = weights.read(directory / "model.safetensors")
    arrays["layers.2.attention.qkv.bias"] = arrays["layers.1.attention.qkv.bias"]
    save_file(arrays, str(directory / "model.safetensors"))
    with pytest.raises(PresetError, match=r"no place in this model: 'layers\.2\.attention\.qkv\.bias'"):
        RobertaBackbone.from_preset(str(directory))


def test_truncated_safetensors_file(classifier_preset, tmp_path):
    directory = _copy(classifier_preset, tmp_path)
    path = directory / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PresetError, match=r"model\.safetensors: not a readable safetensors file"):
        RobertaTextClassifier.from_preset(str(directory), preprocessor=None)


def test_missing_tokenizer_file_named_in_config(classifier_preset, tmp_path):
    directory = _copy(classifier_preset, tmp_path)
    (directory / "merges.txt").unlink()
    with pytest.raises(PresetError, match=r"merges\.txt: tokenizer file named in config\.json is missing"):
        RobertaTextClassifier.from_preset(str(directory))


def test_unknown_preset_name_lists_the_named_presets():
    with pytest.raises(PresetError) as error:
        RobertaTextClassifier.from_preset("roberta_tiny_nowhere")
    message = str(error.value)
    assert "'roberta_tiny_nowhere'" in message
    for name in ("roberta_base_en", "roberta_large_en", "xlm_roberta_base_multi", "xlm_roberta_large_multi"):
        assert name in message


def test_directory_that_is_neither_preset_nor_checkpoint(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PresetError, match="neither a roberta_tf preset nor a Hugging Face checkpoint"):
        RobertaBackbone.from_preset(str(tmp_path / "empty"))


# === Hugging Face checkpoint directories ===


@pytest.fixture(scope="module")
def hf_classifier(hf_classifier_checkpoint):
    return RobertaTextClassifier.from_preset(str(hf_classifier_checkpoint[0]))


def test_hf_classifier_directory_matches_transformers(hf_classifier_checkpoint, hf_classifier):
    _, torch_model = hf_classifier_checkpoint
    classifier = hf_classifier
    assert classifier.label_names == ["neg", "neu", "pos"]
    assert classifier.preprocessor.sequence_length == MAX_SEQUENCE_LENGTH
    inputs = classifier.preprocessor(tf.constant(TEXTS))
    token_ids, padding_mask = inputs["token_ids"].numpy(), inputs["padding_mask"].numpy()
    assert not padding_mask.all()  # a padded batch
    expected = torch_forward(torch_model, token_ids, padding_mask)
    actual = classifier.predict(TEXTS, verbose=0)
    assert np.max(np.abs(actual - expected)) < 1e-5
    assert np.abs(expected).max() > 1e-2  # the comparison is not between two near-zero outputs


def test_hf_classifier_directory_matches_transformers_with_longest_padding(
    hf_classifier_checkpoint, hf_classifier
):
    _, torch_model = hf_classifier_checkpoint
    preprocessor = RobertaTextClassifierPreprocessor(
        hf_classifier.preprocessor.tokenizer, sequence_length=MAX_SEQUENCE_LENGTH, padding="longest"
    )
    inputs = preprocessor(tf.constant(TEXTS))
    token_ids, padding_mask = inputs["token_ids"].numpy(), inputs["padding_mask"].numpy()
    assert token_ids.shape[1] < MAX_SEQUENCE_LENGTH and not padding_mask.all()
    expected = torch_forward(torch_model, token_ids, padding_mask)
    actual = hf_classifier({"token_ids": token_ids, "padding_mask": padding_mask}).numpy()
    assert np.max(np.abs(actual - expected)) < 1e-5


def test_hf_backbone_directory_matches_transformers(hf_backbone_checkpoint, roberta_tokenizer):
    directory, torch_model = hf_backbone_checkpoint
    backbone = RobertaBackbone.from_preset(str(directory))
    preprocessor = RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=48, padding="longest")
    inputs = preprocessor(tf.constant(TEXTS))
    token_ids, padding_mask = inputs["token_ids"].numpy(), inputs["padding_mask"].numpy()
    assert not padding_mask.all()
    expected = torch_forward(torch_model, token_ids, padding_mask)
    actual = backbone({"token_ids": token_ids, "padding_mask": padding_mask}).numpy()
    assert actual.shape == expected.shape
    assert np.max(np.abs(actual - expected)) < 1e-5


def test_hf_backbone_directory_has_no_head(hf_backbone_checkpoint):
    directory, _ = hf_backbone_checkpoint
    with pytest.raises(PresetError, match="no classification head: pass num_classes"):
        RobertaTextClassifier.from_preset(str(directory), preprocessor=None)


def test_hf_classifier_resaved_as_preset_round_trips(hf_classifier, tmp_path):
    classifier = hf_classifier
    classifier.save_to_preset(str(tmp_path / "converted"))
    loaded = RobertaTextClassifier.from_preset(str(tmp_path / "converted"))
    assert loaded.label_names == ["neg", "neu", "pos"]
    inputs = classifier.preprocessor(tf.constant(TEXTS))
    np.testing.assert_array_equal(loaded.preprocessor(tf.constant(TEXTS))["token_ids"], inputs["token_ids"])
    assert np.max(np.abs(loaded(inputs).numpy() - classifier(inputs).numpy())) == 0
