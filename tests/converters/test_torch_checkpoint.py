"""`roberta_tf.converters.torch_checkpoint`: torch-free, code-free checkpoint reading."""

import argparse
import builtins
import collections
import os
import pickle
import struct
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

from roberta_tf.converters.layout import ConversionError
from roberta_tf.converters.torch_checkpoint import LEGACY_MAGIC, LEGACY_PROTOCOL, CheckpointError, load

FORMATS = {"zip": True, "legacy": False}


def _torch():
    return pytest.importorskip("torch", reason="torch is needed to write checkpoint fixtures")


def _save(obj, path, zip_format=True):
    _torch().save(obj, path, _use_new_zipfile_serialization=zip_format)
    return path


def _state_dict():
    torch = _torch()
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return collections.OrderedDict(
        base=base,
        transposed=base.t(),  # non-contiguous view of `base`'s storage
        slice=base[1:3, 2:5],  # offset + strides into the same storage
        half=torch.linspace(-2, 2, 7, dtype=torch.float16),
        bf16=torch.tensor([1.5, -0.25, 3e10, 0.0], dtype=torch.bfloat16),
        long=torch.tensor([[1, -2], [2**40, 7]], dtype=torch.int64),
        scalar=torch.tensor(3.25),
        empty=torch.zeros(0, 5),
        flags=torch.tensor([True, False, True]),
    )


def _expected(state):
    return {k: (v.float() if v.dtype == _torch().bfloat16 else v).numpy() for k, v in state.items()}


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path, fmt):
    state = _state_dict()
    obj = {"model": state, "nested": {"args": argparse.Namespace(encoder_layers=2, activation_fn="gelu")}}
    loaded = load(_save(obj, tmp_path / "model.pt", FORMATS[fmt]))

    assert isinstance(loaded["model"], collections.OrderedDict)
    assert list(loaded["model"]) == list(state)
    for key, want in _expected(state).items():
        got = loaded["model"][key]
        assert isinstance(got, np.ndarray), key
        assert got.dtype == want.dtype and got.shape == want.shape, key
        assert np.array_equal(got, want), key
    assert loaded["model"]["bf16"].dtype == np.float32
    args = loaded["nested"]["args"]
    assert (args.encoder_layers, args.activation_fn) == (2, "gelu")


def test_fairseq_and_huggingface_style(tmp_path):
    torch = _torch()
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    state = model.state_dict()
    fairseq = {
        "args": None,
        "cfg": {"model": argparse.Namespace(arch="roberta_base", encoder_layers=1, dropout=0.1)},
        "model": state,
        "optimizer_history": [{"criterion_name": "MaskedLmLoss", "num_updates": 5}],
        "extra_state": {"epoch": 1, "best": torch.tensor(0.5)},
    }
    for fmt, zip_format in FORMATS.items():
        loaded = load(_save(fairseq, tmp_path / f"{fmt}.pt", zip_format))
        assert loaded["args"] is None
        assert loaded["cfg"]["model"].arch == "roberta_base"
        assert loaded["optimizer_history"][0]["num_updates"] == 5
        assert float(loaded["extra_state"]["best"]) == 0.5
        for key, value in state.items():
            assert np.array_equal(loaded["model"][key], value.numpy()), key

    loaded = load(_save(state, tmp_path / "pytorch_model.bin"))
    assert list(loaded) == list(state)
    assert loaded["1.weight"].shape == (3, 4)


def test_never_imports_torch(tmp_path):
    paths = [_save(_state_dict(), tmp_path / f"{fmt}.pt", z) for fmt, z in FORMATS.items()]
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "from roberta_tf.converters.torch_checkpoint import load\n"
        "for p in sys.argv[1:]: assert load(p)['half'].dtype == 'float16'\n"
        "assert sys.modules['torch'] is None\n"
        "assert not [m for m in sys.modules if m.startswith('torch.')]\n"
    )
    subprocess.run([sys.executable, "-c", script, *map(str, paths)], check=True)


# --- hostile files: nothing from the file may run --------------------------------------------


class _Reduce:
    """Pickles as a call of `func(*args)`."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _zip_checkpoint(path, payload, extra=()):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/version", "3\n")
        for name, data in extra:
            archive.writestr(name, data)
    return path


def _legacy_checkpoint(path, payload):
    with open(path, "wb") as f:
        for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(payload)
        pickle.dump([], f, protocol=2)
    return path


def _refused(path, *names):
    with pytest.raises(CheckpointError) as error:
        load(path)
    message = str(error.value)
    assert path.name in message
    assert any(name in message for name in names), message
    return message


@pytest.mark.parametrize("fmt", FORMATS)
def test_refuses_os_system(tmp_path, fmt):
    pwned = tmp_path / "pwned"
    payload = pickle.dumps({"model": _Reduce(os.system, f"touch {pwned}")}, protocol=2)
    if fmt == "zip":
        path = _zip_checkpoint(tmp_path / "evil.pt", payload)
    else:
        path = _legacy_checkpoint(tmp_path / "evil.pt", payload)
    _refused(path, "os.system", "posix.system", "nt.system")
    assert not pwned.exists()


def test_refuses_os_system_through_torch_save(tmp_path):
    pwned = tmp_path / "pwned"
    path = _save({"x": _Reduce(os.system, f"touch {pwned}")}, tmp_path / "evil.pt")
    _refused(path, "os.system", "posix.system", "nt.system")
    assert not pwned.exists()


def test_refuses_plain_pickle_of_a_call(tmp_path):
    # A bare pickle (no legacy header): refused at its first global, not run.
    pwned = tmp_path / "pwned"
    path = tmp_path / "bare.pt"
    path.write_bytes(pickle.dumps(_Reduce(os.system, f"touch {pwned}")))
    _refused(path, "os.system", "posix.system", "nt.system")
    assert not pwned.exists()


@pytest.mark.parametrize(
    "payload, name",
    [
        # protocol 2 spells the module `__builtin__` (Python 2 name); the message names it as written
        (pickle.dumps(_Reduce(builtins.eval, "1+1"), protocol=2), "builtin__.eval"),
        (pickle.dumps(_Reduce(builtins.eval, "1+1"), protocol=4), "builtins.eval"),
        (pickle.dumps(collections.Counter("ab"), protocol=2), "collections.Counter"),
        (b"\x80\x02csome_module\nEvil\nq\x00)\x81q\x01.", "some_module.Evil"),
        (pickle.dumps(_Reduce(getattr, collections.OrderedDict, "fromkeys"), protocol=2), "builtin__.getattr"),
        # protocol 4 STACK_GLOBAL with a dotted name: must not walk attributes of an allowed global
        (b"\x80\x04\x8c\x0bcollections\x8c\x13OrderedDict.__new__\x93.", "collections.OrderedDict.__new__"),
    ],
    ids=["eval", "eval-protocol4", "Counter", "unknown-class", "getattr", "dotted-name"],
)
def test_refuses_other_globals(tmp_path, payload, name):
    _refused(_zip_checkpoint(tmp_path / "evil.pt", payload), name)
    _refused(_legacy_checkpoint(tmp_path / "evil_legacy.pt", payload), name)


def test_errors_are_conversion_errors():
    assert issubclass(CheckpointError, ConversionError) and issubclass(CheckpointError, ValueError)


# --- broken files ----------------------------------------------------------------------------


def _rewrite_zip(src, dst, replace):
    """Copy a zip, replacing members (`name -> bytes`) or dropping them (`name -> None`)."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for info in old.infolist():
            data = replace.get(info.filename, old.read(info))
            if data is not None:
                new.writestr(info, data)
    return dst


def _broken(path):
    with pytest.raises(CheckpointError) as error:
        load(path)
    assert path.name in str(error.value)


def test_broken_zip_files(tmp_path):
    good = _save(_state_dict(), tmp_path / "good.pt")
    names = zipfile.ZipFile(good).namelist()
    prefix = names[0].split("/")[0]
    data = good.read_bytes()

    half = tmp_path / "half.pt"
    half.write_bytes(data[: len(data) // 2])
    _broken(half)
    _broken(_rewrite_zip(good, tmp_path / "garbage.pt", {f"{prefix}/data.pkl": os.urandom(300)}))
    _broken(_rewrite_zip(good, tmp_path / "missing.pt", {f"{prefix}/data/0": None}))
    _broken(_rewrite_zip(good, tmp_path / "short.pt", {f"{prefix}/data/0": b"\0" * 8}))
    no_pickle = tmp_path / "other.zip"
    with zipfile.ZipFile(no_pickle, "w") as archive:
        archive.writestr("readme.txt", "hello")
    _broken(no_pickle)


def test_tensor_outside_its_storage(tmp_path):
    # A hand-written pickle: a 4-element storage read as 3x3.
    storage = np.arange(4, dtype=np.float32).tobytes()
    payload = (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n("
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ"
        b"K\x00K\x03K\x03\x86K\x03K\x01\x86\x89NtR."
    )
    path = _zip_checkpoint(tmp_path / "overflow.pt", payload, [("archive/data/0", storage)])
    message = _refused(path, "exceeds its storage")
    # the same pickle with a fitting geometry loads
    ok = payload.replace(b"K\x03K\x03\x86K\x03K\x01\x86", b"K\x02K\x02\x86K\x02K\x01\x86")
    loaded = load(_zip_checkpoint(tmp_path / "ok.pt", ok, [("archive/data/0", storage)]))
    assert np.array_equal(loaded, [[0, 1], [2, 3]]), message


def test_broken_legacy_and_other_files(tmp_path):
    good = _save(_state_dict(), tmp_path / "good.pt", zip_format=False)
    data = good.read_bytes()
    for name, cut in [("storage_cut.pt", len(data) - 10), ("count_cut.pt", len(data) - 3 - 4 * 24 - 2 * 7),
                      ("pickle_cut.pt", 200)]:
        path = tmp_path / name
        path.write_bytes(data[:cut])
        _broken(path)

    random_file = tmp_path / "random.bin"
    random_file.write_bytes(np.random.default_rng(0).bytes(1024))
    _broken(random_file)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    _broken(empty)
    _broken(tmp_path / "does_not_exist.pt")


def test_untyped_storage_dtypes_and_sizes(tmp_path):
    # torch >= 2.1 writes dtypes without a legacy storage class via `_rebuild_tensor_v3`.
    torch = _torch()
    obj = {
        "u16": torch.tensor([1, 65535], dtype=torch.uint16),
        "bf16": torch.tensor([[1.5, -2.0]], dtype=torch.bfloat16).t(),
        "dtype": torch.float16,
        "size": torch.Size([2, 3]),
    }
    loaded = load(_save(obj, tmp_path / "v3.pt"))
    assert loaded["u16"].dtype == np.uint16 and loaded["u16"].tolist() == [1, 65535]
    assert loaded["bf16"].dtype == np.float32 and loaded["bf16"].tolist() == [[1.5], [-2.0]]
    assert loaded["dtype"].name == "float16"
    assert loaded["size"] == (2, 3)


# --- memory safety (issue 11): hand-written pickles, opcode by opcode --------------------------


class PickleWriter:
    """A protocol-2 pickle written opcode by opcode: the files `torch.save` never writes.

    Methods push onto the unpickler's stack and return self; `value` writes plain data
    (None, bool, int, float, str, tuple, list, dict; a callable writes itself)."""

    def __init__(self, protocol=2):
        self.code = bytearray(b"\x80" + bytes([protocol]))
        self.memo = 0

    def raw(self, data):
        self.code += data
        return self

    def value(self, v):
        if callable(v):
            v(self)
        elif v is None:
            self.raw(pickle.NONE)
        elif v is True or v is False:
            self.raw(pickle.NEWTRUE if v else pickle.NEWFALSE)
        elif isinstance(v, int):
            if 0 <= v < 256:
                self.raw(pickle.BININT1 + bytes([v]))
            elif -(2**31) <= v < 2**31:
                self.raw(pickle.BININT + v.to_bytes(4, "little", signed=True))
            else:
                data = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
                self.raw(pickle.LONG1 + bytes([len(data)]) + data)
        elif isinstance(v, float):
            self.raw(pickle.BINFLOAT + struct.pack(">d", v))
        elif isinstance(v, str):
            data = v.encode("utf-8", "surrogatepass")
            self.raw(pickle.BINUNICODE + struct.pack("<I", len(data)) + data)
        elif isinstance(v, tuple):
            if not v:
                return self.raw(pickle.EMPTY_TUPLE)
            self.raw(pickle.MARK)
            for item in v:
                self.value(item)
            self.raw(pickle.TUPLE)
        elif isinstance(v, list):
            self.raw(pickle.EMPTY_LIST + pickle.MARK)
            for item in v:
                self.value(item)
            self.raw(pickle.APPENDS)
        elif isinstance(v, dict):
            self.raw(pickle.EMPTY_DICT + pickle.MARK)
            for key, item in v.items():
                self.value(key)
                self.value(item)
            self.raw(pickle.SETITEMS)
        else:
            raise TypeError(type(v))
        return self

    def global_(self, module, name):
        return self.raw(pickle.GLOBAL + f"{module}\n{name}\n".encode())

    def put(self):
        """Memoizes the top of the stack (it stays there); returns the memo index."""
        self.raw(pickle.LONG_BINPUT + struct.pack("<I", self.memo))
        self.memo += 1
        return self.memo - 1

    def get(self, index):
        return self.raw(pickle.LONG_BINGET + struct.pack("<I", index))

    def pop(self):
        return self.raw(pickle.POP)

    def call(self, module, name, *args):
        self.global_(module, name)
        self.value(tuple(args))
        return self.raw(pickle.REDUCE)

    def storage(self, key, numel, storage_type="FloatStorage"):
        """A storage record (persistent id), memoized and popped; returns its memo index."""
        self.value(("storage", lambda w: w.global_("torch", storage_type), key, "cpu", numel))
        self.raw(pickle.BINPERSID)
        index = self.put()
        self.pop()
        return index

    def tensor(self, storage, offset, size, stride, dtype=None):
        """`_rebuild_tensor_v2` (v3 with a dtype name) over the storage memoized at `storage`."""
        hooks = lambda w: w.call("collections", "OrderedDict")  # noqa: E731
        if dtype is None:
            args = (lambda w: w.get(storage), offset, tuple(size), tuple(stride), False, hooks)
            return self.call("torch._utils", "_rebuild_tensor_v2", *args)
        dtype_global = lambda w: w.global_("torch", dtype)  # noqa: E731
        args = (lambda w: w.get(storage), offset, tuple(size), tuple(stride), False, hooks, dtype_global)
        return self.call("torch._utils", "_rebuild_tensor_v3", *args)

    def build(self, state):
        """BUILD: `setstate` of the object on top of the stack with `state`."""
        self.value(state)
        return self.raw(pickle.BUILD)

    def stop(self):
        return bytes(self.code + pickle.STOP)


def _floats(n, start=0.0):
    return (np.arange(n, dtype=np.float32) + start).tobytes()


def _hostile(tmp_path, fmt, writer, storages, name="evil.pt"):
    """A zip or legacy checkpoint of `writer`'s pickle; `storages` is [(key, raw bytes, itemsize)]."""
    path = tmp_path / f"{fmt}-{name}"
    if fmt == "zip":
        return _zip_checkpoint(path, writer.stop(), [(f"archive/data/{k}", raw) for k, raw, _ in storages])
    with open(path, "wb") as f:
        for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(writer.stop())
        pickle.dump([k for k, _, _ in storages], f, protocol=2)
        for _, raw, itemsize in storages:
            f.write(struct.pack("<q", len(raw) // itemsize) + raw)
    return path


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("route", ["array", "views"])
def test_build_on_a_storage_cannot_read_process_memory(tmp_path, fmt, route):
    """The issue's exploit: a stride-0 view claims 4096 elements of a 4-element storage; BUILD
    swaps it in as the storage's array (typed storage) or its float32 view (untyped storage, read
    by `_rebuild_tensor_v3`); a plain tensor over the storage then reads 16 KB of process memory."""
    w = PickleWriter().raw(pickle.MARK)  # the result: a tuple of tensors
    if route == "array":
        s = w.storage("0", 4)
        w.get(s).build({"array": lambda w: w.tensor(s, 0, (4096,), (0,))}).pop()
        w.tensor(s, 0, (4096,), (1,)).raw(pickle.TUPLE)
    else:
        s = w.storage("0", 16, "UntypedStorage")
        w.get(s).build({"views": {"float32": lambda w: w.tensor(s, 0, (4096,), (0,), "float32")}}).pop()
        w.tensor(s, 0, (4096,), (1,), "float32").raw(pickle.TUPLE)
    path = _hostile(tmp_path, fmt, w, [("0", _floats(4), 4 if route == "array" else 1)])
    with pytest.raises(CheckpointError) as error:
        leaked = load(path)
        pytest.fail(f"loaded {leaked[0].nbytes} bytes from a 16-byte storage")
    assert path.name in str(error.value)


def _build_targets():
    """(name, writer of the object BUILD is applied to, storages) for objects that must refuse it."""
    def storage(w):
        w.get(w.storage("0", 4))

    def tensor(w):
        w.tensor(w.storage("0", 4), 0, (4,), (1,))

    def rebuilder(w):
        w.global_("torch._utils", "_rebuild_tensor_v2")

    def storage_type(w):
        w.global_("torch", "FloatStorage")

    return {"storage": storage, "tensor": tensor, "rebuilder": rebuilder, "storage_type": storage_type,
            "dict": lambda w: w.value({}), "namespace_class": lambda w: w.global_("argparse", "Namespace")}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("target", list(_build_targets()))
def test_build_is_refused_except_on_namespace_and_ordered_dict(tmp_path, fmt, target):
    """BUILD (setstate) on a storage would swap its bytes; on a tensor (ndarray.__setstate__) it
    replaces the array; on a rebuild function it edits the function's __dict__ for the whole process."""
    w = PickleWriter().raw(pickle.MARK)
    s = w.storage("1", 8)
    _build_targets()[target](w)
    # the state offers every name a stand-in might use for its bytes: a legal view of another storage
    view = lambda w: w.tensor(s, 0, (8,), (1,))  # noqa: E731
    w.build({"array": view, "views": {"float32": view}, "__dict__": {}, "data": view})
    w.raw(pickle.TUPLE)
    path = _hostile(tmp_path, fmt, w, [("0", _floats(4), 4), ("1", _floats(8, 100), 4)])
    _refused(path, "BUILD")


@pytest.mark.parametrize("fmt", FORMATS)
def test_build_on_namespace_and_ordered_dict_still_loads(tmp_path, fmt):
    # what fairseq (argparse.Namespace args) and torch (OrderedDict state dicts with `_metadata`) write
    w = PickleWriter().raw(pickle.MARK)
    w.global_("argparse", "Namespace").value(()).raw(pickle.NEWOBJ).build({"encoder_layers": 2, "arch": "x"})
    w.call("collections", "OrderedDict").build({"_metadata": {"": {"version": 1}}})
    w.raw(pickle.TUPLE)
    args, state = load(_hostile(tmp_path, fmt, w, []))
    assert (args.encoder_layers, args.arch) == (2, "x")
    assert state._metadata == {"": {"version": 1}}


def _tensor_file(tmp_path, fmt, size, stride, offset=0, numel=4, name="t.pt"):
    w = PickleWriter()
    w.tensor(w.storage("0", numel), offset, size, stride)
    return _hostile(tmp_path, fmt, w, [("0", _floats(numel), 4)], name=name)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "size, stride",
    [((4,), (0,)), ((2, 2), (1, 0)), ((3, 2), (1, 1)), ((2, 2), (1, 1)), ((2, 3), (1, 1)), ((2, 2, 2), (1, 1, 1))],
    ids=["stride0", "stride0-inner", "overlap-3x2", "overlap-2x2", "overlap-2x3", "overlap-3d"],
)
def test_stride_zero_and_overlapping_views_are_refused(tmp_path, fmt, size, stride):
    # each view fits inside the 4-element storage by its last element, but reads elements twice
    _refused(_tensor_file(tmp_path, fmt, size, stride), "overlap", "stride")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_small_file_cannot_claim_a_huge_array(tmp_path, fmt):
    for i, (size, stride) in enumerate([((2**40,), (0,)), ((2**20, 2**20), (0, 1)), ((2**20, 2**20, 2), (0, 0, 1))]):
        path = _tensor_file(tmp_path, fmt, size, stride, name=f"{i}.pt")
        assert path.stat().st_size < 1024
        _refused(path, "overlap", "stride")


@pytest.mark.parametrize("fmt", FORMATS)
def test_size_one_dims_keep_any_stride(tmp_path, fmt):
    # torch gives a size-1 dim any stride (expand() of a new dim: 0; unsqueeze: the next extent)
    for i, (size, stride, offset, want) in enumerate([
        ((1, 4), (0, 1), 0, [[0, 1, 2, 3]]),
        ((4, 1), (1, 0), 0, [[0], [1], [2], [3]]),
        ((1, 3), (10**15, 1), 1, [[1, 2, 3]]),
        ((2, 1, 2), (2, 7, 1), 0, [[[0, 1]], [[2, 3]]]),
        ((1,), (2**62,), 3, [3]),
        ((), (), 2, 2),
    ]):
        loaded = load(_tensor_file(tmp_path, fmt, size, stride, offset, name=f"{i}.pt"))
        assert np.array_equal(loaded, want) and loaded.shape == size, (size, stride)


@pytest.mark.parametrize("fmt", FORMATS)
def test_interleaved_but_disjoint_slices_load(tmp_path, fmt):
    # x[:, ::2] of a contiguous (2, 5): size (2, 3), stride (5, 2); stride 5 < 2 * 3, yet disjoint
    loaded = load(_tensor_file(tmp_path, fmt, (2, 3), (5, 2), numel=10))
    assert np.array_equal(loaded, [[0, 2, 4], [5, 7, 9]])


def test_real_views_with_size_one_dims_load(tmp_path):
    torch = _torch()
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    state = {
        "expanded_row": torch.arange(6).expand(1, -1),  # stride (0, 1): HF's old position_ids buffer
        "column": base[:, 1:2],
        "unsqueezed": base.t().unsqueeze(1),
        "stepped": base[:, ::2],
        "strided_both": base[::2, 1::2],
        "empty_tail": base[3:],
    }
    for fmt, zip_format in FORMATS.items():
        loaded = load(_save(state, tmp_path / f"{fmt}.pt", zip_format))
        for key, value in state.items():
            assert np.array_equal(loaded[key], value.numpy()) and loaded[key].shape == tuple(value.shape), key


def _peak_bytes(function):
    """(what `function` returned or raised, tracemalloc's peak of bytes allocated while it ran)."""
    tracemalloc.start()
    try:
        try:
            outcome = function()
        except Exception as error:  # noqa: BLE001 - the caller asserts on it
            outcome = error
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _deflate_bomb(path, members, member_bytes):
    """`members` deflated storages of `member_bytes` zeros each (about 1000:1): each one within the
    file size, as the old per-member check required, all together far beyond it."""
    w = PickleWriter().raw(pickle.EMPTY_LIST + pickle.MARK)
    for key in range(members):
        w.tensor(w.storage(str(key), member_bytes // 4), 0, (member_bytes // 4,), (1,))
    w.raw(pickle.APPENDS)
    zeros = bytes(member_bytes)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", w.stop())
        for key in range(members):
            archive.writestr(f"archive/data/{key}", zeros)
    return path


def test_decompression_bomb_is_bounded(tmp_path):
    path = _deflate_bomb(tmp_path / "bomb.pt", members=600, member_bytes=128 * 1024)
    size = path.stat().st_size
    assert 128 * 1024 <= size < 600 * 128 * 1024 // 50  # every member fits in the file; the sum is 75 MB
    outcome, peak = _peak_bytes(lambda: load(path))
    assert isinstance(outcome, CheckpointError), f"loaded {sum(a.nbytes for a in outcome)} bytes from {size}"
    assert path.name in str(outcome) and "budget" in str(outcome)
    assert peak < 4 * size + (2 << 20), f"peak {peak} bytes for a {size}-byte file"


def test_many_legacy_storage_records_cannot_allocate_past_the_file(tmp_path):
    # A legacy file declares its storages before their bytes: 1000 records, each within the file
    # size (the old per-storage check), all together 1000 times the file.
    count, numel = 1000, 6000
    w = PickleWriter().raw(pickle.EMPTY_LIST + pickle.MARK)
    for key in range(count):
        w.get(w.storage(str(key), numel))
    w.raw(pickle.APPENDS)
    path = _hostile(tmp_path, "legacy", w, [])
    size = path.stat().st_size
    assert size >= numel * 4
    outcome, peak = _peak_bytes(lambda: load(path))
    assert isinstance(outcome, CheckpointError), outcome
    assert peak < 4 * size + (2 << 20), f"peak {peak} bytes for a {size}-byte file"


@pytest.mark.parametrize("fmt", FORMATS)
def test_pickle_memo_index_cannot_allocate(tmp_path, fmt):
    """The C unpickler keeps its memo in an array as long as the largest PUT index: a 10-byte pickle
    (LONG_BINPUT 2**24) made it allocate and zero 256 MB."""
    w = PickleWriter().raw(pickle.NONE + pickle.LONG_BINPUT + struct.pack("<I", 2**24))
    path = _hostile(tmp_path, fmt, w, [])
    outcome, peak = _peak_bytes(lambda: load(path))
    assert outcome is None or isinstance(outcome, CheckpointError), outcome
    assert peak < 8 << 20, f"peak {peak} bytes"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "opcode",
    [pickle.BYTEARRAY8 + struct.pack("<Q", 2**40), pickle.BINBYTES8 + struct.pack("<Q", 2**40),
     pickle.BINUNICODE8 + struct.pack("<Q", 2**40), pickle.FRAME + struct.pack("<Q", 2**40),
     pickle.LONG4 + struct.pack("<i", 2**30)],
    ids=["bytearray8", "binbytes8", "binunicode8", "frame", "long4"],
)
def test_counted_pickle_opcodes_cannot_allocate(tmp_path, fmt, opcode):
    path = _hostile(tmp_path, fmt, PickleWriter(protocol=5).raw(opcode), [])
    outcome, peak = _peak_bytes(lambda: load(path))
    assert isinstance(outcome, CheckpointError), outcome
    assert peak < 8 << 20, f"peak {peak} bytes"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("route", ["BoolStorage", "untyped"])
def test_bool_bytes_other_than_0_and_1_are_refused(tmp_path, fmt, route):
    # torch writes bools as 0 and 1; numpy treats other bytes inconsistently (found by the fuzz test)
    def file(raw, name):
        w = PickleWriter()
        if route == "untyped":
            w.tensor(w.storage("0", 3, "UntypedStorage"), 0, (3,), (1,), "bool")
        else:
            w.tensor(w.storage("0", 3, "BoolStorage"), 0, (3,), (1,))
        return _hostile(tmp_path, fmt, w, [("0", raw, 1)], name=name)

    assert load(file(b"\x01\x00\x01", "ok.pt")).tolist() == [True, False, True]
    _refused(file(b"\x01\x00\xbc", "bad.pt"), "0 and 1")


def test_big_endian_zip(tmp_path):
    w = PickleWriter().raw(pickle.MARK)
    w.tensor(w.storage("0", 2, "FloatStorage"), 0, (2,), (1,))
    untyped = w.storage("1", 8, "UntypedStorage")
    w.tensor(untyped, 0, (4,), (1,), "bfloat16").tensor(untyped, 0, (2,), (1,), "int32").raw(pickle.TUPLE)
    floats = np.array([1.5, -2.0], ">f4").tobytes()
    bf16 = np.array([0x3FC0, 0xC000, 0x4040, 0x0000], ">u2").tobytes()  # 1.5, -2.0, 3.0, 0.0
    path = _zip_checkpoint(tmp_path / "big.pt", w.stop(),
                           [("archive/byteorder", b"big"), ("archive/data/0", floats), ("archive/data/1", bf16)])
    typed, widened, ints = load(path)
    assert typed.tolist() == [1.5, -2.0] and widened.tolist() == [1.5, -2.0, 3.0, 0.0]
    assert ints.tolist() == np.frombuffer(bf16, ">i4").tolist()


def _tiny(tmp_path, name, compression=zipfile.ZIP_STORED):
    w = PickleWriter()
    w.tensor(w.storage("0", 4), 0, (4,), (1,))
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", w.stop())
        archive.writestr("archive/data/0", _floats(4), compress_type=compression)
    return path


def test_only_stored_and_deflated_members_are_read(tmp_path):
    assert load(_tiny(tmp_path, "deflated.pt", zipfile.ZIP_DEFLATED)).tolist() == [0, 1, 2, 3]
    for method in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):  # unbounded decompression per read in zipfile
        _refused(_tiny(tmp_path, f"{method}.pt", method), "compression method")


@pytest.mark.parametrize("claimed", [8, 15, 17, 2**31])
def test_a_member_lying_about_its_size(tmp_path, claimed):
    # the storage record's 16 bytes, claimed as `claimed` in the zip directory and local header
    path = _tiny(tmp_path, f"lie{claimed}.pt")
    data = bytearray(path.read_bytes())
    name = b"archive/data/0"
    for signature, field in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        at = 0
        while (at := data.find(signature, at)) >= 0:
            name_at = at + (46 if signature == b"PK\x01\x02" else 30)
            if data[name_at:name_at + len(name)] == name:
                struct.pack_into("<I", data, at + field, claimed)
            at += 4
    path.write_bytes(bytes(data))
    outcome, peak = _peak_bytes(lambda: load(path))
    assert isinstance(outcome, CheckpointError), outcome
    assert peak < 1 << 20


def test_pickle_limit(tmp_path, monkeypatch):
    from roberta_tf.converters import torch_checkpoint

    path = _tiny(tmp_path, "small.pt")
    monkeypatch.setattr(torch_checkpoint, "PICKLE_LIMIT", 64)
    _refused(path, "more than the 64 allowed")
    legacy = _hostile(tmp_path, "legacy", PickleWriter().value(["x" * 100]), [])
    _refused(legacy, "longer than the 64-byte limit")
    # the limit is the pickle's, not the file's: storage bytes beyond it are fine
    monkeypatch.setattr(torch_checkpoint, "PICKLE_LIMIT", 4096)
    for fmt, zip_format in FORMATS.items():
        big = _save(_state_dict() | {"big": _torch().arange(10_000.0)}, tmp_path / f"big-{fmt}.pt", zip_format)
        assert big.stat().st_size > 4 * 4096
        assert load(big)["big"][-1] == 9999.0


@pytest.mark.parametrize("fmt", FORMATS)
def test_storage_references_are_inert(tmp_path, fmt):
    # a pickle may return a storage record itself: it gets an immutable token, not the bytes
    w = PickleWriter()
    w.get(w.storage("0", 4))
    ref = load(_hostile(tmp_path, fmt, w, [("0", _floats(4), 4)]))
    assert not hasattr(ref, "__dict__") and not isinstance(ref, np.ndarray)
    with pytest.raises(AttributeError):
        ref.array = np.zeros(4)
    with pytest.raises(TypeError):
        ref.__setstate__({"array": np.zeros(4)})


@pytest.mark.parametrize("fmt", FORMATS)
def test_arrays_are_read_only(tmp_path, fmt):
    loaded = load(_save(_state_dict(), tmp_path / "model.pt", FORMATS[fmt]))
    assert all(not array.flags.writeable for array in loaded.values())


@pytest.mark.parametrize("fmt", FORMATS)
def test_bfloat16_widening_peak(tmp_path, fmt):
    # 2 MiB of bfloat16 -> 4 MiB of float32: the raw bytes and the result, no temporary beside them
    # (a shift into a new array made a third copy; the fuzz test found it)
    torch = _torch()
    raw_bytes = 2 << 20
    path = _save({"w": torch.arange(raw_bytes // 2, dtype=torch.float32).bfloat16()}, tmp_path / "bf16.pt", FORMATS[fmt])
    outcome, peak = _peak_bytes(lambda: load(path))
    assert outcome["w"][-1] == float(torch.tensor(raw_bytes // 2 - 1.0).bfloat16())
    assert peak < 3 * raw_bytes + (1 << 20) + (256 << 10), f"peak {peak} bytes"
