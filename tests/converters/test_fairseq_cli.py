"""`roberta-tf convert fairseq` and `roberta-tf verify fairseq` on a checkpoint written by
fairseq's Trainer."""

import json

import pytest

pytest.importorskip("fairseq", reason="fairseq-fixed is not installed (pip install -e '.[fairseq]')")

import fairseq_fixtures  # noqa: E402
from conftest import shared_path  # noqa: E402
from roberta_tf.cli import convert, verify  # noqa: E402


def test_convert_list_heads_and_verify(tmp_path, capsys):
    checkpoints = fairseq_fixtures.build_checkpoints(tmp_path / "fairseq")
    checkpoint = str(checkpoints.variants["zip_cfg"])
    bpe = ["--encoder_json", str(shared_path("fairseq-gpt2-bpe", "encoder.json")),
           "--vocab_bpe", str(shared_path("fairseq-gpt2-bpe", "vocab.bpe"))]
    assert convert.main(["roberta-tf convert", "fairseq", "--checkpoint", checkpoint, "--list_heads"]) == 0
    assert capsys.readouterr().out.split() == [fairseq_fixtures.HEAD]
    preset = tmp_path / "preset"
    argv = ["roberta-tf convert", "fairseq", "--checkpoint", checkpoint, "--data_dir", str(checkpoints.data_dir),
            "--output", str(preset)] + bpe
    assert convert.main(argv) == 0
    capsys.readouterr()
    code = verify.main(["roberta-tf verify", "fairseq", "--preset", str(preset), "--checkpoint", checkpoint,
                        "--data_dir", str(checkpoints.data_dir)] + bpe)
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"], report
    assert report["token_id_mismatches"] == 0
    assert report["max_abs_logits_diff"] <= 1e-5 and report["max_abs_hidden_diff"] <= 1e-5
