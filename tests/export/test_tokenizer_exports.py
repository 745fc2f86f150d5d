"""The exported tokenizer: builtin-only TFLite, and a SavedModel that needs only tensorflow."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from roberta_tf.export import tflite_ops
from roberta_tf.export.saved_model_tokenizer import export_tokenizer_saved_model
from roberta_tf.export.tflite_tokenizer import export_tokenizer_tflite

TEXTS = ["Hello world!", "", "don't  stop\tme", "日本語のテキスト", "emoji 👨\u200d👩\u200d👧 and <mask>"]
# Ops of tensorflow_text's op libraries that a RoBERTa pipeline could pull in (FACTS.md).
TF_TEXT_OPS = {"RegexSplitWithOffsets", "RoundRobinTrim", "RoundRobinGenerateMasks", "UnicodeScriptTokenizeWithOffsets",
               "WhitespaceTokenizeWithOffsetsV2", "FastWordpieceTokenizeWithOffsets", "SentencepieceOp",
               "TFText>RoundRobinTrim", "MaxSpanningTree", "NormalizeUTF8", "CaseFoldUTF8"}


@pytest.fixture(scope="module")
def tflite_model(roberta_tokenizer):
    return export_tokenizer_tflite(roberta_tokenizer)


def test_tflite_has_only_builtin_ops_in_every_subgraph(tflite_model):
    subgraphs = tflite_ops.operator_names(tflite_model)
    assert len(subgraphs) >= 2  # main graph plus the IF branches and WHILE bodies of the merge loop
    all_ops = {op for ops in subgraphs for op in ops}
    assert {"WHILE", "IF", "UNSORTED_SEGMENT_MIN", "GATHER"} <= all_ops
    assert tflite_ops.non_builtin_operators(tflite_model) == []
    assert not any(op.startswith("CUSTOM") for ops in subgraphs for op in ops)


def test_op_checker_detects_flex_ops():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def split(x):
        return tf.strings.split(x).flat_values

    converter = tf.lite.TFLiteConverter.from_concrete_functions([split.get_concrete_function()], split)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    flex_model = converter.convert()
    assert any(name.startswith("CUSTOM:Flex") for name in tflite_ops.non_builtin_operators(flex_model))
    with pytest.raises(ValueError, match="TFLite flatbuffer"):
        tflite_ops.operator_names(b"not a model")


def test_tflite_runs_with_variable_input_length(roberta_tokenizer, tflite_model, tflite_runner_factory):
    runner = tflite_runner_factory(tflite_model)
    for text in TEXTS + ["x" * 3000, "a b " * 700]:
        utf8 = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)
        assert runner(utf8_bytes=utf8)["token_ids"].tolist() == roberta_tokenizer(text).numpy().tolist()


@pytest.fixture(scope="module")
def saved_model_dir(roberta_tokenizer, tmp_path_factory):
    return pathlib.Path(export_tokenizer_saved_model(roberta_tokenizer, tmp_path_factory.mktemp("export") / "tokenizer"))


FRESH_PROCESS = r"""
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
texts = json.loads(sys.argv[2])
single = model.signatures["tokenize"](text=tf.constant(texts))
pairs = model.signatures["tokenize_pairs"](text_a=tf.constant(texts), text_b=tf.constant(texts[::-1]))
empty = model.signatures["tokenize"](text=tf.constant([], tf.string))
graph_ops = set()
for function in model.signatures.values():
    graph_ops |= {node.op for node in function.graph.as_graph_def().node}
    for f in function.graph.as_graph_def().library.function:
        graph_ops |= {node.op for node in f.node_def}
print(json.dumps({
    "signatures": sorted(model.signatures),
    "single": [single["token_ids"].numpy().tolist(), single["padding_mask"].numpy().tolist()],
    "pairs": [pairs["token_ids"].numpy().tolist(), pairs["padding_mask"].numpy().tolist()],
    "empty": [empty["token_ids"].shape.as_list(), empty["padding_mask"].dtype.name],
    "ops": sorted(graph_ops),
    "not_core": sorted(op for op in graph_ops if not hasattr(tf.raw_ops, op)),
    "tensorflow_text_loaded": any(m.startswith("tensorflow_text") for m in sys.modules),
    "roberta_tf_loaded": any(m.startswith("roberta_tf") for m in sys.modules),
}))
"""


def _padded(rows):
    width = max(map(len, rows))
    return [row + [1] * (width - len(row)) for row in rows], [[1] * len(row) + [0] * (width - len(row)) for row in rows]


def test_saved_model_runs_in_a_process_with_only_tensorflow(roberta_tokenizer, saved_model_dir, tmp_path):
    """The tokenizer SavedModel serves the classifier export's two tokenize signatures: same
    inputs, same packed outputs (`roberta_tf.contract.signatures`)."""
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(saved_model_dir), json.dumps(TEXTS)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["signatures"] == ["tokenize", "tokenize_pairs"]
    assert not out["tensorflow_text_loaded"] and not out["roberta_tf_loaded"]
    assert out["not_core"] == [] and not TF_TEXT_OPS & set(out["ops"])
    assert out["empty"] == [[0, 2], "int32"]  # zero texts: a defined result, as wide as `<s></s>`
    ids = roberta_tokenizer(TEXTS).to_list()
    assert out["single"] == list(_padded([[0] + row + [2] for row in ids]))
    assert out["pairs"] == list(_padded([[0] + a + [2, 2] + b + [2] for a, b in zip(ids, ids[::-1])]))


def test_saved_model_export_is_atomic_and_refuses_overwrite(roberta_tokenizer, saved_model_dir):
    assert (saved_model_dir / "saved_model.pb").exists()
    assert [p.name for p in saved_model_dir.parent.iterdir()] == [saved_model_dir.name]  # no staging left
    with pytest.raises(FileExistsError):
        export_tokenizer_saved_model(roberta_tokenizer, saved_model_dir)


def test_tflite_ignores_negative_padding_in_a_fixed_buffer(roberta_tokenizer, tflite_model):
    """One input buffer of fixed size serves every shorter text (tail filled with -1)."""
    interpreter_lib = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = interpreter_lib.Interpreter(model_content=tflite_model)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, [256])
    interpreter.allocate_tensors()
    for text in TEXTS:
        buffer = np.full(256, -1, np.int32)
        raw = np.frombuffer(text.encode("utf-8"), np.uint8)
        buffer[: len(raw)] = raw
        interpreter.set_tensor(index, buffer)
        interpreter.invoke()
        ids = interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).tolist()
        assert ids == roberta_tokenizer(text).numpy().tolist()
