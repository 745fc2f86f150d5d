"""The tf.string front-end: both byte-decoding routes give the same bytes."""

import tensorflow as tf

from roberta_tf.tokenizers import strings


def _decode(texts):
    byte_values, text_ids, num_texts = strings.strings_to_bytes(tf.constant(texts, tf.string))
    return byte_values.numpy().tolist(), text_ids.numpy().tolist(), int(num_texts)


def test_grid_route_for_even_lengths():
    texts = [b"ab", b"", b"c\xff\x00"]
    assert _decode(texts) == ([97, 98, 99, 255, 0], [0, 0, 2, 2, 2], 3)


def test_split_route_for_one_long_outlier():
    """One long text among many short ones would make the [batch, longest] grid over 4x the
    real bytes: the StringSplit route is taken and must give the same bytes."""
    texts = [b"x" * 50_000] + [b"", b"hi"] * 100
    byte_values, text_ids, num_texts = _decode(texts)
    assert num_texts == 201
    assert byte_values == [ord("x")] * 50_000 + [ord("h"), ord("i")] * 100
    assert text_ids == [0] * 50_000 + [i for i in range(2, 201, 2) for _ in range(2)]


def test_empty_batch():
    assert _decode([]) == ([], [], 0)


def test_tokenizer_on_a_batch_with_an_outlier_equals_per_text(roberta_tokenizer):
    texts = ["word " * 4000, "", "short one", "caf\u00e9"] * 3
    assert roberta_tokenizer(texts).to_list() == [roberta_tokenizer(t).numpy().tolist() for t in texts]
