"""`atomic_directory`: the rules in its module docstring, one test each."""

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
