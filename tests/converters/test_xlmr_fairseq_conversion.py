"""fairseq XLM-R checkpoints through `roberta-tf convert fairseq`, judged by fairseq's own `XLMRModel`.

The checkpoint is written by fairseq's training code (`xlmr_fixtures`: a small RoBERTa over a
4,000-piece unigram SentencePiece model trained on XNLI with `nmt_nfkc`, XLM-R's setup, and a
`dict.txt` in XLM-R's layout), converted by the CLI to a preset and loaded with
`XLMRobertaTextClassifier.from_preset`. The reference is fairseq's hub interface
(`XLMRModel.from_pretrained(..., bpe="sentencepiece")`: its SentencePiece BPE and Dictionary
encode, `predict` runs the classification head) on raw XNLI texts in all 15 languages.

One known difference is pinned rather than hidden: fairseq's hub joins SentencePiece's pieces
with spaces and splits them again with Python's whitespace rules, so a character that Python
calls whitespace but the normalizer keeps inside a piece (U+0085 under `nmt_nfkc`; more under
`identity`/`nfkc_cf`) splits fairseq's piece. roberta_tf gives SentencePiece's own pieces,
each with its fairseq id (`test_next_line_character_keeps_sentencepiece_pieces`).
"""

import collections
import itertools
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("fairseq", reason="fairseq-fixed is not installed (pip install -e '.[fairseq]')")

# fairseq 0.12's Hydra usage warns on every config composition; nothing of ours.
pytestmark = [
    pytest.mark.filterwarnings(f"ignore:(?s).*{message}:UserWarning")
    for message in ("no longer experimental", "version_base", "package header", "ConfigStore schema", "strict flag")
]

import xlmr_fixtures  # noqa: E402
from corpora import XNLI_LANGUAGES, fuzz, misc, xnli  # noqa: E402
from fairseq_fixtures import HEAD, LABELS, MAX_POSITIONS  # noqa: E402
from sentencepiece_models import spm, trained_model  # noqa: E402

MODEL = "unigram-nmt_nfkc"
PER_LANGUAGE = 2  # single texts and pairs per XNLI language
EDGE_TEXTS = ["", "  ", "Ｈｅｌｌｏ ﬁne 😀 ⅻ", "\x00 tab\tand\nnewline"]  # empty, NFKC, <unk>, controls
ATOL = 1e-5
NEXT_LINE = "\x85"  # Python whitespace that nmt_nfkc keeps (see the module docstring)


# ---------------------------------------------------------------------------------------------
# Fixtures: the SentencePiece model, the fairseq checkpoint, fairseq's hub, texts, presets
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proto():
    return trained_model(MODEL)


@pytest.fixture(scope="module")
def processor(proto):
    return spm().SentencePieceProcessor(model_proto=proto)


@pytest.fixture(scope="module")
def checkpoints(proto, processor, tmp_path_factory):
    return xlmr_fixtures.build_xlmr_checkpoint(tmp_path_factory.mktemp("xlmr-fairseq"), proto, processor)


@pytest.fixture(scope="module")
def sentencepiece_model(checkpoints):
    return checkpoints.data_dir / xlmr_fixtures.SENTENCEPIECE_MODEL_FILE


@pytest.fixture(scope="module")
def hub(checkpoints, sentencepiece_model):
    return xlmr_fixtures.xlmr_hub(checkpoints.zip_cfg, checkpoints.data_dir, sentencepiece_model)


def _fits(hub, *segments):
    return len(hub.encode(*segments)) <= MAX_POSITIONS  # fairseq's predict refuses longer inputs


@pytest.fixture(scope="module")
def texts(hub):
    """Per XNLI language, the first PER_LANGUAGE premises and pairs that fit MAX_POSITIONS,
    and a few edge strings."""
    singles, pairs = list(EDGE_TEXTS), []
    for language in XNLI_LANGUAGES:
        rows = xnli(language)  # premise, hypothesis, premise, ...
        candidates = list(zip(rows[0::2], rows[1::2]))
        singles += itertools.islice((a for a, _ in candidates if _fits(hub, a)), PER_LANGUAGE)
        pairs += itertools.islice((p for p in candidates if _fits(hub, *p)), PER_LANGUAGE)
    assert len(singles) == len(EDGE_TEXTS) + PER_LANGUAGE * len(XNLI_LANGUAGES)
    assert len(pairs) == PER_LANGUAGE * len(XNLI_LANGUAGES)
    return {"singles": [(t,) for t in singles], "pairs": pairs}


def fairseq_references(hub, texts):
    """fairseq's ids (`encode`) and logits (`predict` with the classification head), one text
    at a time, for each kind of input."""
    import torch

    out = {}
    with torch.no_grad():
        for kind, inputs in texts.items():
            tokens = [hub.encode(*x) for x in inputs]
            logits = [hub.predict(HEAD, t, return_logits=True)[0].numpy() for t in tokens]
            out[kind] = {"ids": [t.tolist() for t in tokens], "logits": np.stack(logits)}
    return out


@pytest.fixture(scope="module")
def references(hub, texts):
    return fairseq_references(hub, texts)


def convert_with_cli(tmp_path_factory, name, *flags):
    """`roberta-tf convert fairseq ... --output DIR` in process; the preset directory."""
    from roberta_tf.cli import convert

    output = tmp_path_factory.mktemp("xlmr-presets") / name
    assert convert.main(["roberta-tf convert", "fairseq", *map(str, flags), "--output", str(output)]) == 0
    return output


@pytest.fixture(scope="module")
def preset(checkpoints, tmp_path_factory):
    """The CLI's preset; the SentencePiece model is found in --data_dir, as in XLM-R's release."""
    return convert_with_cli(
        tmp_path_factory, "xlmr", "--checkpoint", checkpoints.zip_cfg, "--data_dir", checkpoints.data_dir
    )


@pytest.fixture(scope="module")
def classifier(preset):
    from roberta_tf.models import XLMRobertaTextClassifier

    return XLMRobertaTextClassifier.from_preset(str(preset))


def _features(classifier, kind, inputs):
    if kind == "singles":
        return classifier.preprocessor([t for (t,) in inputs])
    return classifier.preprocessor(([a for a, _ in inputs], [b for _, b in inputs]))


def _unpadded_rows(features):
    ids = features["token_ids"].numpy()
    mask = features["padding_mask"].numpy().astype(bool)
    return [row[m].tolist() for row, m in zip(ids, mask)]


def assert_matches_fairseq(classifier, texts, references):
    """Packed ids equal fairseq's `encode` and logits its `predict` within ATOL."""
    for kind, inputs in texts.items():
        features = _features(classifier, kind, inputs)
        got_ids, want_ids = _unpadded_rows(features), references[kind]["ids"]
        mismatches = [(i, g, w) for i, (g, w) in enumerate(zip(got_ids, want_ids)) if g != w]
        assert not mismatches, f"{kind}: {len(mismatches)} id rows differ, first {mismatches[0]}"
        got = classifier(features, training=False).numpy()
        want = references[kind]["logits"]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0, err_msg=kind)


# ---------------------------------------------------------------------------------------------
# The fixture is XLM-R's layout, as fairseq reads it
# ---------------------------------------------------------------------------------------------


def test_fixture_dictionary_is_sentencepiece_shifted_by_one(checkpoints, hub, processor):
    dictionary = hub.task.source_dictionary
    size = processor.get_piece_size()
    lines = (checkpoints.data_dir / "input0" / "dict.txt").read_text(encoding="utf-8").splitlines()
    assert [line.rsplit(" ", 1)[0] for line in lines] == [processor.id_to_piece(i) for i in range(3, size)]
    assert [dictionary[i] for i in range(4)] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert all(dictionary.index(processor.id_to_piece(i)) == i + 1 for i in range(3, size))
    assert len(dictionary) == size + 2 and dictionary[size + 1] == "<mask>"  # as XLM-R's 250,002
    embedding = hub.model.encoder.sentence_encoder.embed_tokens.weight
    assert embedding.shape[0] == len(dictionary)


# ---------------------------------------------------------------------------------------------
# The converted preset: files, classes, ids, logits
# ---------------------------------------------------------------------------------------------


def test_preset_keeps_the_sentencepiece_model_and_no_dictionary(preset, checkpoints, sentencepiece_model):
    config = json.loads((preset / "config.json").read_text(encoding="utf-8"))
    # dict.txt is in SentencePiece's order: the model alone gives fairseq's ids.
    assert config["tokenizer"] == {"type": "sentencepiece", "model": "sentencepiece.bpe.model"}
    assert not (preset / "dict.txt").exists()
    assert (preset / "sentencepiece.bpe.model").read_bytes() == sentencepiece_model.read_bytes()
    assert config["classifier"]["label_names"] == list(LABELS)
    source = json.loads((preset / "metadata.json").read_text(encoding="utf-8"))["source"]
    assert source["type"] == "fairseq" and source["path"] == str(checkpoints.zip_cfg)
    assert source["sentencepiece_model"] == str(sentencepiece_model)


def test_preset_loads_as_xlm_roberta_classes(classifier, processor):
    from roberta_tf.models import XLMRobertaBackbone, XLMRobertaTokenizer

    assert isinstance(classifier.backbone, XLMRobertaBackbone)
    tokenizer = classifier.preprocessor.tokenizer
    assert isinstance(tokenizer, XLMRobertaTokenizer) and tokenizer.dict_pieces is None
    assert tokenizer.vocabulary_size() == processor.get_piece_size() + 2
    assert classifier.label_names == list(LABELS)


def test_ids_and_logits_match_fairseq_xlmr_model(classifier, texts, references):
    assert_matches_fairseq(classifier, texts, references)


def test_tokenizer_ids_equal_fairseq_encode_without_its_specials(classifier, hub):
    """The tokenizer alone, on more text: every XNLI language, the naughty strings and a fuzz
    (without U+0085: see test_next_line_character_keeps_sentencepiece_pieces)."""
    corpus = [t for language in XNLI_LANGUAGES for t in xnli(language)[:40]] + misc("blns.txt") + fuzz(1000, seed=3)
    corpus = [t for t in corpus if NEXT_LINE not in t]
    got = classifier.preprocessor.tokenizer(corpus).to_list()
    want = [hub.encode(t).tolist()[1:-1] for t in corpus]  # fairseq adds <s> ... </s>
    mismatches = [(t, g, w) for t, g, w in zip(corpus, got, want) if g != w]
    assert not mismatches, f"{len(mismatches)} of {len(corpus)} differ, first {mismatches[0]!r}"


def test_next_line_character_keeps_sentencepiece_pieces(classifier, hub, processor):
    """U+0085 is a piece character to SentencePiece's nmt_nfkc and whitespace to Python:
    fairseq's hub splits the pieces there (and drops it); roberta_tf keeps SentencePiece's
    pieces (fairseq's id for each)."""
    text = f"a{NEXT_LINE}b x{NEXT_LINE} ¼{NEXT_LINE}y"
    pieces = processor.encode(text, out_type=str)
    assert any(NEXT_LINE in piece for piece in pieces)
    dictionary = hub.task.source_dictionary
    got = classifier.preprocessor.tokenizer([text]).to_list()[0]
    assert got == [dictionary.index(piece) for piece in pieces]
    fairseq_split = [dictionary.index(part) for piece in pieces for part in piece.split()]
    assert hub.encode(text).tolist()[1:-1] == fairseq_split != got


# ---------------------------------------------------------------------------------------------
# A dict.txt in another order than SentencePiece's
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reordered(checkpoints, references, sentencepiece_model, tmp_path_factory):
    """A data dir whose dict.txt swaps the lines of the two pieces most used by the texts
    (the same checkpoint: fairseq then reads other rows for them), without the SentencePiece
    model (given with --sentencepiece_model instead)."""
    counts = collections.Counter(i for rows in references.values() for row in rows["ids"] for i in row if i > 3)
    (first, _), (second, _) = counts.most_common(2)
    data_dir = tmp_path_factory.mktemp("xlmr-reordered") / "data"
    shutil.copytree(checkpoints.data_dir, data_dir)
    (data_dir / xlmr_fixtures.SENTENCEPIECE_MODEL_FILE).unlink()
    dict_txt = data_dir / "input0" / "dict.txt"
    lines = dict_txt.read_text(encoding="utf-8").splitlines(keepends=True)
    a, b = first - 4, second - 4  # fairseq id i is line i - 4
    lines[a], lines[b] = lines[b], lines[a]
    dict_txt.write_text("".join(lines), encoding="utf-8")
    preset = convert_with_cli(
        tmp_path_factory, "reordered", "--checkpoint", checkpoints.zip_cfg, "--data_dir", data_dir,
        "--sentencepiece_model", sentencepiece_model,
    )
    return data_dir, [line.rsplit(" ", 1)[0] for line in lines], preset


def test_reordered_dict_txt_is_kept_and_matches_fairseq(reordered, checkpoints, sentencepiece_model, texts, references):
    from roberta_tf.models import XLMRobertaTextClassifier

    data_dir, pieces, preset = reordered
    config = json.loads((preset / "config.json").read_text(encoding="utf-8"))
    assert config["tokenizer"] == {"type": "sentencepiece", "model": "sentencepiece.bpe.model", "dictionary": "dict.txt"}
    kept = (preset / "dict.txt").read_text(encoding="utf-8").splitlines()
    assert [line.rsplit(" ", 1)[0] for line in kept] == pieces

    hub = xlmr_fixtures.xlmr_hub(checkpoints.zip_cfg, data_dir, sentencepiece_model)
    swapped = fairseq_references(hub, texts)
    for kind in texts:  # the swap shows in fairseq's ids and logits
        assert swapped[kind]["ids"] != references[kind]["ids"]
        assert np.abs(swapped[kind]["logits"] - references[kind]["logits"]).max() > 1e-3
    classifier = XLMRobertaTextClassifier.from_preset(str(preset))
    assert classifier.preprocessor.tokenizer.dict_pieces == pieces
    assert_matches_fairseq(classifier, texts, swapped)


# ---------------------------------------------------------------------------------------------
# Files that do not fit
# ---------------------------------------------------------------------------------------------


def test_dict_txt_missing_a_line_raises_with_the_sizes(checkpoints, sentencepiece_model, tmp_path):
    from roberta_tf.converters import fairseq

    dict_txt = tmp_path / "dict.txt"
    lines = (checkpoints.data_dir / "input0" / "dict.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    dict_txt.write_text("".join(lines[:-1]), encoding="utf-8")
    with pytest.raises(ValueError) as error:
        fairseq.convert(str(checkpoints.zip_cfg), dict_txt=str(dict_txt), sentencepiece_model=str(sentencepiece_model))
    message = str(error.value)
    assert "dict.txt" in message and str(len(lines) + 5) in message and str(len(lines) + 4) in message, message


def test_a_file_that_is_not_a_sentencepiece_model_is_refused(checkpoints, tmp_path):
    from roberta_tf.converters import fairseq

    not_a_model = tmp_path / "sentencepiece.bpe.model"
    not_a_model.write_bytes(b"\x0a\xff\xff\xff not a ModelProto")
    with pytest.raises(ValueError, match="sentencepiece.bpe.model"):
        fairseq.convert(str(checkpoints.zip_cfg), data_dir=str(checkpoints.data_dir), sentencepiece_model=str(not_a_model))


def test_dictionary_lines_split_as_fairseq_splits_them(checkpoints, tmp_path):
    """Only \\n, \\r\\n and \\r end a line (fairseq's readlines), not U+0085 or U+2028 inside a
    piece; trailing spaces and the overwrite flag's absence are read alike."""
    from fairseq.data import Dictionary
    from roberta_tf.tokenizers.sentencepiece_vocabulary import read_dict_pieces

    lines = (checkpoints.data_dir / "input0" / "dict.txt").read_text(encoding="utf-8").splitlines()[:20]
    lines[3:6] = [f"x{NEXT_LINE}y 1", "z\u2028 7  ", "\u2029\x1c 2"]
    dict_txt = tmp_path / "dict.txt"
    dict_txt.write_bytes(("\r\n".join(lines[:10]) + "\n" + "\n".join(lines[10:]) + "\n").encode("utf-8"))
    assert read_dict_pieces(dict_txt) == Dictionary.load(str(dict_txt)).symbols[4:]


@pytest.mark.parametrize("repeated", ["piece", "<unk>"])
def test_repeated_piece_is_refused_naming_the_line(checkpoints, sentencepiece_model, tmp_path, repeated):
    """fairseq's Dictionary refuses a repeated piece (and a line for one of its own four
    specials); so does the converter, naming the line, rather than number the ids otherwise."""
    from fairseq.data import Dictionary
    from roberta_tf.converters import fairseq

    lines = (checkpoints.data_dir / "input0" / "dict.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[-1] = lines[4] if repeated == "piece" else "<unk> 1\n"  # keeps the size the embedding needs
    dict_txt = tmp_path / "dict.txt"
    dict_txt.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(RuntimeError, match="Duplicate word"):
        Dictionary.load(str(dict_txt))
    with pytest.raises(ValueError, match=f"dict.txt:{len(lines)}:.*already in the dictionary"):
        fairseq.convert(str(checkpoints.zip_cfg), dict_txt=str(dict_txt), sentencepiece_model=str(sentencepiece_model))


def test_cli_without_tokenizer_files_names_the_sentencepiece_model(tmp_path, capsys):
    from roberta_tf.cli import convert

    argv = ["roberta-tf convert", "fairseq", "--checkpoint", "model.pt", "--data_dir", str(tmp_path),
            "--output", str(tmp_path / "out")]
    assert convert.main(argv) == 2
    error = capsys.readouterr().err
    assert "--encoder_json, --vocab_bpe required" in error and "--sentencepiece_model" in error, error


def test_both_tokenizers_given_is_refused(checkpoints, sentencepiece_model):
    from roberta_tf.converters import fairseq

    with pytest.raises(ValueError, match="not both"):
        fairseq.convert(str(checkpoints.zip_cfg), data_dir=str(checkpoints.data_dir), encoder_json="encoder.json",
                        vocab_bpe="vocab.bpe", sentencepiece_model=str(sentencepiece_model))
