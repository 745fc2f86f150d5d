"""`roberta-tf predict` and `roberta-tf evaluate` through the installed entry point: the same
answers as the in-process artifact API, stdin/stdout and files, and one-line errors."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from roberta_tf.artifacts import predictors
from served_model import LABELS, PAIRS_A, PAIRS_B, TEXTS, classifier, exported, preset  # noqa: F401

ROBERTA_TF = shutil.which("roberta-tf")
pytestmark = pytest.mark.skipif(ROBERTA_TF is None, reason="the roberta-tf entry point is not installed")

# Lines as bytes: invalid UTF-8, NUL, an empty line and a CRLF line end reach the model as they are.
LINES = [t.encode() for t in TEXTS if "\n" not in t] + [b"\xff\xfe invalid", b"nul\x00byte", b""]


def run(*args, stdin=b""):
    return subprocess.run([ROBERTA_TF, *map(str, args)], input=stdin, capture_output=True, timeout=300)


def error_line(result):
    """The one error line (absl INFO lines may precede it); never a traceback."""
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr, stderr
    return stderr.strip().splitlines()[-1]


def read_jsonl(data):
    return [json.loads(line) for line in data.decode().splitlines()]


@pytest.fixture(scope="module")
def served(exported):  # noqa: F811
    return predictors.load(exported.path)


def test_predict_reads_stdin_and_writes_what_the_artifact_answers(exported, served):  # noqa: F811
    stdin = b"\n".join(LINES[:-1]) + b"\r\n" + LINES[-1] + b"\n"
    # The base directory: its highest (only) version, as TF Serving serves it.
    result = run("predict", "--model", exported.path.parent, "--batch_size", 3, stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    records = read_jsonl(result.stdout)
    want = served.classify(LINES)
    assert [r["label"] for r in records] == want.labels
    assert [r["class_id"] for r in records] == want.class_ids.tolist()
    np.testing.assert_allclose([r["probabilities"] for r in records], want.probabilities, atol=1e-6)


def test_predict_pairs_from_tsv_columns_with_token_ids(preset, served, tmp_path):  # noqa: F811
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("id\tpremise\thypothesis\n" + "".join(f"{i}\t{a}\t{b}\n" for i, (a, b) in enumerate(zip(PAIRS_A, PAIRS_B))))
    output = tmp_path / "out.jsonl"
    result = run("predict", "--model", preset, "--input", tsv, "--output", output, "--text_column", 1,
                 "--pair_column", 2, "--skip_header", "--with_token_ids")
    assert result.returncode == 0, result.stderr.decode()
    records = read_jsonl(output.read_bytes())
    want = served.classify_pairs(PAIRS_A, PAIRS_B)
    assert [r["class_id"] for r in records] == want.class_ids.tolist()
    np.testing.assert_allclose([r["probabilities"] for r in records], want.probabilities, atol=1e-5)
    assert [r["token_ids"] for r in records] == served.token_ids(PAIRS_A, PAIRS_B)


def test_evaluate_reports_the_metrics_of_the_artifacts_answers(exported, served, tmp_path):  # noqa: F811
    texts = [t for t in TEXTS if t and "\n" not in t]
    predicted = served.classify(texts).class_ids
    gold = [(i + 1) % len(LABELS) if n % 2 else i for n, i in enumerate(predicted)]  # some right, some wrong
    # Gold labels as names or as class ids, both accepted.
    rows = [f"{t}\t{LABELS[g] if n % 2 else g}\n" for n, (t, g) in enumerate(zip(texts, gold))]
    tsv = tmp_path / "dev.tsv"
    tsv.write_text("sentence\tlabel\n" + "".join(rows))
    report_file = tmp_path / "report.json"
    result = run("evaluate", "--model", exported.path, "--input", tsv, "--label_column", 1, "--skip_header",
                 "--json", "--output", report_file)
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report == json.loads(report_file.read_text())
    assert report["examples"] == len(texts)
    assert report["accuracy"] == pytest.approx(np.mean(np.array(gold) == predicted))
    matrix = np.zeros([len(LABELS)] * 2, int)
    np.add.at(matrix, (gold, predicted), 1)
    assert report["confusion_matrix"]["rows_true_columns_predicted"] == matrix.tolist()
    table = run("evaluate", "--model", exported.path, "--input", tsv, "--label_column", 1, "--skip_header")
    assert b"macro-F1" in table.stdout and b"confusion matrix" in table.stdout


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_missing_malformed_and_wrong_inputs_fail_in_one_line(command, exported, tmp_path):  # noqa: F811
    vocabulary = tmp_path / "vocab.json"
    vocabulary.write_text('{"hello": 0}')
    short_row = tmp_path / "short.tsv"
    short_row.write_text("good text\t1\nno label column here\n")
    label = ["--label_column", 1] if command == "evaluate" else ["--text_column", 0, "--pair_column", 1]
    cases = [
        (["--model", exported.path, "--input", tmp_path / "missing.txt", *label], 1, "--input: no such file"),
        (["--model", exported.path, "--input", short_row, *label], 1, "short.tsv:2: "),
        (["--model", vocabulary, "--input", short_row, *label], 1, "is not a TFLite model"),
        (["--model", tmp_path, "--input", short_row, *label], 1, "no saved_model.pb"),
        (["--input", short_row, *label], 2, "--model"),
    ]
    if command == "evaluate":
        cases.append((["--model", exported.path, "--input", short_row, "--label_column", 0], 2, "--label_column must differ"))
    else:
        cases.append((["--model", exported.path, "--pair_column", 1], 2, "--pair_column needs --text_column"))
    for args, code, message in cases:
        result = run(command, *args)
        assert result.returncode == code, (args, result.stderr.decode())
        line = error_line(result)
        assert line.startswith(f"roberta-tf {command}: error:") and message in line, (args, line)


def test_evaluate_names_an_unknown_label_and_the_header_hint(exported, tmp_path):  # noqa: F811
    tsv = tmp_path / "dev.tsv"
    tsv.write_text("sentence\tlabel\ngood\t0\n")
    result = run("evaluate", "--model", exported.path, "--input", tsv, "--label_column", 1)
    assert result.returncode == 1
    assert "dev.tsv:1: label 'label'" in error_line(result) and "--skip_header" in error_line(result)
