"""Named weights <-> safetensors files and model variables, with checks that name the key."""

import json
import os
import struct

import numpy as np

from roberta_tf.presets.preset_format import PresetError


def read(path):
    """`{name: numpy array}` from a safetensors file (no pickle: nothing in it can run)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise PresetError(f"{path}: not found.") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise PresetError(f"{path}: not a readable safetensors file ({error}).") from None


def write_variables(path, variables, metadata=None):
    """Writes `{name: tf.Variable}` as a safetensors file one tensor at a time.

    `safetensors.numpy.save_file` needs every array in memory at once, i.e. a full extra copy
    of a model that already sits in its variables (measured: +1 copy at a conversion's peak).
    The format is simple enough to stream: an 8-byte little-endian header size, a JSON header
    (dtype, shape, byte offsets per tensor; padded to 8 bytes) and the raw little-endian data.
    """
    header, offset = {}, 0
    for name, variable in variables.items():
        dtype = np.dtype(variable.dtype.as_numpy_dtype)
        if dtype.str[1:] not in _SAFETENSORS_DTYPES:
            raise ValueError(f"{name}: dtype {dtype} cannot be written to safetensors.")
        size = int(np.prod(variable.shape, dtype=np.int64)) * dtype.itemsize
        header[name] = {"dtype": _SAFETENSORS_DTYPES[dtype.str[1:]], "shape": list(variable.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for variable in variables.values():
            array = np.ascontiguousarray(variable.numpy(), dtype=np.dtype(variable.dtype.as_numpy_dtype).newbyteorder("<"))
            out.write(memoryview(array).cast("B"))


_SAFETENSORS_DTYPES = {"f4": "F32", "f2": "F16", "f8": "F64", "i4": "I32", "i8": "I64"}


def assign(variables, arrays, source, allow_unused=(), consume=False):
    """Assigns `arrays` to `variables` (both keyed by name) after checking that every variable
    has a value of its exact shape. Keys of `arrays` starting with a prefix in `allow_unused`
    may be left over (e.g. a head when loading only the backbone); any other extra key is an
    error, because it means the source was built for a different architecture. With
    `consume=True` each array is removed from `arrays` once assigned, so a converter's peak
    memory stays near one copy of the weights plus the model's variables."""
    check_layout({name: tuple(v.shape) for name, v in variables.items()},
                 {name: (tuple(value.shape), value.dtype.kind) for name, value in arrays.items()}, source, allow_unused)
    for name in variables:  # every value is checked before any variable changes
        if not np.isfinite(arrays[name]).all():
            raise PresetError(f"{source}: weight {name!r} holds NaN or infinite values: a broken or corrupted checkpoint.")
    # Smallest first: each assign makes a temporary copy of its tensor, and by the time the
    # largest (the token embedding) goes in, the other consumed arrays are already freed.
    for name in sorted(variables, key=lambda n: arrays[n].size):
        variables[name].assign(np.asarray(arrays[name]).astype(variables[name].dtype.as_numpy_dtype, copy=False))
        if consume:
            del arrays[name]


def check_layout(expected, found, source, allow_unused=()):
    """Raises `PresetError` naming the weight unless `found` ({name: (shape, numpy dtype kind)})
    gives every name of `expected` ({name: shape}) with its exact shape and a float dtype, and
    nothing else but names starting with a prefix in `allow_unused`. Used on a file's header
    before the model is built (`read_layout`) and on the arrays before they are assigned."""
    missing = [name for name in expected if name not in found]
    if missing:
        raise PresetError(f"{source}: missing weights {_first(missing)}.")
    unused = [name for name in found if name not in expected and not name.startswith(tuple(allow_unused))]
    if unused:
        raise PresetError(f"{source}: weights with no place in this model: {_first(unused)}.")
    for name, shape in expected.items():
        found_shape, kind = found[name]
        if tuple(found_shape) != tuple(shape):
            raise PresetError(f"{source}: weight {name!r} has shape {tuple(found_shape)}, the model expects {tuple(shape)}.")
        if kind != "f":
            raise PresetError(f"{source}: weight {name!r} is not a float tensor.")


def read_layout(path):
    """{name: (shape, numpy dtype kind)} from a safetensors file's header alone (nothing else is
    read), so a preset's weights are checked against its config before a model is built."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size <= min(_MAX_HEADER_BYTES, os.path.getsize(path) - 8):
                raise ValueError(f"a header of {size} bytes")
            header = json.loads(f.read(size))
        return {name: (tuple(entry["shape"]), _KIND_OF.get(entry["dtype"], "?"))
                for name, entry in header.items() if name != "__metadata__"}
    except FileNotFoundError:
        raise PresetError(f"{path}: not found.") from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise PresetError(f"{path}: not a readable safetensors file ({type(error).__name__}).") from None


_MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit
_KIND_OF = {"F16": "f", "BF16": "f", "F32": "f", "F64": "f"}


def _first(names, limit=5):
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
