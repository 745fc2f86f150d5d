"""The merge loop's two drivers and the whole-word cache give identical ids."""

import numpy as np
import tensorflow as tf

import corpora
from roberta_tf.tokenizers import strings, word_cache


def test_compacting_and_in_place_drivers_agree(roberta_tokenizer):
    texts = corpora.fuzz(count=2000, seed=7) + corpora.sst2_dev()[:300] + ["aaaaaaaa", "x x x", ""]
    byte_values, text_ids, num_texts = strings.strings_to_bytes(tf.constant(texts))
    bpe = roberta_tokenizer.byte_level_bpe
    compact = bpe.tokenize_bytes(byte_values, text_ids, num_texts, compact=True)
    in_place = bpe.tokenize_bytes(byte_values, text_ids, num_texts, compact=False)
    for a, b in zip(compact, in_place):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_word_cache_holds_single_token_words(roberta_tokenizer):
    bpe = roberta_tokenizer.byte_level_bpe
    keys = bpe._cache_keys.numpy()
    stored = int((keys >= 0).sum())
    assert 30_000 < stored < 50_265
    for word, token in [(b" the", "\u0120the"), (b" movie", "\u0120movie"), (b"ing", "ing")]:
        key = word_cache.pack_key(word)
        slots = [key % bpe._cache_moduli[0], bpe._cache_moduli[0] + key % bpe._cache_moduli[1]]
        hits = [s for s in slots if keys[s] == key]
        assert len(hits) == 1
        assert bpe._cache_symbols.numpy()[hits[0]] == roberta_tokenizer.token_to_id(token)
