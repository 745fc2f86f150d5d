"""`atomic_directory` and `atomic_file`: the rules in the module docstring, one test each."""

import os
import stat
import subprocess
import sys

import pytest

from roberta_tf.utils import files


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_block_becomes_the_target_with_the_umask_mode(tmp_path):
    old_umask = os.umask(0o022)
    try:
        with files.atomic_directory(tmp_path / "out", kind="test") as staging:
            assert staging.parent == tmp_path and staging.name.startswith(f".tmp-test-{os.getpid()}-")
            (staging / "a.txt").write_text("x")
            assert not (tmp_path / "out").exists()  # nothing visible until the block ends
    finally:
        os.umask(old_umask)
    assert (tmp_path / "out" / "a.txt").read_text() == "x"
    assert _mode(tmp_path / "out") == 0o755  # readable by a server running as another user
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failure_leaves_nothing_and_the_target_untouched(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_directory(tmp_path / "out", kind="test", overwrite=True) as staging:
            (staging / "new.txt").write_text("new")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["old.txt"]


def test_a_non_empty_target_is_refused_unless_overwrite(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with pytest.raises(FileExistsError, match="not empty"):
        with files.atomic_directory(tmp_path / "out", kind="test"):
            raise AssertionError("the block must not run")
    with files.atomic_directory(tmp_path / "empty", kind="test") as staging:  # an empty one is replaced
        (staging / "new.txt").touch()
    with files.atomic_directory(tmp_path / "out", kind="test", overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "out"]  # the old one is gone


def test_staging_of_dead_writers_is_removed_and_live_writers_are_left_alone(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".tmp-export-{int(dead.stdout)}-0123abcd"
    live = tmp_path / f".tmp-export-{os.getppid()}-0123abcd"
    unrelated = tmp_path / ".tmp-notes"
    for path in (stale, live, unrelated):
        path.mkdir()
    with files.atomic_directory(tmp_path / "3", kind="export"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["3", live.name, unrelated.name])


def test_file_sha256(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert files.file_sha256(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_atomic_file_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "models" / "model.tflite"
    with pytest.raises(RuntimeError):
        with files.atomic_file(target, kind="tflite") as staging:
            staging.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(target.parent.iterdir()) == []
    with files.atomic_file(target, kind="tflite") as staging:
        assert staging.parent == target.parent and staging.name.startswith(".tmp-tflite-")
        staging.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and [p.name for p in target.parent.iterdir()] == ["model.tflite"]


def test_atomic_file_refuses_to_replace_unless_asked(tmp_path):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        with files.atomic_file(target, kind="tflite"):
            pass
    with files.atomic_file(target, kind="tflite", overwrite=True) as staging:
        staging.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(IsADirectoryError):
        with files.atomic_file(tmp_path, kind="tflite"):
            pass


def test_atomic_file_removes_files_of_dead_writers(tmp_path):
    dead = tmp_path / ".tmp-tflite-999999999-abcd1234"
    dead.write_bytes(b"left by a killed export")
    with files.atomic_file(tmp_path / "model.tflite", kind="tflite") as staging:
        staging.write_bytes(b"x")
    assert not dead.exists()


def test_directory_sha256_changes_with_any_file(tmp_path):
    (tmp_path / "a").write_text("1")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_text("2")
    first = files.directory_sha256(tmp_path)
    assert first == files.directory_sha256(tmp_path)
    (tmp_path / "sub" / "b").write_text("3")
    assert files.directory_sha256(tmp_path) != first
