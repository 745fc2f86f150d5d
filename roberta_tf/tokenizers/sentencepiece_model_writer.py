"""Writing SentencePiece `ModelProto` bytes: the protobuf wire format by hand, as
`sentencepiece_model.py` reads it (the same field numbers, from SentencePiece's
`src/sentencepiece_model.proto`), since `sentencepiece_model_pb2` needs a newer protobuf
runtime than TensorFlow allows.

Used where a model is built rather than read: `hf_unigram.py` (the ModelProto a tokenizer.json
stands for), and the test and benchmark models (pieces appended to a trained model).
"""

import struct

_VARINT, _FIXED32, _LENGTH_DELIMITED = 0, 5, 2


def varint(value):
    """A non-negative integer as a protobuf varint."""
    if value < 0:
        raise ValueError(f"varint takes a non-negative integer. Received: {value}")
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def message_field(number, payload):
    """Field `number` holding `payload` bytes (a string, bytes or a nested message)."""
    return varint(number << 3 | _LENGTH_DELIMITED) + varint(len(payload)) + payload


def varint_field(number, value):
    """Field `number` holding an integer, bool or enum."""
    return varint(number << 3 | _VARINT) + varint(value)


def float_field(number, value):
    """Field `number` holding a float32."""
    return varint(number << 3 | _FIXED32) + struct.pack("<f", value)


def piece_record(piece, score=0.0, piece_type=None):
    """One `ModelProto.pieces` entry (field 1): `piece` bytes, its score, its `PieceType`
    (left out: the proto's default, NORMAL)."""
    body = message_field(1, piece) + float_field(2, score)
    if piece_type is not None:
        body += varint_field(3, int(piece_type))
    return message_field(1, body)
