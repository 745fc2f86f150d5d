"""Read PyTorch checkpoints (fairseq `model.pt`, HF `pytorch_model.bin`) without torch.

`torch.load` runs arbitrary code from the file (pickle `__reduce__`). Here a restricted unpickler
resolves only the handful of globals a checkpoint needs -- to harmless local stand-ins, never to
torch itself -- and rebuilds every tensor as a read-only numpy view of its storage. Anything else
in the file is refused with a `CheckpointError` naming the global, before it can run.

Both `torch.save` formats are read:
- zip (default since torch 1.6): `<prefix>/data.pkl` + one `<prefix>/data/<key>` member per storage;
- legacy (`_use_new_zipfile_serialization=False`): magic, protocol and sys_info pickles, the main
  pickle, the pickled list of storage keys, then per key an int64 element count and the raw bytes.

Every read is bounded by the file size, so a corrupt or hostile file fails fast instead of
allocating or reading without limit.
"""

import collections
import io
import os
import pickle
import types
import zipfile

import numpy as np

from roberta_tf.converters.layout import ConversionError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


class CheckpointError(ConversionError):
    """A file that is not a readable, safe PyTorch checkpoint; the message names the file."""


# Stand-ins for the torch globals a checkpoint references. Namedtuple instances are deliberately
# inert: not callable (REDUCE fails) and without a `__dict__` (BUILD cannot mutate them).
_StorageType = collections.namedtuple("_StorageType", "name dtype")
_DType = collections.namedtuple("_DType", "name dtype")

_BF16 = "bfloat16"  # numpy has no bfloat16: stored as uint16, returned as float32.
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": _BF16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_TORCH_DTYPES = {
    "float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
    "float16": np.float16, "half": np.float16, "bfloat16": _BF16,
    "int64": np.int64, "long": np.int64, "int32": np.int32, "int": np.int32,
    "int16": np.int16, "short": np.int16, "int8": np.int8, "uint8": np.uint8,
    "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64, "bool": np.bool_,
}
# torch >= 2.1 pickles tensors of dtypes without a legacy storage class (e.g. uint16) as
# `_rebuild_tensor_v3` over an untyped (byte) storage plus a dtype global.
_UNTYPED = _StorageType("UntypedStorage", np.uint8)

_SAFE_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    # A Namespace comes back as a SimpleNamespace: BUILD only sets attributes on it.
    ("argparse", "Namespace"): types.SimpleNamespace,
    ("torch", "Size"): tuple,
    ("torch", "UntypedStorage"): _UNTYPED,
    ("torch.storage", "UntypedStorage"): _UNTYPED,
}
_SAFE_GLOBALS.update({("torch", n): _StorageType(n, d) for n, d in _STORAGE_DTYPES.items()})
_SAFE_GLOBALS.update({("torch", n): _DType(n, d) for n, d in _TORCH_DTYPES.items()})


def _numpy_dtype(dtype):
    """The dtype a storage is held in (bfloat16 is widened to float32 on decoding)."""
    return np.dtype(np.float32 if dtype == _BF16 else dtype)


def _file_itemsize(dtype):
    return 2 if dtype == _BF16 else np.dtype(dtype).itemsize


def _bf16_to_float32(raw_uint16):
    """bfloat16 is the high half of a float32: shift the bits up, reinterpret."""
    return (raw_uint16.astype(np.uint32) << 16).view(np.float32)


class _Storage:
    """One storage: a flat numpy array; the legacy format fills it after the main pickle."""

    def __init__(self, array):
        self.array = array
        self.views = {}  # dtype -> reinterpretation, for `_rebuild_tensor_v3` on byte storages


class _Unpickler(pickle.Unpickler):
    """Resolves only `_SAFE_GLOBALS` and the tensor rebuild functions; storages come from
    `load_storage(key, storage_type, numel)`, supplied by the format reader."""

    def __init__(self, file, path, load_storage=None):
        super().__init__(file)
        self.path = path
        self.load_storage = load_storage
        self.storages = {}

    def fail(self, problem):
        return CheckpointError(f"{self.path}: {problem}")

    def find_class(self, module, name):
        # Bound methods, not module functions: BUILD cannot set attributes on a bound method.
        rebuild = {
            "_rebuild_tensor": self.rebuild_tensor,
            "_rebuild_tensor_v2": self.rebuild_tensor_v2,
            "_rebuild_tensor_v3": self.rebuild_tensor_v3,
            "_rebuild_parameter": self.rebuild_parameter,
        }
        if module == "torch._utils" and name in rebuild:
            return rebuild[name]
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[(module, name)]
        raise self.fail(f"refusing to load global {module}.{name} (not a tensor or plain data).")

    def persistent_load(self, pid):
        # zip: ('storage', type, key, location, numel); legacy adds view_metadata.
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise self.fail(f"unexpected persistent id {pid!r}.")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise self.fail(f"malformed storage record {pid!r}.")
        if not isinstance(numel, int) or numel < 0:
            raise self.fail(f"storage {key!r} has an invalid size {numel!r}.")
        if len(pid) == 6 and pid[5] is not None:
            raise self.fail(f"storage {key!r}: legacy storage views are not supported.")
        if self.load_storage is None:
            raise self.fail("a storage record outside the main pickle.")
        if key not in self.storages:
            self.storages[key] = (storage_type, numel, self.load_storage(key, storage_type, numel))
        seen_type, seen_numel, storage = self.storages[key]
        if (seen_type, seen_numel) != (storage_type, numel):
            raise self.fail(f"storage {key!r} is referenced with two different types or sizes.")
        return storage

    def rebuild_tensor(self, storage, offset, size, stride):
        return self.rebuild_tensor_v2(storage, offset, size, stride, False, None)

    def rebuild_tensor_v2(self, storage, offset, size, stride, requires_grad, hooks, metadata=None):
        if not isinstance(storage, _Storage):
            raise self.fail(f"tensor built from {type(storage).__name__}, not a storage.")
        return self.strided(storage.array, offset, size, stride)

    def rebuild_tensor_v3(self, storage, offset, size, stride, requires_grad, hooks, dtype,
                          metadata=None):
        if not isinstance(storage, _Storage) or storage.array.dtype != np.uint8:
            raise self.fail("_rebuild_tensor_v3 needs an untyped (byte) storage.")
        if not isinstance(dtype, _DType):
            raise self.fail(f"tensor dtype {dtype!r} is not a torch dtype.")
        if dtype.name not in storage.views:
            raw = storage.array
            if raw.size % _file_itemsize(dtype.dtype):
                raise self.fail(f"a byte storage of {raw.size} bytes cannot hold {dtype.name}.")
            view = _bf16_to_float32(raw.view(np.uint16)) if dtype.dtype == _BF16 else raw.view(dtype.dtype)
            storage.views[dtype.name] = view
        return self.strided(storage.views[dtype.name], offset, size, stride)

    def rebuild_parameter(self, data, requires_grad, hooks):
        return data  # an nn.Parameter is its tensor

    def strided(self, flat, offset, size, stride):
        """A read-only view of `flat` with torch's (offset, size, stride), bounds-checked."""
        dims = tuple(size) if isinstance(size, (tuple, list)) else None
        steps = tuple(stride) if isinstance(stride, (tuple, list)) else None
        numbers = (dims or ()) + (steps or ()) + (offset,)
        if (dims is None or steps is None or len(dims) != len(steps)
                or not all(type(n) is int and n >= 0 for n in numbers)):
            raise self.fail(f"malformed tensor geometry size={size!r} stride={stride!r} offset={offset!r}.")
        if 0 in dims:
            return np.empty(dims, flat.dtype)
        last = offset + sum((n - 1) * s for n, s in zip(dims, steps))
        if last >= flat.size:
            raise self.fail(
                f"tensor size={dims} stride={steps} offset={offset} exceeds its storage of {flat.size} elements."
            )
        item = flat.itemsize
        return np.lib.stride_tricks.as_strided(
            flat[offset:], dims, tuple(s * item for s in steps), writeable=False
        )


def load(path):
    """The object graph of a PyTorch checkpoint, tensors as read-only numpy arrays.

    Raises CheckpointError (naming `path`) for anything that is not a readable checkpoint,
    including any pickled global beyond tensors, OrderedDict and argparse.Namespace."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        if zipfile.is_zipfile(path):
            return _load_zip(path, size)
        with open(path, "rb") as f:
            if f.read(4) == b"PK\x03\x04":  # a zip's first record, but no readable directory
                raise CheckpointError(f"{path}: a truncated or damaged zip checkpoint.")
            f.seek(0)
            return _load_legacy(f, path, size)
    except CheckpointError:
        raise
    except Exception as error:  # corrupt input surfaces as many exception types; name the file
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {error})."
        ) from error


def _load_zip(path, size):
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: a zip file but not a torch checkpoint (no <name>/data.pkl).")
        prefix = pickles[0][: -len("data.pkl")]

        def read(name, expected=None):
            try:
                info = archive.getinfo(name)
            except KeyError:
                raise CheckpointError(f"{path}: missing record {name!r}.") from None
            # torch stores members uncompressed; refuse anything claiming to expand past the file.
            if info.file_size > size or (expected is not None and info.file_size != expected):
                raise CheckpointError(
                    f"{path}: record {name!r} has {info.file_size} bytes, expected {expected}."
                )
            with archive.open(info) as member:
                return member.read(info.file_size)

        big_endian = False
        if prefix + "byteorder" in archive.namelist():
            big_endian = read(prefix + "byteorder").strip() == b"big"

        def load_storage(key, storage_type, numel):
            dtype = storage_type.dtype
            raw = read(f"{prefix}data/{key}", numel * _file_itemsize(dtype))
            file_dtype = np.dtype(np.uint16 if dtype == _BF16 else dtype)
            array = np.frombuffer(raw, file_dtype.newbyteorder(">" if big_endian else "<"))
            if big_endian:
                array = array.astype(file_dtype)
            return _Storage(_bf16_to_float32(array) if dtype == _BF16 else array)

        data = read(pickles[0])
        return _Unpickler(io.BytesIO(data), path, load_storage).load()


def _load_legacy(f, path, size):
    def small_pickle():
        return _Unpickler(f, path).load()

    try:
        magic = small_pickle()
    except CheckpointError:
        raise
    except Exception:
        magic = None
    if magic != LEGACY_MAGIC:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a torch zip nor the legacy format).")
    if small_pickle() != LEGACY_PROTOCOL:
        raise CheckpointError(f"{path}: unsupported legacy checkpoint protocol.")
    sys_info = small_pickle()
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        raise CheckpointError(f"{path}: big-endian legacy checkpoints are not supported.")

    # Storages are only described here; their bytes follow the key list. Allocate each (bounded
    # by the file size) and fill it below: the tensors are views, so they see the data.
    def load_storage(key, storage_type, numel):
        if numel * _file_itemsize(storage_type.dtype) > size:
            raise CheckpointError(f"{path}: storage {key!r} claims {numel} elements, more than the file holds.")
        return _Storage(np.empty(numel, _numpy_dtype(storage_type.dtype)))

    unpickler = _Unpickler(f, path, load_storage)
    result = unpickler.load()
    keys = small_pickle()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointError(f"{path}: malformed storage key list.")
    if set(keys) != set(unpickler.storages):
        missing = sorted(set(unpickler.storages) - set(keys)) or sorted(set(keys) - set(unpickler.storages))
        raise CheckpointError(f"{path}: storage records do not match the tensors (e.g. {missing[0]!r}).")
    for key in keys:
        storage_type, numel, storage = unpickler.storages[key]
        _read_legacy_storage(f, path, key, storage_type.dtype, numel, storage.array)
    return result


def _read_exact(f, path, count, what):
    data = f.read(count)
    if len(data) != count:
        raise CheckpointError(f"{path}: truncated while reading {what}.")
    return data


def _read_legacy_storage(f, path, key, dtype, numel, array):
    count = int.from_bytes(_read_exact(f, path, 8, f"storage {key!r}"), "little", signed=True)
    if count != numel:
        raise CheckpointError(f"{path}: storage {key!r} holds {count} elements, expected {numel}.")
    raw = _read_exact(f, path, numel * _file_itemsize(dtype), f"storage {key!r}")
    if dtype == _BF16:
        array[...] = _bf16_to_float32(np.frombuffer(raw, "<u2"))
    else:
        array.view(np.uint8)[...] = np.frombuffer(raw, np.uint8)
