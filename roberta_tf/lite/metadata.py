"""`read_tflite_metadata`: the JSON that `roberta-tf export tflite` stores inside the model.

The JSON is a `Model.metadata` entry named "roberta_tf_export" whose bytes are
`Model.buffers[index].data` (written by `roberta_tf.export.tflite_metadata`). Read with the
schema's lazy accessors on an mmap of the file, so a 500 MB model is not loaded to find a few
hundred bytes; the schema module is ai_edge_litert's, so no TensorFlow is needed.
"""

import json
import mmap
import os
import struct

from ai_edge_litert import schema_py_generated as schema

from roberta_tf.contract import signatures as contract

METADATA_NAME = contract.TFLITE_METADATA_NAME
_IDENTIFIER = b"TFL3"


def _check_identifier(buf):
    if len(buf) < 8 or bytes(buf[4:8]) != _IDENTIFIER:
        raise ValueError("Not a TFLite flatbuffer (missing the TFL3 identifier).")


def _read_entry(buf, name):
    """The bytes of metadata entry `name` (None if absent); copies only those bytes."""
    _check_identifier(buf)
    try:
        model = schema.Model.GetRootAs(buf, 0)
        entries = [model.Metadata(i) for i in range(model.MetadataLength())]
        entry = next((e for e in entries if e.Name() == name.encode()), None)
        if entry is None:
            return None
        buffer = model.Buffers(entry.Buffer())
        external = buffer.Offset() or buffer.Size()
        data = buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""
    except (struct.error, IndexError, ValueError) as e:  # a table or vector runs past the end
        raise ValueError(f"Not a valid TFLite flatbuffer (truncated or corrupt): {e}") from e
    if external:
        raise ValueError("The metadata is stored outside the flatbuffer (> 2 GB layout); not supported.")
    return data


def read_tflite_metadata(path_or_bytes, name=METADATA_NAME):
    """The dict `with_metadata` stored as entry `name` of a .tflite file (a path) or bytes.

    Raises:
        ValueError: if the input is not a TFLite flatbuffer, has no such entry, or the entry is
            not a UTF-8 JSON object.
    """
    if isinstance(path_or_bytes, (str, os.PathLike)):
        with open(path_or_bytes, "rb") as f:
            if os.fstat(f.fileno()).st_size < 8:  # mmap refuses empty files
                raw = _read_entry(f.read(), name)
            else:
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                    raw = _read_entry(buf, name)
        source = os.fspath(path_or_bytes)
    else:
        raw = _read_entry(path_or_bytes, name)
        source = "The model"
    if raw is None:
        raise ValueError(f"{source} has no {name!r} metadata; it was not written by `roberta-tf export tflite`.")
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{source}: metadata {name!r} is not UTF-8 JSON: {e}") from e
    if not isinstance(metadata, dict):
        raise ValueError(f"{source}: metadata {name!r} is not a JSON object.")
    return metadata
