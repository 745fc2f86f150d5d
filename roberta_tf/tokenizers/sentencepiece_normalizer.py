"""SentencePiece's `Normalizer::Normalize` on integer tensors: UTF-8 bytes in, the normalized
UTF-8 bytes SentencePiece segments out.

The rules, as `src/normalizer.cc` applies them (read there; restated so the code can be
checked against them):
1. The text is consumed left to right, one *prefix* at a time (`NormalizePrefix`): the
   longest user-defined piece starting here, copied unchanged (the model's prefix matcher
   wins over the charsmap whatever the lengths); else the longest charsmap rule starting
   here, replaced by its string (possibly empty, possibly several characters); else one
   well-formed UTF-8 character, copied; else one byte, replaced by U+FFFD. Darts-clone's
   prefix search keeps only its first 32 results (64 for the user-defined pieces), so
   longer keys past that many shorter ones never apply; this is kept.
2. With `remove_extra_whitespaces`, a prefix's leading spaces are dropped while the last
   non-empty output before it ended with a space (or nothing was output yet); so leading
   and repeated spaces go, spaces inside a rule's replacement stay.
3. With `escape_whitespaces`, every output space becomes U+2581 (`▁`).
4. `add_dummy_prefix` puts one `▁` (a space if not escaping) before a non-empty text's
   output; with `treat_whitespace_as_suffix` it goes after it instead.
5. With `remove_extra_whitespaces`, trailing `▁` (a space if not escaping) are removed from
   the output, before any suffix: the dummy prefix and a `▁` typed in the text included.
   Empty texts, and texts whose every prefix is a single space, give empty output.

Odd input, as SentencePiece does it (checked against the `sentencepiece` package, which
accepts bytes too): a byte that does not start a well-formed UTF-8 sequence (SentencePiece's
`DecodeUTF8`: Unicode's Table 3-7, so no overlongs, surrogates or code points past
U+10FFFF) becomes U+FFFD and consumes that one byte only, so each stray continuation byte
gives its own U+FFFD. NUL is an ordinary character: copied, never part of a charsmap key
(Darts-clone keys cannot hold it; a NUL byte never continues a charsmap match, which is
what the arrays Darts-clone builds give). Tabs, newlines and other controls are whatever
the charsmap makes of them (nmt_nfkc: spaces, so they collapse and trim like spaces;
BPEmb's older nfkc map and the identity normalizer: copied).

How, on tensors (TFLite builtins only; tables built once in numpy):
- Matching: the model's own Darts-clone double array is walked for every byte position at
  once, one byte per `tf.while_loop` pass (child unit = node XOR byte, then a label check),
  so a position's longest rule is found in at most "longest key" passes (10 for nmt_nfkc),
  and the loop stops when no walk is alive. User-defined pieces get a small double array
  of their own, built here, walked the same way.
- Greedy chain: each position's step (what rule 1 consumes there) gives "next position";
  the prefixes actually taken are the positions reachable from each text's first byte.
  They are marked by pointer doubling (after k rounds, the first 2^k prefixes of every
  text), so the cost is O(bytes * log(longest text)), with no per-byte loop.
- Output: every possible prefix output is an *entry* (a rule's replacement, a
  user-defined piece, the space symbol, U+FFFD, or "copy the character") with its escaped
  bytes in a constant pool, its leading-space bytes and whether it ends with a space. Rule
  2 needs only "did the last non-empty prefix end with a space", found with one cumsum and
  one gather; then one segment expansion (GATHER from pool + input) writes the bytes.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from roberta_tf.tokenizers import sentencepiece_model
from roberta_tf.tokenizers.neighbours import Neighbours

SPACE = b" "
SPACE_SYMBOL = "\u2581".encode("utf-8")  # what `escape_whitespaces` writes for a space
REPLACEMENT = "\ufffd".encode("utf-8")  # what a malformed byte becomes
CHARSMAP_RESULTS = 32  # Normalizer::kMaxTrieResultsSize
USER_DEFINED_RESULTS = 64  # PrefixMatcher's kResultSize
_PAST_END = 256  # the byte value read past a text's end: no label equals it


@dataclasses.dataclass(frozen=True)
class PrefixTrie:
    """A double array in Darts-clone's addressing: from node `n`, byte `c` leads through
    unit `n ^ c` if `labels[n ^ c] == c`, to node `next_nodes[n ^ c]` (-1: no children);
    `items[n ^ c]` >= 0 when a key ends there (which key: an entry index)."""

    labels: np.ndarray  # int32 [units]; -1 where no byte leads
    next_nodes: np.ndarray  # int32 [units]
    items: np.ndarray  # int32 [units]
    root: int
    max_depth: int  # longest key, in bytes
    max_results: int  # prefix-search results kept (longer keys past that many never match)


@dataclasses.dataclass(frozen=True)
class Entries:
    """What each possible prefix outputs (see the module docstring)."""

    pool: bytes  # escaped output bytes of every entry, one after another
    offsets: np.ndarray  # int32 [entries] start in `pool`
    lengths: np.ndarray  # int32 [entries] bytes written
    strip: np.ndarray  # int32 [entries] bytes of leading (escaped) spaces
    ends_with_space: np.ndarray  # bool [entries]
    is_one_space: np.ndarray  # bool [entries] the output is exactly one space (before escaping)


class _EntryBuilder:
    def __init__(self, escape):
        self.escape = escape
        self.pool = bytearray()
        self.rows = []
        self._index = {}

    def add(self, output):
        """Entry index of an output string (one entry per distinct string)."""
        if output not in self._index:
            escaped = output.replace(SPACE, SPACE_SYMBOL) if self.escape else output
            leading = len(output) - len(output.lstrip(SPACE))
            unit = len(SPACE_SYMBOL) if self.escape else 1
            self._index[output] = len(self.rows)
            self.rows.append((len(self.pool), len(escaped), leading * unit, output.endswith(SPACE), output == SPACE))
            self.pool += escaped
        return self._index[output]

    def build(self):
        columns = list(zip(*self.rows))
        return Entries(
            bytes(self.pool),
            *(np.array(c, np.int32) for c in columns[:3]),
            *(np.array(c, bool) for c in columns[3:]),
        )


def charsmap_trie(charsmap, entry_of_value):
    """The charsmap's own double array as a `PrefixTrie` (`decode_charsmap` output).

    `entry_of_value`: {pool offset: entry index} for every rule value.
    """
    units = charsmap.units
    labels = sentencepiece_model.unit_label(units)
    labels = np.where(labels == 0, -1, labels)  # NUL never continues a match (module docstring)
    next_nodes = np.arange(len(units), dtype=np.int64) ^ sentencepiece_model.unit_offset(units)
    items = np.full(len(units), -1, np.int64)
    leaf = np.flatnonzero(((units & (1 << 8)) != 0) & (labels >= 0) & (next_nodes < len(units)))
    values = units[next_nodes[leaf]] & ((1 << 31) - 1)
    known = np.isin(values, np.fromiter(entry_of_value, np.int64, len(entry_of_value)))
    items[leaf[known]] = [entry_of_value[int(v)] for v in values[known]]
    # Units no walk from the root reaches are never read with a matching label, so their
    # items do not matter; `next_nodes` past the array simply fail the bounds check.
    next_nodes = np.where(next_nodes < 2**31 - 1, next_nodes, -1)
    max_depth = max((len(k) for k in charsmap.keys), default=0)
    return PrefixTrie(labels.astype(np.int32), next_nodes.astype(np.int32), items.astype(np.int32),
                      charsmap.root, max_depth, CHARSMAP_RESULTS)


def keys_trie(keys, items, max_results):
    """A `PrefixTrie` of byte-string keys (non-empty, distinct), each ending at its item.

    First-fit placement: each node gets the lowest unused base whose child units are free.
    """
    children, ends = [{}], [-1]
    for key, item in zip(keys, items):
        node = 0
        for byte in key:
            if byte not in children[node]:
                children[node][byte] = len(children)
                children.append({})
                ends.append(-1)
            node = children[node][byte]
        ends[node] = item
    bases = np.full(len(children), -1, np.int64)
    capacity = 1024
    occupied = np.zeros(capacity, bool)
    used_bases = set()
    low = 1
    for node, kids in enumerate(children):  # parents before children (creation order)
        if not kids:
            continue
        labels = np.array(sorted(kids), np.int64)
        base = low
        while True:
            candidates = np.arange(base, base + 256)
            slots = candidates[:, None] ^ labels[None, :]
            if slots.max() >= capacity:
                occupied = np.r_[occupied, np.zeros(capacity, bool)]
                capacity *= 2
                continue
            fits = ~occupied[slots].any(axis=1) & ~np.isin(candidates, list(used_bases))
            if fits.any():
                base = int(candidates[np.argmax(fits)])
                break
            base += 256
        bases[node] = base
        used_bases.add(base)
        occupied[base ^ labels] = True
        while low < capacity and occupied[low]:
            low += 1
    size = int(max(bases.max(), 0)) + 256
    unit_labels = np.full(size, -1, np.int32)
    next_nodes = np.full(size, -1, np.int32)
    unit_items = np.full(size, -1, np.int32)
    for node, kids in enumerate(children):
        for byte, child in kids.items():
            unit = bases[node] ^ byte
            unit_labels[unit], next_nodes[unit], unit_items[unit] = byte, bases[child], ends[child]
    max_depth = max((len(k) for k in keys), default=0)
    return PrefixTrie(unit_labels, next_nodes, unit_items, int(bases[0]), max_depth, max_results)


class SentencePieceNormalizer:
    """A model's `NormalizerSpec` applied to UTF-8 bytes, exactly as SentencePiece does.

    Args:
        spec: a `sentencepiece_model.NormalizerSpec`.
        user_defined_pieces: the model's USER_DEFINED pieces (bytes or str): matched on the
            raw text first and passed through unnormalized. Read up to a NUL, as
            SentencePiece's prefix matcher reads them.
        treat_whitespace_as_suffix: the model's trainer flag (the dummy `▁` goes last).
    """

    def __init__(self, spec, user_defined_pieces=(), treat_whitespace_as_suffix=False):
        self.spec = spec
        self.treat_whitespace_as_suffix = bool(treat_whitespace_as_suffix)
        self._space_unit = SPACE_SYMBOL if spec.escape_whitespaces else SPACE
        builder = _EntryBuilder(spec.escape_whitespaces)
        self._space_entry = builder.add(SPACE)
        self._replacement_entry = builder.add(REPLACEMENT)
        self._copy_entry = len(builder.rows)  # "copy the character": not in the pool
        builder.rows.append((0, 0, 0, False, False))

        self.charsmap = None
        if spec.precompiled_charsmap:
            charsmap = sentencepiece_model.decode_charsmap(spec.precompiled_charsmap, f"normalizer {spec.name!r}")
            if charsmap.keys:
                entry_of_value = {int(v): builder.add(charsmap.replacement(int(v))) for v in np.unique(charsmap.values)}
                self.charsmap = charsmap_trie(charsmap, entry_of_value)

        pieces = set()
        for piece in user_defined_pieces:
            raw = piece.encode("utf-8") if isinstance(piece, str) else bytes(piece)
            raw = raw.split(b"\0", 1)[0]
            if raw:
                pieces.add(raw)
        pieces = sorted(pieces)
        self.user_defined = None
        if pieces:
            self.user_defined = keys_trie(pieces, [builder.add(p) for p in pieces], USER_DEFINED_RESULTS)

        # Keys made of whole UTF-8 characters (always, in real models) let the matcher and
        # the chain skip the bytes inside characters; anything else falls back to bytes.
        keys = list(pieces) + (list(charsmap.keys) if self.charsmap is not None else [])
        self._unit_aligned = all(_is_utf8(k) for k in keys)
        self.entries = builder.build()
        self._tensors = {
            "pool": tf.constant(np.frombuffer(self.entries.pool, np.uint8).astype(np.int32)),
            "offsets": tf.constant(self.entries.offsets),
            "lengths": tf.constant(self.entries.lengths),
            "strip": tf.constant(self.entries.strip),
            "ends_with_space": tf.constant(self.entries.ends_with_space),
            "is_one_space": tf.constant(self.entries.is_one_space),
        }
        self._tries = [
            (trie, tuple(tf.constant(a) for a in (trie.labels, trie.next_nodes, trie.items)))
            for trie in (self.user_defined, self.charsmap)
            if trie is not None
        ]

    def normalize_bytes(self, byte_values, text_ids, num_texts):
        """Normalizes a batch of texts given as flat bytes.

        Args:
            byte_values: int32 [num_bytes], values 0..255.
            text_ids: int32 [num_bytes] non-decreasing text index of each byte (< num_texts),
                or None for one text (the TFLite model's path).
            num_texts: int32 scalar (1 when `text_ids` is None).

        Returns:
            normalized: int32 [num_normalized_bytes], the texts' outputs one after another.
            normalized_text_ids: int32, the text of each output byte (None for one text).
        """
        byte_values = tf.convert_to_tensor(byte_values, tf.int32)
        single = text_ids is None
        size = tf.size(byte_values)
        if single:
            text_ids, num_texts = tf.zeros([size], tf.int32), tf.constant(1)
        text_ids = tf.convert_to_tensor(text_ids, tf.int32)
        num_texts = tf.convert_to_tensor(num_texts, tf.int32)
        neighbours = Neighbours(None if single else text_ids, size)

        positions, entry, step, natural = self._prefixes(byte_values, None if single else text_ids, neighbours)
        texts = tf.gather(text_ids, positions)
        taken = tf.cast(tf.reshape(tf.where(_taken(positions, step, natural, texts, num_texts, size)), [-1]), tf.int32)
        positions, entry, step, texts = (tf.gather(x, taken) for x in (positions, entry, step, texts))
        segments = self._segments(positions, entry, step, texts, num_texts)
        normalized, normalized_text_ids = _expand(tf.concat([self._tensors["pool"], byte_values], 0), *segments)
        if self.spec.remove_extra_whitespaces:
            normalized, normalized_text_ids = self._trim_trailing_spaces(normalized, normalized_text_ids, num_texts)
        if self.treat_whitespace_as_suffix and self.spec.add_dummy_prefix:
            normalized, normalized_text_ids = self._append_suffix(normalized, normalized_text_ids, num_texts, entry, texts)
        return normalized, (None if single else normalized_text_ids)

    def _prefixes(self, byte_values, text_ids, neighbours):
        """Where a prefix can start, and what rule 1 outputs and consumes there.

        Returns, per candidate start (increasing positions): positions, entry, step (bytes
        consumed) and natural step (one UTF-8 unit: the character, or 1 malformed byte).
        With unit-aligned keys the candidates are the UTF-8 unit starts (no prefix taken
        from a text's first byte can end inside a unit, see `_taken`); else every byte.
        """
        char_length = _utf8_lengths(byte_values, neighbours)
        if self._unit_aligned:
            # A byte inside a well-formed sequence that starts 1, 2 or 3 bytes earlier.
            inside = (
                (neighbours.shift(char_length, -1, 0) >= 2)
                | (neighbours.shift(char_length, -2, 0) >= 3)
                | (neighbours.shift(char_length, -3, 0) >= 4)
            )
            positions = tf.cast(tf.reshape(tf.where(tf.logical_not(inside)), [-1]), tf.int32)
            char_length = tf.gather(char_length, positions)
            natural = tf.maximum(char_length, 1)
        else:
            positions = tf.range(tf.size(byte_values))
            natural = tf.ones_like(positions)
        entry = tf.where(
            char_length > 0,
            tf.where(tf.equal(tf.gather(byte_values, positions), 32), self._space_entry, self._copy_entry),
            self._replacement_entry,
        )
        step = tf.maximum(char_length, 1)
        # The charsmap, then the user-defined pieces (which win), override the default.
        for trie, tensors in reversed(self._tries):
            length, item = _longest_matches(trie, tensors, byte_values, text_ids, positions)
            entry = tf.where(length > 0, item, entry)
            step = tf.where(length > 0, length, step)
        return positions, entry, step, natural

    def _segments(self, starts, entry, step, texts, num_texts):
        """(source offsets, lengths, text ids) of the output pieces, in order: per text the
        dummy prefix slot, then one segment per prefix taken (at `starts`, with its entry,
        step and text). Sources index pool + input."""
        t = self._tensors
        is_copy = tf.equal(entry, self._copy_entry)
        pool_size = tf.size(t["pool"])
        source = tf.where(is_copy, pool_size + starts, tf.gather(t["offsets"], entry))
        length = tf.where(is_copy, step, tf.gather(t["lengths"], entry))
        if self.spec.remove_extra_whitespaces:
            strip = tf.where(_after_space(length, tf.gather(t["ends_with_space"], entry), texts), tf.gather(t["strip"], entry), 0)
            source, length = source + strip, length - strip

        # One dummy slot per text, before its prefixes (empty where the text is).
        count = tf.math.unsorted_segment_sum(tf.ones_like(texts), texts, num_texts)
        dummy_length = len(self._space_unit) if self.spec.add_dummy_prefix and not self.treat_whitespace_as_suffix else 0
        dummy_lengths = tf.where(count > 0, dummy_length, 0)
        dummy_slot = tf.cumsum(count, exclusive=True) + tf.range(num_texts)
        prefix_slot = tf.range(tf.size(starts)) + texts + 1
        total = tf.size(starts) + num_texts
        space_offset = self.entries.offsets[self._space_entry]

        def place(at_dummies, at_prefixes):
            return tf.math.unsorted_segment_sum(
                tf.concat([at_dummies, at_prefixes], 0), tf.concat([dummy_slot, prefix_slot], 0), total
            )

        return (
            place(tf.fill([num_texts], space_offset), source),
            place(dummy_lengths, length),
            place(tf.range(num_texts), texts),
        )

    def _trim_trailing_spaces(self, normalized, text_ids, num_texts):
        """Rule 5: drop each text's trailing space units (`▁`, or a space if not escaping)."""
        unit = len(self._space_unit)
        size = tf.size(normalized)
        position = tf.range(size)
        count = tf.math.unsorted_segment_sum(tf.ones_like(text_ids), text_ids, num_texts)
        text_end = tf.cumsum(count)
        text_start = text_end - count
        to_end = tf.gather(text_end, text_ids) - position
        padded = tf.concat([normalized, tf.fill([unit], -1)], 0)
        is_unit = tf.ones([size], tf.bool)
        for k, byte in enumerate(self._space_unit):
            is_unit &= tf.equal(padded[k : k + size], byte)
        # Units are read backwards from the end: the last one that is not a space unit ends
        # the kept part; if all are, the kept part is the leftover (< unit) bytes at the start.
        blocking = tf.equal(to_end % unit, 0) & (to_end >= unit) & tf.logical_not(is_unit)
        cut = tf.math.unsorted_segment_max(tf.where(blocking, position + unit, -1), text_ids, num_texts)
        cut = tf.maximum(cut, text_start + count % unit)
        kept = tf.reshape(tf.where(position < tf.gather(cut, text_ids)), [-1])
        return tf.gather(normalized, kept), tf.gather(text_ids, kept)

    def _append_suffix(self, normalized, text_ids, num_texts, prefix_entries, prefix_texts):
        """Rule 4 with `treat_whitespace_as_suffix`: a space unit after each non-empty text,
        unless every prefix of the text was a single space (SentencePiece returns early)."""
        not_one_space = tf.logical_not(tf.gather(self._tensors["is_one_space"], prefix_entries))
        if not self.spec.remove_extra_whitespaces:
            not_one_space = tf.ones_like(not_one_space)
        wanted = tf.math.unsorted_segment_max(tf.cast(not_one_space, tf.int32), prefix_texts, num_texts) > 0
        count = tf.math.unsorted_segment_sum(tf.ones_like(text_ids), text_ids, num_texts)
        text_start = tf.cumsum(count, exclusive=True)
        unit = len(self._space_unit)
        pool_size = tf.size(self._tensors["pool"])
        space_offset = self.entries.offsets[self._space_entry]
        # Per text: its kept bytes (from the input part of the source), then the suffix.
        texts = tf.range(num_texts)
        source = tf.stack([pool_size + text_start, tf.fill([num_texts], space_offset)], 1)
        lengths = tf.stack([count, tf.where(wanted, unit, 0)], 1)
        return _expand(
            tf.concat([self._tensors["pool"], normalized], 0),
            tf.reshape(source, [-1]),
            tf.reshape(lengths, [-1]),
            tf.reshape(tf.stack([texts, texts], 1), [-1]),
        )


def _is_utf8(raw):
    try:
        raw.decode("utf-8")  # strict: Table 3-7, as SentencePiece's DecodeUTF8
    except UnicodeDecodeError:
        return False
    return True


def _after_space(length, ends_with_space, texts):
    """bool [m]: whether each prefix follows a space (rule 2), i.e. the last earlier
    non-empty output of its text ended with a space, or there is none yet."""
    nonempty = length > 0
    # Index of the k-th non-empty prefix at k + 1 (slot 0: a stand-in for "none yet").
    nonempty_index = tf.concat([[0], tf.cast(tf.reshape(tf.where(nonempty), [-1]), tf.int32)], 0)
    before = tf.cumsum(tf.cast(nonempty, tf.int32), exclusive=True)  # non-empty prefixes before
    previous = tf.gather(nonempty_index, before)
    has_previous = (before > 0) & tf.equal(tf.gather(texts, previous), texts)
    return tf.logical_not(has_previous) | tf.gather(ends_with_space, previous)


def _utf8_lengths(byte_values, neighbours):
    """Length of the well-formed UTF-8 sequence starting at each byte, 0 where none does
    (SentencePiece's `DecodeUTF8`: Unicode Table 3-7)."""
    lead, low, high = [0] * 256, [0x80] * 256, [0xBF] * 256
    for b in range(0x80):
        lead[b] = 1
    for first, last, length in ((0xC2, 0xDF, 2), (0xE0, 0xEF, 3), (0xF0, 0xF4, 4)):
        for b in range(first, last + 1):
            lead[b] = length
    low[0xE0], high[0xED], low[0xF0], high[0xF4] = 0xA0, 0x9F, 0x90, 0x8F  # overlongs, surrogates, > U+10FFFF
    length = tf.gather(tf.constant(lead, tf.int32), byte_values)
    b1, b2, b3 = (neighbours.shift(byte_values, k, -1) for k in (1, 2, 3))
    second_ok = (b1 >= tf.gather(tf.constant(low, tf.int32), byte_values)) & (
        b1 <= tf.gather(tf.constant(high, tf.int32), byte_values)
    )

    def continuation(x):
        return (x >= 0x80) & (x <= 0xBF)

    ok = (length == 1) | ((length >= 2) & second_ok & ((length < 3) | continuation(b2)) & ((length < 4) | continuation(b3)))
    return tf.where(ok, length, 0)


def _longest_matches(trie, tensors, byte_values, text_ids, starts):
    """(length, item) of the longest key of `trie` at each of `starts` (length 0: none),
    among the first `trie.max_results` keys that prefix the text there.

    One pass per byte of depth; walks that fall off the trie leave the working set, so a
    pass costs what is still alive (on most text, nothing after a pass or two).
    """
    labels, next_nodes, items = tensors
    units = tf.size(labels)
    count = tf.size(starts)
    padded = tf.concat([byte_values, tf.fill([trie.max_depth], _PAST_END)], 0)
    if text_ids is not None:
        padded_texts = tf.concat([text_ids, tf.fill([trie.max_depth], -1)], 0)
        start_texts = tf.gather(text_ids, starts)

    def walk(depth, walks, nodes, hits, best_length, best_item, found):
        at = tf.gather(starts, walks) + depth
        byte = tf.gather(padded, at)
        if text_ids is not None:
            byte = tf.where(tf.equal(tf.gather(padded_texts, at), tf.gather(start_texts, walks)), byte, _PAST_END)
        unit = tf.bitwise.bitwise_xor(nodes, byte)
        inside = unit < units
        unit = tf.where(inside, unit, 0)
        matched = inside & tf.equal(tf.gather(labels, unit), byte)
        item = tf.where(matched, tf.gather(items, unit), -1)
        hits += tf.cast(item >= 0, tf.int32)
        counted = (item >= 0) & (hits <= trie.max_results)
        best_length = tf.where(counted, depth + 1, best_length)
        best_item = tf.where(counted, item, best_item)
        nodes = tf.where(matched, tf.gather(next_nodes, unit), -1)
        alive = nodes >= 0
        ended = tf.reshape(tf.where(tf.logical_not(alive) & (best_length > 0)), [-1])
        found = [tf.concat([f, tf.gather(x, ended)], 0) for f, x in zip(found, (walks, best_length, best_item))]
        kept = tf.reshape(tf.where(alive), [-1])
        return (depth + 1, *(tf.gather(x, kept) for x in (walks, nodes, hits, best_length, best_item)), found)

    empty = tf.zeros([0], tf.int32)
    _, walks, _, _, best_length, best_item, found = tf.while_loop(
        lambda depth, walks, *_: (depth < trie.max_depth) & (tf.size(walks) > 0),
        walk,
        (tf.constant(0), tf.range(count), tf.fill([count], trie.root), *(tf.zeros([count], tf.int32),) * 3, [empty] * 3),
        shape_invariants=(tf.TensorShape([]), *(tf.TensorShape([None]),) * 5, [tf.TensorShape([None])] * 3),
    )
    # Walks still alive at the last depth keep their best too (each walk reports once).
    walks, lengths, found_items = (tf.concat([f, x], 0) for f, x in zip(found, (walks, best_length, best_item)))
    length = tf.maximum(tf.math.unsorted_segment_max(lengths, walks, count), 0)
    item = tf.maximum(tf.math.unsorted_segment_max(tf.where(lengths > 0, found_items, -1), walks, count), -1)
    return length, item


def _taken(positions, step, natural, texts, num_texts, size):
    """bool [k]: which candidate starts the greedy chain takes (rule 1, left to right from
    each text's first byte). `positions` are the candidates (increasing; each text's first
    byte among them), and every prefix ends on a candidate or at its text's end.

    Between "long" prefixes (those consuming more than their natural unit) the chain just
    takes every unit. So only the long ones need resolving: from a taken long prefix the
    chain goes on, unit by unit, to the first long one at or after its end, and each text's
    first long one is taken. Those jumps are resolved by pointer doubling (after j rounds,
    the first 2^j long prefixes of each text are marked) in O(k + long * log(long)); then a
    candidate is taken unless a taken long prefix covers it.
    """
    count = tf.size(positions)
    # Candidate index of each byte position (exact at candidates; `size` -> count).
    is_candidate = tf.math.unsorted_segment_sum(tf.ones_like(positions), positions, size)
    index_at = tf.concat([tf.cumsum(is_candidate, exclusive=True), [count]], 0)
    after = tf.gather(index_at, positions + step)  # candidate where the chain goes next

    is_long = tf.not_equal(step, natural)
    longs = tf.cast(tf.reshape(tf.where(is_long), [-1]), tf.int32)
    long_count = tf.size(longs)
    longs_before = tf.concat([tf.cumsum(tf.cast(is_long, tf.int32), exclusive=True), [long_count]], 0)
    jump = tf.concat([tf.gather(longs_before, tf.gather(after, longs)), [long_count]], 0)  # sink last
    long_texts = tf.gather(texts, longs)
    first = tf.not_equal(long_texts, tf.concat([[-1], long_texts[:-1]], 0))
    marks = tf.cast(tf.concat([first, [False]], 0), tf.int32)
    per_text = tf.math.unsorted_segment_sum(tf.ones_like(long_texts), long_texts, num_texts)
    most = tf.reduce_max(tf.concat([per_text, [0]], 0))

    def double(span, jump, marks):
        marks = tf.maximum(marks, tf.math.unsorted_segment_max(marks, jump, long_count + 1))
        return span * 2, tf.gather(jump, jump), marks

    _, _, marks = tf.while_loop(lambda span, *_: span < most, double, (tf.constant(1), jump, marks))
    taken_longs = tf.gather(longs, tf.reshape(tf.where(marks[:long_count] > 0), [-1]))
    # +1 after each taken long prefix's start, -1 where it ends: a positive sum is covered.
    ones = tf.ones_like(taken_longs)
    cover = tf.math.unsorted_segment_sum(
        tf.concat([ones, -ones], 0), tf.concat([taken_longs + 1, tf.gather(after, taken_longs)], 0), count + 1
    )
    return tf.equal(tf.cumsum(cover)[:count], 0)


def _expand(source, offsets, lengths, segment_texts):
    """Concatenates source[offsets[k] : offsets[k] + lengths[k]] over k, with each output
    byte's `segment_texts` entry: (bytes, text ids)."""
    starts = tf.cumsum(lengths, exclusive=True)
    total = tf.reduce_sum(lengths)
    nonempty = tf.cast(tf.reshape(tf.where(lengths > 0), [-1]), tf.int32)
    # Mark where each non-empty segment starts; a cumsum then names each byte's segment.
    marks = tf.math.unsorted_segment_sum(tf.ones_like(nonempty), tf.gather(starts, nonempty), total)
    segment = tf.gather(nonempty, tf.cumsum(marks) - 1)
    index = tf.gather(offsets, segment) + tf.range(total) - tf.gather(starts, segment)
    return tf.gather(source, index), tf.gather(segment_texts, segment)
