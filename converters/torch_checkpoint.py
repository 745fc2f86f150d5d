"""Read PyTorch checkpoints (fairseq `model.pt`, HF `pytorch_model.bin`) without torch.

`torch.load` runs arbitrary code from the file (pickle `__reduce__`). Here a restricted unpickler
resolves only the handful of globals a checkpoint needs -- to harmless local stand-ins, never to
torch itself -- and rebuilds every tensor as a read-only numpy view of its storage. Anything else
in the file is refused with a `CheckpointError` naming the global, before it can run.

Both `torch.save` formats are read:
- zip (default since torch 1.6): `<prefix>/data.pkl` + one `<prefix>/data/<key>` member per storage;
- legacy (`_use_new_zipfile_serialization=False`): magic, protocol and sys_info pickles, the main
  pickle, the pickled list of storage keys, then per key an int64 element count and the raw bytes.

Rules beyond "no code runs" (issue 11; each one has a test in tests/converters):
- The pickle never holds a storage's bytes. It gets an opaque, immutable `_StorageRef` token; the
  bytes live in the unpickler's own table, and a tensor is always a view of those original bytes.
- BUILD (setstate) is refused except on a Namespace (rebuilt as SimpleNamespace) or OrderedDict,
  with a dict of str keys: on anything else (a storage, a tensor, a rebuild function) it could swap
  bytes or change state outside the file.
- A view must be a valid torch layout that reads each element once, inside its storage: dims of
  size > 1, sorted by stride, each stride greater than the farthest element the faster dims reach
  (so no stride 0, no overlap); dims of size 1 may have any stride (torch gives them any).
- Bytes are budgeted in total, not per record. zip: the members read (pickle, byteorder, storages)
  hold at most the file size when every member is stored (as torch writes them), at most
  `COMPRESSED_FACTOR` times the file size when any member is compressed; only stored and deflated
  members are read, in chunks of at most `CHUNK_BYTES`, so a member lying about its size cannot
  allocate past the budget. legacy: the declared storages hold at most the file size.
- A pickle is at most `PICKLE_LIMIT` bytes and is read by the pure-Python unpickler (the C one
  keeps its memo as an array as long as the largest PUT index: 10 bytes of pickle, gigabytes of
  memory). Protocol-5 buffers and sets, which no checkpoint holds, are refused; the objects a
  pickle builds take at most about 40 bytes per pickle byte (measured: 37, a pickle of empty dicts).
"""

import collections
import io
import os
import pickle
import reprlib
import types
import zipfile

import numpy as np

from roberta_tf.converters.layout import ConversionError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Real checkpoint pickles are small (a 2-layer fairseq checkpoint: 19 KB; about 200 bytes a
# tensor), so 16 MiB is room for some 80,000 tensors.
PICKLE_LIMIT = 16 << 20
COMPRESSED_FACTOR = 4  # decompressed bytes per file byte, when a zip member is compressed
CHUNK_BYTES = 1 << 20  # members are read this much at a time
MAX_DIMS = 64  # numpy's limit


class CheckpointError(ConversionError):
    """A file that is not a readable, safe PyTorch checkpoint; the message names the file."""


# Stand-ins for the torch globals a checkpoint references. Namedtuple instances are deliberately
# inert: not callable (REDUCE fails) and without a `__dict__`; BUILD is refused on them anyway.
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

# The only objects BUILD may set attributes on (what fairseq's args and torch's state dicts need).
_BUILDABLE = (types.SimpleNamespace, collections.OrderedDict)

_short = reprlib.Repr()
_short.maxstring = _short.maxother = _short.maxlong = 60
_short.maxlevel = 3


def _file_itemsize(dtype):
    return 2 if dtype == _BF16 else np.dtype(dtype).itemsize


def _bf16_to_float32(raw_uint16, out=None):
    """bfloat16 is the high half of a float32: shift the bits up, reinterpret. Written straight
    into `out` (a new array by default): no temporary the size of the result."""
    if out is None:
        out = np.empty(raw_uint16.shape, np.float32)
    np.left_shift(raw_uint16, 16, out=out.view(np.uint32), dtype=np.uint32)
    return out


def _check_bools(path, key, raw_bytes):
    """torch writes a bool as byte 0 or 1; numpy treats any other byte inconsistently."""
    if raw_bytes.size and raw_bytes.max() > 1:
        raise CheckpointError(f"{path}: storage {key!r} holds bool bytes other than 0 and 1.")


class _StorageRef:
    """What the pickle sees of a storage: an opaque token. It has no `__dict__` and refuses
    setattr and setstate; the bytes it stands for are in `_Unpickler.storages`."""

    __slots__ = ("key",)

    def __init__(self, key):
        object.__setattr__(self, "key", key)

    def __setattr__(self, name, value):
        raise AttributeError("a storage reference is immutable")

    def __delattr__(self, name):
        raise AttributeError("a storage reference is immutable")

    def __setstate__(self, state):
        raise TypeError("a storage reference is immutable")

    def __reduce__(self):
        raise TypeError("a storage reference cannot be pickled")

    def __repr__(self):
        return f"<storage {self.key!r}>"


class _Storage:
    """One storage, private to the unpickler: `array` is the flat numpy array of its elements
    (uint8 for an untyped storage; bfloat16 widened to float32), `views` its reinterpretations by
    `_rebuild_tensor_v3` (dtype name -> array). `raw` is the buffer the legacy format fills after
    the main pickle (None once filled, and always for zip)."""

    __slots__ = ("ref", "storage_type", "numel", "array", "views", "raw")

    def __init__(self, ref, storage_type, numel, array, raw=None):
        self.ref, self.storage_type, self.numel = ref, storage_type, numel
        self.array, self.views, self.raw = array, {}, raw


def _refuse_opcode(what):
    def refuse(self):
        raise self.fail(f"refusing {what}: not part of a torch checkpoint.")

    return refuse


class _Unpickler(pickle._Unpickler):
    """Resolves only `_SAFE_GLOBALS` and the tensor rebuild functions; storages come from
    `load_storage(ref, storage_type, numel)` (a `_Storage` for the new token `ref`), supplied by
    the format reader. The pure-Python unpickler, so that opcodes can be checked (module docstring)."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, path, load_storage=None, big_endian=False):
        super().__init__(file)
        self.path = path
        self.load_storage = load_storage
        self.big_endian = big_endian
        self.storages = {}  # key -> _Storage

    def fail(self, problem):
        return CheckpointError(f"{self.path}: {problem}")

    def find_class(self, module, name):
        # Bound methods, not module functions; BUILD is refused on them.
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

    def load_build(self):
        state = self.stack.pop()
        target = self.stack[-1]
        if type(target) not in _BUILDABLE:
            raise self.fail(
                f"refusing BUILD (setstate) on {type(target).__name__}: "
                "only a Namespace or OrderedDict takes attributes."
            )
        if not isinstance(state, dict) or not all(type(k) is str for k in state):
            raise self.fail(f"refusing BUILD with state {_short.repr(state)} (expected a dict of attributes).")
        target.__dict__.update(state)

    dispatch[pickle.BUILD[0]] = load_build
    for _opcode, _what in [
        (pickle.BYTEARRAY8, "a pickled bytearray"),  # allocates its declared length before reading
        (pickle.NEXT_BUFFER, "an out-of-band buffer"),
        (pickle.READONLY_BUFFER, "an out-of-band buffer"),
        (pickle.EMPTY_SET, "a set"),  # the biggest objects per pickle byte; builtins.set is refused too
        (pickle.ADDITEMS, "a set"),
        (pickle.FROZENSET, "a frozenset"),
    ]:
        dispatch[_opcode[0]] = _refuse_opcode(_what)
    del _opcode, _what

    def persistent_load(self, pid):
        # zip: ('storage', type, key, location, numel); legacy adds view_metadata.
        if not (type(pid) is tuple and len(pid) in (5, 6) and pid[0] == "storage"):
            raise self.fail(f"unexpected persistent id {_short.repr(pid)}.")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType) or type(key) is not str or len(key) > 256:
            raise self.fail(f"malformed storage record {_short.repr(pid)}.")
        if type(numel) is not int or numel < 0:
            raise self.fail(f"storage {key!r} has an invalid size {_short.repr(numel)}.")
        if len(pid) == 6 and pid[5] is not None:
            raise self.fail(f"storage {key!r}: legacy storage views are not supported.")
        if self.load_storage is None:
            raise self.fail("a storage record outside the main pickle.")
        if key not in self.storages:
            ref = _StorageRef(key)
            self.storages[key] = self.load_storage(ref, storage_type, numel)
        storage = self.storages[key]
        if (storage.storage_type, storage.numel) != (storage_type, numel):
            raise self.fail(f"storage {key!r} is referenced with two different types or sizes.")
        return storage.ref

    def storage(self, ref):
        """The storage behind a token the pickle passed in (only tokens this unpickler made)."""
        storage = self.storages.get(ref.key) if type(ref) is _StorageRef else None
        if storage is None or storage.ref is not ref:
            raise self.fail(f"tensor built from {type(ref).__name__}, not a storage.")
        return storage

    def rebuild_tensor(self, storage, offset, size, stride):
        return self.rebuild_tensor_v2(storage, offset, size, stride, False, None)

    def rebuild_tensor_v2(self, storage, offset, size, stride, requires_grad, hooks, metadata=None):
        return self.strided(self.storage(storage).array, offset, size, stride)

    def rebuild_tensor_v3(self, storage, offset, size, stride, requires_grad, hooks, dtype,
                          metadata=None):
        storage = self.storage(storage)
        if storage.array.dtype != np.uint8:
            raise self.fail("_rebuild_tensor_v3 needs an untyped (byte) storage.")
        if not isinstance(dtype, _DType):
            raise self.fail(f"tensor dtype {_short.repr(dtype)} is not a torch dtype.")
        if dtype.name not in storage.views:
            storage.views[dtype.name] = self.reinterpret(storage, dtype)
        return self.strided(storage.views[dtype.name], offset, size, stride)

    def reinterpret(self, storage, dtype):
        """A byte storage as `dtype` elements: a view, or a copy for bfloat16 (widened) and
        big-endian files (swapped). The legacy format fills the copy once its bytes are read."""
        raw = storage.array
        if raw.size % _file_itemsize(dtype.dtype):
            raise self.fail(f"a byte storage of {raw.size} bytes cannot hold {dtype.name}.")
        if dtype.dtype == _BF16:
            if storage.raw is not None:  # legacy, not read yet
                return np.empty(raw.size // 2, np.float32)
            view = _bf16_to_float32(raw.view(">u2" if self.big_endian else "<u2"))
        elif self.big_endian:
            view = raw.view(np.dtype(dtype.dtype).newbyteorder(">")).astype(dtype.dtype)
        else:
            if dtype.dtype == np.bool_ and storage.raw is None:
                _check_bools(self.path, storage.ref.key, raw)
            return raw.view(dtype.dtype)
        view.flags.writeable = False
        return view

    def rebuild_parameter(self, data, requires_grad, hooks):
        if not isinstance(data, np.ndarray):
            raise self.fail(f"a parameter of {type(data).__name__}, not a tensor.")
        return data  # an nn.Parameter is its tensor

    def strided(self, flat, offset, size, stride):
        """A read-only view of `flat` with torch's (offset, size, stride): every element inside
        `flat`, none read twice (see the module docstring)."""
        dims = tuple(size) if type(size) in (tuple, list) else None
        steps = tuple(stride) if type(stride) in (tuple, list) else None
        numbers = (dims or ()) + (steps or ()) + (offset,)
        if (dims is None or steps is None or len(dims) != len(steps) or len(dims) > MAX_DIMS
                or not all(type(n) is int and n >= 0 for n in numbers)):
            raise self.fail(
                f"malformed tensor geometry size={_short.repr(size)} stride={_short.repr(stride)} "
                f"offset={_short.repr(offset)}."
            )
        if 0 in dims:  # no element is read: torch accepts any offset and strides
            if any(n >= 2**62 for n in dims):
                raise self.fail(f"empty tensor size={_short.repr(dims)} has a dim too large for numpy.")
            empty = flat[:0].reshape(dims)
            empty.flags.writeable = False
            return empty
        reach = 1  # elements from the first to one past the last that the faster dims read
        for step, n in sorted((s, n) for n, s in zip(dims, steps) if n > 1):
            if step < reach:
                raise self.fail(
                    f"tensor size={dims} stride={steps} reads elements more than once "
                    "(stride 0 or overlapping strides)."
                )
            reach += (n - 1) * step
        if offset + reach > flat.size:
            raise self.fail(
                f"tensor size={dims} stride={steps} offset={offset} exceeds its storage of {flat.size} elements."
            )
        item = flat.itemsize
        # a size-1 dim is never stepped along: its stride is kept when it is meaningful, else 0
        strides = tuple(s * item if n > 1 or s < flat.size else 0 for n, s in zip(dims, steps))
        return np.lib.stride_tricks.as_strided(flat[offset:], dims, strides, writeable=False)


def load(path):
    """The object graph of a PyTorch checkpoint, tensors as read-only numpy arrays.

    Raises CheckpointError (naming `path`) for anything that is not a readable checkpoint,
    including any pickled global beyond tensors, OrderedDict and argparse.Namespace. MemoryError
    is not wrapped: the budgets keep a hostile file from causing one."""
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
    except (CheckpointError, MemoryError):
        raise
    except Exception as error:  # corrupt input surfaces as many exception types; name the file
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {_short.repr(str(error))})."
        ) from error


class _ZipReader:
    """Reads members of a torch zip against one budget of decompressed bytes (module docstring)."""

    def __init__(self, archive, path, size):
        self.archive, self.path = archive, path
        infos = archive.infolist()
        compressed = any(info.compress_type != zipfile.ZIP_STORED for info in infos)
        self.budget = size * (COMPRESSED_FACTOR if compressed else 1)
        self.rule = f"{COMPRESSED_FACTOR} x the file size, with compressed records" if compressed else "the file size"
        self.left = self.budget
        self.names = {info.filename for info in infos}

    def read(self, name, expected=None, limit=None):
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise CheckpointError(f"{self.path}: missing record {name!r}.") from None
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(f"{self.path}: record {name!r} uses compression method {info.compress_type}; "
                                  "only stored and deflated records are read.")
        count = info.file_size
        if expected is not None and count != expected:
            raise CheckpointError(f"{self.path}: record {name!r} has {count} bytes, expected {expected}.")
        if limit is not None and count > limit:
            raise CheckpointError(f"{self.path}: record {name!r} has {count} bytes, more than the {limit} allowed.")
        if count > self.left:
            raise CheckpointError(
                f"{self.path}: record {name!r} ({count} bytes) would take the checkpoint past its budget of "
                f"{self.budget} decompressed bytes ({self.rule}; {self.budget - self.left} read so far)."
            )
        self.left -= count
        buffer = bytearray(count)
        view = memoryview(buffer)
        with self.archive.open(info) as member:
            done = 0
            while done < count:
                chunk = member.read(min(CHUNK_BYTES, count - done))
                if not chunk:
                    raise CheckpointError(f"{self.path}: record {name!r} is shorter than its {count} bytes.")
                view[done:done + len(chunk)] = chunk
                done += len(chunk)
            if member.read(1):
                raise CheckpointError(f"{self.path}: record {name!r} is longer than its {count} bytes.")
        view.release()
        return buffer


def _load_zip(path, size):
    with zipfile.ZipFile(path) as archive:
        reader = _ZipReader(archive, path, size)
        pickles = sorted(n for n in reader.names if n.endswith("/data.pkl") and n.count("/") == 1)
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: a zip file but not a torch checkpoint (no <name>/data.pkl).")
        prefix = pickles[0][: -len("data.pkl")]

        big_endian = False
        if prefix + "byteorder" in reader.names:
            big_endian = bytes(reader.read(prefix + "byteorder", limit=16)).strip() == b"big"

        def load_storage(ref, storage_type, numel):
            dtype = storage_type.dtype
            raw = reader.read(f"{prefix}data/{ref.key}", numel * _file_itemsize(dtype))
            file_dtype = np.dtype(np.uint16 if dtype == _BF16 else dtype)
            array = np.frombuffer(raw, file_dtype.newbyteorder(">" if big_endian else "<"))
            if big_endian:
                array = array.astype(file_dtype)
            if dtype == _BF16:
                array = _bf16_to_float32(array)
            elif dtype == np.bool_:
                _check_bools(path, ref.key, array.view(np.uint8))
            array.flags.writeable = False
            return _Storage(ref, storage_type, numel, array)

        data = reader.read(pickles[0], limit=PICKLE_LIMIT)
        unpickler = _Unpickler(io.BytesIO(data), path, load_storage, big_endian)
        del data
        try:
            return unpickler.load()
        finally:
            unpickler.storages.clear()  # the tensors keep what they view


class _PickleReader:
    """A legacy file as one pickle sees it: at most `PICKLE_LIMIT` more bytes, and never past the
    end of the file (a pickle's declared lengths cannot make the file object allocate more)."""

    def __init__(self, f, path, size):
        self.f, self.path = f, path
        self.left = min(PICKLE_LIMIT, size - f.tell())
        self.capped = self.left == PICKLE_LIMIT and size - f.tell() > PICKLE_LIMIT

    def _count(self, n):
        if n is None or n < 0:  # readline(): up to the limit (a longer line fails below)
            return self.left
        if n > self.left:
            if self.capped:
                raise CheckpointError(f"{self.path}: a pickle longer than the {PICKLE_LIMIT}-byte limit.")
            return self.left
        return n

    def read(self, n=-1):
        data = self.f.read(self._count(n))
        self.left -= len(data)
        return data

    def readline(self, n=-1):
        data = self.f.readline(self._count(n))
        self.left -= len(data)
        if self.capped and not self.left and not data.endswith(b"\n"):
            raise CheckpointError(f"{self.path}: a pickle longer than the {PICKLE_LIMIT}-byte limit.")
        return data


def _load_legacy(f, path, size):
    def unpickler(load_storage=None):
        return _Unpickler(_PickleReader(f, path, size), path, load_storage)

    try:
        magic = unpickler().load()
    except CheckpointError:
        raise
    except Exception:
        magic = None
    if magic != LEGACY_MAGIC:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a torch zip nor the legacy format).")
    if unpickler().load() != LEGACY_PROTOCOL:
        raise CheckpointError(f"{path}: unsupported legacy checkpoint protocol.")
    sys_info = unpickler().load()
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        raise CheckpointError(f"{path}: big-endian legacy checkpoints are not supported.")

    # Storages are only described here; their bytes follow the key list. Allocate each (all of
    # them together bounded by the file size) and fill it below: the tensors are views of it.
    declared = 0

    def load_storage(ref, storage_type, numel):
        nonlocal declared
        dtype = storage_type.dtype
        count = numel * _file_itemsize(dtype)
        if declared + count > size:
            raise CheckpointError(
                f"{path}: storage {ref.key!r} ({count} bytes) takes the declared storages past the "
                f"file's {size} bytes (the budget of a legacy checkpoint)."
            )
        declared += count
        raw = bytearray(count)
        if dtype == _BF16:
            array = np.zeros(numel, np.float32)  # widened from `raw` once read
        else:
            array = np.frombuffer(raw, np.dtype(dtype).newbyteorder("<"))
        return _Storage(ref, storage_type, numel, array, raw)

    main = unpickler(load_storage)
    try:
        result = main.load()
        keys = unpickler().load()
        if type(keys) is not list or not all(type(k) is str for k in keys) or len(set(keys)) != len(keys):
            raise CheckpointError(f"{path}: malformed storage key list.")
        if set(keys) != set(main.storages):
            missing = sorted(set(main.storages) - set(keys)) or sorted(set(keys) - set(main.storages))
            raise CheckpointError(f"{path}: storage records do not match the tensors (e.g. {missing[0]!r}).")
        for key in keys:
            _read_legacy_storage(f, path, key, main.storages[key])
        return result
    finally:
        main.storages.clear()


def _read_exact(f, path, count, what):
    data = f.read(count)
    if len(data) != count:
        raise CheckpointError(f"{path}: truncated while reading {what}.")
    return data


def _read_legacy_storage(f, path, key, storage):
    count = int.from_bytes(_read_exact(f, path, 8, f"storage {key!r}"), "little", signed=True)
    if count != storage.numel:
        raise CheckpointError(f"{path}: storage {key!r} holds {count} elements, expected {storage.numel}.")
    raw, view = storage.raw, memoryview(storage.raw)
    done = 0
    while done < len(raw):
        got = f.readinto(view[done:done + CHUNK_BYTES])
        if not got:
            raise CheckpointError(f"{path}: truncated while reading storage {key!r}.")
        done += got
    view.release()
    if storage.storage_type.dtype == _BF16:
        _bf16_to_float32(np.frombuffer(raw, "<u2"), out=storage.array)
        storage.raw = None  # the float32 array holds the values
    else:
        storage.raw = None  # `array` views `raw` (the bytes stay alive through it)
    if storage.storage_type.dtype == np.bool_ or "bool" in storage.views:
        _check_bools(path, key, np.frombuffer(raw, np.uint8))
    for name, view_array in storage.views.items():
        if _TORCH_DTYPES.get(name) == _BF16:  # widened copies made before the bytes were read
            _bf16_to_float32(storage.array.view("<u2"), out=view_array)
        view_array.flags.writeable = False
    storage.array.flags.writeable = False
