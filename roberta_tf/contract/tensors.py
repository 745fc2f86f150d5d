"""Request tensors as numpy arrays: strings as object arrays of bytes, numbers with the signature's
dtype, checked (a client's inputs, the exporter's warmup requests).

Strings are kept as Python `bytes` in `dtype=object` arrays, never numpy's fixed-width `S`
dtype, which silently drops trailing NUL bytes (`np.array([b"a\\0"])[0] == b"a"`). Texts given
as `str` are encoded as UTF-8; texts given as `bytes` are sent unchanged (invalid UTF-8 allowed).
"""

import numpy as np


def text_array(name, texts):
    """A 1-D object array of bytes from a sequence of str/bytes; a bare string is refused.

    A bare string is almost always a mistake (`classify("hi")` would classify "h" and "i").
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            f"{name} must be a sequence of strings, not a single {type(texts).__name__}; "
            f"wrap it in a list. Received: {name}={texts!r}"
        )
    array = _string_array(name, texts)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional. Received shape {array.shape}")
    return array


def int32_matrix(name, value):
    """An int32 [batch, length] array; refuses floats and values outside int32."""
    array = _numeric_array(name, value, np.dtype(np.int32))
    if array.ndim != 2:
        raise ValueError(f"{name} must be two-dimensional [batch, length]. Received shape {array.shape}")
    return array


def as_input_array(name, value, dtype=None):
    """`value` as the array a request carries; `dtype` is a TF dtype name, or None to infer.

    Inference: any str/bytes leaf makes a string tensor; otherwise numpy's own inference.
    An empty list cannot be inferred and becomes float64: pass the dtype for empty inputs.
    """
    if dtype is None:
        dtype = "string" if _has_string_leaf(value) else None
    if dtype == "string":
        return _string_array(name, value)
    return _numeric_array(name, value, None if dtype is None else np.dtype(dtype))


def decode_strings(array):
    """Object array of bytes -> object array of str (UTF-8, invalid bytes -> U+FFFD)."""
    return map_objects(array, lambda item: item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item))


def _string_array(name, value):
    if isinstance(value, np.ndarray) and value.dtype.kind not in "OSU":
        raise TypeError(f"{name} must hold strings. Received an array of dtype {value.dtype}")
    array = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value.astype(object)
    return map_objects(array, lambda item: _to_bytes(name, item))


def _numeric_array(name, value, dtype):
    array = np.asarray(value)
    if array.dtype.kind in "OSU":
        raise TypeError(f"{name} must hold numbers. Received an array of dtype {array.dtype}")
    if dtype is None or array.size == 0:
        return array.astype(dtype) if dtype is not None else array
    if dtype.kind in "iu" and array.dtype.kind not in "iub":
        raise TypeError(f"{name} must hold integers for dtype {dtype}. Received dtype {array.dtype}")
    converted = array.astype(dtype)
    if dtype.kind in "iu" and not np.array_equal(converted, array):
        raise ValueError(f"{name} has values outside {dtype}. Received min={array.min()}, max={array.max()}")
    return converted


def _to_bytes(name, item):
    if isinstance(item, bytes):  # also numpy.bytes_
        return bytes(item)
    if isinstance(item, str):  # also numpy.str_
        return item.encode("utf-8")
    raise TypeError(f"{name} must hold str or bytes. Received an item of type {type(item).__name__}: {item!r}")


def map_objects(array, function):
    result = np.empty(array.shape, dtype=object)
    for index, item in np.ndenumerate(array):
        result[index] = function(item)
    return result


def _has_string_leaf(value):
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "SU" or (value.dtype == object and value.size > 0 and _has_string_leaf(value.flat[0]))
    if isinstance(value, (str, bytes)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_string_leaf(item) for item in value[:1])
    return False
