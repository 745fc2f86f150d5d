"""`roberta_tf.artifacts`: every kind of artifact is found by its path and answers alike."""

import json
import os
import shutil

import numpy as np
import pytest

from roberta_tf import artifacts
from roberta_tf.artifacts import predictors as predictors_lib
from roberta_tf.export import tflite_metadata
from roberta_tf.export.saved_model_tokenizer import export_tokenizer_saved_model
from served_model import LABELS, PAIRS_A, PAIRS_B, SEQUENCE_LENGTH, TEXTS, classifier, exported, loaded, preset, tflite_model  # noqa: F401

BAD_TEXTS = [b"\xff\xfe invalid", b"nul\x00byte", "😀" * 300, ""]


@pytest.fixture(scope="module")
def predictors(preset, exported, tflite_model):  # noqa: F811
    return {
        "preset": predictors_lib.load(preset),
        "saved_model": predictors_lib.load(exported.path),
        "tflite": predictors_lib.load(tflite_model),
    }


def test_locate_names_each_kind_and_the_highest_version(preset, exported, tflite_model, tmp_path):  # noqa: F811
    assert artifacts.locate(preset).kind == "preset"
    assert artifacts.locate(exported.path).kind == "saved_model"
    assert artifacts.locate(tflite_model).kind == "tflite"
    named = artifacts.locate("roberta_base_en")
    assert (named.kind, named.local) == ("preset", False)
    # A base directory means its highest version, as TF Serving serves it (numerically: 10 > 9).
    base = tmp_path / "models" / "sst2"
    for version in ("9", "10"):
        shutil.copytree(exported.path, base / version)
    (base / "11").mkdir()  # no saved_model.pb: not a version
    assert artifacts.locate(base).path == str(base / "10")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing", "no such file or directory"),
        (lambda d: _write(d / "vocab.json", b'{"a": 0}'), "is not a TFLite model"),
        (lambda d: _write(d / "empty.tflite", b""), "is not a TFLite model"),
        (lambda d: (d / "empty_dir").mkdir() or d / "empty_dir", "no saved_model.pb"),
    ],
)
def test_locate_rejects_what_is_not_an_artifact(tmp_path, make, message):
    with pytest.raises(artifacts.ArtifactError, match=message):
        artifacts.locate(make(tmp_path))


def _write(path, content):
    path.write_bytes(content)
    return path


def test_every_kind_gives_the_same_classification(predictors, loaded):  # noqa: F811
    texts = TEXTS + BAD_TEXTS
    want = predictors["preset"].classify(texts)
    assert want.labels == [LABELS[i] for i in want.class_ids]
    served = loaded.signatures["serving_default"](text=np.array([t.encode() if isinstance(t, str) else t for t in texts], object))
    np.testing.assert_allclose(want.logits, served["logits"].numpy(), atol=1e-5)
    for kind in ("saved_model", "tflite"):
        got = predictors[kind].classify(texts)
        assert got.labels == want.labels, kind
        np.testing.assert_array_equal(got.class_ids, want.class_ids)
        np.testing.assert_allclose(got.probabilities, want.probabilities, atol=1e-4)
    pairs = {kind: p.classify_pairs(PAIRS_A, PAIRS_B) for kind, p in predictors.items()}
    for kind in ("saved_model", "tflite"):
        np.testing.assert_allclose(pairs[kind].logits, pairs["preset"].logits, atol=1e-4)


def test_batches_are_split_and_empty_input_is_empty(predictors, monkeypatch):
    served = predictors["saved_model"]
    whole = served.classify(TEXTS)
    monkeypatch.setattr(served, "batch_size", 2)
    np.testing.assert_allclose(served.classify(TEXTS).logits, whole.logits, atol=1e-5)
    for predictor in predictors.values():
        empty = predictor.classify([])
        assert len(empty) == 0 and empty.probabilities.shape == (0, len(LABELS))


def test_token_ids_from_the_preset_and_the_saved_model(predictors, roberta_tokenizer):
    ids = predictors["preset"].token_ids(TEXTS)
    assert ids == predictors["saved_model"].token_ids(TEXTS)
    assert ids[1] == [0, *roberta_tokenizer(["Terrible."]).to_list()[0], 2]
    assert max(map(len, ids)) == SEQUENCE_LENGTH
    pair_ids = predictors["saved_model"].token_ids(PAIRS_A, PAIRS_B)
    assert pair_ids == predictors["preset"].token_ids(PAIRS_A, PAIRS_B)
    with pytest.raises(artifacts.ArtifactError, match="does not output token ids"):
        predictors["tflite"].token_ids(TEXTS)


def test_wrong_artifacts_fail_with_a_reason(predictors, roberta_tokenizer, tflite_model, tmp_path):
    tokenizer_only = export_tokenizer_saved_model(roberta_tokenizer, tmp_path / "tokenizer")
    with pytest.raises(artifacts.ArtifactError, match="no serving_default or classify_pairs signature"):
        predictors_lib.load(tokenizer_only)
    # A token-ids TFLite model cannot classify text: said before any invocation.
    metadata = dict(predictors["tflite"].metadata, inputs="token_ids")
    ids_model = tmp_path / "ids.tflite"
    ids_model.write_bytes(tflite_metadata.with_metadata(tflite_model.read_bytes(), metadata))
    with pytest.raises(artifacts.ArtifactError, match="takes token ids"):
        predictors_lib.load(ids_model)
    # A SavedModel directory without the export metadata: not ours.
    foreign = tmp_path / "foreign"
    shutil.copytree(tokenizer_only, foreign)
    os.remove(foreign / "assets" / "roberta_tf_export.json")
    with pytest.raises(artifacts.ArtifactError, match="not a SavedModel written by roberta-tf"):
        predictors_lib.load(foreign)
    broken = tmp_path / "broken"
    shutil.copytree(tokenizer_only, broken)
    (broken / "assets" / "roberta_tf_export.json").write_text(json.dumps({}))
    (broken / "saved_model.pb").write_bytes(b"not a proto")
    with pytest.raises(artifacts.ArtifactError, match="cannot load the SavedModel"):
        predictors_lib.load(broken)
    with pytest.raises(TypeError, match="a list of texts"):
        predictors["preset"].classify("one string")
    with pytest.raises(ValueError, match="as many texts"):
        predictors["saved_model"].classify_pairs(["a"], ["b", "c"])
