"""Hugging Face XLM-R directories whose tokenizer is only `tokenizer.json` (a Unigram model),
converted to the SentencePiece model it stands for (`roberta_tf/tokenizers/hf_unigram.py`).

The tokenizer.json files are written by transformers itself from models trained with
`sentencepiece` (`xlmr_fixtures.transformers_tokenizer_json`). The ids are judged against
Hugging Face `tokenizers` with that file (what a model trained through HF saw) and against
`sentencepiece` with the converted model plus fairseq's shift; every text where `tokenizers`
and SentencePiece disagree must be one of the documented departures, each checked for what it
claims (a special token's spelling, HF's normalizer output differing, an exact score tie).
"""

import json
import random
import re

import numpy as np
import pytest

import corpora
from corpora import XNLI_LANGUAGES, fuzz, misc, xnli
from sentencepiece_models import spm, trained_model
from xlmr_fixtures import SENTENCEPIECE_MODEL_FILE, perturbed_hf_classifier, transformers_tokenizer_json

from roberta_tf.cli import convert as convert_cli
from roberta_tf.converters import huggingface
from roberta_tf.converters.layout import ConversionError
from roberta_tf.models import XLMRobertaTextClassifier, XLMRobertaTokenizer
from roberta_tf.tokenizers import hf_unigram, sentencepiece_model

SPECIAL_SPELLINGS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
MAX_POSITIONS = 34  # sequence length 32
_BAD_BYTES = (b"\xff", b"\xfe", b"\x80", b"\xbf", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf")


def tokenizers_lib():
    return pytest.importorskip("tokenizers", reason="the `test` extra (Hugging Face tokenizers) is not installed")


def invalid_utf8(count, seed):
    """Fuzz strings as UTF-8 with invalid sequences spliced in (lone continuation bytes,
    truncated and overlong sequences, encoded surrogates, code points past U+10FFFF)."""
    rng = random.Random(seed)
    texts = []
    for text in fuzz(count, seed=seed):
        raw = text.encode("utf-8")
        for _ in range(rng.randint(1, 3)):
            cut = rng.randint(0, len(raw))
            raw = raw[:cut] + rng.choice(_BAD_BYTES) + raw[cut:]
        texts.append(raw)
    return texts


def corpus():
    """XNLI's 15 languages, UDHR, the naughty strings, fuzz, and invalid UTF-8 decoded as
    Python's "replace" does (`tokenizers` takes str; the bytes themselves are checked
    against sentencepiece separately)."""
    texts = [t for language in XNLI_LANGUAGES for t in xnli(language)[:100]] + corpora.udhr()[:300]
    texts += misc("blns.txt") + fuzz(1200, seed=11)
    return texts + [raw.decode("utf-8", "replace") for raw in invalid_utf8(300, seed=12)]


@pytest.fixture(scope="module")
def texts():
    return corpus()


@pytest.fixture(scope="module", params=["unigram-nmt_nfkc", "unigram-byte_fallback"])
def converted(request, tmp_path_factory):
    """A tokenizer.json-only HF XLM-R directory (transformers' file, a perturbed classifier)
    converted with `roberta-tf convert hf`."""
    directory = tmp_path_factory.mktemp(f"hf-{request.param}")
    tokenizer_json = transformers_tokenizer_json(trained_model(request.param), directory)
    vocabulary_size = len(json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["vocab"])
    model = perturbed_hf_classifier(vocabulary_size, MAX_POSITIONS)
    model.save_pretrained(directory)
    assert not (directory / SENTENCEPIECE_MODEL_FILE).exists()
    preset = tmp_path_factory.mktemp("preset") / "preset"
    assert convert_cli.main(["roberta-tf convert", "hf", "--model_dir", str(directory), "--output", str(preset)]) == 0
    classifier = XLMRobertaTextClassifier.from_preset(str(preset))  # its tokenizer: the preset's Keras layer
    return {"tokenizer_json": tokenizer_json, "model": model, "preset": preset, "classifier": classifier}


def departures(texts, ours, hf, processor, scores):
    """{kind: [text]} of the texts where `tokenizers` (`hf`) gives other ids than ours, each
    classified by checking its cause; "unexplained" must stay empty."""
    found = {"special spelling": [], "normalizer": [], "tie": [], "unexplained": []}
    hf_ids = [e.ids for e in hf.encode_batch(texts)]
    for text, mine, theirs in zip(texts, ours, hf_ids):
        if mine == theirs:
            continue
        spelled = [s for s in SPECIAL_SPELLINGS if s in text]
        if spelled:  # `tokenizers` must have matched them: their ids are in its output
            special_ids = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": len(scores) - 1}
            kind = "special spelling" if {special_ids[s] for s in spelled} <= set(theirs[1:-1]) else "unexplained"
        elif hf_words(hf, text) != sentencepiece_words(processor, text):
            kind = "normalizer"
        elif theirs.count(3) == mine.count(3) and np.isclose(sum(scores[i] for i in theirs), sum(scores[i] for i in mine),
                                                              rtol=0, atol=1e-4):
            kind = "tie"
        else:
            kind = "unexplained"
        found[kind].append((text, mine, theirs))
    return found


def hf_words(hf, text):
    """`tokenizers`' words: its normalizer, then its pre-tokenizer."""
    normalized = hf.normalizer.normalize_str(text) if hf.normalizer else text
    return [word for word, _ in hf.pre_tokenizer.pre_tokenize_str(normalized)]


def sentencepiece_words(processor, text):
    """SentencePiece's normalized text, cut before each `▁`."""
    return re.findall("\u2581[^\u2581]*|^[^\u2581]+", processor.normalize(text))


def fairseq_ids(processor, text):
    """sentencepiece's ids with fairseq's shift, packed as `<s> A </s>` (`text`: str or bytes)."""
    return [0] + [i + 1 if i else 3 for i in processor.encode(text)] + [2]


def test_preset_tokenizer_equals_sentencepiece_and_tokenizers(converted, texts):
    preset = converted["preset"]
    assert (preset / SENTENCEPIECE_MODEL_FILE).is_file() and not (preset / "dict.txt").exists()
    proto = (preset / SENTENCEPIECE_MODEL_FILE).read_bytes()
    assert proto == hf_unigram.sentencepiece_model_from_tokenizer_json(converted["tokenizer_json"])
    processor = spm().SentencePieceProcessor(model_proto=proto)
    tokenizer = converted["classifier"].preprocessor.tokenizer
    assert isinstance(tokenizer, XLMRobertaTokenizer)
    raw = invalid_utf8(300, seed=12)  # as bytes: each invalid byte an unknown character, as sentencepiece reads them
    got = [[0, *ids, 2] for ids in tokenizer(texts + raw).to_list()]  # one graph call
    ours = got[: len(texts)]
    mismatches = [t for t, mine in zip(texts + raw, got) if mine != fairseq_ids(processor, t)]
    assert not mismatches, f"{len(mismatches)} of {len(got)} differ from sentencepiece, first {mismatches[0]!r}"

    document = json.loads(converted["tokenizer_json"].read_text(encoding="utf-8"))
    scores = [score for _, score in document["model"]["vocab"]]
    hf = tokenizers_lib().Tokenizer.from_file(str(converted["tokenizer_json"]))
    found = departures(texts, ours, hf, processor, scores)
    assert not found["unexplained"], f"{len(found['unexplained'])} unexplained, first {found['unexplained'][0]!r}"
    natural = {t for language in XNLI_LANGUAGES for t in xnli(language)[:100]} | set(corpora.udhr()[:300])
    assert not [t for kind in ("normalizer", "tie") for t, _, _ in found[kind] if t in natural]
    assert len(found["normalizer"]) + len(found["tie"]) < 0.02 * len(texts), {k: len(v) for k, v in found.items()}
    assert found["special spelling"]  # the fuzz holds special spellings: the classification is exercised


def test_converted_classifier_matches_transformers(converted):
    """Logits through the converted preset, tokenized in graph, against transformers' model fed
    `tokenizers`' ids for the same texts (XNLI hypotheses, one per language, and odd cases)."""
    torch = pytest.importorskip("torch", reason="the test extra (torch) is not installed")
    texts = [xnli(language)[1] for language in XNLI_LANGUAGES] + ["", "  a  b\t", "Ｈｅｌｌｏ ﬁne 😀 ⅻ", "x\u2028y\x85z"]
    hf = tokenizers_lib().Tokenizer.from_file(str(converted["tokenizer_json"]))
    rows = [encoding.ids for encoding in hf.encode_batch(texts)]
    texts, rows = zip(*[(t, r) for t, r in zip(texts, rows) if len(r) <= MAX_POSITIONS - 2])
    assert len(texts) >= 12
    ids = torch.tensor([row + [1] * (MAX_POSITIONS - 2 - len(row)) for row in rows])
    with torch.no_grad():
        want = converted["model"](input_ids=ids, attention_mask=(ids != 1).long()).logits.numpy()
    classifier = converted["classifier"]
    inputs = classifier.preprocessor(list(texts))  # the preset's in-graph tokenizer and packer
    assert inputs["token_ids"].numpy().tolist() == ids.numpy().tolist()
    np.testing.assert_allclose(classifier(inputs).numpy(), want, atol=1e-5)


@pytest.mark.parametrize("model_name,writer", [("unigram-identity", "save_pretrained"), ("unigram-nmt_nfkc", "converter")])
def test_other_normalizers_and_transformers_converter(model_name, writer, texts, tmp_path):
    """The identity normalizer (whitespace other than U+0020 split by WhitespaceSplit: the
    extended charsmap's job) and the other form transformers writes (Strip + Replace),
    checked through sentencepiece with the converted model (the Keras layer equals it, above
    and in the tokenizer parity tests)."""
    tokenizer_json = transformers_tokenizer_json(trained_model(model_name), tmp_path, writer)
    proto = hf_unigram.sentencepiece_model_from_tokenizer_json(tokenizer_json)
    processor = spm().SentencePieceProcessor(model_proto=proto)
    ours = [fairseq_ids(processor, text) for text in texts]
    scores = [score for _, score in json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["vocab"]]
    found = departures(texts, ours, tokenizers_lib().Tokenizer.from_file(str(tokenizer_json)), processor, scores)
    assert not found["unexplained"], f"{len(found['unexplained'])} unexplained, first {found['unexplained'][0]!r}"
    assert len(found["normalizer"]) + len(found["tie"]) < 0.02 * len(texts), {k: len(v) for k, v in found.items()}


def test_byte_fallback_flag_gives_byte_pieces(tmp_path):
    """transformers writes `byte_fallback: false` (its ids have <unk> for unknown characters,
    and so do the converted model's); a file that sets it gets SentencePiece's byte pieces."""
    tokenizer_json = transformers_tokenizer_json(trained_model("unigram-byte_fallback"), tmp_path)
    document = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    assert document["model"]["byte_fallback"] is False
    without = sentencepiece_model.read_model(hf_unigram.sentencepiece_model_from_tokenizer_json(tokenizer_json))
    assert not without.byte_fallback and sentencepiece_model.PieceType.BYTE not in set(without.types.tolist())
    document["model"]["byte_fallback"] = True
    tokenizer_json.write_text(json.dumps(document), encoding="utf-8")
    proto = hf_unigram.sentencepiece_model_from_tokenizer_json(tokenizer_json)
    assert sentencepiece_model.read_model(proto).byte_fallback
    original = spm().SentencePieceProcessor(model_proto=trained_model("unigram-byte_fallback"))
    converted_processor = spm().SentencePieceProcessor(model_proto=proto)
    hf = tokenizers_lib().Tokenizer.from_file(str(tokenizer_json))
    for text in ["ْ ẞ 𓀀 ok", "漢字 ⅻ 😀", xnli("ar")[5]]:
        assert fairseq_ids(converted_processor, text) == fairseq_ids(original, text) == hf.encode(text).ids


# --- which file is read ----------------------------------------------------------------


def small_tokenizer_json(**changes):
    """A valid XLM-R tokenizer.json in transformers' save_pretrained form, small enough to edit."""
    vocab = [[p, 0.0] for p in ("<s>", "<pad>", "</s>", "<unk>")]
    vocab += [["\u2581", -2.0], ["a", -3.0], ["b", -3.5], ["\u2581a", -2.5], ["\u2581b", -2.7], ["<mask>", 0.0]]
    document = {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": p, "special": True, "normalized": False, "single_word": False,
                          "lstrip": False, "rstrip": False} for i, p in [(0, "<s>"), (1, "<pad>"), (2, "</s>"), (3, "<unk>"), (9, "<mask>")]],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"}, {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                                              "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab, "byte_fallback": False},
    }
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = document
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[int(last) if isinstance(target, list) else last] = value
    return document


def write(directory, document=None, text=None):
    path = directory / "tokenizer.json"
    path.write_text(text if text is not None else json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def test_small_file_converts_with_tokenizers_ids(tmp_path):
    path = write(tmp_path, small_tokenizer_json())
    kind, vocabulary, files = huggingface.read_tokenizer(tmp_path)
    assert (kind, vocabulary) == ("sentencepiece", None) and isinstance(files[0], bytes)
    processor = spm().SentencePieceProcessor(model_proto=files[0])
    hf = tokenizers_lib().Tokenizer.from_file(str(path))
    for text in ["a b", "ab  ba", " a\tb\n", "\u3000a\u2028b\x85", "c a", "", " "]:
        assert fairseq_ids(processor, text) == hf.encode(text).ids, text
    assert huggingface._tokenizer_size("sentencepiece", None, files) == 10


def test_sentencepiece_model_is_preferred_to_tokenizer_json(tmp_path):
    write(tmp_path, text="{ not json")  # never read when the model is there
    (tmp_path / SENTENCEPIECE_MODEL_FILE).write_bytes(trained_model("unigram-nmt_nfkc"))
    assert huggingface.read_tokenizer(tmp_path) == ("sentencepiece", None, (tmp_path / SENTENCEPIECE_MODEL_FILE,))


_BYTE_PIECES = [[f"<0x{b:02X}>", 0.0] for b in range(200)]


@pytest.mark.parametrize("document,text,message", [
    (None, '{"model": {"type": "Unigram", "vocab": [["<s>", 0.0], ', "not valid JSON"),
    (None, "[1, 2]", "the top level is a list, not an object"),
    (None, '{"model": {"type": "Unigram", "vocab": [["<s>", NaN]], "unk_id": 3}}', "not valid JSON (NaN is not a JSON number"),
    (small_tokenizer_json(**{"model.type": "WordPiece"}), None, "model.type 'WordPiece' is not supported"),
    ({"model": {"type": "BPE", "vocab": "/etc/passwd", "merges": []}}, None, "a BPE model needs model.vocab (an object)"),
    (small_tokenizer_json(**{"model.vocab": {"a": 1}}), None, "model.vocab is an object, not a list"),
    ({"model": {"type": "Unigram", "unk_id": 3}}, None, "model.vocab is missing"),
    (small_tokenizer_json(**{"model.vocab.5": ["a", "high"]}), None, "model.vocab[5] is not a [piece, score] pair"),
    (small_tokenizer_json(**{"model.vocab.5": ["a", 1e39]}), None, "not a finite float32"),
    (small_tokenizer_json(**{"model.vocab.5": ["", -1.0]}), None, "model.vocab[5] is an empty piece"),
    (None, json.dumps(small_tokenizer_json()).replace('"a"', '"\\ud800"', 1), "model.vocab[5] is not valid Unicode"),
    (small_tokenizer_json(**{"pre_tokenizer": None}), None, "pre_tokenizer is missing"),
    (small_tokenizer_json(**{"model.vocab.6": ["a", -1.0]}), None, "the piece 'a' twice (ids 5 and 6)"),
    (small_tokenizer_json(**{"model.unk_id": 99}), None, "model.unk_id 99 is outside the vocabulary"),
    (small_tokenizer_json(**{"model.unk_id": "3"}), None, "model.unk_id is a string, not an integer"),
    (small_tokenizer_json(**{"model.unk_id": 0}), None, "not in XLM-R's layout"),
    (small_tokenizer_json(**{"model.vocab.9": ["<extra>", 0.0]}), None, "not in XLM-R's layout"),
    (small_tokenizer_json(**{"model.byte_fallback": "yes"}), None, "model.byte_fallback is a string, not a boolean"),
    (small_tokenizer_json(**{"model.byte_fallback": True, "model.vocab": small_tokenizer_json()["model"]["vocab"][:4]
                             + _BYTE_PIECES + [["<mask>", 0.0]], "added_tokens.4.id": 204}), None, "only 200 of the 256 byte pieces"),
    (small_tokenizer_json(**{"normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Replace", "pattern": {"String": "``"}, "content": '"'}]}}), None, "normalizer step 0 (Replace"),
    (small_tokenizer_json(**{"normalizer": {"type": "NFKD"}}), None, "normalizer step 0 (NFKD {}) has no SentencePiece"),
    (small_tokenizer_json(**{"normalizer": {"type": "Precompiled", "precompiled_charsmap": "@@@"}}), None, "not valid base64"),
    (small_tokenizer_json(**{"normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA"}}), None,
     "precompiled charsmap is broken"),
    (small_tokenizer_json(**{"pre_tokenizer": {"type": "ByteLevel"}}), None, "pre_tokenizer ['ByteLevel'] is not SentencePiece's"),
    (small_tokenizer_json(**{"pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True}}),
     None, "spaces would tokenize differently"),
    (small_tokenizer_json(**{"pre_tokenizer.pretokenizers.1.prepend_scheme": "first"}), None, "prepend_scheme 'first'"),
    (small_tokenizer_json(**{"pre_tokenizer.pretokenizers.1.replacement": "_"}), None, "replaces spaces with '_'"),
    (small_tokenizer_json(**{"added_tokens.4.content": "<ent>"}), None, "adds '<ent>' as id 9"),
    (small_tokenizer_json(**{"post_processor": {"type": "BertProcessing"}}), None, "post_processor (BertProcessing)"),
])
def test_malformed_or_unrepresentable_tokenizer_json_is_refused(tmp_path, document, text, message):
    path = write(tmp_path, document, text)
    with pytest.raises(ConversionError) as raised:
        huggingface.read_tokenizer(tmp_path)
    error = str(raised.value)
    assert message in error and str(path) in error and "\n" not in error, error
