"""`roberta-tf convert hf` and `roberta-tf verify hf` end to end, in-process."""

import json

import hf_fixtures
import pytest

from roberta_tf.cli import convert, main, verify


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    return hf_fixtures.checkpoint_dir(hf_fixtures.perturbed_classifier(), tmp_path_factory.mktemp("hf"))


def test_convert_then_verify(hf_dir, tmp_path, capsys):
    preset = tmp_path / "preset"
    assert convert.main(["roberta-tf convert", "hf", "--model_dir", str(hf_dir), "--output", str(preset)]) == 0
    assert capsys.readouterr().out.strip() == str(preset)
    assert (preset / "model.safetensors").is_file() and (preset / "vocab.json").is_file()
    code = verify.main(["roberta-tf verify", "hf", "--preset", str(preset), "--model_dir", str(hf_dir)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"], report
    assert report["texts"] == len(verify.DEFAULT_TEXTS)
    assert report["max_abs_logits_diff"] <= 1e-5 and report["max_abs_hidden_diff"] <= 1e-5


def test_convert_refuses_an_existing_preset_unless_overwrite(hf_dir, tmp_path, capsys):
    preset = tmp_path / "preset"
    preset.mkdir()
    (preset / "keep.txt").write_text("x")
    assert convert.main(["roberta-tf convert", "hf", "--model_dir", str(hf_dir), "--output", str(preset)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert convert.main(["roberta-tf convert", "hf", "--model_dir", str(hf_dir), "--output", str(preset), "--overwrite"]) == 0
    assert not (preset / "keep.txt").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["roberta-tf convert"], "fairseq"),
        (["roberta-tf convert", "onnx"], "fairseq"),
        (["roberta-tf convert", "hf", "--output", "x"], "--model_dir"),
        (["roberta-tf convert", "fairseq", "--output", "x"], "--checkpoint"),
        # a flag of the other mode is an error, not silently ignored
        (["roberta-tf convert", "hf", "--model_dir", "x", "--output", "y", "--checkpoint", "z"], "Unknown command line flag 'checkpoint'"),
        (["roberta-tf convert", "fairseq", "--checkpoint", "x", "--model_dir", "y"], "Unknown command line flag 'model_dir'"),
    ],
)
def test_usage_errors(argv, message, capsys):
    assert convert.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["roberta-tf verify", "hf", "--preset", "p", "--model_dir", "m", "--head", "h"], "Unknown command line flag 'head'"),
        (["roberta-tf verify", "fairseq", "--preset", "p"], "--checkpoint, --data_dir, --encoder_json, --vocab_bpe required"),
        (["roberta-tf verify", "--preset", "p", "hf"], "say which"),
    ],
)
def test_verify_usage_errors(argv, message, capsys):
    assert verify.main(argv) == 2
    assert message in capsys.readouterr().err


def test_help_lists_each_mode_with_its_own_flags(capsys):
    assert convert.main(["roberta-tf convert", "--help"]) == 0
    text = capsys.readouterr().out
    fairseq_part, hf_part = text.split("\nhf: ")
    assert "--checkpoint" in fairseq_part and "--model_dir" not in fairseq_part
    assert "--model_dir" in hf_part and "--checkpoint" not in hf_part
    assert convert.main(["roberta-tf convert", "hf", "--help"]) == 0
    assert "--checkpoint" not in capsys.readouterr().out


def test_hostile_checkpoint_is_refused_by_the_cli(tmp_path, capsys):
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(pickle.dumps({"model": Evil()}))
    code = convert.main(["roberta-tf convert", "fairseq", "--checkpoint", str(checkpoint), "--list_heads"])
    assert code == 1
    assert "system" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists()


def test_subcommands_are_listed():
    text = main.overview_text()
    assert "convert" in text and "verify" in text
