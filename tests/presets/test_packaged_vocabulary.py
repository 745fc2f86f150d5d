"""The named presets' tokenizers come from the vocabulary shipped in the package: no path and
no network. Every test here runs with the hub download and socket connections replaced by
failures, so any attempt to download shows up as an error, never as a silent fetch."""

import fnmatch
import hashlib
import re
import socket

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, shared_path
from preset_helpers import hf_classifier_checkpoint, isolated_hub_environment  # noqa: F401 (fixtures)
from roberta_tf import presets
from roberta_tf.models import RobertaTextClassifier, RobertaTextClassifierPreprocessor, RobertaTokenizer
from roberta_tf.presets import hub, loader, registry
from roberta_tf.presets.preset_format import PresetError

BYTE_LEVEL_PRESETS = ("roberta_base_en", "roberta_large_en")
SENTENCEPIECE_PRESETS = ("xlm_roberta_base_multi", "xlm_roberta_large_multi")
PACKAGED_FILES = ("vocab.json", "merges.txt")
UNICODE_TEXTS = [
    "Café déjà vu — naïve résumé 🙂",
    "東京は日本の首都です。漢字とかなが混ざる文。",
    "مرحبا بالعالم، هذا اختبار.",
    "Привет, мир! Ёлка и щётка.",
    "👩‍👩‍👧‍👦 family, 🇯🇵 flag, 👍🏽 thumbs",
    "e\u0301\u0302 combining marks, Ǆ titlecase, ß",
    "ሰላም ለዓለም ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ",
    "𝔥𝔢𝔩𝔩𝔬 𝔴𝔬𝔯𝔩𝔡 in the astral plane",
    "  leading spaces, tab\there,\nnewline and   runs   of spaces  ",
    "it's they're we'll I'd 1,234.56 in 2026",
]


class _NetworkUsed(AssertionError):
    """Not a PresetError, so no test expecting a PresetError can mistake a download for one."""


def _refuse_network(*args, **kwargs):
    raise _NetworkUsed(f"network access attempted: {args!r} {kwargs!r}")


@pytest.fixture(scope="module", autouse=True)
def no_network():
    """For the whole module: hub.download and every socket connection fail loudly."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hub, "download", _refuse_network)
        patch.setattr(socket.socket, "connect", _refuse_network)
        patch.setattr(socket.socket, "connect_ex", _refuse_network)
        patch.setattr(socket, "create_connection", _refuse_network)
        yield


@pytest.fixture(scope="module")
def named_tokenizers(no_network):
    """{preset name: RobertaTokenizer.from_preset(name)}, built once with the network blocked."""
    return {name: RobertaTokenizer.from_preset(name) for name in BYTE_LEVEL_PRESETS}


@pytest.fixture(scope="module")
def sst2_sentences():
    with open(shared_path("sst2", "dev.tsv"), encoding="utf-8") as f:
        sentences = [line.split("\t")[0] for line in f.read().splitlines()[1:] if line]
    return sentences[:40]


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# === Loading without a download ===


def test_packaged_vocabulary_paths():
    for name in BYTE_LEVEL_PRESETS:
        vocabulary, merges = presets.packaged_vocabulary(name)
        assert (vocabulary.name, merges.name) == PACKAGED_FILES
        assert vocabulary.is_file() and merges.is_file()
        assert vocabulary.parent == registry.VOCABULARIES_DIR / "roberta-base"
    # Both named RoBERTa presets use the same files (the registry comment says why).
    assert presets.packaged_vocabulary("roberta_base_en") == presets.packaged_vocabulary("roberta_large_en")


def test_named_tokenizers_load_the_packaged_files(named_tokenizers):
    for name, tokenizer in named_tokenizers.items():
        assert tokenizer.get_config()["vocabulary"] == str(presets.packaged_vocabulary(name)[0])
        assert tokenizer.vocabulary_size() == registry.PRESETS[name]["backbone"]["vocabulary_size"] == 50265
        assert tokenizer("Hello world").numpy().tolist() == [31414, 232]


def test_named_tokenizers_match_hugging_face(named_tokenizers, hf_tokenizer, sst2_sentences):
    texts = sst2_sentences + UNICODE_TEXTS
    expected = [encoding.ids for encoding in hf_tokenizer.encode_batch(texts, add_special_tokens=False)]
    for name, tokenizer in named_tokenizers.items():
        got = tokenizer(tf.constant(texts)).to_list()
        mismatched = [(t, g, e) for t, g, e in zip(texts, got, expected) if g != e]
        assert not mismatched, (name, mismatched[:3])


def test_named_preprocessor_loads_offline_and_packs_like_hugging_face(named_tokenizers, hf_tokenizer):
    preprocessor = RobertaTextClassifierPreprocessor.from_preset("roberta_base_en")
    assert preprocessor.sequence_length == registry.PRESETS["roberta_base_en"]["backbone"]["max_sequence_length"]
    first, second = "A man is playing a guitar. 🎸", "Someone makes música."
    inputs = preprocessor((tf.constant([first]), tf.constant([second])))
    expected = hf_tokenizer.encode(first, second).ids  # <s> A </s></s> B </s>
    token_ids, padding_mask = inputs["token_ids"].numpy()[0], inputs["padding_mask"].numpy()[0]
    assert token_ids.shape == (512,)
    assert token_ids[: len(expected)].tolist() == expected
    assert (token_ids[len(expected):] == preprocessor.tokenizer.pad_token_id).all()
    np.testing.assert_array_equal(padding_mask, np.arange(512) < len(expected))
    shorter = RobertaTextClassifierPreprocessor.from_preset("roberta_large_en", sequence_length=16)
    assert shorter.sequence_length == 16
    with pytest.raises(PresetError, match="roberta_large_en"):
        RobertaTextClassifierPreprocessor.from_preset("roberta_large_en", sequence_length=1000)


def test_tokenizer_only_contents_refuse_to_give_weights():
    contents = loader.resolve("roberta_base_en", tokenizer_only=True)
    assert contents.tokenizer_files() == list(presets.packaged_vocabulary("roberta_base_en"))
    with pytest.raises(PresetError, match="tokenizer only"):
        contents.read_weights()
    with pytest.raises(PresetError, match="tokenizer only"):
        RobertaTextClassifier.from_preset(contents, num_classes=2)


@pytest.mark.parametrize("name", SENTENCEPIECE_PRESETS)
def test_sentencepiece_presets_name_the_xlmr_classes_without_downloading(name):
    wrong_class = f"{name} has a sentencepiece tokenizer, which RobertaTokenizer does not read; load it with XLMRoberta"
    with pytest.raises(PresetError, match=wrong_class):
        RobertaTokenizer.from_preset(name)
    with pytest.raises(PresetError, match=wrong_class):
        RobertaTextClassifierPreprocessor.from_preset(name)
    # The tokenizer is checked before the weights would be downloaded (hub.download refuses).
    with pytest.raises(PresetError, match=wrong_class):
        RobertaTextClassifier.from_preset(name)
    with pytest.raises(PresetError, match="neither ships nor supports"):
        presets.packaged_vocabulary(name)


@pytest.mark.parametrize("name", SENTENCEPIECE_PRESETS)
def test_xlmr_tokenizer_of_a_named_preset_fetches_only_the_sentencepiece_model(name, monkeypatch):
    from roberta_tf.models import XLMRobertaTokenizer

    requested = []

    def record(repo_id, files, *args, **kwargs):
        requested.append((repo_id, list(files)))
        raise _NetworkUsed("no network here")

    monkeypatch.setattr(hub, "download", record)
    with pytest.raises(_NetworkUsed):
        XLMRobertaTokenizer.from_preset(name)
    assert requested == [(registry.PRESETS[name]["hf_repo"], ["sentencepiece.bpe.model"])]


def test_unknown_name_lists_the_named_presets():
    with pytest.raises(PresetError, match="roberta_base_en, roberta_large_en"):
        presets.packaged_vocabulary("roberta_tiny_nowhere")


# === A model still downloads its weights, and takes the packaged tokenizer ===


@pytest.fixture
def weights_only_hub(hf_classifier_checkpoint, tmp_path, monkeypatch):
    """hub.download answering from a directory with only config.json and model.safetensors;
    returns the list of (repo, files) it was asked for."""
    checkpoint, _ = hf_classifier_checkpoint
    directory = tmp_path / "downloaded"
    directory.mkdir()
    for name in ("config.json", "model.safetensors"):
        (directory / name).symlink_to(checkpoint / name)
    calls = []

    def download(repo_id, filenames, revision="main", optional=()):
        calls.append((repo_id, tuple(filenames)))
        return directory

    monkeypatch.setattr(hub, "download", download)
    return calls


def test_model_downloads_weights_only_and_uses_the_packaged_tokenizer(weights_only_hub):
    contents = loader.resolve("roberta_base_en")
    assert weights_only_hub == [("FacebookAI/roberta-base", ("config.json", "model.safetensors"))]
    assert contents.config["tokenizer"] == {"type": "byte_level_bpe"}
    assert contents.tokenizer_files() == list(presets.packaged_vocabulary("roberta_base_en"))
    assert contents.config["classifier"]["num_classes"] == 3  # the downloaded checkpoint's head


def test_downloaded_config_with_another_vocabulary_size_is_refused(weights_only_hub, monkeypatch):
    entry = registry.PRESETS["roberta_large_en"]
    monkeypatch.setitem(registry.PRESETS, "roberta_large_en",
                        {**entry, "backbone": {**entry["backbone"], "vocabulary_size": 50000}})
    with pytest.raises(PresetError, match="vocab_size 50265, but roberta_large_en's packaged vocabulary has 50000"):
        loader.resolve("roberta_large_en")


# === The packaged files ===


def test_packaged_files_are_the_shared_roberta_base_files():
    for packaged in presets.packaged_vocabulary("roberta_base_en"):
        assert _sha256(packaged) == _sha256(shared_path("roberta-base", packaged.name)), packaged.name


def test_notice_states_the_packaged_files_sha256():
    folder = registry.VOCABULARIES_DIR / "roberta-base"
    notice = (folder / "NOTICE").read_text(encoding="utf-8")
    stated = dict(re.findall(r"^  (\S+) .*\n +sha256 ([0-9a-f]{64})$", notice, re.MULTILINE))
    assert stated == {name: _sha256(folder / name) for name in PACKAGED_FILES}
    assert "MIT" in notice and "OpenAI" in notice


def test_every_packaged_vocabulary_file_is_declared_as_package_data():
    """A file under vocabularies/ that pyproject.toml's package-data misses would be absent
    from the wheel (the CI wheel smoke checks one preset; this checks every file)."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    with open(REPO / "pyproject.toml", "rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["roberta_tf.presets"]
    package_dir = registry.VOCABULARIES_DIR.parent
    files = [p.relative_to(package_dir).as_posix() for p in registry.VOCABULARIES_DIR.rglob("*") if p.is_file()]
    assert len(files) >= 3
    undeclared = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert not undeclared
