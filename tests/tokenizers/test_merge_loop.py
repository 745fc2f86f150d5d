"""The merge loop's two drivers and the whole-word cache give identical ids."""

import numpy as np
import tensorflow as tf

import corpora
from roberta_tf.tokenizers import bpe, strings, word_cache


def test_compacting_and_in_place_drivers_agree(roberta_tokenizer):
    texts = corpora.fuzz(count=2000, seed=7) + corpora.sst2_dev()[:300] + ["aaaaaaaa", "x x x", ""]
    byte_values, text_ids, num_texts = strings.strings_to_bytes(tf.constant(texts))
    tables = roberta_tokenizer.byte_level_bpe.tables
    symbols = tf.gather(tables.byte_symbol_ids, byte_values)
    word_ids = text_ids  # whole texts as words: long words, many passes
    compact = bpe.merge_words(symbols, word_ids, num_texts, tables, compact=True)
    in_place = bpe.merge_words(symbols, word_ids, num_texts, tables, compact=False)
    np.testing.assert_array_equal(compact[0].numpy(), in_place[0].numpy())
    # `source` may differ (any position inside the word); the words must agree.
    np.testing.assert_array_equal(tf.gather(word_ids, compact[1]).numpy(), tf.gather(word_ids, in_place[1]).numpy())


def test_single_text_path_equals_batch_path(roberta_tokenizer):
    texts = corpora.fuzz(count=300, seed=8) + ["it's", "", "  x  "]
    batch = roberta_tokenizer(texts).to_list()
    for text, expected in zip(texts, batch):
        utf8 = tf.constant(list(text.encode("utf-8")), tf.int32)
        assert roberta_tokenizer.byte_level_bpe.tokenize_text_bytes(utf8).numpy().tolist() == expected


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
