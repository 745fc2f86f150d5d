"""`roberta-tf export tflite`: the whole pipeline in one builtin-only .tflite, in every form.

The model under test is tests/served_model.py's small classifier (real roberta-base tokenizer,
three labels, logits spread so texts get different answers); its SavedModel, exported from the
same preset, is the reference the TFLite models must match.
"""

import concurrent.futures
import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import shared_path
from served_model import PAIRS_A, PAIRS_B, SEQUENCE_LENGTH, TEXTS, classifier, exported, loaded, preset, sst2_sentences  # noqa: F401
from roberta_tf.contract import signatures as contract
from roberta_tf.export import tflite, tflite_ops
from roberta_tf.export.tflite_module import TfliteClassifierModule

litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")
from roberta_tf.lite import TextClassifier, read_tflite_metadata  # noqa: E402

FORMS = [(inputs, quantize) for inputs in tflite.INPUTS for quantize in tflite.QUANTIZATIONS]
# Bad input the utf8_bytes model must answer as the SavedModel does.
BAD_TEXTS = [
    b"",
    b"\xff\xfe\xfd invalid \xc3\x28 UTF-8 \xe2\x82",
    b"NUL\x00in\x00the\x00middle\x00",
    b"\x00" * 50,
    bytes(range(256)),
    (b"long text " * 10_000)[:100_000],  # 100 kB, far past the truncation limit
]


def xnli_pairs(count):
    rows = []
    with open(shared_path("xnli-dev", "dev-en.tsv"), encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) >= 2 and fields[0] and fields[1]:
                rows.append((fields[0], fields[1]))
    return rows[1 : count + 1]


@pytest.fixture(scope="module")
def exports(preset, tmp_path_factory):  # noqa: F811
    """{(inputs, quantize): TfliteExportResult}, converted lazily, once per module."""
    directory = tmp_path_factory.mktemp("tflite")
    cache = {}

    def get(inputs, quantize):
        if (inputs, quantize) not in cache:  # every form of `inputs` at once, from one saved graph
            outputs = {form: directory / f"{inputs}-{form}.tflite" for form in tflite.QUANTIZATIONS}
            results = tflite.export_preset_tflite_forms(preset, outputs, inputs=inputs,
                                                        calibration_texts=sst2_sentences(120) + TEXTS)
            cache.update({(inputs, form): result for form, result in results.items()})
        return cache[inputs, quantize]

    return get


def saved_model_outputs(loaded, texts=None, pairs=None):  # noqa: F811
    if pairs is None:
        outputs = loaded.signatures[contract.CLASSIFY](text=tf.constant(list(texts), tf.string))
    else:
        a, b = zip(*pairs)
        outputs = loaded.signatures[contract.CLASSIFY_PAIRS](text_a=tf.constant(list(a)), text_b=tf.constant(list(b)))
    return {name: value.numpy() for name, value in outputs.items()}


@pytest.mark.parametrize("inputs,quantize", FORMS)
def test_every_form_is_builtin_only_and_runs_at_several_lengths(exports, inputs, quantize, loaded):  # noqa: F811
    result = exports(inputs, quantize)
    content = result.path.read_bytes()
    subgraphs = tflite_ops.operator_names(content)
    assert len(subgraphs) >= len(contract.TFLITE_SIGNATURES[inputs]) and subgraphs[0]
    assert tflite_ops.non_builtin_operators(content) == []
    interpreter = litert.Interpreter(model_content=content)
    signatures = interpreter.get_signature_list()
    assert sorted(signatures) == sorted(contract.TFLITE_SIGNATURES[inputs])
    for name, io in signatures.items():
        signature = contract.TFLITE_CONTRACT[name]
        assert sorted(io["inputs"]) == sorted(t.name for t in signature.inputs)
        assert sorted(io["outputs"]) == sorted(t.name for t in signature.outputs)
    model = TextClassifier(result.path)
    texts = ["Fine.", "A film about a family, told slowly and with care.", "word " * 200]  # 3, ~12, past the limit
    want = saved_model_outputs(loaded, texts)
    if inputs == "utf8_bytes":
        got = model.classify(texts)
    else:
        packed = [loaded.signatures[contract.TOKENIZE](text=tf.constant([t])) for t in texts]
        got = [model.classify_token_ids(p["token_ids"].numpy(), p["padding_mask"].numpy()) for p in packed]
        got = _concatenate(got)
    assert got.logits.shape == (3, 3) and got.probabilities.dtype == np.float32 and got.class_id.dtype == np.int32
    tolerance = {"none": 1e-4, "float16": 1e-2, "dynamic": 0.5, "int8": 1.0}[quantize]
    np.testing.assert_allclose(got.logits, want["logits"], rtol=0, atol=tolerance)
    np.testing.assert_allclose(got.probabilities.sum(-1), 1.0, atol=1e-3)
    assert got.labels == [model.label_names[i] for i in got.class_id]


def _concatenate(results):
    return type(results[0])(
        np.concatenate([r.logits for r in results]), np.concatenate([r.probabilities for r in results]),
        np.concatenate([r.class_id for r in results]), sum((r.labels for r in results), []),
    )


@pytest.mark.parametrize("quantize,tolerance", [("none", 1e-4), ("float16", 1e-2)])
def test_utf8_model_equals_the_saved_model_on_real_text_pairs_and_bad_input(exports, loaded, quantize, tolerance):  # noqa: F811
    model = TextClassifier(exports("utf8_bytes", quantize).path)
    texts = sst2_sentences(40) + TEXTS + BAD_TEXTS
    got, want = model.classify(texts), saved_model_outputs(loaded, texts)
    np.testing.assert_allclose(got.logits, want["logits"], rtol=0, atol=tolerance)
    np.testing.assert_allclose(got.probabilities, want["probabilities"], rtol=0, atol=tolerance)
    if quantize == "none":
        np.testing.assert_array_equal(got.class_id, want["class_id"])
        assert [label.encode() for label in got.labels] == list(want["class_name"])
    pairs = xnli_pairs(20) + list(zip(PAIRS_A, PAIRS_B)) + [(BAD_TEXTS[1], BAD_TEXTS[-1]), (b"", b"")]
    got = model.classify_pairs([a for a, _ in pairs], [b for _, b in pairs])
    want = saved_model_outputs(loaded, pairs=pairs)
    np.testing.assert_allclose(got.logits, want["logits"], rtol=0, atol=tolerance)
    if quantize == "none":
        np.testing.assert_array_equal(got.class_id, want["class_id"])


class _TokenIdsOut(TfliteClassifierModule):
    """The utf8_bytes graph with its packed row as extra outputs (a debug build for the test)."""

    def _outputs(self, token_ids, padding_mask):
        outputs = super()._outputs(token_ids, padding_mask)
        return {**outputs, "token_ids": tf.identity(token_ids), "padding_mask": tf.identity(padding_mask)}


@pytest.mark.parametrize("quantize", ["none", "int8"])  # int8: quantization leaves the integer tokenizer alone
def test_utf8_model_packs_the_same_token_ids_as_the_saved_model(classifier, roberta_tokenizer, loaded, quantize):  # noqa: F811
    module = _TokenIdsOut(classifier, roberta_tokenizer, sequence_length=SEQUENCE_LENGTH)
    interpreter = litert.Interpreter(model_content=tflite.convert(module, quantize, sst2_sentences(20)))
    texts = sst2_sentences(30) + TEXTS + BAD_TEXTS
    classify = interpreter.get_signature_runner(contract.TFLITE_CLASSIFY)
    for text in texts:
        want = loaded.signatures[contract.TOKENIZE](text=tf.constant([text]))
        got = classify(utf8_bytes=tflite.utf8_array(text))
        np.testing.assert_array_equal(got["token_ids"], want["token_ids"].numpy(), err_msg=repr(text[:60]))
        np.testing.assert_array_equal(got["padding_mask"], want["padding_mask"].numpy())
    classify_pairs = interpreter.get_signature_runner(contract.TFLITE_CLASSIFY_PAIRS)
    for a, b in xnli_pairs(10) + [(texts[0], BAD_TEXTS[-1]), (BAD_TEXTS[-1], texts[1]), ("", "")]:
        want = loaded.signatures[contract.TOKENIZE_PAIRS](text_a=tf.constant([a]), text_b=tf.constant([b]))
        got = classify_pairs(utf8_bytes_a=tflite.utf8_array(a), utf8_bytes_b=tflite.utf8_array(b))
        np.testing.assert_array_equal(got["token_ids"], want["token_ids"].numpy())


def test_padding_is_ignored_and_out_of_range_bytes_fail_the_invocation(exports, loaded):  # noqa: F811
    content = exports("utf8_bytes", "none").path.read_bytes()
    classify = litert.Interpreter(model_content=content).get_signature_runner(contract.TFLITE_CLASSIFY)
    text = "Padding after the text, and inside it, is ignored."
    values = tflite.utf8_array(text)
    padded = np.concatenate([values[:10], [-1, -7], values[10:], np.full(500, -1)]).astype(np.int32)
    want = saved_model_outputs(loaded, [text])["logits"]
    np.testing.assert_allclose(classify(utf8_bytes=padded)["logits"], want, atol=1e-4, rtol=0)
    empty = classify(utf8_bytes=np.full(16, -1, np.int32))["logits"]  # all padding: the empty text
    np.testing.assert_allclose(empty, saved_model_outputs(loaded, [""])["logits"], atol=1e-4, rtol=0)
    for bad in ([256], [72, 105, 1000], [2**31 - 1]):
        with pytest.raises(RuntimeError):  # an error from the interpreter, never a crash
            classify(utf8_bytes=np.array(bad, np.int32))
    assert classify(utf8_bytes=values)["logits"].shape == (1, 3)  # the interpreter is still usable


def test_helper_rejects_bad_arguments_clearly(exports):
    utf8_model = TextClassifier(exports("utf8_bytes", "none").path)
    with pytest.raises(TypeError, match="list of texts"):
        utf8_model.classify("one text")
    with pytest.raises(TypeError, match="str or bytes"):
        utf8_model.classify([3])
    with pytest.raises(ValueError, match="as many texts"):
        utf8_model.classify_pairs(["a"], ["b", "c"])
    with pytest.raises(ValueError, match="no classify_token_ids signature"):
        utf8_model.classify_token_ids([[0, 2]], [[1, 1]])
    assert utf8_model.classify([]).logits.shape == (0, 3)
    ids_model = TextClassifier(exports("token_ids", "none").path)
    with pytest.raises(ValueError, match="token_ids must be in"):
        ids_model.classify_token_ids([[0, 60000, 2]], [[1, 1, 1]])
    with pytest.raises(ValueError, match="longer than"):
        ids_model.classify_token_ids(np.zeros([1, SEQUENCE_LENGTH + 1]), np.ones([1, SEQUENCE_LENGTH + 1]))
    with pytest.raises(TypeError, match="must be integers"):
        ids_model.classify_token_ids([[0.0, 5.5, 2.0]], [[1, 1, 1]])
    with pytest.raises(ValueError, match="only 0 and 1"):
        ids_model.classify_token_ids([[0, 5, 2]], [[1, 2, 1]])


def test_threads_with_one_interpreter_each_equal_sequential_calls(exports):
    model = TextClassifier(exports("utf8_bytes", "dynamic").path, num_threads=1)
    texts = [t for t in sst2_sentences(48) + BAD_TEXTS[:4] + ["x " * n for n in (1, 30, 300)]]
    sequential = model.classify(texts)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        chunks = list(pool.map(lambda i: model.classify(texts[i::8]), range(8)))
    for i, chunk in enumerate(chunks):
        np.testing.assert_array_equal(chunk.logits, sequential.logits[i::8])
        np.testing.assert_array_equal(chunk.class_id, sequential.class_id[i::8])


def test_metadata_inside_the_model_and_beside_it(exports, preset):  # noqa: F811
    result = exports("utf8_bytes", "int8")
    inside = read_tflite_metadata(result.path)
    assert inside == json.loads(result.metadata_path.read_text(encoding="utf-8")) == result.metadata
    assert inside["label_names"] == ["négatif", "neutral", "positive 🙂"]
    assert inside["sequence_length"] == SEQUENCE_LENGTH and inside["inputs"] == "utf8_bytes"
    assert inside["quantization"]["mode"] == "int8" and inside["quantization"]["calibration_texts"] == 126
    assert "SOFTMAX" in inside["quantization"]["kept_float"]["ops"]
    assert set(inside["tokenizer_files"]) == {"vocab.json", "merges.txt"}
    assert len(inside["source"]["preset_sha256"]) == 64
    assert inside["contract"] == contract.describe(contract.TFLITE_SIGNATURES["utf8_bytes"], contract.TFLITE_CONTRACT)
    assert 0.0 <= inside["verification"]["label_agreement"] <= 1.0 and inside["verification"]["texts"] > 20
    assert not any(op.startswith("CUSTOM") for op in inside["operators"])


def test_export_is_verified_and_atomic(classifier, roberta_tokenizer, tmp_path, monkeypatch):  # noqa: F811
    target = tmp_path / "model.tflite"
    target.write_bytes(b"an older model")
    with pytest.raises(FileExistsError):
        tflite.export_tflite(classifier, roberta_tokenizer, target, inputs="token_ids")
    assert target.read_bytes() == b"an older model"

    def wrong(content, module, quantize, num_threads=None):
        raise RuntimeError("The float32 TFLite model differs from the in-process model")

    monkeypatch.setattr(tflite, "convert", lambda module, quantize, calibration_texts=None: b"converted")
    monkeypatch.setattr(tflite, "verify_tflite", wrong)
    with pytest.raises(RuntimeError, match="differs"):
        tflite.export_tflite(classifier, roberta_tokenizer, target, inputs="token_ids", overwrite=True)
    assert target.read_bytes() == b"an older model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]  # no staging file, no JSON


def test_calibration_texts_from_lines_or_a_column(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(b"sentence\tlabel\n" + b"".join(b"text %d\t%d\n" % (i, i % 2) for i in range(1000)) + b"\xff bad\n")
    column = tflite.read_calibration_texts(path, column=0, size=50)
    assert len(column) == 50 and len(set(column)) == 50 and all(b"\t" not in t for t in column)
    assert column == tflite.read_calibration_texts(path, column=0, size=50)  # seeded
    assert len(tflite.read_calibration_texts(path, size=5000)) == 1002  # every line when fewer
    with pytest.raises(ValueError, match="column 7"):
        tflite.read_calibration_texts(path, column=7)
    assert len(tflite.default_calibration_texts()) == tflite.DEFAULT_CALIBRATION_SIZE


def test_calibration_patch_is_undone():
    from tensorflow.lite.python.optimize import calibrator

    original = calibrator.Calibrator._feed_tensors
    with pytest.raises(KeyError):
        with tflite.calibration_with_varying_shapes():
            assert calibrator.Calibrator._feed_tensors is not original
            raise KeyError("conversion failed")
    assert calibrator.Calibrator._feed_tensors is original


def test_cli_exports_a_checked_model_with_the_presets_provenance(preset, tmp_path, capsys):  # noqa: F811
    from roberta_tf.cli import main

    calibration = tmp_path / "train.tsv"
    calibration.write_text("sentence\tlabel\n" + "".join(f"{s}\t1\n" for s in sst2_sentences(40)), encoding="utf-8")
    output = tmp_path / "apps" / "model.tflite"
    argv = ["roberta-tf", "export", "tflite", f"--preset={preset}", f"--output={output}", "--inputs=token_ids"]
    assert main.main(argv + ["--quantize=dynamic", f"--calibration_data={calibration}"]) == 1
    assert "--calibration_data is for --quantize int8 only" in capsys.readouterr().err
    assert main.main(argv + ["--quantize=int8", f"--calibration_data={calibration}", "--calibration_column=0",
                             "--calibration_size=20", "--threads=1"]) == 0
    assert capsys.readouterr().out.strip() == str(output)
    metadata = read_tflite_metadata(output)
    assert metadata["quantization"]["mode"] == "int8" and metadata["quantization"]["calibration_texts"] == 20
    assert metadata["recommended_num_threads"] == 1 and metadata["signatures"] == ["classify_token_ids"]
    assert metadata["source"]["preset"] == str(preset) and len(metadata["source"]["preset_sha256"]) == 64
    assert main.main(argv) == 1  # exists: refused without --overwrite
    assert "exists" in capsys.readouterr().err
    assert main.main(argv + [f"--calibration_data={tmp_path / 'missing.txt'}", "--quantize=int8"]) == 1
    assert "--calibration_data" in capsys.readouterr().err
    assert sorted(p.name for p in output.parent.iterdir()) == ["model.tflite", "model.tflite.json"]
