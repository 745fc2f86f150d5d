"""`roberta-tf inspect`: what each artifact is, through the installed entry point (subprocess),
on the tiny served model's preset, SavedModel and a float32 TFLite export of it, and the exit
code and one-line message of no PATH, a missing path, malformed files and a wrong kind of file.

A run that describes a model imports TensorFlow (about 4 CPU-seconds; a path that is no
artifact fails before that, in a fraction of a second), so all runs start at once, three at a
time, and each test reads its own. A SavedModel base directory, named presets, a Hugging Face
directory and a foreign SavedModel are library cases, checked in-process (`inspect.main`,
`describe`).
"""

import concurrent.futures
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from roberta_tf import artifacts
from roberta_tf.artifacts import describe as describe_lib
from roberta_tf.cli import inspect as inspect_cli
from roberta_tf.contract import signatures as contract
from served_model import LABELS, SEQUENCE_LENGTH, classifier, exported, preset, tflite_model  # noqa: F401


ENTRY_POINT = pathlib.Path(sys.executable).with_name("roberta-tf")
PARALLEL_RUNS = 3
ERROR_PREFIX = "roberta-tf inspect: error: "


@pytest.fixture(scope="module")
def saved_model_base(exported, tmp_path_factory):  # noqa: F811
    """A base directory with versions 1 and 3 (copies of the export) and a numbered directory
    without a SavedModel (7), which is not a version."""
    base = tmp_path_factory.mktemp("models") / "sst2"
    for version in ("1", "3"):
        shutil.copytree(exported.path, base / version)
    (base / "7").mkdir()
    return base


@pytest.fixture(scope="module")
def bad_inputs(tflite_model, preset, tmp_path_factory):  # noqa: F811
    """{case: path} of things that are not (complete) artifacts."""
    folder = tmp_path_factory.mktemp("bad")
    random_bytes = np.random.default_rng(0).bytes(4096)
    assert random_bytes[4:8] != b"TFL3"
    (folder / "x.tflite").write_bytes(random_bytes)
    (folder / "truncated.tflite").write_bytes(tflite_model.read_bytes()[:1000])
    (folder / "garbage_saved_model").mkdir()
    (folder / "garbage_saved_model" / "saved_model.pb").write_bytes(b"not a protobuf")
    (folder / "empty_dir").mkdir()
    return {
        "missing": folder / "no_such_model.tflite",
        "random_bytes": folder / "x.tflite",
        "truncated_tflite": folder / "truncated.tflite",
        "garbage_saved_model": folder / "garbage_saved_model",
        "vocab_json": preset / "vocab.json",
        "empty_dir": folder / "empty_dir",
    }


def run_entry_point(args):
    if not ENTRY_POINT.is_file():
        pytest.fail(f"{ENTRY_POINT} is not installed; run `pip install -e .` in this environment")
    return subprocess.run([str(ENTRY_POINT), "inspect", *map(str, args)], capture_output=True, text=True,
                          encoding="utf-8", timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


@pytest.fixture(scope="module")
def runs(preset, exported, tflite_model, bad_inputs):  # noqa: F811
    """{case: CompletedProcess} of every `roberta-tf inspect` run of this module."""
    cases = {
        "preset_json": [preset, "--json"],
        "saved_model_version": [exported.path],
        "tflite": [tflite_model],
        "no_path": [],
        **{case: [path] for case, path in bad_inputs.items()},
    }
    with concurrent.futures.ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        futures = {case: pool.submit(run_entry_point, args) for case, args in cases.items()}
        return {case: future.result() for case, future in futures.items()}


def succeeded(result):
    assert (result.returncode, result.stderr) == (0, ""), result.stderr[-3000:]
    return result.stdout


def row(text, key):
    """The value of a `key   value` row of the text output."""
    match = re.search(rf"^  {re.escape(key)}  +(.+)$", text, re.MULTILINE)
    assert match, f"no {key!r} row in:\n{text}"
    return match.group(1)


def signature_rows(text):
    """[(signature, role, tensor, dtype, shape)] of the signature table, the signature name
    carried down to its rows."""
    section = text.split("\nsignatures\n", 1)[1].split("\n\n", 1)[0]
    rows, name = [], None
    for line in section.splitlines():
        cells = line.split()
        if cells[0] not in ("in", "out"):
            name, cells = cells[0], cells[1:]
        role, tensor, dtype, shape = cells[0], cells[1], cells[2], " ".join(cells[3:])
        rows.append((name, role, tensor, dtype, shape))
    return rows


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


# --- each kind -------------------------------------------------------------------------------


def test_tflite_model(runs, tflite_model, preset):  # noqa: F811
    text = succeeded(runs["tflite"])
    assert text.splitlines()[0] == str(tflite_model)
    assert row(text, "kind").startswith("TFLite model (roberta_tf.tflite/1), ")
    assert row(text, "kind").endswith(f"({tflite_model.stat().st_size:,} bytes)")
    assert row(text, "labels") == f"{', '.join(LABELS)} ({len(LABELS)} classes)"
    assert row(text, "sequence length") == f"{SEQUENCE_LENGTH} tokens, truncate round_robin"
    assert row(text, "quantization") == "none (float32 weights)"
    assert row(text, "op set") == describe_lib.BUILTIN_OPS_ONLY == "builtin ops only"
    assert row(text, "contract") == "matches roberta_tf.contract"
    rows = signature_rows(text)
    assert rows == [
        (name, role, tensor.name, tensor.dtype, _tflite_shape(tensor.shape))
        for name in ("classify", "classify_pairs")
        for role, tensors in (("in", contract.TFLITE_CONTRACT[name].inputs), ("out", contract.TFLITE_CONTRACT[name].outputs))
        for tensor in tensors
    ]
    assert sha256(preset / "vocab.json") in text and sha256(preset / "merges.txt") in text


def _tflite_shape(dimensions):
    """The contract's dimension names as the interpreter reports them: batch 1, classes 3,
    byte counts of any size."""
    sizes = {"1": "1", "classes": str(len(LABELS))}
    return "[" + ", ".join(sizes.get(d, "?") for d in dimensions) + "]"


def test_saved_model_version(runs, exported):  # noqa: F811
    text = succeeded(runs["saved_model_version"])
    assert text.splitlines()[0] == str(exported.path)
    assert row(text, "kind").startswith("SavedModel (roberta_tf.saved_model/1), ")
    assert "versions" not in text.split("\n\n")[0]  # a version directory was named: no base listing
    assert row(text, "labels") == f"{', '.join(LABELS)} ({len(LABELS)} classes)"
    assert row(text, "precision") == "float32"
    assert row(text, "op set") == "core TensorFlow ops only"
    assert row(text, "contract") == "matches roberta_tf.contract"
    rows = signature_rows(text)
    assert [name for name in dict.fromkeys(r[0] for r in rows)] == list(contract.SIGNATURES)
    assert ("serving_default", "in", "text", "string", "[?]") in rows
    assert ("serving_default", "out", "logits", "float32", f"[?, {len(LABELS)}]") in rows
    assert ("classify_token_ids", "in", "token_ids", "int32", "[?, ?]") in rows
    assert ("tokenize", "out", "padding_mask", "int32", "[?, ?]") in rows
    assert row(text, "preset sha256") == exported.metadata["source"]["preset_sha256"]
    assert row(text, "written").endswith(f"by roberta_tf {exported.metadata['roberta_tf_version']}, "
                                         f"TensorFlow {exported.metadata['tensorflow_version']}")


def test_saved_model_base_directory_json(saved_model_base, capsys):
    code = inspect_cli.main(["roberta-tf inspect", str(saved_model_base), "--json"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    description = json.loads(out)
    assert description["kind"] == "saved_model"
    assert description["path"] == str(saved_model_base / "3")
    assert description["saved_model_versions"] == {
        "base": str(saved_model_base), "available": [1, 3], "described": 3, "without_saved_model": [7]}
    assert {s["name"] for s in description["signatures"]} == set(contract.SIGNATURES)
    for signature in description["signatures"]:
        want = contract.CONTRACT[signature["name"]]
        assert [(t["name"], t["dtype"]) for t in signature["inputs"]] == [(t.name, t.dtype) for t in want.inputs]
        assert [(t["name"], t["dtype"]) for t in signature["outputs"]] == [(t.name, t.dtype) for t in want.outputs]
    assert description["contract"] == [] and description["op_set"]["non_core_ops"] == []
    assert (description["labels"], description["num_classes"]) == (LABELS, len(LABELS))
    assert row(describe_lib.format_description(description), "versions") == (
        f"1, 3 in {saved_model_base}; described: 3 (the highest); no saved_model.pb in 7")


def test_preset_json(runs, preset, classifier, exported):  # noqa: F811
    description = json.loads(succeeded(runs["preset_json"]))
    assert (description["kind"], description["format"], description["task"]) == (
        "preset", "roberta_tf.preset/1", "RobertaTextClassifier")
    assert (description["labels"], description["num_classes"]) == (LABELS, len(LABELS))
    assert (description["sequence_length"], description["truncate"]) == (SEQUENCE_LENGTH, "round_robin")
    assert description["parameters"] == classifier.backbone.count_params()  # the formula, against the model
    assert description["backbone"]["num_layers"] == 2 and description["head"]["num_classes"] == 3
    assert description["tokenizer_files"] == {name: sha256(preset / name) for name in ("vocab.json", "merges.txt")}
    # The hash every export of this preset records: the export names its preset.
    assert description["source"]["preset_sha256"] == exported.metadata["source"]["preset_sha256"]
    assert description["size_bytes"] == sum(p.stat().st_size for p in preset.iterdir())


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, code, message",
    [
        ("no_path", 2, "give exactly one PATH to inspect (got no PATH) (see 'roberta-tf inspect --help')"),
        ("missing", 1, r"{path}: no such file or directory; expected a roberta_tf preset directory .* or a .tflite model"),
        ("random_bytes", 1, r"{path} is not a TFLite model \(no TFL3 identifier\); expected .*"),
        ("truncated_tflite", 1, r"{path} is not a valid TFLite model \(.*\); expected a complete .tflite file .*"),
        ("garbage_saved_model", 1, r"{path}/saved_model.pb is not a SavedModel protobuf \(corrupt or truncated\); "
                                   "expected a SavedModel .*"),
        ("vocab_json", 1, r"{path} is not a TFLite model \(no TFL3 identifier\); expected .*"),
        ("empty_dir", 1, r"{path} is a directory with no saved_model.pb, config.json or numbered SavedModel "
                         "versions; expected .*"),
    ],
)
def test_errors_are_one_line_with_their_exit_code(runs, bad_inputs, case, code, message):
    result = runs[case]
    assert result.returncode == code, result.stderr[-3000:]
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    if case == "no_path":
        assert lines[0] == ERROR_PREFIX + message
    else:
        pattern = message.replace("{path}", re.escape(str(bad_inputs[case])))
        assert re.fullmatch(re.escape(ERROR_PREFIX) + pattern, lines[0]), lines[0]


# --- in-process: what needs no subprocess ----------------------------------------------------


def test_named_preset_is_described_from_the_registry_without_a_download(monkeypatch):
    monkeypatch.setattr("urllib.request.urlopen", _no_network)
    description = describe_lib.describe("roberta_base_en")
    assert (description["kind"], description["format"], description["size_bytes"]) == ("preset", "named preset", None)
    assert description["hub_repository"] == "FacebookAI/roberta-base"
    assert description["parameters"] == 124_054_272  # roberta-base's encoder (HF's count minus pooler and token types)
    text = describe_lib.format_description(description)
    assert "nothing was downloaded" in text
    assert row(text, "encoder").startswith("12 layers, 12 heads, hidden 768, feed-forward 3072")
    handle = describe_lib.describe("hf://FacebookAI/roberta-base")
    assert handle["kind"] == "preset" and "not downloaded" in handle["notes"][0]


def _no_network(*args, **kwargs):
    raise AssertionError("inspect must not download")


# roberta-base's Hugging Face config.json (the keys the converter reads).
ROBERTA_BASE_HF_CONFIG = {
    "architectures": ["RobertaForMaskedLM"], "model_type": "roberta", "vocab_size": 50265, "hidden_size": 768,
    "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu",
    "max_position_embeddings": 514, "pad_token_id": 1, "layer_norm_eps": 1e-05, "type_vocab_size": 1,
}


def test_hugging_face_directory_is_described_from_its_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(ROBERTA_BASE_HF_CONFIG))
    description = describe_lib.describe(tmp_path)
    assert description["kind"] == "preset" and description["format"].startswith("Hugging Face checkpoint (roberta)")
    assert description["backbone"]["num_layers"] == 12 and description["parameters"] == 124_054_272
    assert description["labels"] is None  # a bare encoder: id2label's two defaults are not classes


def test_foreign_saved_model_shows_signatures_and_says_what_is_missing(exported, tmp_path):  # noqa: F811
    foreign = tmp_path / "foreign"
    shutil.copytree(exported.path, foreign)
    os.remove(foreign / "assets" / "roberta_tf_export.json")
    description = describe_lib.describe(foreign)
    assert description["labels"] is None and description["op_set"]["ok"]
    assert [s["name"] for s in description["signatures"]] == list(contract.SIGNATURES)
    assert "no roberta_tf export metadata" in description["notes"][0]
    assert "no roberta_tf export metadata" in describe_lib.format_description(description)


def test_describe_takes_an_artifact_and_rejects_a_preset_config_that_is_not_one(exported, tmp_path):  # noqa: F811
    assert describe_lib.describe(artifacts.locate(exported.path))["kind"] == "saved_model"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(artifacts.ArtifactError, match="neither a roberta_tf preset's nor a Hugging Face RoBERTa"):
        describe_lib.describe(tmp_path)
