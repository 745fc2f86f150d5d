"""Edits SentencePiece precompiled charsmaps (the blob `sentencepiece_model.decode_charsmap`
reads), TF-free.

Used where a Hugging Face tokenizer.json's pipeline is a charsmap followed by a rule the
charsmap can absorb exactly (`hf_unigram.py`: WhitespaceSplit, i.e. every Unicode whitespace
character is a word break). The blob stays in the format SentencePiece, `tokenizers`'
Precompiled normalizer and roberta_tf all read: a little-endian uint32 trie size, a
Darts-clone double array of that many bytes, then the NUL-terminated replacement strings.

The array is edited rather than rebuilt (a plain trie of nmt_nfkc's 225k rules takes seconds
in Python and 8x the bytes of SentencePiece's DAWG):
- replacements: every value unit (bit 31) holds a position in the string pool; a changed
  string is appended to the pool and its value units are pointed at it. Units that share a
  value share its string, so the change applies to every rule with that string, as meant.
- new rules: Darts-clone's DAWG shares nodes between keys, so a node on a new key's path
  may belong to other keys too. The path is copied instead (copy on write): each node from
  the root to the new key's end gets a copy, with the new child added, in a fresh 256-unit
  block at the end of the array (base a multiple of 256, so `base ^ byte` stays inside the
  block and no other node's unit can be hit); the root pointer (unit 0) moves to the root's
  copy. Old nodes stay as they were, still reached by every other key.
Lookup (Darts-clone's): node `n` reaches its child by byte `c` through unit `n ^ c`, whose
label is `c`, whose offset leads to the child `(n ^ c) ^ offset`, and whose `has_leaf` bit
says the child's unit `child ^ 0` is a value unit.
"""

import struct

import numpy as np

from roberta_tf.tokenizers import sentencepiece_model

# Rust's `char::is_whitespace` (the White_Space property), what `tokenizers`' WhitespaceSplit
# splits at: Python's `str.isspace` adds U+001C-U+001F, which are not White_Space.
UNICODE_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
)
_OFFSET_LIMIT = 1 << 21  # offsets below this need no extension bit; larger arrays are refused
_HAS_LEAF = 1 << 8
_IS_LEAF = 1 << 31
_BLOCK = 256


def with_whitespace_as_space(precompiled_charsmap, source="precompiled charsmap"):
    """A charsmap that normalizes as `precompiled_charsmap` does and then turns every Unicode
    whitespace character of the result into U+0020: each replacement has its whitespace
    replaced, and each whitespace character that is not a rule's whole input gets a rule of
    its own (`" "`). Exact under SentencePiece's leftmost-longest matching: a new rule is one
    character, where before no rule matched or a longer one did (which still wins).

    An empty charsmap (the identity normalizer) gives a charsmap of just those rules.

    Raises:
        ValueError: the charsmap does not decode, or would outgrow Darts-clone's offsets.
    """
    charsmap = _Charsmap.read(precompiled_charsmap, source)
    charsmap.map_replacements(_spaces_for_whitespace)
    for character in sorted(UNICODE_WHITESPACE - {" "}):
        key = character.encode("utf-8")
        if not charsmap.has_rule(key):
            charsmap.add_rule(key, b" ")
    return charsmap.serialize(source)


def _spaces_for_whitespace(value):
    text = value.decode("utf-8", "surrogateescape")
    return "".join(" " if c in UNICODE_WHITESPACE else c for c in text).encode("utf-8", "surrogateescape")


class _Charsmap:
    """A charsmap's units (a Python list, edited in place) and string pool."""

    def __init__(self, units, pool):
        self.units = units
        self.pool = bytearray(pool)
        self._strings = {}  # replacement -> pool position, for strings appended here

    @classmethod
    def read(cls, blob, source):
        """Decoded in full first, so every unit reachable from the root is known to be in range
        before the array is walked and edited."""
        if not blob:  # identity: a root with no children and a non-matching unit 0 ^ 0 (see _write_node)
            return cls([_BLOCK << 10] + [0] * (_BLOCK - 1) + [_IS_LEAF] + [0] * (_BLOCK - 1), b"")
        decoded = sentencepiece_model.decode_charsmap(blob, source)
        return cls(decoded.units.tolist(), decoded.pool)

    def string(self, position):
        end = self.pool.find(b"\0", position)
        return bytes(self.pool[position : len(self.pool) if end < 0 else end])

    def position_of(self, value):
        if value not in self._strings:
            self._strings[value] = len(self.pool)
            self.pool += value + b"\0"
        return self._strings[value]

    def map_replacements(self, change):
        """Every value unit's string through `change` (a changed string is appended)."""
        units = np.array(self.units, np.int64)
        leaf_units = np.flatnonzero(units & _IS_LEAF)
        positions = units[leaf_units] & (_IS_LEAF - 1)
        for position in np.unique(positions).tolist():
            old = self.string(position)
            new = change(old)
            if new != old:
                new_unit = _IS_LEAF | self.position_of(new)
                for index in leaf_units[positions == position].tolist():
                    self.units[index] = new_unit

    # --- nodes: {byte: (child base, has value)} plus the node's own value unit ------------

    def root(self):
        return _offset(self.units[0])

    def children(self, base):
        found = {}
        for label in range(1, 256):
            slot = base ^ label
            if slot < len(self.units):
                unit = self.units[slot]
                if not unit & _IS_LEAF and unit & 0xFF == label:
                    found[label] = (slot ^ _offset(unit), bool(unit & _HAS_LEAF))
        return found

    def has_rule(self, key):
        """Whether `key` is a rule's whole input (Darts-clone's exact match)."""
        base, has_value = self.root(), False
        for label in key:
            child = self.children(base).get(label)
            if child is None:
                return False
            base, has_value = child
        return has_value

    def add_rule(self, key, value):
        """Copies the path of `key` from the root (see the module docstring) with `key`'s
        value set; the root pointer moves to the copy."""
        new_root = self._copy_with(self.root(), False, key, self.position_of(value))
        self.units[0] = new_root << 10

    def _copy_with(self, base, has_value, rest, value_position):
        """A copy of the node at `base` (None: a new node; `has_value`: its parent's unit
        says it has a value) with `rest` inserted below it; returns the copy's base."""
        children = {} if base is None else self.children(base)
        own_value = self.units[base] if has_value else None
        if rest:
            label = rest[0]
            child_base, child_has_value = children.get(label, (None, False))
            new_child = self._copy_with(child_base, child_has_value, rest[1:], value_position)
            children[label] = (new_child, child_has_value or len(rest) == 1)
        else:
            own_value = _IS_LEAF | value_position
        return self._write_node(children, own_value)

    def _write_node(self, children, own_value):
        base = -(-len(self.units) // _BLOCK) * _BLOCK
        self.units.extend([0] * (base + _BLOCK - len(self.units)))
        # Unit `base ^ 0` is the value, or else a filler that no byte can match: SentencePiece's
        # lookup is given the input's length and walks NUL bytes too, and an all-zero unit has
        # label 0, so it would let a NUL pass through this node. A value unit never matches
        # (bit 31 is part of its label), and without `has_leaf` above it is never read.
        self.units[base] = _IS_LEAF if own_value is None else own_value
        for label, (child_base, has_value) in children.items():
            self.units[base ^ label] = label | (_HAS_LEAF if has_value else 0) | ((base ^ label ^ child_base) << 10)
        return base

    def serialize(self, source):
        if len(self.units) >= _OFFSET_LIMIT:
            raise ValueError(f"{source}: the charsmap would need {len(self.units)} units; at most {_OFFSET_LIMIT}")
        array = struct.pack(f"<{len(self.units)}I", *self.units)
        return struct.pack("<I", len(array)) + array + bytes(self.pool)


def _offset(unit):
    return (unit >> 10) << ((unit & (1 << 9)) >> 6)
