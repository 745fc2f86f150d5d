"""The merge loop's two drivers and the whole-word cache give identical ids.

The compacting driver merges ahead (several ranks per pass, `bpe._merge_step`), the in-place
driver one rank per pass (GPT-2's order), so their agreement checks that merging ahead is exact.
"""

import random

import numpy as np
import pytest
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


# Alphabets whose texts merge in long chains, where merging ahead does the most.
CHAIN_ALPHABETS = [b"0123456789", b"abcdefghijklmnopqrstuvwxyz", b"aeiounrst", b"ab", "的是不了人我在有他这".encode(),
                   bytes(range(256)), b"=-_*#"]


@pytest.mark.parametrize("alphabet", CHAIN_ALPHABETS, ids=lambda a: repr(a[:6]))
def test_merging_ahead_equals_one_rank_per_pass(roberta_tokenizer, alphabet):
    rng = random.Random(len(alphabet))
    words = [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 300))) for _ in range(300)]
    byte_values = tf.constant([b for word in words for b in word], tf.int32)
    word_ids = tf.constant([i for i, word in enumerate(words) for _ in word], tf.int32)
    tables = roberta_tokenizer.byte_level_bpe.tables
    symbols = tf.gather(tables.byte_symbol_ids, byte_values)
    ahead, _ = bpe.merge_words(symbols, word_ids, len(words), tables, compact=True)
    one_rank, _ = bpe.merge_words(symbols, word_ids, len(words), tables, compact=False)
    np.testing.assert_array_equal(ahead.numpy(), one_rank.numpy())


def test_single_text_path_equals_batch_path(roberta_tokenizer):
    texts = corpora.fuzz(count=300, seed=8) + ["it's", "", "  x  "]
    batch = roberta_tokenizer(texts).to_list()
    for text, expected in zip(texts, batch):
        utf8 = tf.constant(list(text.encode("utf-8")), tf.int32)
        assert roberta_tokenizer.byte_level_bpe.tokenize_text_bytes(utf8).numpy().tolist() == expected


def test_word_cache_holds_single_token_words(roberta_tokenizer):
    cache = roberta_tokenizer.byte_level_bpe.word_cache
    stored = int((cache.keys_hi >= 0).sum())
    assert 40_000 < stored < 50_265  # most of the vocabulary is 2..14-byte single-token words
    words = [(b" the", "\u0120the"), (b" movie", "\u0120movie"), (b"ing", "ing"), (b" charming", "\u0120charming"),
             (b" relationships", "\u0120relationships")]
    for word, token in words:
        key = word_cache.pack_key(word)
        hits = [s for s in word_cache.slots(*key, cache.moduli) if (cache.keys_hi[s], cache.keys_lo[s]) == key]
        assert len(hits) == 1, word
        assert cache.symbols[hits[0]] == roberta_tokenizer.token_to_id(token)
    # Words of 15+ bytes are never looked up; they merge in the loop.
    assert word_cache.MAX_CACHED_WORD_BYTES == 14
