"""The TF Serving SavedModel (`roberta_tf.export.saved_model`): contract, portability,
warmup, atomic versions, concurrency and bad input, on a small model with the real
roberta-base tokenizer."""

import concurrent.futures
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO
from roberta_tf.export import saved_model, serving_module, warmup
from roberta_tf.contract import signatures as contract
from served_model import (  # noqa: F401 (fixtures)
    LABELS,
    PAIRS_A,
    PAIRS_B,
    SEQUENCE_LENGTH,
    TEXTS,
    as_numpy,
    assert_outputs_equal,
    classifier,
    expected_outputs,
    exported,
    loaded,
    preset,
    sst2_sentences,
)


# === The version directory ===


def test_layout_and_metadata(exported, preset):
    path = exported.path
    assert path.name == "1" and path.parent.name == "roberta_classifier"
    assert sorted(p.name for p in path.parent.iterdir()) == ["1"]  # no staging left behind
    assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
    assert (path / warmup.WARMUP_DIR / warmup.WARMUP_FILE).is_file()
    metadata = json.loads((path / "assets" / saved_model.METADATA_FILE).read_text(encoding="utf-8"))
    assert metadata["label_names"] == LABELS
    assert metadata["sequence_length"] == SEQUENCE_LENGTH
    assert metadata["precision"] == "float32" and metadata["version"] == 1
    assert set(metadata["signatures"]) == set(contract.SIGNATURES)
    assert metadata["contract"] == contract.describe()
    assert metadata["tokenizer"] == {"max_word_bytes": 4096, "match_special_tokens": False, "vocabulary_size": 50265}
    from roberta_tf.utils.files import file_sha256

    for name in ("vocab.json", "merges.txt"):
        assert metadata["tokenizer_files"][name] == file_sha256(preset / name)
    preset_metadata = json.loads((preset / "metadata.json").read_text(encoding="utf-8"))
    assert metadata["source"]["preset_metadata"]["files"] == preset_metadata["files"]


def test_only_core_tensorflow_ops(exported):
    ops = saved_model.saved_model_op_types(exported.path)
    assert {"StringSplit", "BatchMatMulV2", "Softmax"} <= ops or {"BatchMatMulV2", "Softmax"} <= ops
    assert saved_model.non_core_ops(exported.path) == []
    tf_text_ops = {op for op in ops if "Regex" in op and op not in ("RegexReplace", "StaticRegexReplace", "StaticRegexFullMatch", "RegexFullMatch")}
    assert not tf_text_ops
    assert not any(op.startswith(("RoundRobin", "WhitespaceTokenize", "Wordpiece", "Sentencepiece", "FastBert")) for op in ops)


def test_tokenizer_and_packer_are_pinned_to_the_cpu_and_the_encoder_is_not(exported):
    """On a GPU server only the encoder should run on the GPU (issue 14): the tokenizer's and
    packer's nodes, loop bodies included, carry the CPU device; the encoder's carry none, so
    the server places them. (That the pinned export answers on this CPU-only machine is what
    every other test here checks.)"""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((exported.path / "saved_model.pb").read_bytes())
    devices = {}
    for function in proto.meta_graphs[0].graph_def.library.function:
        for node in function.node_def:
            devices.setdefault(node.op, set()).add(node.device)
    for tokenizer_op in ("DecodePaddedRaw", "StatelessWhile", "UnsortedSegmentMin"):
        assert devices.get(tokenizer_op) == {serving_module.TOKENIZER_DEVICE}, tokenizer_op
    for encoder_op in ("MatMul", "BatchMatMulV2", "Softmax", "Rsqrt"):
        assert devices.get(encoder_op) == {""}, encoder_op


def test_saved_model_cli_lists_the_signatures(exported):
    cli = pathlib.Path(sys.executable).parent / "saved_model_cli"
    if not cli.exists():
        pytest.skip("saved_model_cli is not installed beside this Python")
    result = subprocess.run(
        [str(cli), "show", "--dir", str(exported.path), "--all"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for name in contract.SIGNATURES:
        assert f"signature_def['{name}']" in result.stdout
    for name in ("text", "text_a", "text_b", "token_ids", "padding_mask"):
        assert f"inputs['{name}']" in result.stdout
    for name in ("logits", "probabilities", "class_id", "class_name"):
        assert f"outputs['{name}']" in result.stdout


# === Answers ===


FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    path, out, texts_a, texts_b, texts = sys.argv[1], sys.argv[2], *[sys.argv[i].split("\\x1f") for i in (3, 4, 5)]
    model = tf.saved_model.load(path)
    results = {}
    for prefix, outputs in [
        ("single", model.signatures["serving_default"](text=tf.constant(texts))),
        ("pairs", model.signatures["classify_pairs"](text_a=tf.constant(texts_a), text_b=tf.constant(texts_b))),
        ("tokenized", model.signatures["tokenize"](text=tf.constant(texts))),
    ]:
        results.update({f"{prefix}.{k}": v.numpy() for k, v in outputs.items()})
    by_ids = model.signatures["classify_token_ids"](
        token_ids=tf.constant(results["tokenized.token_ids"]), padding_mask=tf.constant(results["tokenized.padding_mask"])
    )
    results.update({f"by_ids.{k}": v.numpy() for k, v in by_ids.items()})
    with open(path + "/assets/roberta_tf_export.json", encoding="utf-8") as f:
        results["metadata"] = np.array(f.read())
    np.savez(out, **results)
    leaked = [m for m in sys.modules if m.split(".")[0] in ("roberta_tf", "tensorflow_text", "tf_keras")]
    print("LEAKED", leaked)
    """
)


def test_fresh_process_with_only_tensorflow_answers_like_the_classifier(exported, classifier, tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(FRESH_PROCESS_SCRIPT, encoding="utf-8")
    out = tmp_path / "answers.npz"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, str(script), str(exported.path), str(out), *("\x1f".join(t) for t in (PAIRS_A, PAIRS_B, TEXTS))],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LEAKED []" in result.stdout  # neither roberta_tf nor tensorflow_text nor tf-keras was imported
    answers = np.load(out, allow_pickle=True)

    def group(prefix):
        return {k.split(".", 1)[1]: answers[k] for k in answers.files if k.startswith(prefix + ".")}

    assert_outputs_equal(group("single"), expected_outputs(classifier, TEXTS))
    assert_outputs_equal(group("pairs"), expected_outputs(classifier, (PAIRS_A, PAIRS_B)))
    assert_outputs_equal(group("by_ids"), group("single"), atol=1e-6)
    tokenized = group("tokenized")
    packed = classifier.preprocessor(TEXTS)
    width = tokenized["token_ids"].shape[1]
    assert width == SEQUENCE_LENGTH  # the 80-word text reaches the limit; pads to the longest row
    np.testing.assert_array_equal(tokenized["token_ids"], packed["token_ids"].numpy()[:, :width])
    np.testing.assert_array_equal(tokenized["padding_mask"], packed["padding_mask"].numpy()[:, :width])


def test_probabilities_and_classes_are_consistent(loaded):
    outputs = as_numpy(loaded.signatures["serving_default"](text=tf.constant(TEXTS)))
    np.testing.assert_allclose(outputs["probabilities"].sum(-1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(outputs["class_id"], outputs["logits"].argmax(-1))
    assert outputs["class_id"].dtype == np.int32 and outputs["logits"].dtype == np.float32
    assert [name.decode() for name in outputs["class_name"]] == [LABELS[i] for i in outputs["class_id"]]
    assert len(set(outputs["class_id"].tolist())) > 1  # the test model does not answer one class only


def test_tokenize_pads_to_the_longest_row_and_packs_pairs(loaded, roberta_tokenizer):
    single = as_numpy(loaded.signatures["tokenize"](text=tf.constant(["a b", "c"])))
    ids = [roberta_tokenizer(t).numpy().tolist() for t in ("a b", "c", "d")]
    assert single["token_ids"].tolist() == [[0, *ids[0], 2], [0, *ids[1], 2, 1]]
    assert single["padding_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    tokenize_pairs = loaded.signatures["tokenize_pairs"]
    pairs = as_numpy(tokenize_pairs(text_a=tf.constant(["a b"]), text_b=tf.constant(["d"])))
    assert pairs["token_ids"].tolist() == [[0, *ids[0], 2, 2, *ids[2], 2]]
    with pytest.raises(tf.errors.InvalidArgumentError, match="same number of texts"):
        tokenize_pairs(text_a=tf.constant(["a", "b"]), text_b=tf.constant(["c"]))


def test_classify_pairs_needs_equal_batches(loaded):
    with pytest.raises(tf.errors.InvalidArgumentError, match="same number of texts"):
        loaded.signatures["classify_pairs"](text_a=tf.constant(["a", "b"]), text_b=tf.constant(["c"]))


@pytest.mark.parametrize(
    "token_ids, padding_mask, message",
    [
        ([[0, 50265, 2]], [[1, 1, 1]], "token_ids must be <"),
        ([[0, -1, 2]], [[1, 1, 1]], "token_ids must be >= 0"),
        ([[0] * 49], [[1] * 49], "longer than the 48 tokens"),
        ([[0, 5, 2]], [[1, 1]], "same shape"),
        ([[0, 5, 2]], [[1, 2, 1]], "only 0 and 1"),
    ],
)
def test_classify_token_ids_rejects_bad_ids_clearly(loaded, token_ids, padding_mask, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures["classify_token_ids"](token_ids=tf.constant(token_ids), padding_mask=tf.constant(padding_mask))


def test_bad_input_gives_defined_outputs(loaded):
    classify = loaded.signatures["serving_default"]
    texts = [
        b"",
        b"\x00",
        b"nul \x00 inside",
        b"\xff\xfe invalid \xc3 utf-8 \xed\xa0\x80",
        ("long " * 200_000).encode(),  # 1 MB
        bytes(np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8)),  # 1 MB of random bytes
    ]
    outputs = as_numpy(classify(text=tf.constant(texts)))
    assert outputs["logits"].shape == (len(texts), 3)
    assert np.isfinite(outputs["logits"]).all()
    np.testing.assert_allclose(outputs["probabilities"].sum(-1), 1.0, atol=1e-6)
    # Each answer is the text's own: the same as when sent alone.
    for i, text in enumerate(texts):
        alone = classify(text=tf.constant([text]))["logits"].numpy()
        np.testing.assert_allclose(alone[0], outputs["logits"][i], atol=1e-5)

    empty = as_numpy(classify(text=tf.constant([], tf.string)))
    assert empty["logits"].shape == (0, 3) and empty["class_name"].shape == (0,)
    empty_pairs = as_numpy(loaded.signatures["classify_pairs"](text_a=tf.constant([], tf.string), text_b=tf.constant([], tf.string)))
    assert empty_pairs["probabilities"].shape == (0, 3)

    sentences = sst2_sentences(1024)
    big = as_numpy(classify(text=tf.constant(sentences)))
    assert big["logits"].shape == (1024, 3) and np.isfinite(big["logits"]).all()
    np.testing.assert_allclose(
        big["logits"][:8], classify(text=tf.constant(sentences[:8]))["logits"].numpy(), atol=1e-5
    )


def test_sixteen_threads_agree_with_sequential_calls(loaded):
    classify = loaded.signatures["serving_default"]
    sentences = sst2_sentences(200)
    rng = np.random.default_rng(1)
    batches = []
    for _ in range(48):
        size = int(rng.integers(1, 17))
        batch = [sentences[i] for i in rng.integers(0, len(sentences), size)]
        if rng.random() < 0.2:
            batch[0] = ""
        batches.append(batch)
    sequential = [classify(text=tf.constant(b))["logits"].numpy() for b in batches]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        concurrent_results = list(pool.map(lambda b: classify(text=tf.constant(b))["logits"].numpy(), batches))
    for want, got in zip(sequential, concurrent_results):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


# === Warmup ===


def test_every_warmup_record_runs_on_its_signature(exported, loaded):
    from tensorflow_serving.apis import prediction_log_pb2

    logs = warmup.read_warmup_file(exported.path / warmup.WARMUP_DIR / warmup.WARMUP_FILE)
    assert 0 < len(logs) <= warmup.MAX_RECORDS
    seen = set()
    for log in logs:
        assert isinstance(log, prediction_log_pb2.PredictionLog) and log.HasField("predict_log")
        request = log.predict_log.request
        assert request.model_spec.name == "roberta_classifier"
        signature = request.model_spec.signature_name
        seen.add(signature)
        # What TF Serving does with a PredictRequest: TensorProto -> tensor, run the signature.
        inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
        batch = {value.shape[0] for value in inputs.values()}
        assert len(batch) == 1  # batchable: every input has the batch as its 0th dimension
        outputs = loaded.signatures[signature](**inputs)
        assert {value.shape[0] for value in outputs.values()} == batch
    assert seen == set(contract.SIGNATURES)


# === Versions and atomicity ===


def test_versions_count_up_and_are_never_overwritten(exported, classifier, roberta_tokenizer, tmp_path):
    base = tmp_path / "roberta_classifier"
    shutil.copytree(exported.path, base / "3")
    (base / "notes").mkdir()  # non-numeric entries are not versions
    assert saved_model.versions(base) == [3] and saved_model.next_version(base) == 4
    with pytest.raises(FileExistsError, match="immutable"):
        saved_model.export_saved_model(classifier, roberta_tokenizer, base, version=3, warmup_requests=False)
    assert sorted(p.name for p in base.iterdir()) == ["3", "notes"]


def test_a_failed_export_leaves_nothing(classifier, roberta_tokenizer, tmp_path, monkeypatch):
    base = tmp_path / "roberta_classifier"

    def fail(*args, **kwargs):
        raise RuntimeError("verification failed (injected)")

    monkeypatch.setattr(saved_model, "verify_saved_model", fail)
    with pytest.raises(RuntimeError, match="injected"):
        saved_model.export_saved_model(classifier, roberta_tokenizer, base, warmup_requests=False)
    assert list(base.iterdir()) == []


def test_verification_catches_a_model_that_answers_differently(exported, classifier, roberta_tokenizer):
    module = serving_module.ClassifierServingModule(classifier, roberta_tokenizer, sequence_length=SEQUENCE_LENGTH)
    requests = [("serving_default", {"text": TEXTS[:2]})]
    saved_model.verify_saved_model(exported.path, module, requests)  # the same model passes
    original = classifier.output_dense.bias.numpy()
    try:
        classifier.output_dense.bias.assign(original + 1e-3)
        with pytest.raises(RuntimeError, match="serving_default/logits: the reloaded model's output differs"):
            saved_model.verify_saved_model(exported.path, module, requests)
    finally:
        classifier.output_dense.bias.assign(original)


def _export_command(preset, base, *extra):
    return [sys.executable, "-m", "roberta_tf.cli", "export", "saved_model", f"--preset={preset}", f"--output={base}", *extra]


def _wait_for_staging(process, base, timeout=240):
    """Waits until the export's staging directory has the SavedModel's variables (mid-way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the export ended before it could be interrupted"
        staging = list(base.glob(f".tmp-{saved_model.STAGING_KIND}-*"))
        if staging and (staging[0] / "variables").exists():
            return staging[0]
        time.sleep(0.05)
    raise AssertionError("the export never reached its staging directory")


def test_a_killed_export_leaves_no_version(preset, exported, classifier, roberta_tokenizer, tmp_path):
    base = tmp_path / "roberta_classifier"
    shutil.copytree(exported.path, base / "1")
    process = subprocess.Popen(_export_command(preset, base), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    staging = _wait_for_staging(process, base)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=120)
    assert saved_model.versions(base) == [1]  # what a polling server sees: no new version
    assert staging.exists()  # nothing can clean up after SIGKILL; the next export does

    result = saved_model.export_saved_model(classifier, roberta_tokenizer, base, warmup_requests=False)
    assert result.version == 2 and result.path == base / "2"
    assert saved_model.versions(base) == [1, 2]
    assert not list(base.glob(f".tmp-{saved_model.STAGING_KIND}-*"))


def test_sigterm_mid_export_unwinds_and_cleans_up(preset, exported, tmp_path, monkeypatch, capsys):
    from roberta_tf.cli import main

    base = tmp_path / "roberta_classifier"
    shutil.copytree(exported.path, base / "1")
    seen = []

    def terminated_while_verifying(export_dir, *args):
        seen.append(pathlib.Path(export_dir))
        assert (seen[0] / "saved_model.pb").exists()  # mid-way: written, not yet renamed
        os.kill(os.getpid(), signal.SIGTERM)  # the CLI's handler turns it into KeyboardInterrupt
        time.sleep(5)  # not reached: the handler raises at the next bytecode
        raise AssertionError("SIGTERM did not interrupt the export")

    monkeypatch.setattr(saved_model, "verify_saved_model", terminated_while_verifying)
    previous = signal.getsignal(signal.SIGTERM)
    code = main.main(["roberta-tf", "export", "saved_model", f"--preset={preset}", f"--output={base}", "--nowarmup"])
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert seen and not seen[0].exists()  # the staging directory is gone
    assert sorted(p.name for p in base.iterdir()) == ["1"]
    assert signal.getsignal(signal.SIGTERM) is previous  # the CLI restored the handler


def test_cli_exports_the_next_version(preset, tmp_path, capsys):
    from roberta_tf.cli import main

    # A preset as the converters write it: metadata.json names the source checkpoint's hash.
    converted = shutil.copytree(preset, tmp_path / "converted")
    preset_metadata = json.loads((converted / "metadata.json").read_text(encoding="utf-8"))
    preset_metadata["source"] = {"type": "fairseq", "path": "model.pt", "sha256": "5e" * 32}
    (converted / "metadata.json").write_text(json.dumps(preset_metadata), encoding="utf-8")
    base = tmp_path / "models" / "sst2"
    assert main.main(["roberta-tf", "export", "saved_model", f"--preset={converted}", f"--output={base}", "--nowarmup"]) == 0
    assert capsys.readouterr().out.strip() == str(base / "1")
    assert not (base / "1" / warmup.WARMUP_DIR).exists()  # --nowarmup
    metadata = json.loads((base / "1" / "assets" / saved_model.METADATA_FILE).read_text(encoding="utf-8"))
    assert metadata["sequence_length"] == SEQUENCE_LENGTH and metadata["label_names"] == LABELS
    assert metadata["source"]["checkpoint_sha256"] == "5e" * 32
    assert main.main(["roberta-tf", "export", "saved_model", f"--preset={preset}", f"--output={base}", "--version=1"]) == 1
    assert "immutable" in capsys.readouterr().err
    assert main.main(["roberta-tf", "export", "onnx", f"--preset={preset}", f"--output={base}"]) == 2  # no such mode
    assert main.main(["roberta-tf", "export", "saved_model", f"--output={base}"]) == 2
    assert "--preset" in capsys.readouterr().err
    assert saved_model.versions(base) == [1]


# === Encoder modes ===


@pytest.mark.parametrize("precision, jit_compile, atol", [("bfloat16", False, 0.05), ("float32", True, 1e-5)])
def test_encoder_modes_agree_with_float32(classifier, roberta_tokenizer, loaded, tmp_path, precision, jit_compile, atol):
    result = saved_model.export_saved_model(
        classifier, roberta_tokenizer, tmp_path / "m", sequence_length=SEQUENCE_LENGTH,
        precision=precision, jit_compile=jit_compile, warmup_requests=False,
    )
    assert result.metadata["precision"] == precision and result.metadata["jit_compile"] is jit_compile
    assert saved_model.non_core_ops(result.path) == []
    other = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    want = as_numpy(loaded.signatures["serving_default"](text=tf.constant(TEXTS)))
    got = as_numpy(other(text=tf.constant(TEXTS)))
    np.testing.assert_allclose(got["logits"], want["logits"], rtol=0, atol=atol)
    assert got["logits"].dtype == np.float32


def test_bfloat16_module_stores_bfloat16_weights_but_float32_layer_norms(classifier, roberta_tokenizer):
    module = serving_module.ClassifierServingModule(classifier, roberta_tokenizer, precision="bfloat16")
    variables = [(v.name, v.dtype) for v in module.trainable_variables]
    kernels = [d for n, d in variables if n.endswith(("kernel:0", "embedding:0")) and not n.startswith("logits/")]
    assert len(kernels) == 2 * 4 + 2 + 1 and set(kernels) == {tf.bfloat16}  # 2 layers x 4, 2 tables, pooler
    assert {d for n, d in variables if n.endswith(("gamma:0", "beta:0"))} == {tf.float32}  # LayerNorms
    assert {d for n, d in variables if n.startswith("logits/")} == {tf.float32}
    assert classifier.backbone.dtype_policy_name in (None, "float32")  # the original is untouched


def test_module_checks_its_arguments(classifier, roberta_tokenizer):
    with pytest.raises(ValueError, match="sequence_length"):
        serving_module.ClassifierServingModule(classifier, roberta_tokenizer, sequence_length=65)
    with pytest.raises(ValueError, match="precision"):
        serving_module.ClassifierServingModule(classifier, roberta_tokenizer, precision="float16")
    with pytest.raises(ValueError, match="truncate"):
        serving_module.ClassifierServingModule(classifier, roberta_tokenizer, truncate="middle")
