"""Atomic directories (presets, SavedModel versions), atomic files (TFLite models) and file
hashes: the one place for them.

`atomic_directory` rules, for every writer of a directory that another process may read
(TF Serving polling a model base path, a loader reading a preset):

- Staging: the directory is built at `PARENT/.tmp-KIND-PID-RANDOM/`, beside the target so the
  final rename stays on one filesystem. The name is hidden and not a number, so TF Serving
  (which loads numeric version directories only) and preset readers never see it.
- Success: when the `with` block ends normally, the staging directory is renamed to the
  target in one `rename(2)`: a reader sees no directory or the complete one.
- Failure: any exception in the block (KeyboardInterrupt included; map SIGTERM to it to
  cover `kill`) removes the staging directory and propagates; the target is untouched.
- Dead stagers: on entry, staging directories in PARENT whose PID no longer runs (a writer
  killed with SIGKILL) are removed. A live writer's are left alone; so is a stager whose PID
  was reused by another process (harmless: hidden, and removed once that PID is gone).
- Overwrite: a missing target or an empty directory is simply replaced. A non-empty target
  is refused with FileExistsError before any work, unless `overwrite=True`: then the old
  directory is renamed aside (`.old-KIND-PID-RANDOM`), the new one renamed in and the old one
  removed, so a reader sees the old or the new directory, never a mixture.
- Modes: the staging directory is created like `mkdir` (0o777 minus the umask), not 0o700 as
  `tempfile.mkdtemp` would, so a server running as another user can read what was written.

`atomic_file` follows the same rules for one file: it is written at `PARENT/.tmp-KIND-PID-*`
and renamed over the target (`os.replace`, atomic on POSIX) only when the block succeeds; an
existing target is refused unless `overwrite=True`.
"""

import contextlib
import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil

from absl import logging

_STAGING_NAME = re.compile(r"^\.(?:tmp|old)-[a-z_]+-(\d+)-[0-9a-f]+$")


def file_sha256(path):
    """Hex SHA-256 of a file, read in 4 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path, value):
    """`value` as indented UTF-8 JSON (non-ASCII kept readable) with a final newline."""
    pathlib.Path(path).write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def staging_name(kind, state="tmp"):
    """`.tmp-KIND-PID-RANDOM` (or `.old-...`): the hidden name of a directory being written."""
    return f".{state}-{kind}-{os.getpid()}-{secrets.token_hex(4)}"


@contextlib.contextmanager
def atomic_directory(target, *, kind, overwrite=False):
    """Yields a fresh staging directory (pathlib.Path) that becomes `target` when the block
    ends without an exception. `kind` names the writer in the staging name ("preset",
    "export"). See the module docstring for the rules."""
    target = pathlib.Path(target).absolute()
    _check_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_staging(target.parent)
    staging = target.parent / staging_name(kind)
    os.mkdir(staging, 0o777)  # the umask applies, as for any directory the user creates
    try:
        yield staging
        _rename_into_place(staging, target, kind, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(target, *, kind, overwrite=False):
    """Yields a staging path (pathlib.Path, not yet created) beside `target`; what the block
    writes there becomes `target` when the block ends without an exception. (The block
    creates it with `open`/`write_bytes`, so its mode follows the umask, unlike mkstemp's.)"""
    target = pathlib.Path(target).absolute()
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a directory; give a file name.")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; refusing to replace it (overwrite it explicitly).")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_staging(target.parent)
    staging = target.parent / staging_name(kind)
    try:
        yield staging
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def directory_sha256(directory):
    """Hex SHA-256 over a directory's files (relative names and contents, in sorted order):
    one hash that changes when any file of a preset changes."""
    digest = hashlib.sha256()
    root = pathlib.Path(directory)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(root).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def remove_dead_staging(parent):
    """Removes staging (and moved-aside) directories and files in `parent` whose writer is gone."""
    for path in pathlib.Path(parent).iterdir():
        match = _STAGING_NAME.match(path.name)
        if match and not _process_alive(int(match.group(1))):
            logging.info("Removing %s, left by an interrupted writer.", path)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _check_target(target, overwrite):
    if not target.exists():
        return
    if not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a directory.")
    if not overwrite and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty; refusing to replace it.")


def _rename_into_place(staging, target, kind, overwrite):
    if not (overwrite and target.exists() and any(target.iterdir())):
        # rename(2) replaces a missing or empty directory and fails on a non-empty one, so a
        # target that another writer filled in the meantime is never clobbered.
        os.rename(staging, target)
        return
    old = target.parent / staging_name(kind, state="old")
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True
