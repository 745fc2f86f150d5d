"""`roberta-tf demo`: the README's first command, end to end (the installed entry point, --quick,
a fresh cache so training really runs), plus its command-line checks, which answer before
TensorFlow loads."""

import json
import os
import subprocess

import pytest

from roberta_tf.cli import command
from roberta_tf.cli import demo
from roberta_tf.demo import output, pipeline, scoring

from conftest import shared_path

TFLITE_FILES = [f"tflite/sst2_{form}.tflite" for form, _ in pipeline.TFLITE_FORMS]


def run_cli(capsys, *args):
    code = demo.main(["roberta-tf demo", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_missing_data_is_a_one_line_usage_error_naming_data_dir(tmp_path, capsys):
    code, out, err = run_cli(capsys, "--output", str(tmp_path / "out"), "--data_dir", str(tmp_path / "nowhere"))
    assert code == command.EXIT_USAGE
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "--data_dir" in err and "train.tsv" in err and str(tmp_path / "nowhere") in err
    assert not (tmp_path / "out").exists()


def test_a_non_empty_directory_that_is_not_a_demo_output_is_refused(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, _, err = run_cli(capsys, "--output", str(mine), "--data_dir", str(shared_path("sst2")))
    assert code == command.EXIT_USAGE
    assert len(err.splitlines()) == 1 and "not a roberta-tf demo output" in err
    assert (mine / "notes.txt").read_text() == "keep me"


def test_an_output_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = run_cli(capsys, "--output", str(target), "--data_dir", str(shared_path("sst2")))
    assert code == command.EXIT_USAGE and "is a file" in err


def test_a_previous_demo_output_is_accepted_and_an_empty_directory_too(tmp_path):
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / output.DEMO_FILE).write_text(json.dumps({"format": output.FORMAT}))
    (tmp_path / "empty").mkdir()
    for directory in (previous, tmp_path / "empty", tmp_path / "new"):
        output.check_inputs(directory, shared_path("sst2"))  # no error


def test_quick_demo_end_to_end(tmp_path):
    """The one slow test allowed: train (fresh cache), export all five artifacts, score them."""
    data_dir = shared_path("sst2")
    out = tmp_path / "demo"
    env = {**os.environ, "ROBERTA_TF_CACHE": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(["roberta-tf", "demo", "--quick", "--output", str(out), "--data_dir", str(data_dir)],
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]

    for path in ["preset/config.json", "models/roberta_classifier/1/saved_model.pb", *TFLITE_FILES,
                 *(f"{name}.json" for name in TFLITE_FILES), "demo.json"]:
        assert (out / path).is_file(), path
    assert not list(tmp_path.glob(".tmp-*")), "a staging directory was left behind"

    summary = json.loads((out / "demo.json").read_text())
    assert summary["format"] == output.FORMAT and not summary["used_cache"]
    artifacts = summary["artifacts"]
    assert [a["kind"] for a in artifacts] == ["preset", "saved_model"] + ["tflite"] * 4
    assert [a["form"] for a in artifacts[2:]] == [form for form, _ in pipeline.TFLITE_FORMS]
    for artifact in artifacts:
        assert artifact["accuracy"] > 0.6, artifact  # SST-2 dev's majority class is 0.51
        assert artifact["size_bytes"] > 0 and artifact["batch1_median_ms"] > 0
        if artifact["kind"] != "preset":
            target = scoring.AGREEMENT_TARGETS[artifact["form"]]
            assert artifact["agreement_target"] == target
            assert artifact["agreement_with_in_process"] >= target, artifact
        assert len(artifact["examples"]) == len(pipeline.EXAMPLE_TEXTS)
    # The SavedModel and float32 TFLite run the in-process model's graph: same accuracy.
    assert artifacts[1]["accuracy"] == pytest.approx(artifacts[0]["accuracy"], abs=1.5 / summary["dev_size"])

    printed = result.stdout
    for artifact in artifacts:
        assert artifact["name"] in printed and artifact["path"] in printed
    assert "NOT roberta-base" in printed and "trained from scratch" in printed
    assert f"ROBERTA_TF_MODELS_DIR={out / 'models'} docker compose up -d" in printed
    assert "curl -s http://localhost:8501/v1/models/roberta_classifier:predict" in printed
    assert "RestClient" in printed
    assert "NOT MET" not in printed
