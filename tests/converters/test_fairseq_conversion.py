"""`roberta_tf.converters.fairseq.convert` (+ `roberta-tf convert`'s preset writing) against real fairseq checkpoints.

The checkpoints are written by fairseq's own training code (`fairseq_fixtures`), in the 0.12
`cfg` layout, the pre-0.10 `args` layout and the legacy (non-zip) torch serialization; the
references are fairseq's hub interface (`RobertaModel.from_pretrained`, `encode`, `predict`)
over each file. The converted preset is loaded with `RobertaTextClassifier.from_preset`.
"""

import hashlib
import json
import pathlib
import shutil

import numpy as np
import pytest

pytest.importorskip("fairseq", reason="fairseq-fixed is not installed (pip install -e '.[fairseq]')")

# fairseq 0.12's Hydra usage warns on every config composition; nothing of ours.
pytestmark = [
    pytest.mark.filterwarnings(f"ignore:(?s).*{message}:UserWarning")
    for message in ("no longer experimental", "version_base", "package header", "ConfigStore schema", "strict flag")
]

import fairseq_fixtures  # noqa: E402
from conftest import shared_path  # noqa: E402
from fairseq_fixtures import HEAD, LABELS, MAX_POSITIONS  # noqa: E402

VARIANTS = ("zip_cfg", "legacy_args", "legacy_args_pickle")
NUM_SINGLES = 20
NUM_PAIRS = 10  # per language
ATOL = 1e-5


# ---------------------------------------------------------------------------------------------
# Fixtures: checkpoints, texts, fairseq references, converted presets
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    return fairseq_fixtures.build_checkpoints(tmp_path_factory.mktemp("fairseq"))


@pytest.fixture(scope="session")
def hubs(checkpoints):
    """fairseq's hub interface over each checkpoint variant (built lazily, once)."""
    cache = {}

    def get(variant):
        if variant not in cache:
            cache[variant] = fairseq_fixtures.fairseq_hub(checkpoints.variants[variant], checkpoints.data_dir)
        return cache[variant]

    return get


def _sst2_lines():
    with open(shared_path("sst2", "dev.tsv"), encoding="utf-8") as f:
        return [line.split("\t")[0] for line in f.read().splitlines()[1:]]


def _xnli_pairs(language):
    with open(shared_path("xnli-dev", f"dev-{language}.tsv"), encoding="utf-8") as f:
        rows = [line.split("\t") for line in f.read().splitlines() if line]
    return [(r[0], r[1]) for r in rows]


@pytest.fixture(scope="session")
def texts(hubs):
    """SST-2 dev sentences and XNLI en + de pairs whose fairseq encoding fits MAX_POSITIONS
    (fairseq's predict refuses longer inputs; ours would truncate)."""
    hub = hubs("zip_cfg")
    singles = [t for t in _sst2_lines() if len(hub.encode(t)) <= MAX_POSITIONS][:NUM_SINGLES]
    pairs = []
    for language in ("en", "de"):
        fitting = [p for p in _xnli_pairs(language) if len(hub.encode(*p)) <= MAX_POSITIONS]
        pairs += fitting[:NUM_PAIRS]
    assert len(singles) == NUM_SINGLES and len(pairs) == 2 * NUM_PAIRS
    return {"singles": singles, "pairs": pairs}


@pytest.fixture(scope="session")
def references(hubs, texts):
    """Per variant: fairseq's token ids and head logits, one text at a time."""
    import torch

    cache = {}

    def get(variant, head=HEAD):
        if (variant, head) not in cache:
            hub = hubs(variant)
            out = {}
            with torch.no_grad():
                for kind, inputs in (("singles", [(t,) for t in texts["singles"]]), ("pairs", texts["pairs"])):
                    tokens = [hub.encode(*x) for x in inputs]
                    logits = [hub.predict(head, t, return_logits=True)[0].numpy() for t in tokens]
                    out[kind] = {"ids": [t.tolist() for t in tokens], "logits": np.stack(logits)}
            cache[variant, head] = out
        return cache[variant, head]

    return get


def _convert(checkpoint, output, data_dir=None, overwrite=False, **kwargs):
    """`roberta-tf convert fairseq`'s path: the converter, then the model saved as a preset."""
    from roberta_tf.cli.convert import write_preset
    from roberta_tf.converters import fairseq

    converted = fairseq.convert(
        str(checkpoint),
        data_dir=str(data_dir) if data_dir else None,
        encoder_json=str(shared_path("fairseq-gpt2-bpe", "encoder.json")),
        vocab_bpe=str(shared_path("fairseq-gpt2-bpe", "vocab.bpe")),
        **kwargs,
    )
    return write_preset(converted, str(output), overwrite=overwrite)


@pytest.fixture(scope="session", params=VARIANTS)
def converted(request, checkpoints, tmp_path_factory):
    """(variant, preset dir, classifier loaded from it) for each checkpoint variant."""
    from roberta_tf.models import RobertaTextClassifier

    variant = request.param
    output = tmp_path_factory.mktemp("presets") / variant
    preset_dir = _convert(checkpoints.variants[variant], output, checkpoints.data_dir)
    assert isinstance(preset_dir, pathlib.Path)
    assert preset_dir == output
    classifier = RobertaTextClassifier.from_preset(str(preset_dir))
    return variant, preset_dir, classifier


def _features(classifier, kind, texts):
    if kind == "singles":
        return classifier.preprocessor(texts["singles"])
    return classifier.preprocessor(([a for a, _ in texts["pairs"]], [b for _, b in texts["pairs"]]))


def _unpadded_rows(features):
    ids = features["token_ids"].numpy()
    mask = features["padding_mask"].numpy().astype(bool)
    return [row[m].tolist() for row, m in zip(ids, mask)]


def _torch_load(path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)  # our own fixture file


def _torch_save(obj, path):
    import torch

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def _strings(value):
    """Every string (keys and values) in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


# ---------------------------------------------------------------------------------------------
# The fixtures themselves: what fairseq wrote, and that its hub reads all three variants alike
# ---------------------------------------------------------------------------------------------


def test_fixture_checkpoints_have_the_fairseq_layouts(checkpoints):
    import argparse

    written = _torch_load(checkpoints.zip_cfg)
    assert set(checkpoints.saved_keys) >= {"args", "cfg", "model", "optimizer_history", "extra_state"}
    assert written["args"] is None
    assert written["extra_state"]["note"] == "fixture"
    assert any(k.startswith("encoder.sentence_encoder.layernorm_embedding.") for k in written["model"])
    assert any(k.startswith(f"classification_heads.{HEAD}.") for k in written["model"])
    for variant in ("legacy_args", "legacy_args_pickle"):
        legacy = _torch_load(checkpoints.variants[variant])
        assert "cfg" not in legacy and isinstance(legacy["args"], argparse.Namespace)
        assert legacy["args"].encoder_layers == 2 and legacy["args"].num_classes == len(LABELS)
        assert not any(k.startswith("encoder.") for k in legacy["model"])
        assert "decoder.sentence_encoder.emb_layer_norm.weight" in legacy["model"]
    with open(checkpoints.legacy_args_pickle, "rb") as f:
        assert f.read(2) != b"PK"  # not a zip archive: the legacy torch serialization
    with open(checkpoints.legacy_args, "rb") as f:
        assert f.read(2) == b"PK"


def test_fairseq_hub_reads_every_variant_alike(checkpoints, hubs, references, texts):
    import torch

    zip_refs = references("zip_cfg")
    for variant in ("legacy_args", "legacy_args_pickle"):
        refs = references(variant)
        for kind in ("singles", "pairs"):
            assert refs[kind]["ids"] == zip_refs[kind]["ids"]
            np.testing.assert_array_equal(refs[kind]["logits"], zip_refs[kind]["logits"])
    # ... and the hub's logits are the in-memory model's (the file holds the perturbed weights)
    tokens = torch.tensor([zip_refs["singles"]["ids"][0]])
    with torch.no_grad():
        features, _ = checkpoints.model(tokens, features_only=True, classification_head_name=HEAD)
    np.testing.assert_allclose(features[0].numpy(), zip_refs["singles"]["logits"][0], atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------
# Parity: token ids, logits, label names, metadata — for each checkpoint variant
# ---------------------------------------------------------------------------------------------


def test_list_heads(checkpoints):
    from roberta_tf.converters.fairseq import list_heads

    for variant, path in checkpoints.variants.items():
        assert list_heads(str(path)) == [HEAD], variant
        assert list_heads(pathlib.Path(path)) == [HEAD], variant


@pytest.mark.parametrize("kind", ["singles", "pairs"])
def test_token_ids_match_fairseq_encode(converted, references, texts, kind):
    variant, _, classifier = converted
    want = references(variant)[kind]["ids"]
    got = _unpadded_rows(_features(classifier, kind, texts))
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"{variant} {kind}[{i}]"


@pytest.mark.parametrize("kind", ["singles", "pairs"])
def test_logits_match_fairseq_predict(converted, references, texts, kind):
    variant, _, classifier = converted
    want = references(variant)[kind]["logits"]
    got = classifier(_features(classifier, kind, texts), training=False).numpy()
    assert got.shape == want.shape
    for i in range(len(want)):
        np.testing.assert_allclose(got[i], want[i], atol=ATOL, rtol=0, err_msg=f"{variant} {kind}[{i}]")


def test_label_names_in_label_dictionary_order(converted):
    variant, preset_dir, classifier = converted
    assert classifier.num_classes == len(LABELS)
    assert classifier.label_names == list(LABELS), variant
    config = json.loads((preset_dir / "config.json").read_text(encoding="utf-8"))
    assert config["task"] == "RobertaTextClassifier"
    assert config["classifier"]["label_names"] == list(LABELS)


def test_metadata_records_source_checkpoint_and_sha256(converted, checkpoints):
    variant, preset_dir, _ = converted
    checkpoint = checkpoints.variants[variant]
    metadata = json.loads((preset_dir / "metadata.json").read_text(encoding="utf-8"))
    assert "source" in metadata, sorted(metadata)
    recorded = set(_strings(metadata["source"]))
    assert {str(checkpoint), str(checkpoint.resolve())} & recorded, metadata["source"]
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() in recorded, metadata["source"]


# ---------------------------------------------------------------------------------------------
# Heads: choice, absence, several
# ---------------------------------------------------------------------------------------------


def test_unknown_head_raises_naming_the_available_heads(checkpoints, tmp_path):
    with pytest.raises(ValueError) as error:
        _convert(checkpoints.zip_cfg, tmp_path / "out", checkpoints.data_dir, head="nonexistent")
    assert "nonexistent" in str(error.value)
    assert HEAD in str(error.value)
    assert not (tmp_path / "out" / "config.json").exists()


@pytest.fixture(scope="session")
def two_head_checkpoint(checkpoints, tmp_path_factory):
    """The 0.12 checkpoint with a second 3-class head ("other_head": the first one, changed)."""
    import torch

    state = _torch_load(checkpoints.zip_cfg)
    generator = torch.Generator().manual_seed(7)
    for key in [k for k in state["model"] if k.startswith(f"classification_heads.{HEAD}.")]:
        value = state["model"][key]
        new_key = key.replace(f".{HEAD}.", ".other_head.")
        state["model"][new_key] = value + torch.randn(value.shape, generator=generator) * 0.1
    return _torch_save(state, tmp_path_factory.mktemp("two_heads") / "model.pt")


def test_several_heads_need_a_choice(two_head_checkpoint, checkpoints, tmp_path):
    from roberta_tf.converters.fairseq import list_heads

    assert sorted(list_heads(str(two_head_checkpoint))) == sorted([HEAD, "other_head"])
    with pytest.raises(ValueError) as error:
        _convert(two_head_checkpoint, tmp_path / "out", checkpoints.data_dir)
    assert HEAD in str(error.value) and "other_head" in str(error.value)


def test_chosen_head_matches_fairseq(two_head_checkpoint, checkpoints, texts, tmp_path):
    import torch
    from roberta_tf.models import RobertaTextClassifier

    hub = fairseq_fixtures.fairseq_hub(two_head_checkpoint, checkpoints.data_dir)
    preset_dir = _convert(two_head_checkpoint, tmp_path / "other", checkpoints.data_dir, head="other_head")
    classifier = RobertaTextClassifier.from_preset(str(preset_dir))
    singles = texts["singles"][:8]
    with torch.no_grad():
        want = np.stack([hub.predict("other_head", hub.encode(t), return_logits=True)[0].numpy() for t in singles])
        first = np.stack([hub.predict(HEAD, hub.encode(t), return_logits=True)[0].numpy() for t in singles])
    assert np.abs(want - first).max() > 1e-3  # the heads differ, so the choice shows
    got = classifier(classifier.preprocessor(singles), training=False).numpy()
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
    assert classifier.label_names == list(LABELS)


def test_checkpoint_without_heads_gives_a_backbone_preset(checkpoints, hubs, references, tmp_path):
    import torch
    from roberta_tf.converters.fairseq import list_heads
    from roberta_tf.models import RobertaBackbone

    state = _torch_load(checkpoints.zip_cfg)
    state["model"] = type(state["model"])(
        (k, v) for k, v in state["model"].items() if not k.startswith("classification_heads.")
    )
    checkpoint = _torch_save(state, tmp_path / "no_heads" / "model.pt")
    assert list_heads(str(checkpoint)) == []

    preset_dir = _convert(checkpoint, tmp_path / "backbone", checkpoints.data_dir)
    config = json.loads((preset_dir / "config.json").read_text(encoding="utf-8"))
    assert config["task"] == "RobertaBackbone"
    assert config.get("classifier") is None
    backbone = RobertaBackbone.from_preset(str(preset_dir))

    hub = hubs("zip_cfg")
    for ids in references("zip_cfg")["pairs"]["ids"][:4]:
        tokens = torch.tensor([ids])
        with torch.no_grad():
            want = hub.extract_features(tokens)[0].numpy()
        got = backbone(
            {"token_ids": np.array([ids], np.int32), "padding_mask": np.ones([1, len(ids)], bool)}, training=False
        )
        np.testing.assert_allclose(np.asarray(got)[0], want, atol=ATOL, rtol=0)


# ---------------------------------------------------------------------------------------------
# Inputs that do not fit: vocabulary size, tensor shapes, existing output
# ---------------------------------------------------------------------------------------------


def test_dict_txt_missing_a_line_raises_with_the_sizes(checkpoints, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(checkpoints.data_dir, data_dir)
    dict_txt = data_dir / "input0" / "dict.txt"
    lines = dict_txt.read_text(encoding="utf-8").splitlines(keepends=True)
    dict_txt.write_text("".join(lines[:-1]), encoding="utf-8")
    embedding_rows = 4 + len(lines) + 1  # fairseq: <s> <pad> </s> <unk>, the lines, <mask>

    with pytest.raises(ValueError) as error:
        _convert(checkpoints.zip_cfg, tmp_path / "out", data_dir)
    message = str(error.value)
    assert "dict.txt" in message, message
    assert str(embedding_rows) in message, message
    assert str(embedding_rows - 1) in message or str(len(lines) - 1) in message, message
    assert not (tmp_path / "out" / "config.json").exists()


def test_tensor_of_the_wrong_shape_raises_naming_the_key(checkpoints, tmp_path):
    key = "encoder.sentence_encoder.layers.1.fc1.weight"
    state = _torch_load(checkpoints.zip_cfg)
    state["model"][key] = state["model"][key][:-1].clone()
    checkpoint = _torch_save(state, tmp_path / "bad" / "model.pt")

    with pytest.raises(ValueError) as error:
        _convert(checkpoint, tmp_path / "out", checkpoints.data_dir)
    assert key in str(error.value), str(error.value)
    assert not (tmp_path / "out" / "config.json").exists()


def test_existing_output_needs_overwrite(checkpoints, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises((FileExistsError, ValueError)):
        _convert(checkpoints.zip_cfg, output, checkpoints.data_dir)
    assert (output / "keep.txt").read_text(encoding="utf-8") == "mine"
    _convert(checkpoints.zip_cfg, output, checkpoints.data_dir, overwrite=True)
    assert (output / "config.json").is_file()


def test_explicit_dictionary_paths_equal_data_dir(checkpoints, tmp_path):
    """dict_txt= and label_dict= give the same preset as data_dir=."""
    preset_dir = _convert(checkpoints.zip_cfg, tmp_path / "from_data_dir", checkpoints.data_dir)
    output = _convert(
        checkpoints.zip_cfg,
        tmp_path / "explicit",
        dict_txt=str(checkpoints.data_dir / "input0" / "dict.txt"),
        label_dict=str(checkpoints.data_dir / "label" / "dict.txt"),
    )
    for name in ("config.json", "model.safetensors", "vocab.json", "merges.txt"):
        assert (output / name).read_bytes() == (preset_dir / name).read_bytes(), name
