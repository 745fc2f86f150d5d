"""Structure-aware fuzzing of the torch-free checkpoint reader (issue 11).

Each case comes from a seed: storages of random types and sizes, a pickle written opcode by opcode
over the allowed globals (the tensor rebuilders with random geometry, Namespace and OrderedDict
with BUILD, torch.Size, dtypes, nested containers, memo references), in the zip format (random
prefix, member order, compression, byteorder) or the legacy one. About half the cases stay valid
and must load to exactly the values this test computes itself from the storage bytes; the others
get one to three mutations (random geometry, a storage record declared differently, BUILD on
random objects, junk opcodes, length and memo bombs, refused globals, many small containers,
missing/extra/lying/bomb/unsupported zip members, broken legacy layouts, truncation, flipped
bytes) and must load or raise CheckpointError naming the file -- never another exception.

Whatever loads may hold only read-only arrays that view bytes of one of the file's storages (as
stored, widened from bfloat16 or byte-swapped), inside them, each element once, with no stride 0
along a dim longer than 1. With only geometry mutated, the test's own classification decides:
a nested layout must load with the right values, a layout that reads an element twice or leaves
the storage must be refused (an interleaved but disjoint one may go either way).

Every load stays under a memory allowance derived from the reader's budgets:
  3 x (file size, x 4 when a zip member is compressed)   storages, bfloat16 widening, read chunks
  + 64 x pickle bytes                                    the unpickled object graph
  + 1 MiB                                                zipfile and unpickler overhead
measured as tracemalloc's peak over the `load` call. tracemalloc sees every allocation made
through Python's and numpy's allocators (zlib's buffers included), counts an allocation at its
requested size even when its pages are never touched (RSS would miss exactly the lazy
multi-gigabyte allocations a bomb makes), is exact per call, and does not move with what the rest
of the test process holds or frees, which makes RSS deltas in a pytest process unreliable. The
cyclic GC is off during the call, and a peak over the allowance must repeat after gc.collect()
to count: in one 200,000-case run, a single load measured 1.8 MB more inside pytest than alone
(the test process's own allocations, not the reader's; a bomb, a function of the file, repeats).

One case in ten runs under a random PICKLE_LIMIT of 16-2048 bytes: a valid file whose pickle is
over it must be refused for it, one whose pickles are all within it must load.

It runs the first 300 cases, then more until ROBERTA_TF_FUZZ_SECONDS (default 20, the CI suite's
share; set it to 600 or more for a deep run) have passed.
ROBERTA_TF_FUZZ_SEED picks another sequence; ROBERTA_TF_FUZZ_CASE=N reruns only case N (a failure
message names N).
"""

import collections
import dataclasses
import gc
import io
import math
import os
import pickle
import random
import struct
import time
import tracemalloc
import types
import zipfile

import numpy as np

from roberta_tf.converters import torch_checkpoint
from roberta_tf.converters.torch_checkpoint import LEGACY_MAGIC, LEGACY_PROTOCOL, CheckpointError, load
from test_torch_checkpoint import PickleWriter

SECONDS = float(os.environ.get("ROBERTA_TF_FUZZ_SECONDS", "20"))
SEED = int(os.environ.get("ROBERTA_TF_FUZZ_SEED", "11"))
ONLY_CASE = os.environ.get("ROBERTA_TF_FUZZ_CASE")
MIN_CASES = 300

# This test's own tables (not the reader's): storage class or dtype -> numpy code ("bf16": bfloat16).
TYPED = {
    "FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}
V3 = {
    "float32": "f4", "float64": "f8", "float16": "f2", "bfloat16": "bf16", "int64": "i8", "int32": "i4",
    "int16": "i2", "int8": "i1", "uint8": "u1", "uint16": "u2", "uint32": "u4", "uint64": "u8", "bool": "?",
}
ITEMSIZE = {name: 2 if code == "bf16" else np.dtype(code).itemsize for name, code in {**TYPED, **V3}.items()}
# Causes of a CheckpointError that mean a bug in the reader rather than a bad file.
BUG_CAUSES = (NameError, UnboundLocalError, AssertionError, SystemError, RecursionError, MemoryError)
MUTATIONS = ["geometry", "geometry", "declared", "build", "junk", "length_bomb", "memo_bomb", "global",
             "amplify", "layout", "layout", "bytes"]


@dataclasses.dataclass
class Storage:
    key: str
    type_name: str  # a TYPED name or "UntypedStorage"
    raw: bytes

    @property
    def itemsize(self):
        return 1 if self.type_name == "UntypedStorage" else ITEMSIZE[self.type_name]

    @property
    def numel(self):
        return len(self.raw) // self.itemsize


@dataclasses.dataclass
class Tensor:
    storage: Storage
    offset: object
    size: object
    stride: object
    dtype: object = None  # a V3 name: `_rebuild_tensor_v3` over an untyped storage
    rebuild: str = "_rebuild_tensor_v2"
    parameter: bool = False
    torch_size: bool = False

    @property
    def elements(self):
        """Elements of the storage as this tensor's dtype."""
        return len(self.storage.raw) // ITEMSIZE[self.dtype] if self.dtype else self.storage.numel


@dataclasses.dataclass
class DType:
    name: str  # compared by name: the reader returns its own stand-in


@dataclasses.dataclass
class WithMetadata:
    mapping: collections.OrderedDict  # an OrderedDict given `_metadata` by BUILD
    metadata: dict


# --- the test's own reference: which layouts are valid, what a view holds ---------------------


def _index(shape, strides):
    """The flat offset of every element of `shape` stepped by `strides` (dims of size 1 add 0)."""
    total = np.zeros(shape, np.int64) if shape else np.int64(0)
    for d, (n, s) in enumerate(zip(shape, strides)):
        if n > 1:
            total = total + np.arange(n, dtype=np.int64).reshape([-1 if i == d else 1 for i in range(len(shape))]) * s
    return total


def geometry_class(tensor):
    """"load" (a nested layout: must load), "either" (interleaved but disjoint, or an empty tensor
    numpy may not shape) or "refuse" (reads an element twice or outside, or is malformed)."""
    size, stride, offset, numel = tensor.size, tensor.stride, tensor.offset, tensor.elements
    ints = lambda v: isinstance(v, (tuple, list)) and all(type(x) is int for x in v)  # noqa: E731
    if not (ints(size) and ints(stride) and type(offset) is int and len(size) == len(stride) <= 64):
        return "refuse"
    if any(v < 0 for v in (*size, *stride, offset)):
        return "refuse"
    count = math.prod(size)
    if count == 0:
        return "load" if all(n < 2**31 for n in size) else "either"
    if offset + count > numel:  # pigeonhole: that many distinct elements do not fit
        return "refuse"
    nested, farthest = True, 0
    for s, n in sorted((s, n) for n, s in zip(size, stride) if n > 1):
        nested = nested and s > farthest
        farthest += (n - 1) * s
    if offset + farthest >= numel:
        return "refuse"
    if nested:
        return "load"
    return "either" if np.unique(_index(size, stride)).size == count else "refuse"


def expected_array(tensor, big_endian):
    code = V3[tensor.dtype] if tensor.dtype else TYPED[tensor.storage.type_name]
    order = ">" if big_endian else "<"
    raw = tensor.storage.raw
    if code == "bf16":
        flat = (np.frombuffer(raw[: len(raw) // 2 * 2], order + "u2").astype("<u4") << 16).view("<f4")
    else:
        dtype = np.dtype(code)
        flat = np.frombuffer(raw[: len(raw) // dtype.itemsize * dtype.itemsize], dtype.newbyteorder(order)).astype(dtype)
    size = tuple(tensor.size)
    if 0 in size:
        return np.empty(size, flat.dtype)
    return np.asarray(flat[tensor.offset + _index(size, tensor.stride)])


# --- case generation -----------------------------------------------------------------------------


class Case:
    def __init__(self, index):
        self.index = index
        self.rng = random.Random(SEED * 1_000_003 + index)
        self.fmt = "zip" if self.rng.random() < 0.65 else "legacy"
        self.big_endian = self.fmt == "zip" and self.rng.random() < 0.1
        self.storages = []
        self.tensors = []
        self.mutations = []
        self.hooks = []  # (probability, emitter of one value): what mutations add to containers
        self.declared = {}  # storage key -> (type name, numel) as the pickle declares it
        self.memo = {}  # storage key -> memo index, per pickle written
        self.layout = None  # the layout mutation, once chosen
        self.pickle_sizes = []  # every pickle in the file (zip: data.pkl)
        self.flip = None  # the byte mutation, once chosen

    # storages and tensors -----------------------------------------------------------------------

    def new_storage(self, nbytes, type_name):
        raw = self.rng.randbytes(nbytes)
        if type_name == "BoolStorage":
            raw = bytes(b & 1 for b in raw)
        storage = Storage(f"{self.rng.choice(['', '9', 'k'])}{len(self.storages)}", type_name, raw)
        self.storages.append(storage)
        return storage

    def nested_geometry(self, ndim):
        """(offset, size, stride, elements needed): a permuted, possibly stepped and padded block."""
        rng = self.rng
        size = [rng.choice([1, 1, 2, 3, 4, 5]) if rng.random() < 0.97 else 0 for _ in range(ndim)]
        order = list(range(ndim))
        rng.shuffle(order)  # order[0] is the fastest dim
        stride, reach = [0] * ndim, 1  # reach: one past the farthest element the faster dims read
        for d in order:
            if size[d] <= 1:  # torch gives a size-1 dim any stride (and an empty tensor any)
                stride[d] = rng.choice([0, 1, reach, 7, 10**12, 2**62, 2**70])
                continue
            stride[d] = reach + rng.choice([0, 0, 0, 1, 2])
            reach += stride[d] * (size[d] - 1)
        offset = rng.choice([0, 0, 1, 2, 5])
        return offset, size, stride, (offset + reach if 0 not in size else 0)

    def tensor(self):
        rng = self.rng
        offset, size, stride, needed = self.nested_geometry(rng.choice([0, 1, 1, 2, 2, 3, 4]))
        fits = [s for s in self.storages if s.numel >= needed and s.type_name != "UntypedStorage"]
        untyped = [s for s in self.storages if s.type_name == "UntypedStorage"]
        dtype = None
        if fits and rng.random() < 0.4:
            storage = rng.choice(fits)
        elif untyped and rng.random() < 0.3:
            storage = rng.choice(untyped)
            dtype = rng.choice([d for d in V3 if len(storage.raw) % ITEMSIZE[d] == 0 and len(storage.raw) // ITEMSIZE[d] >= needed]
                               or [None])
            if dtype is None:
                return self.tensor()
        elif rng.random() < 0.25:
            dtype = rng.choice(list(V3))
            storage = self.new_storage((needed + rng.choice([0, 0, 1, 3])) * ITEMSIZE[dtype], "UntypedStorage")
        else:
            type_name = rng.choice(list(TYPED))
            storage = self.new_storage((needed + rng.choice([0, 0, 1, 3])) * ITEMSIZE[type_name], type_name)
        if dtype == "bool":  # torch writes bools as bytes 0 and 1 (the reader refuses others)
            storage.raw = bytes(b & 1 for b in storage.raw)
        rebuild = "_rebuild_tensor_v3" if dtype else rng.choice(["_rebuild_tensor_v2"] * 5 + ["_rebuild_tensor"])
        tensor = Tensor(storage, offset, size, stride, dtype, rebuild, rng.random() < 0.2, rng.random() < 0.3)
        self.tensors.append(tensor)
        return tensor

    # the pickle ------------------------------------------------------------------------------

    def emit_storage_ref(self, w, storage):
        if storage.key in self.memo:
            w.get(self.memo[storage.key])
            return
        type_name, numel = self.declared.get(storage.key, (storage.type_name, storage.numel))
        w.value(("storage", lambda w: w.global_("torch", type_name), storage.key, "cpu", numel))
        w.raw(pickle.BINPERSID)
        self.memo[storage.key] = w.put()

    def emit_tensor(self, w, tensor):
        rng = self.rng
        size = tuple(tensor.size) if isinstance(tensor.size, (list, tuple)) else tensor.size
        stride = tuple(tensor.stride) if isinstance(tensor.stride, (list, tuple)) else tensor.stride
        args = [lambda w: self.emit_storage_ref(w, tensor.storage), tensor.offset,
                (lambda w: w.call("torch", "Size", size)) if tensor.torch_size else size, stride]
        if tensor.rebuild != "_rebuild_tensor":
            args += [False, rng.choice([lambda w: w.call("collections", "OrderedDict"), None])]
        if tensor.rebuild == "_rebuild_tensor_v3":
            args.append(lambda w: w.global_("torch", tensor.dtype))
        if tensor.rebuild != "_rebuild_tensor" and rng.random() < 0.3:
            args.append(rng.choice([None, {}]))  # metadata
        if tensor.parameter:
            w.global_("torch._utils", "_rebuild_parameter").raw(pickle.MARK)
        w.call("torch._utils", tensor.rebuild, *args)
        if tensor.parameter:
            w.value(True).call("collections", "OrderedDict").raw(pickle.TUPLE + pickle.REDUCE)

    def hook(self, w, in_dict):
        """What mutations add to a container; each addition is one value (with a key in a dict)."""
        for probability, emit in self.hooks:
            if self.rng.random() < probability:
                if in_dict:
                    w.value(f"extra{len(w.code)}")
                emit(w)

    def plain(self, depth):
        """(emitter, expected) of random plain data, tensors and stand-ins."""
        rng = self.rng
        weights = {"scalar": 6, "str": 4, "tensor": 5, "size": 1, "dtype": 1, "shared": 1}
        if depth < 4:
            weights.update(list=3, tuple=2, dict=3, odict=2, namespace=2)
        kind = rng.choices(list(weights), list(weights.values()))[0]
        if kind == "scalar":
            v = rng.choice([None, True, False, rng.randint(-5, 300), rng.randint(-2**40, 2**40), 2**70 + rng.randint(0, 9),
                            rng.uniform(-1e6, 1e6), 0.0])
            return (lambda w: w.value(v)), v
        if kind == "str":
            v = "".join(rng.choice("ab_.\u00e9\u20ac\U0001f600 ") for _ in range(rng.randint(0, 12)))
            return (lambda w: w.value(v)), v
        if kind == "tensor":
            tensor = self.tensor()
            return (lambda w: self.emit_tensor(w, tensor)), tensor
        if kind == "size":
            v = tuple(rng.randint(0, 9) for _ in range(rng.randint(0, 3)))
            return (lambda w: w.call("torch", "Size", v)), v
        if kind == "dtype":
            name = rng.choice(list(V3))
            return (lambda w: w.global_("torch", name)), DType(name)
        if kind == "shared":  # one object twice in a tuple: memo PUT, then GET
            emit, expected = self.plain(depth + 1)

            def twice(w):
                w.raw(pickle.MARK)
                emit(w)
                w.get(w.put()).raw(pickle.TUPLE)

            return twice, (expected, expected)
        children = [self.plain(depth + 1) for _ in range(rng.randint(0, 4))]
        if kind in ("list", "tuple"):
            def sequence(w):
                w.raw((pickle.EMPTY_LIST if kind == "list" else b"") + pickle.MARK)
                for emit, _ in children:
                    emit(w)
                    self.hook(w, in_dict=False)
                w.raw(pickle.APPENDS if kind == "list" else pickle.TUPLE)

            expected = [e for _, e in children]
            return sequence, (expected if kind == "list" else tuple(expected))
        # unique keys, so every value (and each storage it references) is written
        keys = [i if kind == "dict" and rng.random() < 0.2 else f"{rng.choice(['a', 'encoder.w', '_x'])}{i}"
                for i in range(len(children))]
        items = [(key, emit, expected) for key, (emit, expected) in zip(keys, children)]
        if kind == "namespace":  # argparse.Namespace: NEWOBJ, then BUILD with its attributes
            def namespace(w):
                w.global_("argparse", "Namespace").value(()).raw(pickle.NEWOBJ)
                w.raw(pickle.EMPTY_DICT + pickle.MARK)
                for key, emit, _ in items:
                    w.value(key)
                    emit(w)
                w.raw(pickle.SETITEMS + pickle.BUILD)

            return namespace, types.SimpleNamespace(**{k: e for k, _, e in items})
        metadata = {"": {"version": rng.randint(1, 3)}} if kind == "odict" and rng.random() < 0.5 else None

        def mapping(w):
            if kind == "odict":
                w.call("collections", "OrderedDict")
            else:
                w.raw(pickle.EMPTY_DICT)
            w.raw(pickle.MARK)
            for key, emit, _ in items:
                w.value(key)
                emit(w)
            w.raw(pickle.SETITEMS)
            if metadata is not None:
                w.build({"_metadata": metadata})

        expected = (collections.OrderedDict if kind == "odict" else dict)((k, e) for k, _, e in items)
        return mapping, (WithMetadata(expected, metadata) if metadata is not None else expected)

    def entries(self):
        """The checkpoint's top level: a dict of tensors and plain data, as fairseq and HF files hold."""
        rng = self.rng
        entries = []
        for i in range(rng.randint(0, 6)):
            if rng.random() < 0.3:
                entries.append((f"t{i}", self.plain(2)))
            else:
                tensor = self.tensor()
                entries.append((f"t{i}", ((lambda w, t=tensor: self.emit_tensor(w, t)), tensor)))
        if rng.random() < 0.5:
            entries.append(("meta", self.plain(1)))
        return entries

    def pickle_bytes(self, entries):
        self.memo = {}
        w = PickleWriter()
        w.raw(pickle.EMPTY_DICT + pickle.MARK)
        for name, (emit, _) in entries:
            w.value(name)
            emit(w)
            self.hook(w, in_dict=True)
        w.raw(pickle.SETITEMS)
        return w.stop()

    # mutations ---------------------------------------------------------------------------------

    def mutate(self):
        rng = self.rng
        kind = rng.choice(MUTATIONS)
        if kind == "geometry" and self.tensors:
            tensor = rng.choice(self.tensors)
            tensor.offset, tensor.size, tensor.stride = random_geometry(rng, tensor.elements)
        elif kind == "declared" and self.storages:
            storage = rng.choice(self.storages)
            type_name, numel = storage.type_name, storage.numel
            what = rng.choice(["more", "fewer", "type", "huge", "negative"])
            numel = {"more": numel + 1, "fewer": numel - 1, "huge": 2**40, "negative": -1}.get(what, numel)
            if what == "type":
                type_name = rng.choice(list(TYPED) + ["UntypedStorage"])
            self.declared[storage.key] = (type_name, numel)
        elif kind == "build":
            self.hooks.append((0.3, self.random_build))
        elif kind == "junk":
            self.hooks.append((0.2, lambda w: w.raw(b"".join(
                bytes([rng.choice(JUNK_OPCODES)]) + rng.randbytes(rng.choice([0, 1, 2, 4, 8])) for _ in range(rng.randint(1, 4))))))
        elif kind == "length_bomb":
            op, fmt = rng.choice([(pickle.BINBYTES8, "<Q"), (pickle.BINUNICODE8, "<Q"), (pickle.BYTEARRAY8, "<Q"),
                                  (pickle.FRAME, "<Q"), (pickle.LONG4, "<i"), (pickle.BINUNICODE, "<I"),
                                  (pickle.BINBYTES, "<I"), (pickle.BINSTRING, "<i")])
            length = rng.choice([2**20, 2**30, 2**31 - 1] + ([2**40, 2**62] if fmt == "<Q" else []))
            self.hooks.append((0.3, lambda w: w.raw(op + struct.pack(fmt, length))))
        elif kind == "memo_bomb":
            index = rng.choice([2**24, 2**31, 2**32 - 1])
            self.hooks.append((0.3, lambda w: w.raw(pickle.NONE + pickle.LONG_BINPUT + struct.pack("<I", index))))
        elif kind == "global":
            module, name = rng.choice([("os", "system"), ("builtins", "eval"), ("torch._utils", "_rebuild_from_type_v2"),
                                       ("numpy.core.multiarray", "_reconstruct"), ("collections", "Counter"),
                                       ("torch", "load"), ("argparse", "Namespace.__new__"), ("builtins", "getattr")])
            self.hooks.append((0.3, lambda w: w.global_(module, name).value(("x",)).raw(pickle.REDUCE)))
        elif kind == "amplify":  # many small objects: the object graph per pickle byte
            count = rng.choice([1000, 5000, 20000])
            item = rng.choice([pickle.EMPTY_LIST, pickle.EMPTY_DICT, pickle.EMPTY_TUPLE, pickle.NONE, b"memo"])
            if item == b"memo":  # memo entries: a dict entry per 5 bytes
                body = b"".join(pickle.NONE + pickle.LONG_BINPUT + struct.pack("<I", i) + pickle.APPEND for i in range(count))
            else:
                body = (item + pickle.APPEND) * count
            self.hooks.append((1.0, _once(lambda w: w.raw(pickle.EMPTY_LIST + body))))
        elif kind == "layout" and self.layout is None:
            options = (["drop", "extra", "second_pickle", "bomb", "pickle_bomb", "method", "lie", "lie"] if self.fmt == "zip"
                       else ["drop_key", "extra_key", "duplicate_key", "count", "truncate_data", "trailing", "not_a_list"])
            self.layout = rng.choice(options)
            kind = f"layout:{self.layout}"
            if self.layout == "bomb" and self.storages:  # zeros, deflated, declared far past the file
                storage = rng.choice(self.storages)
                storage.raw = bytes(storage.itemsize * rng.choice([2**16, 2**20, 2**22]))
                self.declared.pop(storage.key, None)
        elif kind == "bytes":
            self.flip = rng.choice(["truncate", "flip", "flip"])
            kind = f"bytes:{self.flip}"
        else:
            return
        self.mutations.append(kind)

    def random_build(self, w):
        """BUILD on a random object with a random state; leaves the object as one value."""
        rng = self.rng
        target = rng.choice(["storage", "tensor", "rebuild", "dtype", "list", "dict", "odict", "namespace", "class", "size"])
        if target == "storage" and self.storages:
            self.emit_storage_ref(w, rng.choice(self.storages))
        elif target == "tensor" and self.tensors:
            self.emit_tensor(w, rng.choice(self.tensors))
        elif target == "rebuild":
            w.global_("torch._utils", rng.choice(["_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter"]))
        elif target == "dtype":
            w.global_("torch", rng.choice(["float32", "FloatStorage", "UntypedStorage"]))
        elif target == "odict":
            w.call("collections", "OrderedDict")
        elif target == "namespace":
            w.global_("argparse", "Namespace").value(()).raw(pickle.NEWOBJ)
        elif target == "class":
            w.global_(*rng.choice([("argparse", "Namespace"), ("collections", "OrderedDict"), ("torch", "Size")]))
        elif target == "size":
            w.call("torch", "Size", (1, 2))
        else:
            w.raw(pickle.EMPTY_LIST if target == "list" else pickle.EMPTY_DICT)
        tensor = rng.choice(self.tensors) if self.tensors else None
        payload = (lambda w: self.emit_tensor(w, tensor)) if tensor else 1
        w.build(rng.choice([
            {"array": payload}, {"views": {"float32": payload}}, {"_metadata": {}}, {"key": "0", "ref": payload},
            (None, {"array": payload}), ({"a": 1}, {"b": 2}), [1, 2], None, {1: 2}, {"__class__": payload},
            {"__setstate__": payload, "x": 1},
        ]))


JUNK_OPCODES = [op for op in pickle._Unpickler.dispatch if op != pickle.STOP[0]]


def _once(emit):
    done = []

    def once(w):
        if done:
            w.value(None)
        else:
            done.append(True)
            emit(w)

    return once


def random_geometry(rng, numel):
    ndim = rng.choice([0, 1, 1, 2, 2, 3, 4, 65])
    big = [2**31, 2**40, 2**63, 2**64 + 1]
    size = [rng.choice([0, 1, 2, 2, 3, 4, 7, numel, numel + 1] + big[: rng.randint(0, 4)]) for _ in range(ndim)]
    stride = [rng.choice([0, 0, 1, 1, 2, 3, 4, 5, 6, numel] + big[: rng.randint(0, 4)]) for _ in range(ndim)]
    offset = rng.choice([0, 0, 1, 2, max(numel - 1, 0), numel, numel + 1, 2**62])
    spoil = rng.choice(["negative", "bool", "float", "str", "ragged", "none"] + [None] * 30)
    if spoil == "negative" and size:
        size[0] = -1
    elif spoil == "bool":
        offset = True
    elif spoil == "float":
        offset = 0.0
    elif spoil == "str" and stride:
        stride[0] = "1"
    elif spoil == "ragged":
        stride = stride + [1]
    elif spoil == "none":
        size = None
    return offset, size, stride


# --- files -----------------------------------------------------------------------------------


def write_zip(case, pickle_bytes):
    rng, layout = case.rng, case.layout
    prefix = rng.choice(["archive", "model", "pytorch_model", "x"])
    members = [(f"{prefix}/data.pkl", pickle_bytes)]
    members += [(f"{prefix}/data/{s.key}", s.raw) for s in case.storages]  # big-endian files hold big-endian bytes
    if case.big_endian or rng.random() < 0.7:
        members.append((f"{prefix}/byteorder", b"big" if case.big_endian else b"little"))
    members += [(f"{prefix}/version", b"3\n"), (f"{prefix}/.format_version", b"1")][: rng.randint(0, 2)]
    if layout == "drop":
        members.pop(rng.randrange(len(members)))
    elif layout == "extra":
        members.append((f"{prefix}/data/{rng.randint(100, 999)}", rng.randbytes(rng.randint(0, 64))))
    elif layout == "second_pickle":
        members.append(("other/data.pkl", pickle_bytes))
    elif layout == "pickle_bomb":  # a long string, deflated about 1000:1
        members[0] = (members[0][0], b"\x80\x02X" + struct.pack("<I", 2**22) + bytes(2**22) + b".")
    rng.shuffle(members)
    compression = rng.choice(["stored", "stored", "deflated", "mixed"])
    if layout in ("bomb", "pickle_bomb"):
        compression = "deflated"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            method = {"stored": zipfile.ZIP_STORED, "deflated": zipfile.ZIP_DEFLATED}.get(
                compression, rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
            if layout == "method" and rng.random() < 0.5:
                method = rng.choice([zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    data = bytearray(buffer.getvalue())
    if layout == "lie":
        lie_about_sizes(data, rng)
    return bytes(data)


def lie_about_sizes(data, rng):
    """Rewrites one member's sizes in the central directory and/or its local header."""
    headers, at = [], data.find(b"PK\x01\x02")
    while at >= 0:
        headers.append(at)
        at = data.find(b"PK\x01\x02", at + 4)
    if not headers:
        return
    at = rng.choice(headers)
    local = struct.unpack_from("<I", data, at + 42)[0]
    if rng.random() < 0.5:
        value = rng.choice([0, 1, 2**20, 2**31, 2**32 - 1])
    else:
        value = max(0, struct.unpack_from("<I", data, at + 24)[0] + rng.choice([-3, -1, 1, 7]))
    field = rng.choice(["uncompressed", "compressed", "both", "local"])
    if field in ("uncompressed", "both"):
        struct.pack_into("<I", data, at + 24, value)
    if field in ("compressed", "both"):
        struct.pack_into("<I", data, at + 20, value)
    if field == "local" and local + 26 <= len(data):
        struct.pack_into("<I", data, local + 22, value)


def write_legacy(case, pickle_bytes):
    rng, layout = case.rng, case.layout
    keys = [s.key for s in case.storages]
    rng.shuffle(keys)
    counts = {s.key: s.numel for s in case.storages}
    raws = {s.key: s.raw for s in case.storages}
    if layout == "drop_key" and keys:
        keys.pop()
    elif layout == "extra_key":
        keys.append("999")
        counts["999"], raws["999"] = 1, b"\0\0\0\0"
    elif layout == "duplicate_key" and keys:
        keys.append(keys[0])
    elif layout == "count" and keys:
        counts[keys[0]] = rng.choice([-1, 0, counts[keys[0]] + 1, 2**40])
    out = io.BytesIO()
    pickles = [pickle.dumps(header, protocol=2) for header in (
        LEGACY_MAGIC, LEGACY_PROTOCOL,
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}})]
    pickles += [pickle_bytes, pickle.dumps(tuple(keys) if layout == "not_a_list" else keys, protocol=2)]
    case.pickle_sizes = [len(p) for p in pickles]
    out.write(b"".join(pickles))
    for key in keys:
        out.write(struct.pack("<q", counts[key]) + raws[key])
    data = out.getvalue()
    if layout == "truncate_data" and case.storages:
        data = data[: -rng.randint(1, 4)]
    elif layout == "trailing":
        data += rng.randbytes(9)
    return data


def build_case(index, directory):
    case = Case(index)
    rng = case.rng
    entries = case.entries()
    if rng.random() < 0.5:
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            case.mutate()
    pickle_bytes = case.pickle_bytes(entries)
    if case.fmt == "zip":
        data = write_zip(case, pickle_bytes)
        case.pickle_sizes = [len(pickle_bytes)]
    else:
        data = write_legacy(case, pickle_bytes)
    flip = getattr(case, "flip", None)
    if flip == "truncate":
        data = data[: rng.randrange(len(data))]
    elif flip == "flip":
        data = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        data = bytes(data)
    path = directory / f"case{index}.pt"
    path.write_bytes(data)
    return case, entries, path, len(pickle_bytes), case.fmt == "zip" and has_compressed_member(data)


def has_compressed_member(data):
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(info.compress_type != zipfile.ZIP_STORED for info in archive.infolist())
    except Exception:  # noqa: BLE001 - a broken zip: allow the larger budget
        return True


# --- checks ----------------------------------------------------------------------------------------


def allowance(file_size, pickle_size, compressed):
    return 3 * file_size * (4 if compressed else 1) + 64 * pickle_size + (1 << 20)


def root(array):
    """The object at the end of an array's base chain: the buffer holding its bytes."""
    for _ in range(100):
        base = getattr(array, "base", None)
        if base is None:
            break
        array = base
    return array


def raw_forms(buffer):
    """The byte strings a file may hold for a tensor's buffer: the buffer itself, or, for a copy
    the reader made, the bfloat16 it was widened from or the big-endian bytes it was swapped from."""
    if not isinstance(buffer, np.ndarray):
        return [bytes(buffer)]
    data = buffer.reshape(-1).view(np.uint8)
    forms = [data.tobytes()]
    if buffer.itemsize > 1:
        forms.append(buffer.reshape(-1).byteswap().view(np.uint8).tobytes())
    if buffer.itemsize == 4 and data.size and not data.reshape(-1, 4)[:, :2].any():  # widened (uint32 << 16)
        high = data.reshape(-1, 4)[:, 2:]
        forms += [high.tobytes(), high[:, ::-1].tobytes()]
    return forms


def file_sources(path):
    """The file's bytes and, for a zip, every member it can decompress."""
    data = path.read_bytes()
    sources = [data]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                try:
                    if info.file_size <= 1 << 24:
                        sources.append(archive.read(info))
                except Exception:  # noqa: BLE001 - a member the reader cannot have used either
                    pass
    except Exception:  # noqa: BLE001
        pass
    return sources


def arrays_in(value, limit=200_000):
    """Every ndarray in a loaded object graph (which may have cycles)."""
    found, stack, seen = [], [value], set()
    while stack and len(seen) < limit:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
            stack.extend(getattr(item, "__dict__", {}).values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, types.SimpleNamespace):
            stack.extend(vars(item).values())
    return found


def check_array(array, buffers, where):
    assert not array.flags.writeable, f"{where}: a writeable array"
    if array.size == 0:
        return
    for n, s in zip(array.shape, array.strides):
        assert n == 1 or s > 0, f"{where}: stride {s} along a dim of {n} (shape {array.shape}, strides {array.strides})"
    buffer = root(array)
    low, high = np.lib.array_utils.byte_bounds(array)
    buffer_low, buffer_high = np.lib.array_utils.byte_bounds(np.frombuffer(buffer, np.uint8)
                                                          if not isinstance(buffer, np.ndarray) else buffer)
    assert buffer_low <= low and high <= buffer_high, f"{where}: bytes [{low}, {high}) outside its buffer [{buffer_low}, {buffer_high})"
    assert any(form in source for form in raw_forms(buffer) for source in buffers), \
        f"{where}: a view of {buffer_high - buffer_low} bytes found nowhere in the file"
    if array.size <= 65536:
        offsets = np.broadcast_to(_index(array.shape, array.strides), array.shape)
        assert np.unique(offsets).size == array.size, f"{where}: elements read twice (strides {array.strides})"


def same(expected, got, big_endian, where="result"):
    if isinstance(expected, Tensor):
        want = expected_array(expected, big_endian)
        assert isinstance(got, np.ndarray), f"{where}: {type(got).__name__}, expected an array"
        assert (got.shape, got.dtype) == (want.shape, want.dtype), f"{where}: {got.shape} {got.dtype}, expected {want.shape} {want.dtype}"
        assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes(), f"{where}: values differ"
    elif isinstance(expected, DType):
        assert getattr(got, "name", None) == expected.name, where
    elif isinstance(expected, WithMetadata):
        same(expected.mapping, got, big_endian, where)
        assert got._metadata == expected.metadata, where
    elif isinstance(expected, types.SimpleNamespace):
        assert isinstance(got, types.SimpleNamespace), f"{where}: {type(got).__name__}"
        same(vars(expected), vars(got), big_endian, where)
    elif isinstance(expected, dict):
        assert type(got) is type(expected) and list(got) == list(expected), f"{where}: keys {list(got)}, expected {list(expected)}"
        for key in expected:
            same(expected[key], got[key], big_endian, f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert type(got) is type(expected) and len(got) == len(expected), f"{where}: {type(got).__name__} of {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            same(e, g, big_endian, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert type(got) is float and struct.pack("<d", expected) == struct.pack("<d", got), where
    else:
        assert type(got) is type(expected) and got == expected, f"{where}: {got!r}, expected {expected!r}"


def measured_load(path, pickle_limit=None):
    """(result, error, tracemalloc peak) of `load(path)`, under `pickle_limit` if given. The cyclic
    garbage collector is off meanwhile: a collection would free (and finalize) earlier cases'
    garbage inside the measured window, and the test process's own allocations then count."""
    saved_limit = torch_checkpoint.PICKLE_LIMIT
    collecting = gc.isenabled()
    gc.disable()
    tracemalloc.start()
    try:
        if pickle_limit:
            torch_checkpoint.PICKLE_LIMIT = pickle_limit
        try:
            result, error = load(path), None
        except Exception as raised:  # noqa: BLE001 - classified by the caller
            result, error = None, raised
    finally:
        torch_checkpoint.PICKLE_LIMIT = saved_limit
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if collecting:
            gc.enable()
    return result, error, peak


def run_case(index, directory, stats):
    case, entries, path, pickle_size, compressed = build_case(index, directory)
    size = path.stat().st_size
    # one case in ten under a small pickle limit, so that the limit (and reading a legacy file
    # past it) is exercised too
    chooser = random.Random(SEED * 7919 + index)
    pickle_limit = chooser.randint(16, 2048) if chooser.random() < 0.1 else None
    result, error, peak = measured_load(path, pickle_limit)
    limit = allowance(size, pickle_size, compressed)
    if peak > limit:  # a bomb is a function of the file: it repeats; a one-off of the test process does not
        gc.collect()
        peak = min(peak, measured_load(path, pickle_limit)[2])
    label = (f"case {index} ({case.fmt}, mutations {case.mutations or 'none'}, pickle limit {pickle_limit}; "
             f"ROBERTA_TF_FUZZ_CASE={index} reruns it)")
    over_limit = bool(pickle_limit) and max(case.pickle_sizes, default=0) > pickle_limit
    if pickle_limit and not case.mutations and pickle_size > pickle_limit:
        assert error is not None and ("limit" in str(error) or "allowed" in str(error)), \
            f"{label}: a {pickle_size}-byte pickle passed the {pickle_limit}-byte limit: {error}"
        stats["refused over the pickle limit"] += 1
    assert peak <= limit, f"{label}: peak {peak} bytes, allowance {limit}, file {size} bytes"
    stats["peak over 1 MiB per file byte"] = max(stats["peak over 1 MiB per file byte"], (peak - (1 << 20)) / max(size, 1))
    stats["largest peak"] = max(stats["largest peak"], peak)
    geometry_only = set(case.mutations) == {"geometry"}
    classes = [geometry_class(t) for t in case.tensors] if geometry_only else []
    if error is not None:
        assert isinstance(error, CheckpointError), f"{label}: {type(error).__name__}: {error}"
        assert path.name in str(error), f"{label}: the message does not name the file: {error}"
        cause = error.__cause__
        assert not isinstance(cause, BUG_CAUSES), f"{label}: caused by {type(cause).__name__}: {cause}"
        stats["refused"] += 1
        stats["causes"][type(cause).__name__ if cause else "CheckpointError"] += 1
        if over_limit:
            return
        assert case.mutations, f"{label}: a valid file was refused: {error}"
        assert not geometry_only or set(classes) != {"load"}, f"{label}: refused though every layout is nested: {error}"
        stats["refused with random geometry"] += geometry_only
        return
    stats["loaded"] += 1
    stats["loaded under a small pickle limit"] += bool(pickle_limit)
    buffers = file_sources(path)
    for i, array in enumerate(arrays_in(result)):
        check_array(array, buffers, f"{label}, array {i}")
    if geometry_only:
        assert "refuse" not in classes, f"{label}: loaded a layout that reads an element twice or outside"
        stats["loaded with random geometry"] += 1
    if not case.mutations or geometry_only:
        same({name: expected for name, (_, expected) in entries}, result, case.big_endian, label)


def test_fuzz_reader(tmp_path):
    stats = collections.Counter()
    stats["causes"] = collections.Counter()
    start = time.monotonic()
    indices = [int(ONLY_CASE)] if ONLY_CASE else range(10**9)
    for index in indices:
        if not ONLY_CASE and index >= MIN_CASES and time.monotonic() - start > SECONDS:
            break
        run_case(index, tmp_path, stats)
        (tmp_path / f"case{index}.pt").unlink()
        stats["cases"] += 1
    seconds = time.monotonic() - start
    causes = ", ".join(f"{name} {count}" for name, count in stats["causes"].most_common())
    print(f"\nfuzz seed {SEED}: {stats['cases']} cases in {seconds:.1f} s ({stats['cases'] / seconds:.0f}/s): "
          f"{stats['loaded']} loaded ({stats['loaded with random geometry']} with random geometry), "
          f"{stats['refused']} refused ({stats['refused with random geometry']} with random geometry; causes: {causes}); "
          f"under a small pickle limit {stats['loaded under a small pickle limit']} loaded, "
          f"{stats['refused over the pickle limit']} refused for it; largest peak {stats['largest peak']} bytes, "
          f"at most {stats['peak over 1 MiB per file byte']:.2f} bytes above 1 MiB per file byte")
    if not ONLY_CASE:
        assert stats["loaded"] and stats["refused"] and stats["loaded with random geometry"]
