"""`roberta-tf predict --runner` and `roberta_tf.beam`: the Beam pipeline (DirectRunner, in memory
and with two worker processes) writes what the single-process `predict` writes on the same
SavedModel, for several batch sizes and shard counts, with ids kept; bad records go to the
dead-letter output with their reason and are counted; usage errors are one line.

Cost: the session's tiny exported classifier (tests/served_model.py), a few hundred SST-2 and
XNLI records, four pipelines of which one starts two worker processes (they import TensorFlow).
"""

import glob
import importlib
import io
import json
import sys

import numpy as np
import pytest

pytest.importorskip("apache_beam", reason="apache-beam is not installed (pip install 'roberta-tf[beam]')")

from conftest import shared_path  # noqa: E402
from roberta_tf.artifacts import predictors  # noqa: E402
from roberta_tf.beam import records  # noqa: E402
from roberta_tf.cli import predict  # noqa: E402
from served_model import classifier, exported, preset  # noqa: E402, F401

SST2_SENTENCES = 200
XNLI_PAIRS_PER_LANGUAGE = 25
XNLI_LANGUAGES = ("en", "fr", "ar", "zh", "sw", "ru")
MAX_RECORD_BYTES = 4096
# Bad lines in a TSV with the text in column 0 (and a header), each with its expected reason.
BAD_LINES = [
    (b"caf\xe9 au lait\t1", records.INVALID_UTF8),
    (b"\t0", records.EMPTY),
    (b"long " * 1000 + b"\t1", records.TOO_LONG),
    (b"\xff" * 5000, records.TOO_LONG),  # over the limit before anything else is looked at
]
GOOD_LINES_IN_BAD_FILE = [b"a fine, moving film\t1", b"caf\xc3\xa9 \xf0\x9f\x99\x82 with CRLF\t1\r"]


def run_predict(*args):
    """`roberta-tf predict` in process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = predict.main(["roberta-tf predict", *map(str, args)])
    finally:
        sys.stdout, sys.stderr = saved
    return code, out.getvalue(), err.getvalue()


def single_process(model_path, path, columns=(), skip_header=True):
    """The output objects of the single-process `predict` (its library function, as the CLI
    calls it) on every line of `path`, in order."""
    predictor = predictors.load(model_path)
    output = io.StringIO()
    with open(path, "rb") as lines:
        predict.predict_stream(predictor, lines, output, columns, skip_header, batch_size=64)
    return [json.loads(line) for line in output.getvalue().splitlines()]


def read_shards(prefix, shards=None):
    paths = sorted(glob.glob(f"{prefix}-[0-9]*-of-[0-9]*.jsonl"))
    if shards:
        assert [p[len(str(prefix)):] for p in paths] == [f"-{i:05d}-of-{shards:05d}.jsonl" for i in range(shards)]
    return [json.loads(line) for path in paths for line in open(path, encoding="utf-8")]


def assert_same_predictions(beam_records, want_by_id):
    got_by_id = {record["id"]: record for record in beam_records}
    assert len(got_by_id) == len(beam_records), "duplicate ids"
    assert sorted(got_by_id) == sorted(want_by_id)
    for record_id, want in want_by_id.items():
        got = got_by_id[record_id]
        assert list(got) == ["id", *want], got  # the id, then exactly the single-process fields
        assert (got["label"], got["class_id"]) == (want["label"], want["class_id"]), record_id
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def sst2_inputs(tmp_path_factory):
    """A folder with SST-2 dev sentences (sentence<TAB>label, header) and a file of bad lines."""
    folder = tmp_path_factory.mktemp("sst2_inputs")
    lines = shared_path("sst2", "dev.tsv").read_bytes().splitlines(keepends=True)[:SST2_SENTENCES + 1]
    (folder / "sst2.tsv").write_bytes(b"".join(lines))
    bad = [b"sentence\tlabel"] + [line for line, _ in BAD_LINES] + GOOD_LINES_IN_BAD_FILE
    (folder / "bad.tsv").write_bytes(b"\n".join(bad) + b"\n")
    return folder


@pytest.fixture(scope="module")
def sst2_expected(exported, sst2_inputs):  # noqa: F811
    """{id: single-process output} for the good lines of both files."""
    expected = {}
    for name in ("sst2.tsv", "bad.tsv"):
        path = sst2_inputs / name
        outputs = single_process(exported.path, path, columns=(0,))
        # The single-process command classifies every line; the Beam run sets the bad ones aside.
        line_numbers = range(2, 2 + len(outputs))
        bad_numbers = set(range(2, 2 + len(BAD_LINES))) if name == "bad.tsv" else set()
        expected.update({f"{path}:{n}": o for n, o in zip(line_numbers, outputs) if n not in bad_numbers})
    return expected


def check_dead_letters(prefix, folder):
    dead = {record["id"]: record for record in read_shards(f"{prefix}-dead_letter")}
    want = {f"{folder / 'bad.tsv'}:{n}": reason for n, (_, reason) in enumerate(BAD_LINES, start=2)}
    assert {record_id: record["reason"] for record_id, record in dead.items()} == want
    first = dead[f"{folder / 'bad.tsv'}:2"]
    assert first["record"] == "caf\\xe9 au lait\t1" and "invalid UTF-8 at byte 3" in first["detail"]
    long_line = dead[f"{folder / 'bad.tsv'}:5"]
    assert len(long_line["record"]) == 4 * records.DEAD_LETTER_RECORD_BYTES  # "\xff" shown as 4 characters
    assert "5000 bytes" in long_line["detail"]


def check_summary(stdout, classified):
    # The counts printed come from the Beam metrics.
    assert f"classified {classified} records" in stdout, stdout
    assert "dead letters 4 (empty 1, invalid_utf8 1, too_long 2)" in stdout, stdout


def test_in_memory_run_writes_the_single_process_answers_to_the_requested_shards(exported, sst2_inputs, sst2_expected,
                                                                                  tmp_path):  # noqa: F811
    prefix = tmp_path / "out" / "predictions"
    prefix.parent.mkdir()
    code, stdout, stderr = run_predict(
        "--model", exported.path.parent, "--input", sst2_inputs / "*.tsv", "--output", prefix, "--text_column", 0,
        "--skip_header", "--batch_size", 7, "--num_shards", 3, "--max_record_bytes", MAX_RECORD_BYTES,
        "--runner", "DirectRunner", "--direct_running_mode", "in_memory")
    assert code == 0, stderr
    assert_same_predictions(read_shards(prefix, shards=3), sst2_expected)
    check_dead_letters(prefix, sst2_inputs)
    check_summary(stdout, len(sst2_expected))
    # A second run into the same prefix would mix its shards with these: refused.
    code, _, stderr = run_predict("--model", exported.path, "--input", sst2_inputs / "*.tsv", "--output", prefix,
                                  "--runner=DirectRunner")
    assert code == 1 and "of an earlier run exist" in stderr.strip().splitlines()[-1]


def test_two_worker_processes_write_the_same_answers(exported, sst2_inputs, sst2_expected, tmp_path):  # noqa: F811
    prefix = tmp_path / "predictions"
    code, stdout, stderr = run_predict(
        "--runner", "DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2",
        "--model", exported.path, "--input", sst2_inputs / "*.tsv", "--output", prefix, "--text_column=0",
        "--skip_header", "--batch_size=32", "--num_shards=2", "--max_record_bytes", MAX_RECORD_BYTES)
    assert code == 0, stderr
    assert_same_predictions(read_shards(prefix, shards=2), sst2_expected)
    check_dead_letters(prefix, sst2_inputs)
    check_summary(stdout, len(sst2_expected))


def test_xnli_pairs_keep_the_id_column_and_short_lines_are_dead_letters(exported, tmp_path):  # noqa: F811
    rows, ids = [b"id\tpremise\thypothesis"], []
    for language in XNLI_LANGUAGES:
        lines = shared_path("xnli-dev", f"dev-{language}.tsv").read_bytes().splitlines()[:XNLI_PAIRS_PER_LANGUAGE]
        for n, line in enumerate(lines):
            premise, hypothesis = line.split(b"\t")[:2]
            ids.append(f"{language}-{n}")
            rows.append(ids[-1].encode() + b"\t" + premise + b"\t" + hypothesis)
    good_rows = len(rows)
    rows += [b"short-1\tonly a premise", b"\xffid\ta\tb", b"empty-b\ta premise\t"]
    path = tmp_path / "xnli.tsv"
    path.write_bytes(b"\n".join(rows) + b"\n")
    reference = tmp_path / "xnli-good.tsv"
    reference.write_bytes(b"\n".join(rows[:good_rows]) + b"\n")
    want = dict(zip(ids, single_process(exported.path, reference, columns=(1, 2))))

    prefix = tmp_path / "pairs"
    code, stdout, stderr = run_predict(
        "--model", exported.path, "--input", path, "--output", prefix, "--text_column", 1, "--pair_column", 2,
        "--id_column", 0, "--skip_header", "--runner", "DirectRunner", "--", "--direct_running_mode=in_memory")
    assert code == 0, stderr
    assert_same_predictions(read_shards(prefix), want)
    dead = {record["id"]: record["reason"] for record in read_shards(f"{prefix}-dead_letter")}
    first_bad = good_rows + 1  # line numbers: the header is line 1
    assert dead == {f"{path}:{first_bad}": records.WRONG_COLUMN_COUNT, f"{path}:{first_bad + 1}": records.INVALID_UTF8,
                    "empty-b": records.EMPTY}
    assert "dead letters 3 (empty 1, invalid_utf8 1, wrong_column_count 1)" in stdout


def test_classify_texts_keeps_ids_and_sets_bad_elements_aside(exported):  # noqa: F811
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from roberta_tf.beam import DEAD_LETTERS, PREDICTIONS, ClassifyTexts

    served = predictors.load(exported.path)
    single, pair = served.classify(["A warm film."]), served.classify_pairs(["Il pleut."], ["It rains."])
    elements = ["A warm film.", (7, b"A warm film."), ("p", "Il pleut.", b"It rains."),
                ("e", ""), ("x",), ("a", "b", "c", "d"), 3.5, ("n", None)]

    def check_predictions(outputs):
        by_key = {output.get("id", output.get("text")): output for output in outputs}
        assert sorted(map(str, by_key)) == ["7", "A warm film.", "p"], outputs
        for key, prediction in ((7, single), ("A warm film.", single), ("p", pair)):
            assert by_key[key]["class_id"] == int(prediction.class_ids[0])
            assert by_key[key]["label"] == prediction.labels[0]
            np.testing.assert_allclose(by_key[key]["probabilities"], prediction.probabilities[0], atol=1e-6)

    with beam.Pipeline("DirectRunner") as pipeline:
        outputs = pipeline | beam.Create(elements) | ClassifyTexts(exported.path, batch_size=2)
        assert_that(outputs[PREDICTIONS], check_predictions, label="Predictions")
        reasons = outputs[DEAD_LETTERS] | beam.Map(lambda dead: (dead.id, dead.reason))
        assert_that(reasons, equal_to([("e", records.EMPTY),
                                       ("x", records.WRONG_COLUMN_COUNT), ("a", records.WRONG_COLUMN_COUNT),
                                       (None, records.NOT_TEXT), ("n", records.NOT_TEXT)]), label="DeadLetters")


def test_runner_usage_errors_are_one_line(preset, exported, tmp_path):  # noqa: F811
    texts = tmp_path / "texts.txt"
    texts.write_text("good\n")
    cases = [
        (["--model", preset, "--input", texts, "--output", tmp_path / "p"], 2, "export it first"),
        (["--model", exported.path, "--output", tmp_path / "p"], 2, "--runner needs --input"),
        (["--model", exported.path, "--input", texts, "--output", tmp_path / "p", "--with_token_ids"], 2,
         "--with_token_ids is not available"),
        (["--model", exported.path, "--input", texts, "--output", tmp_path / "p", "--id_column", 0], 2,
         "--id_column needs --text_column"),
        (["--model", exported.path, "--input", texts, "--output", tmp_path / "p", "--direct_num_wrkers=2"], 2,
         "unknown option(s) --direct_num_wrkers"),
        (["--model", exported.path, "--input", tmp_path / "none*.txt", "--output", tmp_path / "p"], 1,
         "no file matches"),
        (["--model", exported.path, "--input", texts, "--output", tmp_path / "missing" / "p"], 1,
         "--output: no such directory"),
    ]
    for args, code, message in cases:
        got, _, stderr = run_predict(*args, "--runner", "DirectRunner")
        assert got == code, (args, stderr)
        line = stderr.strip().splitlines()[-1]
        assert line.startswith("roberta-tf predict: error:") and message in line, (args, line)
    # Beam's flags without --runner are refused, not ignored.
    got, _, stderr = run_predict("--model", exported.path, "--input", texts, "--num_shards", 2)
    assert got == 2 and "--num_shards need(s) --runner" in stderr


def test_pipeline_options_are_split_from_ours():
    split = predict.split_pipeline_options
    argv = ["p", "--model", "m", "--runner", "DirectRunner", "--direct_num_workers", "2", "--skip_header",
            "--noshare_model_across_processes", "--project=x", "--batch_size", "8", "--save_main_session", "-v", "1"]
    assert split(argv) == ["p", "--model", "m", "--runner", "DirectRunner", "--skip_header",
                           "--noshare_model_across_processes", "--batch_size", "8", "-v", "1", "--",
                           "--direct_num_workers", "2", "--project=x", "--save_main_session"]
    assert split(["p", "--model", "m"]) == ["p", "--model", "m"]  # no --runner: absl sees everything
    with pytest.raises(predict.UsageError, match="unexpected argument: stray"):
        split(["p", "--runner=DirectRunner", "stray"])


def test_numbered_lines_read_like_predict_in_bounded_pieces():
    data = b"a\r\nb\n\n" + b"x" * 11 + b"\r\n" + b"y" * 10 + b"\r\nlast\r"
    want = [(1, b"a"), (2, b"b"), (3, b""), (4, records.LongLine(b"x" * 11, 11)), (5, b"y" * 10), (6, b"last\r")]
    for chunk_bytes in (1, 2, 5, 1000):
        assert list(records.numbered_lines(io.BytesIO(data).read, 10, chunk_bytes)) == want


def test_elements_that_cannot_be_classified_get_their_reason():
    assert records.check_element(("s", "\ud800"), 100).reason == records.INVALID_UTF8  # a lone surrogate
    assert records.check_element(("b", b"ok", b"\xc3"), 100).reason == records.INVALID_UTF8
    assert records.check_element(("l", "abc", "def"), 5).reason == records.TOO_LONG  # the texts together
    assert records.check_element(("ok", "abc", "de"), 5) == (True, "ok", (b"abc", b"de"))
    assert records.check_element("abc", 5) == (False, None, (b"abc",))


def test_import_without_apache_beam_names_the_extra(monkeypatch):
    for name in [name for name in sys.modules if name == "roberta_tf.beam" or name.startswith("roberta_tf.beam.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # an import of it now fails
    with pytest.raises(ImportError, match=r"pip install 'roberta-tf\[beam\]'"):
        importlib.import_module("roberta_tf.beam")
