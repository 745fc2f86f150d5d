"""Packing layout and truncation equal Hugging Face's and tensorflow_text's (keras-hub's) trimmers."""

import numpy as np
import pytest
import tensorflow as tf

from roberta_tf.preprocessing import packer


def ragged(rows):
    r = tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1) if rows else tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64))
    return r.flat_values, r.row_splits


def unpadded(token_ids, padding_mask):
    return [list(np.asarray(t)[np.asarray(m)]) for t, m in zip(token_ids.numpy(), padding_mask.numpy())]


def test_single_and_pair_layout_with_distinctive_ids():
    ids, mask = packer.pack([ragged([[999, 1001], []])], 6, start_id=0, end_id=2, pad_id=1)
    assert ids.numpy().tolist() == [[0, 999, 1001, 2, 1, 1], [0, 2, 1, 1, 1, 1]]
    assert mask.numpy().tolist() == [[True] * 4 + [False] * 2, [True] * 2 + [False] * 4]
    ids, _ = packer.pack([ragged([[999]]), ragged([[1002, 1003]])], 9, start_id=0, end_id=2, pad_id=1)
    assert ids.numpy().tolist() == [[0, 999, 2, 2, 1002, 1003, 2, 1, 1]]


def test_pad_to_longest_and_empty_batch():
    ids, mask = packer.pack([ragged([[5], [5, 6, 7]])], 512, 0, 2, 1, padding="longest")
    assert ids.shape == (2, 5)
    # An empty batch is as wide as the shortest packed row, so a model can still take
    # column 0 (`<s>`) and answer [0, classes].
    ids, mask = packer.pack([ragged([])], 512, 0, 2, 1, padding="longest")
    assert ids.shape == (0, 2) and mask.shape == (0, 2)
    ids, _ = packer.pack([ragged([]), ragged([])], 512, 0, 2, 1, padding="longest")
    assert ids.shape == (0, 4)
    ids, _ = packer.pack([ragged([])], 16, 0, 2, 1)
    assert ids.shape == (0, 16)


LENGTH_CASES = [(a, b) for a in (0, 1, 3, 7, 12, 30) for b in (0, 1, 2, 5, 12, 40)]


@pytest.mark.parametrize("budget", [1, 4, 9, 16, 60])
def test_round_robin_equals_tensorflow_text(budget):
    tf_text = pytest.importorskip("tensorflow_text")
    a_rows = [list(range(100, 100 + a)) for a, _ in LENGTH_CASES]
    b_rows = [list(range(200, 200 + b)) for _, b in LENGTH_CASES]
    expected = tf_text.RoundRobinTrimmer(max_seq_length=budget).trim(
        [tf.ragged.constant(a_rows, tf.int32, ragged_rank=1), tf.ragged.constant(b_rows, tf.int32, ragged_rank=1)]
    )
    ids, mask = packer.pack([ragged(a_rows), ragged(b_rows)], budget + 4, 0, 2, 1)
    want = [[0] + ea + [2, 2] + eb + [2] for ea, eb in zip(expected[0].to_list(), expected[1].to_list())]
    assert unpadded(ids, mask) == want


@pytest.mark.parametrize("max_length", [5, 8, 13, 20, 64])
def test_longest_first_equals_hugging_face(hf_tokenizer, max_length):
    hf = hf_tokenizer
    hf.enable_truncation(max_length=max_length, strategy="longest_first")
    try:
        pairs = [("word " * a, "term " * b) for a, b in LENGTH_CASES]
        expected = [e.ids for e in hf.encode_batch(pairs)]
    finally:
        hf.no_truncation()
    a_rows = [hf.encode(a, add_special_tokens=False).ids for a, _ in pairs]
    b_rows = [hf.encode(b, add_special_tokens=False).ids for _, b in pairs]
    ids, mask = packer.pack([ragged(a_rows), ragged(b_rows)], max_length, 0, 2, 1, truncate="longest_first")
    assert unpadded(ids, mask) == expected


def test_bad_arguments():
    with pytest.raises(ValueError, match="truncate must be one of"):
        packer.pack([ragged([[1]])], 8, 0, 2, 1, truncate="waterfall")
    with pytest.raises(ValueError, match="sequence_length must be at least 5"):
        packer.pack([ragged([[1]]), ragged([[1]])], 4, 0, 2, 1)
    with pytest.raises(ValueError, match="one or two segments"):
        packer.pack([ragged([[1]])] * 3, 16, 0, 2, 1)


@pytest.mark.parametrize("padding", ["max_length", "longest"])
@pytest.mark.parametrize("truncate", ["round_robin", "longest_first"])
def test_packer_converts_to_builtin_tflite_and_agrees(tflite_runner_factory, padding, truncate):
    from roberta_tf.export import tflite_ops

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="a"), tf.TensorSpec([None], tf.int32, name="b")])
    def pack_pair(a, b):
        splits = lambda x: tf.stack([0, tf.size(x)])  # noqa: E731 (one row)
        ids, mask = packer.pack([(a, splits(a)), (b, splits(b))], 12, 0, 2, 1, truncate=truncate, padding=padding)
        return {"token_ids": ids, "padding_mask": tf.cast(mask, tf.int32)}

    module = tf.Module()
    module.pack_pair = pack_pair
    converter = tf.lite.TFLiteConverter.from_concrete_functions([pack_pair.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    model = converter.convert()
    assert tflite_ops.non_builtin_operators(model) == []
    runner = tflite_runner_factory(model)
    for a_len, b_len in [(0, 0), (3, 2), (10, 1), (1, 10), (9, 9), (20, 30)]:
        a = np.arange(100, 100 + a_len, dtype=np.int32)
        b = np.arange(200, 200 + b_len, dtype=np.int32)
        got = runner(a=a, b=b)
        want = pack_pair(tf.constant(a), tf.constant(b))
        assert got["token_ids"].tolist() == want["token_ids"].numpy().tolist(), (a_len, b_len)
        assert got["padding_mask"].tolist() == want["padding_mask"].numpy().tolist()
