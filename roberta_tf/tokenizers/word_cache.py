"""A static whole-word cache: short words whose BPE is one vocabulary token skip the merge loop.

Most words of real text (" the", " movie", "ing") are a single token. Their BPE result is
precomputed once, with the merge loop itself, for every vocabulary token of 2..7 bytes that
merges back into exactly itself; at tokenization time such words are found by exact key
lookup (length and bytes packed into one int64 key, found in a two-table cuckoo hash: two
FLOOR_MOD + GATHER probes, at most one of which can hold the key) and
enter the merge loop already merged, so they leave it after its first pass. Exact by
construction: the cached value is what the merge loop returns for those bytes.

It does not cache multi-token words or words over 7 bytes: those merge as usual.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from roberta_tf.tokenizers import bpe, byte_symbols

MAX_CACHED_WORD_BYTES = 7  # length (3 bits) + 7 bytes (56 bits) fit one int64 key


_EMPTY = -1  # key of an empty slot (real keys are positive)


@dataclasses.dataclass(frozen=True)
class WordCache:
    """Cuckoo tables: key k lives at `keys[k % modulus[0]]` or `keys[modulus[0] + k % modulus[1]]`."""

    keys: np.ndarray  # int64 [modulus[0] + modulus[1]], _EMPTY where free
    symbols: np.ndarray  # int32, the one symbol each key's word merges into
    moduli: tuple


def _cuckoo(keys, values, moduli, max_kicks=500):
    """Places every key in one of its two slots, or returns None if the moduli do not work."""
    table_keys = np.full(moduli[0] + moduli[1], _EMPTY, np.int64)
    table_values = np.zeros(moduli[0] + moduli[1], np.int32)

    def slot(key, side):
        return key % moduli[0] if side == 0 else moduli[0] + key % moduli[1]

    for key, value in zip(keys, values):
        side = 0
        for _ in range(max_kicks):
            s = slot(key, side)
            if table_keys[s] == _EMPTY:
                table_keys[s], table_values[s] = key, value
                break
            # Evict the occupant and move it to its other table.
            table_keys[s], key = key, int(table_keys[s])
            table_values[s], value = value, int(table_values[s])
            side = 1 if s < moduli[0] else 0
        else:
            return None
    return table_keys, table_values


def pack_key(word_bytes):
    """The int64 key of a byte string of 1..MAX_CACHED_WORD_BYTES bytes (numpy side)."""
    key = len(word_bytes) << 56
    for k, b in enumerate(word_bytes):
        key += b << (8 * (MAX_CACHED_WORD_BYTES - 1 - k))
    return key


def build_word_cache(bpe_vocabulary, tables):
    """Runs every short vocabulary token through the merge loop; keeps the one-token results.

    Args:
        bpe_vocabulary: the `BpeVocabulary`.
        tables: the `BpeTensors` the tokenizer merges with.
    """
    candidates = []
    for token, token_id in bpe_vocabulary.vocabulary.items():
        raw = byte_symbols.token_to_bytes(token)
        if raw is not None and 2 <= len(raw) <= MAX_CACHED_WORD_BYTES:
            candidates.append((raw, token_id))
    if not candidates:
        return WordCache(np.full([2], _EMPTY, np.int64), np.zeros([2], np.int32), (1, 1))
    byte_symbol_ids = tables.byte_symbol_ids.numpy()
    symbols = np.concatenate([byte_symbol_ids[np.frombuffer(raw, np.uint8)] for raw, _ in candidates])
    word_ids = np.repeat(np.arange(len(candidates)), [len(raw) for raw, _ in candidates]).astype(np.int32)
    merged, source = bpe.merge_words(
        tf.constant(symbols, tf.int32), tf.constant(word_ids), tf.constant(len(candidates)), tables
    )
    merged_word = word_ids[source.numpy()]
    count = np.bincount(merged_word, minlength=len(candidates))
    result = np.full(len(candidates), -1, np.int64)
    result[merged_word] = merged.numpy()
    keys, values = [], []
    for i, (raw, token_id) in enumerate(candidates):
        if count[i] == 1 and result[i] == token_id:
            keys.append(pack_key(raw))
            values.append(token_id)
    # Tables a little over twice the key count keep cuckoo insertion short; retry other
    # primes in the (unseen) case that one pair of moduli cycles.
    for first in _primes_from(int(1.1 * len(keys)) + 3):
        second = next(_primes_from(first + 1000))
        tables = _cuckoo(keys, values, (first, second))
        if tables is not None:
            return WordCache(tables[0], tables[1], (first, second))
    raise AssertionError("unreachable")


def _primes_from(start):
    n = max(start, 2)
    while True:
        if all(n % d for d in range(2, int(n**0.5) + 1)):
            yield n
        n += 1


def lookup_words(byte_values, word_first, word_length, cache_keys, cache_symbols, moduli):
    """Cached symbol of each word, or -1.

    Args:
        byte_values: int32 [n] bytes of all words, words contiguous.
        word_first: int32 [num_words] position of each word's first byte.
        word_length: int32 [num_words] bytes per word.
        cache_keys, cache_symbols, moduli: a `WordCache` (arrays as tensors).
    """
    offsets = tf.range(MAX_CACHED_WORD_BYTES)
    padded = tf.concat([byte_values, tf.zeros([MAX_CACHED_WORD_BYTES], tf.int32)], 0)
    window = tf.gather(padded, word_first[:, tf.newaxis] + offsets)  # [num_words, 7]
    window = tf.where(offsets < word_length[:, tf.newaxis], window, 0)
    weights = tf.constant([1 << (8 * (MAX_CACHED_WORD_BYTES - 1 - k)) for k in range(MAX_CACHED_WORD_BYTES)], tf.int64)
    key = tf.reduce_sum(tf.cast(window, tf.int64) * weights, axis=1) + tf.cast(word_length, tf.int64) * (1 << 56)
    slot_a = tf.cast(tf.math.floormod(key, moduli[0]), tf.int32)
    slot_b = tf.cast(tf.math.floormod(key, moduli[1]), tf.int32) + moduli[0]
    in_a = tf.equal(tf.gather(cache_keys, slot_a), key)
    in_b = tf.equal(tf.gather(cache_keys, slot_b), key)
    cacheable = (word_length >= 2) & (word_length <= MAX_CACHED_WORD_BYTES)
    symbol = tf.where(in_a, tf.gather(cache_symbols, slot_a), tf.gather(cache_symbols, slot_b))
    return tf.where(cacheable & (in_a | in_b), symbol, -1)
