"""Which vocabulary piece each substring of a text is: an exact character trie in two gathers a step.

The unigram lattice needs, for every character position of a text and every length
1..`max_piece_chars`, the id of the piece spelled by those characters, or -1. The pieces are
stored as a trie over Unicode code points, built once in numpy: node 0 is the empty string,
and each (parent node, code point) edge leads to the node of the longer prefix, which holds
the id of the piece it spells (or -1 when that prefix is not itself a piece). An edge's key is
the pair itself, an exact integer, so a lookup cannot give a false hit: a substring maps to a
piece only if every character matched an edge, i.e. it IS that piece. The edges live in a
two-table cuckoo hash (as in `word_cache.py`): each step is FLOOR_MOD, MUL, ADD, two GATHERs
per table and an EQUAL on the stored key, all TFLite builtins; no hash-table op.

The lookup walks the trie from every character at once, one character per step, keeping
only the walks still inside the trie (most leave it after a few characters), so its work
is at most O(characters x max_piece_chars) and nothing is quadratic. It works on code points, not
bytes: for valid UTF-8 (what the normalizer emits) a piece matches bytes exactly when it
matches the code points, and characters are where the segmenter starts and ends pieces.
Bytes that are not valid UTF-8 (never produced by the normalizer) are characters of their own
that no piece contains.

It does not choose which pieces go in (the segmenter passes the lattice pieces) nor score them.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from roberta_tf.tokenizers import utf8
from roberta_tf.tokenizers.neighbours import Neighbours

NO_PIECE = -1
NO_NODE = -1
# Code point of a unit no piece contains (an invalid byte) and of "past the text's end": one
# above U+10FFFF, so it is never a trie edge.
NO_CHARACTER = 0x110000
_ROOT = 0
_KEY_RADIX = NO_CHARACTER + 1  # code points 0..NO_CHARACTER are digits of the edge key
_PRIME = 2**31 - 1
_HASH_ATTEMPTS = 20


@dataclasses.dataclass(frozen=True)
class PieceTrie:
    """A code-point trie in cuckoo tables.

    The edge (parent, code point) is stored at one of `slots(parent, code_point, hashing)`.
    """

    edge_parents: np.ndarray  # int32 [size], NO_NODE in free slots
    edge_code_points: np.ndarray  # int32 [size]
    edge_children: np.ndarray  # int32 [size]
    node_pieces: np.ndarray  # int32 [num_nodes], the piece id a node spells, or NO_PIECE
    hashing: tuple  # (size_a, size_b, multiplier_a, multiplier_b), see `slots`
    max_piece_chars: int  # the longest piece, in characters


def slots(parent, code_point, hashing):
    """The two candidate slots of an edge (int64 numpy arrays or int64 tensors alike).

    `hashing` = (size_a, size_b, multiplier_a, multiplier_b). The edge's exact key
    `parent * 0x110001 + code_point` (below 2^52) is reduced modulo the prime 2^31 - 1 and
    multiplied by each multiplier modulo that prime (a universal hash family; products stay
    below 2^62, so int64 is exact), then folded into each table.
    """
    size_a, size_b, multiplier_a, multiplier_b = hashing
    key = (parent * _KEY_RADIX + code_point) % _PRIME
    slot_a = (key * multiplier_a) % _PRIME % size_a
    slot_b = size_a + (key * multiplier_b) % _PRIME % size_b
    return slot_a, slot_b


def _decode_piece(piece):
    """Code points of a piece (bytes), or None if it is not valid UTF-8 (such a piece can never
    match characters of a valid text, so it is left out)."""
    try:
        return [ord(c) for c in piece.decode("utf-8")]
    except UnicodeDecodeError:
        return None


def _trie_edges(pieces, piece_ids):
    """Edges {(parent, code point): child} and each node's piece id."""
    edges = {}
    node_pieces = [NO_PIECE]
    max_chars = 0
    for piece, piece_id in zip(pieces, piece_ids):
        code_points = _decode_piece(piece)
        if not code_points:
            continue
        node = _ROOT
        for code_point in code_points:
            child = edges.get((node, code_point))
            if child is None:
                child = edges[(node, code_point)] = len(node_pieces)
                node_pieces.append(NO_PIECE)
            node = child
        if node_pieces[node] != NO_PIECE:
            raise ValueError(f"Piece {piece!r} appears twice (ids {node_pieces[node]} and {piece_id}).")
        node_pieces[node] = int(piece_id)
        max_chars = max(max_chars, len(code_points))
    return edges, np.array(node_pieces, np.int32), max_chars


def _cuckoo(parents, code_points, children, hashing, max_kicks=500):
    """Places every edge in one of its two slots; None if this hashing cycles."""
    size = hashing[0] + hashing[1]
    table_parent = np.full(size, NO_NODE, np.int64)
    table_code_point = np.zeros(size, np.int64)
    table_child = np.zeros(size, np.int64)
    slot_a, slot_b = slots(parents, code_points, hashing)
    slot_a, slot_b = slot_a.tolist(), slot_b.tolist()
    owner = [-1] * size  # which edge sits in each slot
    for edge in range(len(parents)):
        slot = slot_a[edge]
        for _ in range(max_kicks):
            if owner[slot] < 0:
                owner[slot] = edge
                break
            owner[slot], edge = edge, owner[slot]  # evict; the evicted edge tries its other slot
            slot = slot_b[edge] if slot == slot_a[edge] else slot_a[edge]
        else:
            return None
    placed = np.array([s for s in range(size) if owner[s] >= 0], np.int64)
    edge_of_slot = np.array([owner[s] for s in placed], np.int64)
    table_parent[placed] = parents[edge_of_slot]
    table_code_point[placed] = code_points[edge_of_slot]
    table_child[placed] = children[edge_of_slot]
    return table_parent.astype(np.int32), table_code_point.astype(np.int32), table_child.astype(np.int32)


def build_piece_trie(pieces, piece_ids):
    """The trie of `pieces` (UTF-8 bytes each) holding `piece_ids`.

    Raises ValueError if a piece appears twice. Pieces that are empty or not valid UTF-8 are
    left out (they can never match characters of a text).
    """
    edges, node_pieces, max_chars = _trie_edges(pieces, piece_ids)
    keys = np.array(list(edges.keys()), np.int64).reshape(-1, 2)
    children = np.array(list(edges.values()), np.int64)
    # Two-choice cuckoo hashing needs a load below one half: each table a little larger than
    # the edge count (load about 0.45) keeps insertion short. Other multipliers are drawn in
    # the (unseen) case that one pair cycles.
    size = int(1.1 * len(keys)) + 3
    multipliers = np.random.RandomState(0).randint(1, _PRIME, size=(_HASH_ATTEMPTS, 2))
    for multiplier_a, multiplier_b in multipliers.tolist():
        hashing = (size, size, multiplier_a, multiplier_b)
        placed = _cuckoo(keys[:, 0], keys[:, 1], children, hashing)
        if placed is not None:
            return PieceTrie(*placed, node_pieces, hashing, max_chars)
    raise AssertionError(f"no cuckoo placement in {_HASH_ATTEMPTS} hash functions (never seen)")


@dataclasses.dataclass(frozen=True)
class Characters:
    """The characters of a flat byte stream (texts one after another)."""

    byte_starts: tf.Tensor  # int32 [num_chars], position of each character's first byte
    byte_lengths: tf.Tensor  # int32 [num_chars], 1..4
    code_points: tf.Tensor  # int32 [num_chars], NO_CHARACTER for an invalid byte
    text_ids: tf.Tensor  # int32 [num_chars], or None for one text


def characters(byte_values, text_ids):
    """Splits int32 bytes into characters (`utf8.decode_units`); text_ids None = one text."""
    num_bytes = tf.size(byte_values)
    unit_start, code_points = utf8.decode_units(byte_values, Neighbours(text_ids, num_bytes))
    byte_starts = tf.cast(tf.reshape(tf.where(unit_start), [-1]), tf.int32)
    byte_ends = tf.concat([byte_starts[1:], tf.reshape(num_bytes, [1])], 0)
    unit_code_points = tf.gather(code_points, byte_starts)
    unit_code_points = tf.where(unit_code_points < 0, NO_CHARACTER, unit_code_points)
    char_text_ids = None if text_ids is None else tf.gather(text_ids, byte_starts)
    return Characters(byte_starts, byte_ends - byte_starts, unit_code_points, char_text_ids)


class PieceLookup:
    """Piece ids of every substring of up to `max_piece_chars` characters.

    Args:
        pieces: the vocabulary's pieces (UTF-8 bytes), to be found in texts.
        piece_ids: the id to report for each.
    """

    def __init__(self, pieces, piece_ids):
        self.trie = build_piece_trie(pieces, piece_ids)
        self.max_piece_chars = max(self.trie.max_piece_chars, 1)
        self._edge_parents = tf.constant(self.trie.edge_parents)
        self._edge_code_points = tf.constant(self.trie.edge_code_points)
        self._edge_children = tf.constant(self.trie.edge_children)
        # Row 0 answers the dead node NO_NODE (gathered at index NO_NODE + 1).
        self._node_pieces = tf.constant(np.concatenate([[NO_PIECE], self.trie.node_pieces]).astype(np.int32))

    def _child(self, nodes, code_points):
        """The node one edge down from each node (NO_NODE if there is no such edge or node)."""
        parent, code_point = tf.cast(tf.maximum(nodes, 0), tf.int64), tf.cast(code_points, tf.int64)
        slot_a, slot_b = (tf.cast(s, tf.int32) for s in slots(parent, code_point, self.trie.hashing))

        def child_at(slot):
            stored = tf.equal(tf.gather(self._edge_parents, slot), nodes)
            stored &= tf.equal(tf.gather(self._edge_code_points, slot), code_points)
            return stored, tf.gather(self._edge_children, slot)

        in_a, child_a = child_at(slot_a)
        in_b, child_b = child_at(slot_b)
        child = tf.where(in_a, child_a, tf.where(in_b, child_b, NO_NODE))
        return tf.where(nodes >= 0, child, NO_NODE)  # a dead walk stays dead

    def lookup(self, code_points, text_ids=None):
        """Piece id of the `length` characters starting at each character, for each length.

        Args:
            code_points: int32 [num_chars], characters of the texts one after another
                (NO_CHARACTER for a character no piece may contain).
            text_ids: int32 [num_chars], each character's text (walks never cross a text's
                end), or None for one text.

        Returns:
            int32 [num_chars, max_piece_chars]: column `length - 1` holds the id of the piece
            spelled by characters [i, i + length) of i's text, or NO_PIECE.
        """
        num_chars = tf.size(code_points)
        walk_start = tf.range(num_chars)  # the walks still in the trie, by start character
        nodes = tf.zeros_like(code_points)  # every walk starts at the root
        columns = []
        for offset in range(self.max_piece_chars):
            nodes = self._child(nodes, self._character_at(code_points, text_ids, walk_start, offset))
            found = tf.gather(self._node_pieces, nodes + 1)
            # Walks that left the trie are dropped, so the rows not written read NO_PIECE.
            column = tf.scatter_nd(walk_start[:, tf.newaxis], found - NO_PIECE, tf.reshape(num_chars, [1])) + NO_PIECE
            columns.append(column)
            alive = tf.reshape(tf.where(nodes >= 0), [-1])
            walk_start, nodes = tf.gather(walk_start, alive), tf.gather(nodes, alive)
        return tf.stack(columns, axis=1)

    @staticmethod
    def _character_at(code_points, text_ids, walk_start, offset):
        """Code point `offset` characters after each walk's start; NO_CHARACTER past its text."""
        if offset == 0:
            return tf.gather(code_points, walk_start)
        position = walk_start + offset
        inside = position < tf.size(code_points)
        safe = tf.where(inside, position, 0)
        if text_ids is not None:
            inside &= tf.equal(tf.gather(text_ids, safe), tf.gather(text_ids, walk_start))
        return tf.where(inside, tf.gather(code_points, safe), NO_CHARACTER)
