"""Hostile or broken presets (issue 11): file names that leave the directory, configs that do
not match their weights file, absurd sequence lengths, non-finite weights, and the modes of
what is written."""

import json
import os
import shutil
import stat

import numpy as np
import pytest

from preset_helpers import isolated_hub_environment, small_backbone  # noqa: F401 (fixtures)
from roberta_tf.models import RobertaBackbone, RobertaTextClassifier, RobertaTextClassifierPreprocessor
from roberta_tf.presets import preset_format, weights
from roberta_tf.presets.preset_format import PresetError


@pytest.fixture(scope="module")
def preset(roberta_tokenizer, tmp_path_factory):
    backbone = small_backbone()
    preprocessor = RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=32)
    classifier = RobertaTextClassifier(backbone, num_classes=2, preprocessor=preprocessor)
    directory = tmp_path_factory.mktemp("hardening") / "preset"
    classifier.save_to_preset(str(directory))
    return directory


def _copy(preset, tmp_path, edit_config=None):
    directory = tmp_path / "copy"
    shutil.copytree(preset, directory)
    if edit_config is not None:
        config = json.loads((directory / "config.json").read_text())
        edit_config(config)
        (directory / "config.json").write_text(json.dumps(config))
    return directory


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..", "sub/vocab.json", "a\\b", ""])
def test_a_tokenizer_file_name_must_stay_inside_the_preset(preset, tmp_path, name):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-LINE\n")

    def point_outside(config):
        config["tokenizer"]["merges"] = name.replace("/etc/passwd", str(secret)) if name else name

    directory = _copy(preset, tmp_path, point_outside)
    with pytest.raises(PresetError, match="must be a file name inside the preset directory") as error:
        RobertaTextClassifier.from_preset(str(directory))
    assert "TOP-SECRET" not in str(error.value)


def test_errors_about_a_malformed_tokenizer_file_do_not_quote_it(preset, tmp_path):
    directory = _copy(preset, tmp_path)
    (directory / "merges.txt").write_text("#version: 0.2\nroot:x:0:0:TOP-SECRET:/root:/bin/bash\n")
    with pytest.raises(ValueError, match=r"merges\.txt:2: a merge line is two tokens") as error:
        RobertaTextClassifier.from_preset(str(directory))
    assert "TOP-SECRET" not in str(error.value)


def test_a_config_larger_than_its_weights_fails_before_any_model_is_built(preset, tmp_path, monkeypatch):
    """The weights file's header is compared with the config first: a small preset claiming a
    huge model must not allocate it (it used to build ~0.7 GB, then fail)."""

    def huge(config):
        config["backbone"].update(vocabulary_size=2_000_000, hidden_dim=1024, intermediate_dim=4096, num_heads=16)

    directory = _copy(preset, tmp_path, huge)

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built before the weights were checked against the config")

    monkeypatch.setattr(RobertaBackbone, "__init__", refuse)
    for load in (lambda: RobertaBackbone.from_preset(str(directory)),
                 lambda: RobertaTextClassifier.from_preset(str(directory), preprocessor=None)):
        with pytest.raises(PresetError, match=r"weight 'embeddings\.token_embedding' has shape \(50265, 32\)"):
            load()


def test_a_weights_file_with_a_non_float_tensor_is_refused_before_building(preset, tmp_path, monkeypatch):
    from safetensors.numpy import save_file

    directory = _copy(preset, tmp_path)
    arrays = weights.read(directory / "model.safetensors")
    arrays["head.logits.bias"] = arrays["head.logits.bias"].astype(np.int32)
    save_file(arrays, str(directory / "model.safetensors"))
    monkeypatch.setattr(RobertaBackbone, "__init__", lambda *a, **k: (_ for _ in ()).throw(AssertionError("built")))
    with pytest.raises(PresetError, match=r"'head\.logits\.bias' is not a float tensor"):
        RobertaTextClassifier.from_preset(str(directory), preprocessor=None)


def test_a_sequence_length_past_the_backbone_maximum_is_refused_at_load(preset, tmp_path):
    def absurd(config):
        config["preprocessor"]["sequence_length"] = 50_000_000

    directory = _copy(preset, tmp_path, absurd)
    with pytest.raises(PresetError, match=r"sequence_length must be at most 64"):
        RobertaTextClassifier.from_preset(str(directory))
    with pytest.raises(PresetError, match=r"at most 64"):
        RobertaTextClassifierPreprocessor.from_preset(str(preset), sequence_length=65)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_refused_naming_the_tensor(preset, tmp_path, bad):
    from safetensors.numpy import save_file

    directory = _copy(preset, tmp_path)
    arrays = weights.read(directory / "model.safetensors")
    arrays["layers.1.feedforward.output.kernel"] = arrays["layers.1.feedforward.output.kernel"].copy()
    arrays["layers.1.feedforward.output.kernel"][3, 4] = bad
    save_file(arrays, str(directory / "model.safetensors"))
    with pytest.raises(PresetError, match=r"'layers\.1\.feedforward\.output\.kernel' holds NaN or infinite values"):
        RobertaTextClassifier.from_preset(str(directory), preprocessor=None)


def test_a_converted_checkpoint_with_nan_is_refused(tmp_path):
    import hf_fixtures

    from roberta_tf.cli.convert import write_preset
    from roberta_tf.converters import huggingface

    model = hf_fixtures.perturbed_classifier()
    source = hf_fixtures.checkpoint_dir(model, tmp_path / "hf")
    from safetensors.numpy import load_file, save_file

    state = load_file(str(source / "model.safetensors"))
    state["classifier.dense.bias"] = state["classifier.dense.bias"].copy()
    state["classifier.dense.bias"][0] = np.nan
    save_file(state, str(source / "model.safetensors"))
    with pytest.raises(PresetError, match=r"'head\.pooled_dense\.bias' holds NaN"):
        write_preset(huggingface.convert(source), tmp_path / "preset")
    assert not (tmp_path / "preset").exists()


@pytest.mark.parametrize("variant", [{}, {"normalize_before": True}, {"embedding_layer_norm": False}])
def test_expected_weight_shapes_are_the_built_models(variant):
    backbone = small_backbone(**variant)
    classifier = RobertaTextClassifier(backbone, num_classes=5, hidden_dim=24, compile=False)
    built = {name: tuple(v.shape) for name, v in classifier.named_weights().items()}
    config = preset_format.backbone_arguments(backbone.get_config())
    assert preset_format.expected_weight_shapes(config, {"num_classes": 5, "hidden_dim": 24}) == built
    assert preset_format.expected_weight_shapes(config) == {k: v for k, v in built.items() if not k.startswith("head.")}


def _modes(root):
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_presets_and_exported_versions_are_readable_by_other_users(preset, roberta_tokenizer, tmp_path):
    """Directories and files follow the umask (0755 / 0644 under 022), so a TF Serving process
    running as another user can read them; staging once made them 0700 whatever the umask."""
    from roberta_tf.export.saved_model import export_saved_model

    old = os.umask(0o022)
    try:
        classifier = RobertaTextClassifier.from_preset(str(preset), preprocessor=None)
        classifier.save_to_preset(str(tmp_path / "preset"))
        version = export_saved_model(classifier, roberta_tokenizer, tmp_path / "models" / "m").path
    finally:
        os.umask(old)
    for root in (tmp_path / "preset", version):
        modes = _modes(root)
        assert modes, root
        for path, mode in modes.items():
            expected = 0o755 if (root / path).is_dir() else 0o644
            assert mode == expected, (root, path, oct(mode))
