"""JSON metadata inside a .tflite: round trip, replacement, and a model that still runs the same."""

import json

import flatbuffers
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

from roberta_tf.export.tflite_metadata import METADATA_NAME, with_metadata
from roberta_tf.lite import read_tflite_metadata

METADATA = {"labels": ["negative", "positive"], "sequence_length": 128, "sha256": "ab" * 32, "quantization": None}


def _convert(quantize=False):
    """A converted tf.Module with two signatures and a 64x64 weight (int8 when `quantize`)."""
    weight = tf.constant(np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32))

    class Two(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([2, 64], tf.float32, name="x")])
        def project(self, x):
            return {"y": tf.matmul(x, weight)}

        @tf.function(input_signature=[tf.TensorSpec([3], tf.int32, name="ids")])
        def double(self, ids):
            return {"twice": ids * 2}

    module = Two()
    functions = [module.project.get_concrete_function(), module.double.get_concrete_function()]
    converter = tf.lite.TFLiteConverter.from_concrete_functions(functions, module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


@pytest.fixture(scope="module")
def model():
    return _convert()


def _entries(content):
    """{name: bytes} of every metadata entry, and the number of buffers."""
    root = schema.Model.GetRootAs(content, 0)
    entries = {}
    for i in range(root.MetadataLength()):
        buffer = root.Buffers(root.Metadata(i).Buffer())
        entries.setdefault(root.Metadata(i).Name().decode(), []).append(buffer.DataAsNumpy().tobytes())
    return entries, root.BuffersLength()


def test_round_trip_from_bytes_and_path(model, tmp_path):
    tagged = with_metadata(model, METADATA)
    assert read_tflite_metadata(tagged) == METADATA
    path = tmp_path / "model.tflite"
    path.write_bytes(tagged)
    assert read_tflite_metadata(path) == METADATA
    assert read_tflite_metadata(str(path)) == METADATA
    entries, _ = _entries(tagged)
    assert entries[METADATA_NAME] == [json.dumps(METADATA, sort_keys=True, indent=1).encode()]


def test_converter_entries_are_kept_and_replacing_keeps_one_entry(model):
    original, num_buffers = _entries(model)
    assert {"min_runtime_version", "CONVERSION_METADATA"} <= set(original)
    once = with_metadata(model, METADATA)
    twice = with_metadata(once, {"labels": ["a"]})
    entries, twice_buffers = _entries(twice)
    assert entries.pop(METADATA_NAME) == [b'{\n "labels": [\n  "a"\n ]\n}']
    assert entries == original  # the converter's entries, byte for byte
    assert twice_buffers == _entries(once)[1] == num_buffers + 1  # replaced in place, no orphan buffer
    assert read_tflite_metadata(twice) == {"labels": ["a"]}
    # Another name is a separate entry.
    other = with_metadata(twice, {"x": 1}, name="other")
    assert read_tflite_metadata(other, name="other") == {"x": 1}
    assert read_tflite_metadata(other) == {"labels": ["a"]}


@pytest.mark.parametrize("quantize", [False, True], ids=["float32", "int8_weights"])
def test_signatures_outputs_and_alignment_unchanged(model, quantize):
    interpreter_lib = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")
    original = _convert(quantize=True) if quantize else model
    tagged = with_metadata(original, METADATA)
    x = np.random.default_rng(1).standard_normal((2, 64)).astype(np.float32)
    ids = np.array([1, -2, 30], np.int32)
    results = []
    for content in (original, tagged):
        interpreter = interpreter_lib.Interpreter(model_content=content)
        results.append(
            (
                interpreter.get_signature_list(),
                interpreter.get_signature_runner("project")(x=x)["y"],
                interpreter.get_signature_runner("double")(ids=ids)["twice"],
            )
        )
    (signatures, y, twice), (tagged_signatures, tagged_y, tagged_twice) = results
    assert signatures == tagged_signatures == {
        "double": {"inputs": ["ids"], "outputs": ["twice"]},
        "project": {"inputs": ["x"], "outputs": ["y"]},
    }
    np.testing.assert_array_equal(tagged_y, y)
    np.testing.assert_array_equal(tagged_twice, [2, -4, 60])
    assert twice.tolist() == [2, -4, 60]
    # Every buffer's data starts on a 16-byte boundary (relative to the flatbuffer's start).
    root = schema.Model.GetRootAs(tagged, 0)
    tables = [root.Buffers(j)._tab for j in range(root.BuffersLength()) if root.Buffers(j).DataLength()]
    assert len(tables) >= 2 and [t.Vector(t.Offset(4)) % 16 for t in tables] == [0] * len(tables)


def test_clear_errors(model, tmp_path):
    with pytest.raises(ValueError, match="Not a TFLite flatbuffer"):
        read_tflite_metadata(b"definitely not a model")
    with pytest.raises(ValueError, match="Not a TFLite flatbuffer"):
        with_metadata(b"", METADATA)
    (tmp_path / "empty.tflite").write_bytes(b"")
    with pytest.raises(ValueError, match="Not a TFLite flatbuffer"):
        read_tflite_metadata(tmp_path / "empty.tflite")
    with pytest.raises(ValueError, match="has no 'roberta_tf_export' metadata; it was not written by"):
        read_tflite_metadata(model)

    tagged = with_metadata(model, {"a": 1})
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(tagged[: len(tagged) // 3])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_tflite_metadata(truncated)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        with_metadata(tagged[: len(tagged) // 3], METADATA)

    payload = b'{\n "a": 1\n}'
    assert tagged.count(payload) == 1
    with pytest.raises(ValueError, match="not UTF-8 JSON"):
        read_tflite_metadata(tagged.replace(payload, b"\xff" * len(payload)))
    with pytest.raises(ValueError, match="not a JSON object"):
        read_tflite_metadata(tagged.replace(payload, b"[" + b" " * (len(payload) - 2) + b"]"))  # a JSON array)


def test_refuses_buffers_stored_outside_the_flatbuffer(model):
    """The > 2 GB layout (data appended after the flatbuffer) would be corrupted by re-packing."""
    unpacked = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    big = next(b for b in unpacked.buffers if b.data is not None and len(b.data) == 64 * 64 * 4)
    big.data, big.offset, big.size = None, len(model), 64 * 64 * 4
    builder = flatbuffers.Builder(1024)
    builder.Finish(unpacked.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(ValueError, match="outside the flatbuffer"):
        with_metadata(bytes(builder.Output()), METADATA)
