"""A safe, TensorFlow-free reader of SentencePiece `ModelProto` files.

The protobuf wire format is parsed by hand (field numbers from SentencePiece's
`src/sentencepiece_model.proto`), because `sentencepiece_model_pb2` needs a newer protobuf
runtime than TensorFlow allows, and because a model file is untrusted input: every length is
checked against the bytes that remain, nesting is bounded, and anything malformed raises a
`ValueError` that names the source. Nothing here allocates more than the input's size or
loops longer than its length.

What is read, and the checks SentencePiece itself makes when it loads a model
(`ModelInterface::InitializePieces`, `ModelFactory::Create`), so a model SentencePiece
refuses is refused here too:
- pieces (piece bytes, score, type); no empty piece; no piece twice among the
  NORMAL/USER_DEFINED/UNUSED pieces, nor twice among the others (one string may appear once
  in each group, as in SentencePiece); exactly one UNKNOWN piece; BYTE pieces spelled
  `<0xHH>` and only with `byte_fallback`, which then needs all 256 of them;
- `trainer_spec`: model type (unigram and BPE; WORD and CHAR models are refused: XLM-R-style
  tokenizers never use them), `byte_fallback`, `treat_whitespace_as_suffix`, and the
  unk/bos/eos/pad piece strings, from which the ids follow exactly as
  `SentencePieceProcessor::bos_id()` etc. compute them (the id of that piece if it is a
  CONTROL piece, else -1; `unk_id` is the UNKNOWN piece's id);
- `normalizer_spec` and `denormalizer_spec` (None when absent), with the proto defaults
  (`add_dummy_prefix`, `remove_extra_whitespaces`, `escape_whitespaces` all true).

Protobuf semantics kept: fields may come in any order; a repeated singular scalar keeps its
last value; a singular message field given several times is the merge of its occurrences
(parsed as their concatenation); unknown fields of every wire type (groups included) are
skipped. Stricter than protobuf, on purpose: a known field with the wrong wire type and an
enum value outside the proto's enum are errors rather than silently ignored, since either
means the file is not the model it claims to be.

`charsmap_rules` decodes a precompiled charsmap (the normalizer's rules) into a plain
{input bytes: replacement bytes} dict; see its docstring.
"""

import dataclasses
import enum
import os
import struct

import numpy as np

MAX_MODEL_BYTES = 2**31 - 1  # protobuf's own limit on a serialized message
_MAX_NESTING = 64  # groups inside groups; real files have none
_VARINT, _FIXED64, _LENGTH_DELIMITED, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5
_WIRE_TYPE_NAMES = {0: "varint", 1: "fixed64", 2: "length-delimited", 3: "group", 4: "end-group", 5: "fixed32"}

MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}
SUPPORTED_MODEL_TYPES = ("unigram", "bpe")


class PieceType(enum.IntEnum):
    """`ModelProto.SentencePiece.Type`."""

    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


# Pieces of these types share one piece -> id map in SentencePiece; the others share another.
_NORMAL_GROUP = (PieceType.NORMAL, PieceType.USER_DEFINED, PieceType.UNUSED)


@dataclasses.dataclass(frozen=True)
class NormalizerSpec:
    """`NormalizerSpec`: the charsmap (empty = identity) and the whitespace options."""

    name: str
    precompiled_charsmap: bytes
    add_dummy_prefix: bool
    remove_extra_whitespaces: bool
    escape_whitespaces: bool


@dataclasses.dataclass(frozen=True)
class SentencePieceModel:
    """What the tokenizer needs from a `ModelProto` (see the module docstring)."""

    pieces: tuple  # bytes (UTF-8) of each piece, index = SentencePiece id
    scores: np.ndarray  # float32 [n]
    types: np.ndarray  # int32 [n], PieceType values
    model_type: str  # "unigram" | "bpe"
    unk_id: int
    bos_id: int
    eos_id: int
    pad_id: int  # -1 where absent
    byte_fallback: bool
    treat_whitespace_as_suffix: bool
    normalizer: NormalizerSpec
    denormalizer: "NormalizerSpec | None"
    serialized: bytes  # the ModelProto as read (kept so exports can ship it unchanged)

    def __repr__(self):  # the default would print every piece
        return f"SentencePieceModel({self.model_type}, {len(self.pieces)} pieces, normalizer={self.normalizer.name!r})"


class _Reader:
    """Wire-format fields of one message held in `data` (bytes or a memoryview)."""

    def __init__(self, data, source, context):
        self.data = data
        self.source = source
        self.context = context

    def fail(self, message):
        raise ValueError(f"{self.source}: not a valid SentencePiece model ({self.context}: {message}).")

    def varint(self, position):
        data, result, shift = self.data, 0, 0
        while True:
            if position >= len(data):
                self.fail("truncated varint")
            byte = data[position]
            position += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result, position
            shift += 7
            if shift >= 70:
                self.fail("varint longer than 10 bytes")

    def fields(self):
        """Yields (field number, wire type, value): an int for varints, a memoryview for
        length-delimited fields, the raw 4 or 8 bytes for fixed32/fixed64. Groups are skipped."""
        data, position, end = self.data, 0, len(self.data)
        while position < end:
            tag = data[position]  # one-byte varints (the common case) inline: 250k pieces
            if tag < 0x80:
                position += 1
            else:
                tag, position = self.varint(position)
            number, wire_type = tag >> 3, tag & 7
            if number == 0:
                self.fail("field number 0")
            if wire_type == _VARINT:
                value, position = self.varint(position)
            elif wire_type == _LENGTH_DELIMITED:
                if position < end and data[position] < 0x80:
                    length, position = data[position], position + 1
                else:
                    length, position = self.varint(position)
                if length > end - position:
                    self.fail(f"field {number} claims {length} bytes but only {end - position} remain")
                value, position = data[position : position + length], position + length
            elif wire_type in (_FIXED32, _FIXED64):
                size = 4 if wire_type == _FIXED32 else 8
                if size > end - position:
                    self.fail(f"truncated fixed-size field {number}")
                value, position = bytes(data[position : position + size]), position + size
            elif wire_type == _START_GROUP:
                position = self._skip_group(number, position)
                continue
            else:
                self.fail(f"field {number} has invalid wire type {wire_type}")
            yield number, wire_type, value

    def _skip_group(self, group_number, position):
        """Position after the END_GROUP that closes `group_number` (nested groups allowed)."""
        open_groups = [group_number]
        data, end = self.data, len(self.data)
        while open_groups:
            if position >= end:
                self.fail(f"group {group_number} is never closed")
            tag, position = self.varint(position)
            number, wire_type = tag >> 3, tag & 7
            if wire_type == _VARINT:
                _, position = self.varint(position)
            elif wire_type == _LENGTH_DELIMITED:
                length, position = self.varint(position)
                if length > end - position:
                    self.fail(f"field {number} claims {length} bytes but only {end - position} remain")
                position += length
            elif wire_type in (_FIXED32, _FIXED64):
                position += 4 if wire_type == _FIXED32 else 8
                if position > end:
                    self.fail(f"truncated fixed-size field {number}")
            elif wire_type == _START_GROUP:
                if len(open_groups) >= _MAX_NESTING:
                    self.fail("groups nested too deeply")
                open_groups.append(number)
            elif wire_type == _END_GROUP:
                if number != open_groups.pop():
                    self.fail(f"group {group_number} closed by a mismatched end-group tag")
            else:
                self.fail(f"field {number} has invalid wire type {wire_type}")
        return position


# Per message: field number -> (name, kind). Kinds: "bytes", "string", "bool", "enum",
# "float", "message" (singular, merged), "repeated_message". Other fields are skipped.
_EXPECTED_WIRE_TYPE = {
    "bytes": _LENGTH_DELIMITED, "string": _LENGTH_DELIMITED, "message": _LENGTH_DELIMITED,
    "repeated_message": _LENGTH_DELIMITED, "bool": _VARINT, "enum": _VARINT, "float": _FIXED32,
}
_MODEL_PROTO = {1: ("pieces", "repeated_message"), 2: ("trainer_spec", "message"),
                3: ("normalizer_spec", "message"), 5: ("denormalizer_spec", "message")}
_PIECE = {1: ("piece", "bytes"), 2: ("score", "float"), 3: ("type", "enum")}
_TRAINER_SPEC = {3: ("model_type", "enum"), 24: ("treat_whitespace_as_suffix", "bool"),
                 35: ("byte_fallback", "bool"), 45: ("unk_piece", "bytes"), 46: ("bos_piece", "bytes"),
                 47: ("eos_piece", "bytes"), 48: ("pad_piece", "bytes")}
_NORMALIZER_SPEC = {1: ("name", "string"), 2: ("precompiled_charsmap", "bytes"), 3: ("add_dummy_prefix", "bool"),
                    4: ("remove_extra_whitespaces", "bool"), 5: ("escape_whitespaces", "bool")}


def _parse(data, schema, source, context):
    """{name: value} of the schema's fields present in one message (see `_Reader.fields`)."""
    reader = _Reader(data, source, context)
    values = {}
    for number, wire_type, value in reader.fields():
        if number not in schema:
            continue
        name, kind = schema[number]
        if wire_type != _EXPECTED_WIRE_TYPE[kind]:
            reader.fail(f"field {name!r} has wire type {_WIRE_TYPE_NAMES.get(wire_type, wire_type)}")
        if kind == "repeated_message":
            values.setdefault(name, []).append(value)
        elif kind == "message":
            values.setdefault(name, []).append(bytes(value))  # merged: parsed as one
        elif kind == "bool":
            values[name] = value != 0
        elif kind == "enum":
            values[name] = value - (1 << 64) if value >= 1 << 63 else value  # int32 enums: negatives use 10 bytes
        elif kind == "float":
            values[name] = value  # raw little-endian float32 bytes
        else:
            values[name] = bytes(value)
    return values


def _normalizer_spec(payloads, source, context):
    fields = _parse(b"".join(payloads), _NORMALIZER_SPEC, source, context)
    return NormalizerSpec(
        name=fields.get("name", b"").decode("utf-8", "replace"),
        precompiled_charsmap=fields.get("precompiled_charsmap", b""),
        add_dummy_prefix=fields.get("add_dummy_prefix", True),
        remove_extra_whitespaces=fields.get("remove_extra_whitespaces", True),
        escape_whitespaces=fields.get("escape_whitespaces", True),
    )


def _read_source(source):
    """(bytes, a name for messages) of a path or of serialized bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = f"serialized SentencePiece model ({len(data)} bytes)"
    elif isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        try:
            with open(name, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > MAX_MODEL_BYTES:
                    raise ValueError(f"{name}: {size} bytes is larger than any protobuf message ({MAX_MODEL_BYTES}).")
                data = f.read(MAX_MODEL_BYTES + 1)
        except OSError as error:
            raise ValueError(f"{name}: cannot read the SentencePiece model: {error.strerror or error}.") from error
    else:
        raise TypeError(f"A SentencePiece model is a path or bytes, not {type(source).__name__}.")
    if len(data) > MAX_MODEL_BYTES:
        raise ValueError(f"{name}: {len(data)} bytes is larger than any protobuf message ({MAX_MODEL_BYTES}).")
    if not data:
        raise ValueError(f"{name}: empty file, not a SentencePiece model.")
    return data, name


def _pieces(payloads, source):
    """(pieces, scores, types) of the `pieces` records, with SentencePiece's load checks."""
    pieces, raw_scores, types = [], [], []
    known_types = {int(t) for t in PieceType}
    for index, payload in enumerate(payloads):
        fields = _parse(payload, _PIECE, source, f"piece {index}")
        piece_type = fields.get("type", 1)
        if piece_type not in known_types:
            raise ValueError(f"{source}: piece {index} has unknown type {piece_type}.")
        pieces.append(fields.get("piece", b""))
        raw_scores.append(fields.get("score", b"\0\0\0\0"))
        types.append(piece_type)
    scores = np.frombuffer(b"".join(raw_scores), "<f4").astype(np.float32)
    return tuple(pieces), scores, np.array(types, np.int32)


def _check_pieces(pieces, types, byte_fallback, source):
    """SentencePiece's `InitializePieces` checks; returns the UNKNOWN piece's id."""
    if not pieces:
        raise ValueError(f"{source}: the model has no pieces.")
    normal_ids, reserved_ids, unk_ids, byte_values = {}, {}, [], set()
    normal_group = {int(t) for t in _NORMAL_GROUP}  # plain ints: enum lookups cost seconds at 250k
    unknown, byte = int(PieceType.UNKNOWN), int(PieceType.BYTE)
    for index, (piece, piece_type) in enumerate(zip(pieces, types.tolist())):
        if not piece:
            raise ValueError(f"{source}: piece {index} is empty.")
        group = normal_ids if piece_type in normal_group else reserved_ids
        if piece in group:
            raise ValueError(f"{source}: piece {piece!r} is defined twice (ids {group[piece]} and {index}).")
        group[piece] = index
        if piece_type == unknown:
            unk_ids.append(index)
        elif piece_type == byte:
            byte_values.add(_byte_piece_value(piece, index, byte_fallback, source))
    if len(unk_ids) != 1:
        raise ValueError(f"{source}: the model needs exactly one UNKNOWN piece, found {len(unk_ids)}.")
    if byte_fallback and len(byte_values) != 256:
        raise ValueError(f"{source}: byte_fallback is set but only {len(byte_values)} of the 256 byte pieces exist.")
    return unk_ids[0], normal_ids, reserved_ids


def _byte_piece_value(piece, index, byte_fallback, source):
    if not byte_fallback:
        raise ValueError(f"{source}: byte piece {piece!r} (id {index}) in a model without byte_fallback.")
    text = piece.decode("ascii", "replace")
    digits = text[3:-1]
    if not (len(text) == 6 and text.startswith("<0x") and text.endswith(">") and digits == digits.upper()):
        raise ValueError(f"{source}: byte piece {piece!r} (id {index}) is not spelled <0xHH>.")
    try:
        return int(digits, 16)
    except ValueError:
        raise ValueError(f"{source}: byte piece {piece!r} (id {index}) is not spelled <0xHH>.") from None


def _control_id(piece, normal_ids, reserved_ids, types):
    """`SentencePieceProcessor::bos_id()` and friends: PieceToId(piece) if CONTROL, else -1.
    The piece string is read up to a NUL, as SentencePiece passes it as a C string."""
    piece = piece.split(b"\0", 1)[0]
    index = reserved_ids.get(piece, normal_ids.get(piece, -1))
    return index if index >= 0 and types[index] == PieceType.CONTROL else -1


def read_model(source):
    """Reads a SentencePiece `ModelProto` from a path (str or PathLike) or serialized bytes.

    Returns:
        A `SentencePieceModel`.

    Raises:
        ValueError: unreadable, truncated, malformed or oversized input, or a model that
            SentencePiece would refuse or that is not a unigram or BPE model; the message
            names the source.
        TypeError: `source` is neither a path nor bytes.
    """
    data, name = _read_source(source)
    top = _parse(memoryview(data), _MODEL_PROTO, name, "ModelProto")
    trainer = _parse(b"".join(top.get("trainer_spec", [])), _TRAINER_SPEC, name, "trainer_spec")
    model_type_number = trainer.get("model_type", 1)
    model_type = MODEL_TYPES.get(model_type_number)
    if model_type not in SUPPORTED_MODEL_TYPES:
        what = f"a {model_type.upper()} model" if model_type else f"of unknown model type {model_type_number}"
        raise ValueError(f"{name}: the model is {what}; only unigram and BPE models are supported.")
    byte_fallback = trainer.get("byte_fallback", False)
    pieces, scores, types = _pieces(top.get("pieces", []), name)
    unk_id, normal_ids, reserved_ids = _check_pieces(pieces, types, byte_fallback, name)
    normalizer = _normalizer_spec(top.get("normalizer_spec", []), name, "normalizer_spec")
    denormalizer = None
    if "denormalizer_spec" in top:
        denormalizer = _normalizer_spec(top["denormalizer_spec"], name, "denormalizer_spec")
    for spec, field in ((normalizer, "normalizer_spec"), (denormalizer, "denormalizer_spec")):
        if spec is not None and spec.precompiled_charsmap:
            _check_charsmap_header(spec.precompiled_charsmap, f"{name}: {field}")

    def control(field, default):
        return _control_id(trainer.get(field, default), normal_ids, reserved_ids, types)

    return SentencePieceModel(
        pieces=pieces,
        scores=scores,
        types=types,
        model_type=model_type,
        unk_id=unk_id,
        bos_id=control("bos_piece", b"<s>"),
        eos_id=control("eos_piece", b"</s>"),
        pad_id=control("pad_piece", b"<pad>"),
        byte_fallback=byte_fallback,
        treat_whitespace_as_suffix=trainer.get("treat_whitespace_as_suffix", False),
        normalizer=normalizer,
        denormalizer=denormalizer,
        serialized=data,
    )


# ---------------------------------------------------------------------------------------
# Precompiled charsmap: <uint32 trie size><Darts-clone double array><normalized strings>.

_UNIT = struct.Struct("<I")
MAX_CHARSMAP_KEY_BYTES = 256  # real charsmaps: 10 (nmt_nfkc); SentencePiece's builder checks far less
MAX_CHARSMAP_RULES = 4_000_000  # real charsmaps: about 225k
_HAS_LEAF = 1 << 8
_IS_LEAF = 1 << 31


def _check_charsmap_header(blob, source):
    """(trie units as uint32, the normalized-string pool) after SentencePiece's own checks
    (`Normalizer::DecodePrecompiledCharsMap`)."""
    if len(blob) <= 4:
        raise ValueError(f"{source}: the precompiled charsmap is broken ({len(blob)} bytes).")
    (trie_size,) = _UNIT.unpack_from(blob)
    if trie_size >= len(blob):
        raise ValueError(f"{source}: the precompiled charsmap's trie ({trie_size} bytes) exceeds its blob ({len(blob)}).")
    units = np.frombuffer(blob, "<u4", count=trie_size // 4, offset=4).astype(np.int64)
    return units, blob[4 + trie_size :]


@dataclasses.dataclass(frozen=True)
class PrecompiledCharsmap:
    """A decoded precompiled charsmap (see `decode_charsmap`)."""

    units: np.ndarray  # int64 [num_units], the Darts-clone double array
    pool: bytes  # the NUL-terminated replacement strings
    root: int  # node id of the root (the first unit's offset)
    keys: tuple  # bytes of every rule's input
    values: np.ndarray  # int64 [num_rules], each rule's replacement offset in `pool`

    def replacement(self, value):
        """The pool's string at `value`: up to the next NUL, or the pool's end (where
        SentencePiece's in-memory string ends too)."""
        end = self.pool.find(b"\0", value)
        return self.pool[value : len(self.pool) if end < 0 else end]


def unit_offset(units):
    """Darts-clone's `offset()` of units (int64 numpy arrays or ints)."""
    return (units >> 10) << ((units & (1 << 9)) >> 6)


def unit_label(units):
    """Darts-clone's `label()`, with value units (bit 31 set) mapped to -1: they never match."""
    return np.where(units & _IS_LEAF, -1, units & 0xFF)


def decode_charsmap(precompiled_charsmap, source="precompiled charsmap"):
    """Decodes a SentencePiece precompiled charsmap into a `PrecompiledCharsmap`.

    The blob is a little-endian uint32 trie size, a Darts-clone double array of that many
    bytes, then a pool of NUL-terminated replacement strings. Every key of the double array
    is enumerated by walking it as Darts-clone's `commonPrefixSearch` does: from node `id`,
    byte `c` leads to unit `id ^ c` when that unit's label is `c`; the child node is
    `(id ^ c) ^ offset(unit)`; a unit with `has_leaf` ends a key, whose value (the child
    node's unit) is an offset into the pool. Keys never hold a NUL byte: Darts-clone
    reserves label 0 for value units, which carry bit 31 and so never match a byte.
    Darts-clone shares identical subtrees (it builds from a DAWG), so several keys can end
    at one node; the walk is breadth first and bounded by `MAX_CHARSMAP_KEY_BYTES` levels
    and `MAX_CHARSMAP_RULES` keys, so a hostile array cannot make it run away.

    Raises:
        ValueError: a header SentencePiece would refuse, or an array that does not decode
            (an index or value out of range, keys too long or too many).
    """
    blob = bytes(precompiled_charsmap)
    units, pool = _check_charsmap_header(blob, source)
    if not len(units):
        return PrecompiledCharsmap(units, pool, 0, (), np.zeros(0, np.int64))
    # Each unit u with a byte label c is the child of node u ^ c: group units by that parent,
    # so a level's children are found by sorted lookup instead of trying all 255 bytes.
    labels = unit_label(units)
    labelled = np.flatnonzero(labels > 0)
    parents = labelled ^ labels[labelled]
    order = np.argsort(parents, kind="stable")
    sorted_parents, sorted_units = parents[order], labelled[order]
    root = int(unit_offset(units[0]))
    nodes = np.array([root], np.int64)
    levels = []  # per depth: (parent index in the previous level, byte)
    keys, values = [], []
    total = 0
    while len(nodes):
        if len(levels) >= MAX_CHARSMAP_KEY_BYTES:
            raise ValueError(f"{source}: the precompiled charsmap has keys longer than {MAX_CHARSMAP_KEY_BYTES} bytes.")
        first = np.searchsorted(sorted_parents, nodes, "left")
        counts = np.searchsorted(sorted_parents, nodes, "right") - first
        if counts.sum() > MAX_CHARSMAP_RULES:  # every path of a real trie ends in a key
            raise ValueError(f"{source}: the precompiled charsmap has more than {MAX_CHARSMAP_RULES} rules.")
        parent = np.repeat(np.arange(len(nodes)), counts)
        child_units = sorted_units[np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())]
        levels.append((parent, labels[child_units].astype(np.uint8)))
        nodes = child_units ^ unit_offset(units[child_units])
        leaf = np.flatnonzero(units[child_units] & _HAS_LEAF)
        total += len(leaf)
        if total > MAX_CHARSMAP_RULES:
            raise ValueError(f"{source}: the precompiled charsmap has more than {MAX_CHARSMAP_RULES} rules.")
        if len(leaf):
            value_units = nodes[leaf]
            if (value_units >= len(units)).any():
                raise ValueError(f"{source}: the precompiled charsmap's trie points past its end.")
            level_values = units[value_units] & (_IS_LEAF - 1)
            if (level_values >= len(pool)).any():
                raise ValueError(f"{source}: a charsmap rule points past the replacement strings.")
            keys.extend(_spell(levels, leaf))
            values.append(level_values)
    values = np.concatenate(values) if values else np.zeros(0, np.int64)
    return PrecompiledCharsmap(units, pool, root, tuple(keys), values)


def _spell(levels, indices):
    """The byte strings of the nodes at `indices` of the last level, by following parents."""
    depth = len(levels)
    spelled = np.zeros((len(indices), depth), np.uint8)
    for level in range(depth - 1, -1, -1):
        parent, label = levels[level]
        spelled[:, level] = label[indices]
        indices = parent[indices]
    raw = spelled.tobytes()
    return [raw[i * depth : (i + 1) * depth] for i in range(len(spelled))]


def charsmap_rules(precompiled_charsmap, source="precompiled charsmap"):
    """{input bytes: replacement bytes} of a SentencePiece precompiled charsmap: every rule
    of its double array (see `decode_charsmap`). A rule may map to the empty string."""
    charsmap = decode_charsmap(precompiled_charsmap, source)
    return {key: charsmap.replacement(int(value)) for key, value in zip(charsmap.keys, charsmap.values)}
