"""`roberta-tf verify hf|fairseq` on XLM-R presets: the SentencePiece reference path.

The sources are the small XLM-R checkpoints the converter tests use: transformers'
`XLMRobertaForSequenceClassification` with a 4,000-piece unigram SentencePiece model trained
on XNLI (`hf_checkpoint` of tests/models/xlmr_model_fixtures.py) and a fairseq XLM-R checkpoint
written by fairseq's own training code over the same model (tests/converters/xlmr_fixtures.py).
Each is converted by `roberta-tf convert` and then verified: it passes as converted (ids
equal text by text, logits and hidden states within 1e-5), and fails, with one line on stderr
saying why, when the preset's classifier bias is shifted or its SentencePiece model is swapped
for another of the same size. Each verify run costs a few seconds (a fresh preset: tokenizer
tracing, model building), so each case is one run.
"""

import json
import shutil

import numpy as np
import pytest

from corpora import XNLI_LANGUAGES, xnli
from fairseq_fixtures import MAX_POSITIONS  # tests/converters (pyproject's pytest pythonpath)
from roberta_tf.cli import convert, verify
from sentencepiece_models import spm, trained_model
from xlmr_model_fixtures import SEQUENCE_LENGTH, fairseq_ids, hf_checkpoint, processor, proto_path  # noqa: F401 (fixtures)

# Every XNLI language, edge strings (empty, a control character, NFKC folds, <unk>s) and one
# text longer than either preset's sequence length (SEQUENCE_LENGTH, fairseq's MAX_POSITIONS):
# the reference's ids are cut as the preset's packer cuts.
TEXTS = [xnli(language)[3] for language in XNLI_LANGUAGES] + [
    "", "\x00", "Ｈｅｌｌｏ ﬁne 😀 ⅻ", " ".join(xnli("en")[:6]),
]
ATOL = 1e-5
OTHER_MODEL = "bpe-nmt_nfkc"  # as many pieces as the checkpoints' model, other ids for most texts
LOGITS_BIAS_SHIFT = 0.01
# fairseq 0.12's Hydra usage warns on every config composition; nothing of ours.
FAIRSEQ_WARNINGS = [
    pytest.mark.filterwarnings(f"ignore:(?s).*{message}:UserWarning")
    for message in ("no longer experimental", "version_base", "package header", "ConfigStore schema", "strict flag")
]


def run_verify(capsys, mode, *flags):
    """`roberta-tf verify MODE ...` in process: (exit code, JSON report or None, verify's
    own stderr lines; the references' progress bars left out)."""
    capsys.readouterr()
    code = verify.main(["roberta-tf verify", mode, *map(str, flags)])
    out, err = capsys.readouterr()
    own = [line for line in err.splitlines() if line.startswith(f"roberta-tf verify {mode}:")]
    return code, (json.loads(out) if out.strip() else None), own


def convert_preset(tmp_path_factory, mode, *flags):
    output = tmp_path_factory.mktemp(f"xlmr-{mode}") / "preset"
    assert convert.main(["roberta-tf convert", mode, *map(str, flags), "--output", str(output)]) == 0
    return output


def copy_with_logits_bias_shifted(preset, directory):
    """A copy of `preset` whose classifier's output bias is LOGITS_BIAS_SHIFT higher: every
    logit moves by exactly that much, the encoder not at all."""
    from safetensors.numpy import load_file, save_file

    copy = shutil.copytree(preset, directory / "perturbed")
    arrays = load_file(str(copy / "model.safetensors"))
    assert "head.logits.bias" in arrays, sorted(arrays)
    arrays["head.logits.bias"] = arrays["head.logits.bias"] + np.float32(LOGITS_BIAS_SHIFT)
    save_file(arrays, str(copy / "model.safetensors"))
    return copy


def copy_with_other_sentencepiece_model(preset, directory):
    copy = shutil.copytree(preset, directory / "other-tokenizer")
    (copy / "sentencepiece.bpe.model").write_bytes(trained_model(OTHER_MODEL))
    return copy


def expected_first_mismatch(processor, preset_processor):
    """(number of TEXTS whose fairseq ids differ, first such text's 1-based number)."""
    differing = [i for i, t in enumerate(TEXTS) if fairseq_ids(processor, t) != fairseq_ids(preset_processor, t)]
    assert differing, "the other model must tokenize some text differently"
    return len(differing), differing[0] + 1


def assert_passes(code, report, err, model):
    assert code == 0 and report["ok"], (report, err)
    assert report["texts"] == len(TEXTS) and report["token_id_mismatches"] == 0
    assert report["first_token_id_mismatch"] is None
    assert report["max_abs_logits_diff"] <= ATOL and report["max_abs_hidden_diff"] <= ATOL
    assert report["reference"]["model"].startswith(model), report["reference"]
    assert err == []


def assert_fails_on_logits(code, report, err):
    assert code == 1 and not report["ok"], report
    assert report["token_id_mismatches"] == 0 and report["max_abs_hidden_diff"] <= ATOL
    assert report["max_abs_logits_diff"] == pytest.approx(LOGITS_BIAS_SHIFT, abs=ATOL)
    assert len(err) == 1 and "max |logits difference| 0.01 > tolerance 0.0001" in err[0], err


def assert_fails_on_ids(code, report, err, processor, other_processor):
    """The report names how many texts differ and the first one, with both id lists."""
    differing, first_number = expected_first_mismatch(processor, other_processor)
    assert code == 1 and not report["ok"], report
    assert report["token_id_mismatches"] == differing
    first = report["first_token_id_mismatch"]
    assert first["number"] == first_number and first["text"] == TEXTS[first_number - 1]
    assert len(err) == 1, err
    assert f"token ids differ on {differing} of {len(TEXTS)} texts; first: text {first_number} " in err[0], err
    return first


@pytest.fixture(scope="module")
def texts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("texts") / "texts.txt"
    path.write_text("".join(f"{t}\n" for t in TEXTS), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def other_processor():
    return spm().SentencePieceProcessor(model_proto=trained_model(OTHER_MODEL))


# ---------------------------------------------------------------------------------------------
# verify hf: transformers' XLMRobertaForSequenceClassification, ids from `sentencepiece`
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_dir(hf_checkpoint):  # noqa: F811 (the imported fixture)
    return hf_checkpoint[0]


@pytest.fixture(scope="module")
def hf_preset(hf_dir, tmp_path_factory):
    return convert_preset(tmp_path_factory, "hf", "--model_dir", hf_dir)


def test_verify_hf_passes_on_the_converted_preset(hf_preset, hf_dir, texts_file, processor, tmp_path, capsys):  # noqa: F811
    # The reference's model given by path (elsewhere: found in --model_dir), as a user whose
    # checkpoint keeps it apart would; the report names the file the ids came from.
    reference_model = shutil.copyfile(hf_dir / "sentencepiece.bpe.model", tmp_path / "xlmr.model")
    code, report, err = run_verify(capsys, "hf", "--preset", hf_preset, "--model_dir", hf_dir, "--input", texts_file,
                                   "--sentencepiece_model", reference_model)
    assert_passes(code, report, err, "transformers XLMRobertaForSequenceClassification")
    assert report["reference"]["tokenizer"] == f"sentencepiece ({reference_model}) with fairseq's ids"
    assert len(fairseq_ids(processor, TEXTS[-1])) > SEQUENCE_LENGTH  # so the reference's ids were cut


def test_verify_hf_fails_on_perturbed_weights(hf_preset, hf_dir, texts_file, tmp_path, capsys):
    perturbed = copy_with_logits_bias_shifted(hf_preset, tmp_path)
    code, report, err = run_verify(capsys, "hf", "--preset", perturbed, "--model_dir", hf_dir, "--input", texts_file)
    assert_fails_on_logits(code, report, err)


def test_verify_hf_fails_when_the_preset_has_another_sentencepiece_model(
    hf_preset, hf_dir, texts_file, processor, other_processor, tmp_path, capsys  # noqa: F811
):
    swapped = copy_with_other_sentencepiece_model(hf_preset, tmp_path)
    code, report, err = run_verify(capsys, "hf", "--preset", swapped, "--model_dir", hf_dir, "--input", texts_file)
    first = assert_fails_on_ids(code, report, err, processor, other_processor)
    text = TEXTS[first["number"] - 1]
    assert first["preset_ids"] == [0, *fairseq_ids(other_processor, text)[: SEQUENCE_LENGTH - 2], 2]
    assert first["reference_ids"] == [0, *fairseq_ids(processor, text)[: SEQUENCE_LENGTH - 2], 2]
    # the texts that still agree were compared, and their logits match
    assert report["max_abs_logits_diff"] <= ATOL


def test_verify_hf_takes_a_tokenizer_json_only_directory(
    hf_preset, hf_dir, texts_file, proto_path, tmp_path, capsys  # noqa: F811
):
    """A directory saved by transformers' fast tokenizer has tokenizer.json and no
    SentencePiece model: `tokenizers` over that file gives the reference ids."""
    import xlmr_fixtures

    write_tokenizer_json = getattr(xlmr_fixtures, "transformers_tokenizer_json", None)
    if write_tokenizer_json is None:
        pytest.skip("xlmr_fixtures.transformers_tokenizer_json is not there")
    model_dir = tmp_path / "fast-tokenizer"
    model_dir.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(hf_dir / name, model_dir / name)
    tokenizer_json = write_tokenizer_json(proto_path.read_bytes(), model_dir)
    assert not (model_dir / "sentencepiece.bpe.model").exists()
    code, report, err = run_verify(capsys, "hf", "--preset", hf_preset, "--model_dir", model_dir, "--input", texts_file)
    assert_passes(code, report, err, "transformers XLMRobertaForSequenceClassification")
    assert report["reference"]["tokenizer"] == f"tokenizers ({tokenizer_json})"


def _directory_with(tmp_path, name, files=None):
    """tmp_path/name holding `files` ({file name: text})."""
    directory = tmp_path / name
    directory.mkdir()
    for file_name, content in (files or {}).items():
        (directory / file_name).write_text(content, encoding="utf-8")
    return directory


def test_verify_hf_usage_errors(hf_preset, hf_dir, tmp_path, capsys):
    roberta_dir = _directory_with(tmp_path, "roberta", {"config.json": json.dumps({"model_type": "roberta"})})
    no_sentencepiece = _directory_with(tmp_path, "xlmr", {"config.json": (hf_dir / "config.json").read_text()})
    cases = [
        (["--model_dir", roberta_dir], "is an XLM-R preset (SentencePiece) but"),
        (["--model_dir", roberta_dir], "says model_type 'roberta'"),
        (["--model_dir", no_sentencepiece], f"{no_sentencepiece} has neither sentencepiece.bpe.model nor tokenizer.json"),
        (["--model_dir", hf_dir, "--sentencepiece_model", tmp_path / "missing.model"], "missing.model: no such file"),
        (["--model_dir", hf_dir, "--encoder_json", "e.json"], "Unknown command line flag 'encoder_json'"),
    ]
    for flags, message in cases:
        code, report, err = run_verify(capsys, "hf", "--preset", hf_preset, *flags)
        assert (code, report) == (2, None), (flags, err)
        assert len(err) == 1 and message in err[0], (flags, err)


# ---------------------------------------------------------------------------------------------
# verify fairseq: fairseq's XLMRModel with its own SentencePiece BPE and dictionary
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fairseq_checkpoints(proto_path, processor, tmp_path_factory):  # noqa: F811
    pytest.importorskip("fairseq", reason="fairseq-fixed is not installed (pip install -e '.[fairseq]')")
    import xlmr_fixtures

    return xlmr_fixtures.build_xlmr_checkpoint(tmp_path_factory.mktemp("xlmr-fairseq"), proto_path.read_bytes(), processor)


@pytest.fixture(scope="module")
def fairseq_flags(fairseq_checkpoints):
    return ["--checkpoint", fairseq_checkpoints.zip_cfg, "--data_dir", fairseq_checkpoints.data_dir]


@pytest.fixture(scope="module")
def fairseq_preset(fairseq_flags, tmp_path_factory):
    return convert_preset(tmp_path_factory, "fairseq", *fairseq_flags)


def quiet_fairseq(test):
    """The FAIRSEQ_WARNINGS filters on one test."""
    for mark in FAIRSEQ_WARNINGS:
        test = mark(test)
    return test


@quiet_fairseq
def test_verify_fairseq_passes_on_the_converted_preset(
    fairseq_preset, fairseq_flags, texts_file, processor, capsys  # noqa: F811
):
    code, report, err = run_verify(capsys, "fairseq", "--preset", fairseq_preset, *fairseq_flags, "--input", texts_file)
    assert_passes(code, report, err, "fairseq XLMRModel, head sentence_classification_head")
    assert "fairseq's sentencepiece BPE" in report["reference"]["tokenizer"]
    assert len(fairseq_ids(processor, TEXTS[-1])) > MAX_POSITIONS  # so fairseq's ids were cut


@quiet_fairseq
def test_verify_fairseq_fails_on_perturbed_weights(fairseq_preset, fairseq_flags, texts_file, tmp_path, capsys):
    perturbed = copy_with_logits_bias_shifted(fairseq_preset, tmp_path)
    # The SentencePiece model given by path here (elsewhere: found in --data_dir).
    reference_model = fairseq_flags[-1] / "sentencepiece.bpe.model"
    code, report, err = run_verify(capsys, "fairseq", "--preset", perturbed, *fairseq_flags, "--input", texts_file,
                                   "--sentencepiece_model", reference_model)
    assert_fails_on_logits(code, report, err)
    assert str(reference_model) in report["reference"]["tokenizer"]


@quiet_fairseq
def test_verify_fairseq_fails_when_the_preset_has_another_sentencepiece_model(
    fairseq_preset, fairseq_flags, texts_file, processor, other_processor, tmp_path, capsys  # noqa: F811
):
    swapped = copy_with_other_sentencepiece_model(fairseq_preset, tmp_path)
    code, report, err = run_verify(capsys, "fairseq", "--preset", swapped, *fairseq_flags, "--input", texts_file)
    first = assert_fails_on_ids(code, report, err, processor, other_processor)
    text = TEXTS[first["number"] - 1]
    assert first["preset_ids"] == [0, *fairseq_ids(other_processor, text)[: MAX_POSITIONS - 2], 2]
    assert first["reference_ids"] == [0, *fairseq_ids(processor, text)[: MAX_POSITIONS - 2], 2]


def test_verify_fairseq_usage_errors(hf_preset, tmp_path, capsys):
    """Wrong combinations are refused from the flags and the preset's config, before fairseq
    (or a model) is loaded: these run without fairseq."""
    data_dir = _directory_with(tmp_path, "data")
    with_model = _directory_with(tmp_path, "data-xlmr", {"sentencepiece.bpe.model": "not read here"})
    gpt2 = ["--encoder_json", "encoder.json", "--vocab_bpe", "vocab.bpe"]
    cases = [
        (["--checkpoint", "model.pt", "--data_dir", data_dir],
         "--encoder_json, --vocab_bpe required (XLM-R: --sentencepiece_model, or sentencepiece.bpe.model in --data_dir)"),
        (["--checkpoint", "model.pt", "--data_dir", data_dir, *gpt2],
         f"--encoder_json and --vocab_bpe: {hf_preset} is an XLM-R preset (SentencePiece); fairseq tokenizes it "),
        (["--checkpoint", "model.pt", "--data_dir", with_model, "--encoder_json", "encoder.json"],
         "--encoder_json: "),
        (["--checkpoint", "model.pt", "--data_dir", data_dir, "--sentencepiece_model", tmp_path / "missing.model"],
         "missing.model: no such file"),
        (["--data_dir", with_model], "--checkpoint required"),
        (["--checkpoint", "model.pt", "--data_dir", with_model, "--model_dir", "x"], "Unknown command line flag 'model_dir'"),
    ]
    for flags, message in cases:
        code, report, err = run_verify(capsys, "fairseq", "--preset", hf_preset, *flags)
        assert (code, report) == (2, None), (flags, err)
        assert len(err) == 1 and message in err[0], (flags, err)
