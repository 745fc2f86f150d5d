"""Odd input gets a defined result, the same in TF and TFLite, and never a crash or a hang."""

import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import shared_path
from roberta_tf.tokenizers import byte_symbols


def token_bytes(tokenizer, ids):
    return b"".join(byte_symbols.token_to_bytes(tokenizer.id_to_token(i)) for i in ids)


@pytest.fixture(scope="module")
def tflite_tokenize(roberta_tokenizer, tflite_runner_factory):
    from roberta_tf.export.tflite_tokenizer import export_tokenizer_tflite

    runner = tflite_runner_factory(export_tokenizer_tflite(roberta_tokenizer))
    return lambda raw: runner(utf8_bytes=np.frombuffer(raw, np.uint8).astype(np.int32))["token_ids"].tolist()


ODD_TEXTS = [b"", b" ", b"   \t\n ", b"\x00", b"a\x00b", b"\x00\x00 \x00", b"caf\xe9", b"\xff\xfe\xfd",
             b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"ok \xe2\x82 ok", b"\x80abc",
             b"it\x92s", b"don\xe2\x80\x99t"]


def test_odd_texts_tf_equals_tflite_and_is_lossless(roberta_tokenizer, tflite_tokenize):
    got = roberta_tokenizer(tf.constant(ODD_TEXTS)).to_list()
    for raw, ids in zip(ODD_TEXTS, got):
        assert ids == tflite_tokenize(raw), raw
        assert token_bytes(roberta_tokenizer, ids) == raw, raw  # every byte kept, in order


def test_empty_and_whitespace_only(roberta_tokenizer, hf_tokenizer):
    assert roberta_tokenizer("").numpy().tolist() == []
    for text in [" ", "   ", "\t\n", " \u3000 "]:
        expected = hf_tokenizer.encode(text, add_special_tokens=False).ids
        assert roberta_tokenizer(text).numpy().tolist() == expected


def test_invalid_utf8_bytes_are_single_byte_tokens(roberta_tokenizer):
    """A cp1252 byte (not UTF-8) becomes the token of its own byte symbol, like punctuation."""
    ids = roberta_tokenizer(b"caf\xe9 au lait").numpy().tolist()
    e9 = roberta_tokenizer.token_to_id(byte_symbols.byte_to_symbol()[0xE9])
    caf = roberta_tokenizer("caf").numpy().tolist()
    assert ids[: len(caf) + 1] == caf + [e9]
    assert token_bytes(roberta_tokenizer, ids) == b"caf\xe9 au lait"


def test_rt_polarity_cp1252_lines(roberta_tokenizer, hf_tokenizer):
    """Every raw line tokenizes losslessly; lines that happen to be valid UTF-8 match tokenizers."""
    raw_lines = shared_path("rt-polarity", "rt-polarity.neg").read_bytes().split(b"\n")[:3000]
    got = []
    for start in range(0, len(raw_lines), 500):
        got.extend(roberta_tokenizer(tf.constant(raw_lines[start : start + 500])).to_list())
    invalid = 0
    for raw, ids in zip(raw_lines, got):
        assert token_bytes(roberta_tokenizer, ids) == raw
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            invalid += 1
            continue
        assert ids == hf_tokenizer.encode(text, add_special_tokens=False).ids
    assert invalid > 10  # the file really has cp1252 bytes


def test_one_megabyte_strings_finish(roberta_tokenizer):
    rng = np.random.default_rng(0)
    letters = bytes(rng.integers(ord("a"), ord("z") + 1, 1 << 20).astype(np.uint8))
    words = b"hello world " * ((1 << 20) // 12)
    for text in [letters, words, b"a" * (1 << 20), b"\xff" * (1 << 20)]:
        start = time.time()
        ids = roberta_tokenizer(text).numpy().tolist()
        assert token_bytes(roberta_tokenizer, ids) == text
        assert time.time() - start < 120, "a 1 MB text must not hang the tokenizer"


def test_long_words_are_merged_in_chunks(roberta_tokenizer):
    """Words over max_word_bytes (4096) are merged per chunk: ids stay lossless and defined."""
    word = b"ab" * 5000
    ids = roberta_tokenizer(word).numpy().tolist()
    assert token_bytes(roberta_tokenizer, ids) == word
    first_chunk = roberta_tokenizer(word[:4096]).numpy().tolist()
    assert ids[: len(first_chunk)] == first_chunk


def test_batches_of_zero_one_and_many(roberta_tokenizer):
    empty = roberta_tokenizer(tf.constant([], tf.string))
    assert empty.shape[0] == 0 and empty.flat_values.shape[0] == 0
    assert roberta_tokenizer([]).shape[0] == 0
    many = ["a sentence number %d" % i for i in range(20_000)]
    ids = roberta_tokenizer(many)
    assert ids.shape[0] == 20_000 and ids[12_345].numpy().tolist() == roberta_tokenizer(many[12_345]).numpy().tolist()
    assert roberta_tokenizer([""] * 5).to_list() == [[]] * 5


@pytest.mark.parametrize(
    "bad, message",
    [
        (tf.constant([1, 2, 3]), "dtype tf.string"),
        (np.array([1.5]), "dtype tf.string"),
        (tf.constant([["a", "b"]]), "rank 0 or 1"),
        (tf.ragged.constant([["a"], ["b", "c"]]), "RaggedTensor"),
        (object(), "strings"),
    ],
)
def test_wrong_dtype_or_rank_is_a_clear_error(roberta_tokenizer, bad, message):
    with pytest.raises(ValueError, match=message):
        roberta_tokenizer(bad)


def test_detokenize_replaces_invalid_bytes_and_unknown_ids(roberta_tokenizer):
    assert roberta_tokenizer.detokenize(roberta_tokenizer(["caf\u00e9 \U0001F600"])).numpy().tolist() == [
        "caf\u00e9 \U0001F600".encode()
    ]
    assert roberta_tokenizer.detokenize(roberta_tokenizer(b"caf\xe9")).numpy() == "caf\ufffd".encode()
    assert roberta_tokenizer.detokenize([0, 31414, 99_999_999, -5, 2]).numpy() == "<s>Hello\ufffd\ufffd</s>".encode()
    with pytest.raises(ValueError, match="integer ids"):
        roberta_tokenizer.detokenize(tf.constant([1.0]))


def test_long_texts_in_tflite_equal_tf(roberta_tokenizer, tflite_tokenize):
    """Long single texts switch the TFLite merge loop to its compacting driver: same ids."""
    rng = np.random.default_rng(1)
    cases = [
        b"hello world " * ((1 << 20) // 12),
        b"\xff" * (1 << 20),
        bytes(rng.integers(ord("a"), ord("z") + 1, 1 << 14).astype(np.uint8)),
        "".join(rng.choice(list("ab cd,éü日本😀'"), 30_000)).encode("utf-8"),
    ]
    for text in cases:
        assert tflite_tokenize(text) == roberta_tokenizer(text).numpy().tolist()
