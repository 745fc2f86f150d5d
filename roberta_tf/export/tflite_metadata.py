"""Stores a JSON description of an exported model inside its .tflite file, and reads it back.

An app or `roberta-tf inspect` then finds labels, sequence length, hashes and quantization in
the one file it already has, with no sidecar JSON to lose or mismatch. The JSON goes in the
TFLite schema's own place for this: a `Model.metadata` entry {name, buffer index} whose bytes
are `Model.buffers[index].data`; runtimes ignore entries they don't know, so signatures and
outputs are unchanged, and the converter's own entries (`min_runtime_version`,
`CONVERSION_METADATA`) are kept.

Reading is `roberta_tf.lite.read_tflite_metadata` (TensorFlow-free, for apps and tools).
Writing re-packs the flatbuffer with the schema's object API (TensorFlow ships it; a field
newer than TensorFlow's schema would be dropped, so tag models this TensorFlow converted),
copying each buffer's bytes once and aligning buffer data to 16 bytes, as some kernels want
(the object API's own `Pack` aligns them to 4). Reading uses the lazy accessors on an mmap of
the file, so a 500 MB model is not loaded to find a few hundred bytes.
"""

import json
import struct

import flatbuffers
from tensorflow.lite.python import schema_py_generated as schema

from roberta_tf.contract import signatures as contract

METADATA_NAME = contract.TFLITE_METADATA_NAME
_IDENTIFIER = b"TFL3"
_ALIGNMENT = 16  # bytes; what the TFLite converter asks for in C++ (and XNNPACK prefers)


def _check_identifier(buf):
    if len(buf) < 8 or bytes(buf[4:8]) != _IDENTIFIER:
        raise ValueError("Not a TFLite flatbuffer (missing the TFL3 identifier).")


class _AlignedBufferT(schema.BufferT):
    """A `BufferT` whose data is written 16-byte aligned, copied straight from its memory."""

    def Pack(self, builder):
        data = None
        if self.data is not None:
            view = memoryview(self.data).cast("B")
            # What Builder.CreateNumpyVector does, without its extra copy and 1-byte alignment.
            builder.StartVector(1, len(view), _ALIGNMENT)
            builder.head = builder.Head() - len(view)
            builder.Bytes[builder.head : builder.head + len(view)] = view
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        return schema.BufferEnd(builder)


def with_metadata(model_content, metadata, name=METADATA_NAME):
    """Returns `model_content` (.tflite bytes) with `metadata` (a JSON-able dict) stored as the
    metadata entry `name`, replacing an entry of that name if there is one.

    Raises:
        ValueError: if `model_content` is not a TFLite flatbuffer, or keeps its buffers outside
            the flatbuffer (the > 2 GB layout, which re-packing would corrupt).
    """
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}.")
    _check_identifier(model_content)
    payload = json.dumps(metadata, sort_keys=True, indent=1).encode()
    try:  # buffer data stay numpy views of `model_content`: unpacking copies no weights
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model_content, 0))
    except (struct.error, IndexError, ValueError) as e:
        raise ValueError(f"Not a valid TFLite flatbuffer (truncated or corrupt): {e}") from e
    buffers = model.buffers or []
    if any(buffer.offset or buffer.size for buffer in buffers):
        raise ValueError("The model stores its buffers outside the flatbuffer (> 2 GB layout); not supported.")

    entry = next((m for m in model.metadata or [] if m.name == name.encode()), None)
    if entry is None:  # a new buffer at the end: existing buffer indices stay valid
        entry = schema.MetadataT(name=name, buffer=len(buffers))
        buffers.append(None)
        model.metadata = (model.metadata or []) + [entry]
    buffers[entry.buffer] = schema.BufferT(data=payload)
    model.buffers = [_AlignedBufferT(data=b.data) for b in buffers]

    builder = flatbuffers.Builder(len(model_content) + len(payload) + (1 << 20))  # no regrowth
    builder.Finish(model.Pack(builder), file_identifier=_IDENTIFIER)
    return bytes(memoryview(builder.Bytes)[builder.Head() :])
