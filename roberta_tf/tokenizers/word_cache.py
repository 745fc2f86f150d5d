"""A static whole-word cache: words whose BPE is one vocabulary token skip the merge loop.

Most words of real text (" the", " movie", " charming") are a single token. Their BPE result
is precomputed once, with the merge loop itself, for every vocabulary token of 2..14 bytes
that merges back into exactly itself. At tokenization time such words are found by exact
key lookup and enter the merge loop already merged, so they leave it after its first pass
(and, in one text, no longer set the number of passes). Exact by construction: the cached
value is what the merge loop returns for those bytes.

A word's key is two int64 halves: its length and bytes 0..6, and bytes 7..13 (7 bytes, 56
bits, in each). Keys live in a two-table cuckoo hash, so a lookup is two probes of FLOOR_MOD,
ADD and GATHER, at most one of which can hold the key: TFLite builtins, no hash-table op.

It does not cache multi-token words or words over 14 bytes: those merge as usual.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from roberta_tf.tokenizers import bpe, byte_symbols

BYTES_PER_HALF = 7
MAX_CACHED_WORD_BYTES = 2 * BYTES_PER_HALF
_EMPTY = -1  # key of an empty slot (real first halves are positive: they hold the length)
_WEIGHTS = [1 << (8 * (BYTES_PER_HALF - 1 - k)) for k in range(BYTES_PER_HALF)]


@dataclasses.dataclass(frozen=True)
class WordCache:
    """Cuckoo tables: key (hi, lo) lives at `slot_a` or `slot_b` (see `slots`)."""

    keys_hi: np.ndarray  # int64 [moduli[0] + moduli[1]], _EMPTY where free
    keys_lo: np.ndarray  # int64, same layout
    symbols: np.ndarray  # int32, the one symbol each key's word merges into
    moduli: tuple


def pack_key(word_bytes):
    """The (hi, lo) int64 key of a byte string of 1..MAX_CACHED_WORD_BYTES bytes."""
    padded = list(word_bytes) + [0] * (MAX_CACHED_WORD_BYTES - len(word_bytes))
    hi = len(word_bytes) << 56
    hi += sum(b * w for b, w in zip(padded[:BYTES_PER_HALF], _WEIGHTS))
    lo = sum(b * w for b, w in zip(padded[BYTES_PER_HALF:], _WEIGHTS))
    return hi, lo


def slots(hi, lo, moduli):
    """The two candidate slots of a key; works on Python ints and on int64 tensors alike."""
    slot_a = (hi % moduli[0] + lo % moduli[0]) % moduli[0]
    slot_b = moduli[0] + (hi % moduli[1] + lo % moduli[1]) % moduli[1]
    return slot_a, slot_b


def _cuckoo(keys, values, moduli, max_kicks=500):
    """Places every key in one of its two slots, or returns None if the moduli do not work."""
    size = moduli[0] + moduli[1]
    table_keys = [None] * size
    table_values = [0] * size
    for key, value in zip(keys, values):
        slot = slots(*key, moduli)[0]
        for _ in range(max_kicks):
            if table_keys[slot] is None:
                table_keys[slot], table_values[slot] = key, value
                break
            # Evict the occupant and send it to its other slot.
            table_keys[slot], key = key, table_keys[slot]
            table_values[slot], value = value, table_values[slot]
            slot_a, slot_b = slots(*key, moduli)
            slot = slot_b if slot == slot_a else slot_a
        else:
            return None
    hi = np.array([_EMPTY if k is None else k[0] for k in table_keys], np.int64)
    lo = np.array([_EMPTY if k is None else k[1] for k in table_keys], np.int64)
    return hi, lo, np.array(table_values, np.int32)


def _single_token_words(bpe_vocabulary, tables):
    """(bytes, token id) of every 2..14-byte vocabulary token that merges into itself alone."""
    candidates = []
    for token, token_id in bpe_vocabulary.vocabulary.items():
        raw = byte_symbols.token_to_bytes(token)
        if raw is not None and 2 <= len(raw) <= MAX_CACHED_WORD_BYTES:
            candidates.append((raw, token_id))
    if not candidates:
        return []
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
    return [(raw, token_id) for i, (raw, token_id) in enumerate(candidates) if count[i] == 1 and result[i] == token_id]


def build_word_cache(bpe_vocabulary, tables):
    """Runs every short vocabulary token through the merge loop; caches the one-token results.

    Args:
        bpe_vocabulary: the `BpeVocabulary`.
        tables: the `BpeTensors` the tokenizer merges with.
    """
    words = _single_token_words(bpe_vocabulary, tables)
    keys = [pack_key(raw) for raw, _ in words]
    values = [token_id for _, token_id in words]
    # Two tables a little larger than the key count keep cuckoo insertion short; other
    # primes are tried in the (unseen) case that one pair of moduli cycles.
    for first in _primes_from(int(1.1 * len(keys)) + 3):
        second = next(_primes_from(first + 1000))
        placed = _cuckoo(keys, values, (first, second))
        if placed is not None:
            return WordCache(*placed, (first, second))
    raise AssertionError("unreachable: some pair of primes always works")


def _primes_from(start):
    n = max(start, 2)
    while True:
        if all(n % d for d in range(2, int(n**0.5) + 1)):
            yield n
        n += 1


def lookup_words(byte_values, word_first, word_length, cache_tensors, moduli):
    """Cached symbol of each word, or -1.

    Args:
        byte_values: int32 [n] bytes of all words, words contiguous.
        word_first: int32 [num_words] position of each word's first byte.
        word_length: int32 [num_words] bytes per word.
        cache_tensors: (keys_hi, keys_lo, symbols) of a `WordCache` as tensors.
        moduli: the `WordCache`'s moduli.
    """
    keys_hi, keys_lo, symbols = cache_tensors
    offsets = tf.range(MAX_CACHED_WORD_BYTES)
    padded = tf.concat([byte_values, tf.zeros([MAX_CACHED_WORD_BYTES], tf.int32)], 0)
    window = tf.gather(padded, word_first[:, tf.newaxis] + offsets)  # [num_words, 14]
    window = tf.cast(tf.where(offsets < word_length[:, tf.newaxis], window, 0), tf.int64)
    weights = tf.constant(_WEIGHTS, tf.int64)
    hi = tf.reduce_sum(window[:, :BYTES_PER_HALF] * weights, axis=1) + tf.cast(word_length, tf.int64) * (1 << 56)
    lo = tf.reduce_sum(window[:, BYTES_PER_HALF:] * weights, axis=1)
    slot_a, slot_b = (tf.cast(s, tf.int32) for s in slots(hi, lo, moduli))

    def holds(slot):
        return tf.equal(tf.gather(keys_hi, slot), hi) & tf.equal(tf.gather(keys_lo, slot), lo)

    in_a, in_b = holds(slot_a), holds(slot_b)
    cacheable = (word_length >= 2) & (word_length <= MAX_CACHED_WORD_BYTES)
    symbol = tf.where(in_a, tf.gather(symbols, slot_a), tf.gather(symbols, slot_b))
    return tf.where(cacheable & (in_a | in_b), symbol, -1)
