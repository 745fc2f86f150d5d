"""`roberta_tf.converters.torch_checkpoint`: torch-free, code-free checkpoint reading."""

import argparse
import builtins
import collections
import os
import pickle
import subprocess
import sys
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
