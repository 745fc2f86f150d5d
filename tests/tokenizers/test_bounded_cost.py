"""Adversarial text (issue 11): long words whose merge chains used to cost tens of seconds.

Two exact mechanisms bound the work, and these tests hold them to the reference:
- final boundaries split long words into pieces that merge independently (ids equal Hugging
  Face `tokenizers` on long random words, which chunking at 4,096 bytes used to change);
- `max_tokens` (what a packer with a sequence length asks for) skips the pieces that cannot
  reach a text's first `max_tokens` ids: those ids stay exact.
"""

import random
import string

import numpy as np
import pytest
import tensorflow as tf

ALPHABETS = {
    "lowercase": string.ascii_lowercase,
    "mixed case": string.ascii_letters,
    "digits": string.digits,
    "letters and digits": string.ascii_letters + string.digits,
    "punctuation": string.punctuation,
    "accented": "àéîõüßçñÀÉ",
}


def _random(alphabet, size, seed):
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(size))


@pytest.mark.parametrize("name", ALPHABETS)
def test_long_random_words_equal_tokenizers(roberta_tokenizer, hf_tokenizer, name):
    # One word longer than 4,096 bytes. Digits have no final boundary (every digit pair is a
    # merge's junction), so a digit run over 4,096 bytes is still merged in chunks
    # (`test_bad_input.py`): it is tested just under that length.
    text = _random(ALPHABETS[name], 4_000 if name == "digits" else 12_000, seed=len(name))
    hf_tokenizer.encode_special_tokens = True
    try:
        expected = hf_tokenizer.encode(text, add_special_tokens=False).ids
    finally:
        hf_tokenizer.encode_special_tokens = False
    assert roberta_tokenizer(text).numpy().tolist() == expected


def _adversarial_batch():
    rng = random.Random(7)
    words = " ".join(_random(string.ascii_lowercase, rng.randint(1, 9), seed=i) for i in range(3000))
    return [
        _random(string.ascii_lowercase, 20_000, 1),
        _random(string.digits, 9_000, 2),
        _random(string.ascii_letters, 20_000, 3),
        "的" * 3000,
        words,
        "A short, ordinary sentence.",
        "",
        "word " * 900,
        "x" * 10_000,
    ]


@pytest.mark.parametrize("max_tokens", [1, 7, 126, 510])
def test_max_tokens_keeps_the_first_ids_exact(roberta_tokenizer, max_tokens):
    texts = _adversarial_batch()
    full = roberta_tokenizer.tokenize_batch(tf.constant(texts)).to_list()
    bounded = roberta_tokenizer.tokenize(texts, max_tokens=max_tokens).to_list()
    for text, want, got in zip(texts, full, bounded):
        assert got[:max_tokens] == want[:max_tokens], text[:30]
        assert len(got) >= min(max_tokens, len(want)), text[:30]  # never short of what was asked
    assert sum(map(len, bounded)) < sum(map(len, full)) // 5  # and most pieces were skipped


def test_tflite_model_with_max_tokens_gives_the_first_ids(roberta_tokenizer, tflite_runner_factory):
    from roberta_tf.export import tflite_ops
    from roberta_tf.export.tflite_tokenizer import export_tokenizer_tflite

    model = export_tokenizer_tflite(roberta_tokenizer, max_tokens=126)
    assert tflite_ops.non_builtin_operators(model) == []
    runner = tflite_runner_factory(model)
    for text in _adversarial_batch():
        utf8 = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)
        assert runner(utf8_bytes=utf8)["token_ids"].tolist() == roberta_tokenizer(text).numpy().tolist()[:126]
