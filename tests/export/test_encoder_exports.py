"""The encoder + head converts to builtin-only TFLite (float32, float16, dynamic-range, int8)
with dynamic batch and length, and its TF graph uses core ops only."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from roberta_tf.export import tflite_ops
from roberta_tf.models import RobertaBackbone, RobertaTextClassifier

SIGNATURE = [tf.TensorSpec([None, None], tf.int32, name="token_ids"), tf.TensorSpec([None, None], tf.int32, name="padding_mask")]


@pytest.fixture(scope="module")
def classifier_function():
    keras.utils.set_random_seed(0)
    backbone = RobertaBackbone(
        vocabulary_size=500, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=32
    )
    classifier = RobertaTextClassifier(backbone, num_classes=3, compile=False)

    @tf.function(input_signature=SIGNATURE)
    def logits(token_ids, padding_mask):
        return {"logits": classifier({"token_ids": token_ids, "padding_mask": padding_mask}, training=False)}

    return classifier, logits.get_concrete_function()


def _inputs(batch, length, seed):
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(3, 500, size=(batch, length)).astype(np.int32)
    lengths = rng.integers(2, length + 1, size=batch)
    padding_mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int32)
    token_ids[:, 0] = 0
    return {"token_ids": np.where(padding_mask == 1, token_ids, 1).astype(np.int32), "padding_mask": padding_mask}


def _convert(concrete_function, classifier, mode):
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete_function], classifier)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        converter.representative_dataset = lambda: ([x["token_ids"], x["padding_mask"]] for x in (_inputs(1, 12, s) for s in range(20)))
    return converter.convert()


@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic_range", "int8"])
def test_tflite_builtin_only_with_dynamic_shapes(classifier_function, mode, tflite_runner_factory):
    classifier, concrete_function = classifier_function
    content = _convert(concrete_function, classifier, mode)
    assert tflite_ops.non_builtin_operators(content) == []
    runner = tflite_runner_factory(content)
    tolerance = {"float32": 1e-5, "float16": 1e-2, "dynamic_range": 5e-2, "int8": 2.5e-1}[mode]
    for batch, length, seed in [(1, 5, 0), (3, 17, 1), (2, 32, 2)]:  # resized at run time
        inputs = _inputs(batch, length, seed)
        expected = classifier(inputs).numpy()
        actual = runner(**inputs)["logits"]
        assert actual.shape == expected.shape
        assert np.abs(actual - expected).max() <= tolerance * max(1.0, np.abs(expected).max()), mode


def test_graph_uses_core_tensorflow_ops_only(classifier_function):
    _, concrete_function = classifier_function
    graph_def = concrete_function.graph.as_graph_def()
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops |= {node.op for node in function.node_def}
    assert sorted(op for op in ops if not hasattr(tf.raw_ops, op)) == []
    assert "Assert" not in ops  # nothing that a converter or XLA would have to strip
