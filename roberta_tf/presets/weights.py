"""Named weights <-> safetensors files and model variables, with checks that name the key."""

import json
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
    missing = [name for name in variables if name not in arrays]
    if missing:
        raise PresetError(f"{source}: missing weights {_first(missing)}.")
    unused = [name for name in arrays if name not in variables and not name.startswith(tuple(allow_unused))]
    if unused:
        raise PresetError(f"{source}: weights with no place in this model: {_first(unused)}.")
    for name, variable in variables.items():  # check everything before changing anything
        value = arrays[name]
        if tuple(value.shape) != tuple(variable.shape):
            raise PresetError(
                f"{source}: weight {name!r} has shape {tuple(value.shape)}, the model expects {tuple(variable.shape)}."
            )
        if not np.issubdtype(value.dtype, np.floating):
            raise PresetError(f"{source}: weight {name!r} has dtype {value.dtype}, expected a float type.")
    # Smallest first: each assign makes a temporary copy of its tensor, and by the time the
    # largest (the token embedding) goes in, the other consumed arrays are already freed.
    for name in sorted(variables, key=lambda n: arrays[n].size):
        variables[name].assign(np.asarray(arrays[name]).astype(variables[name].dtype.as_numpy_dtype, copy=False))
        if consume:
            del arrays[name]


def _first(names, limit=5):
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
