"""Atomic writes of files and folders, and recovery from what a killed writer leaves behind.

A reader sees the old file or folder or the new one, never half of one, and a process
killed at any moment (kill -9, a power cut) loses neither:
- a file is written to a temporary file beside it, flushed and renamed over it;
- a folder is built in a staging folder, then exchanged with the old one in one step
  (Linux `renameat2(RENAME_EXCHANGE)`) and the old one removed only after that; where the
  exchange is unavailable, the old folder is renamed aside, the new one renamed in, and the
  old one removed last.

Every temporary name says what it is, whose it is and what it belongs to,
`.<kind>-<pid>-<random>-<name>` beside the target `<name>`, where kind is
  staging: being written, never trusted;   new: finished, about to land;
  old: the target, moved aside;            tmp: a temporary file.
`recover_leftovers(target)` (and `recover_folder` for every target of a folder) puts back a
target that a kill left missing, from a finished `new` copy or else the `old` one, and
removes the leftovers of writers that are no longer running; a live process's leftovers
are its own business. Readers call it at start-up, before they look at the target.

`fault_point(name)` kills its own process with SIGKILL when the environment variable
FOCUSGROUP_FAULT names that point (`swap:after-exchange`, or one target's:
`swap:after-exchange@.checkpoint`), so tests can stop a real process at each step of a
write (tests/hostile/test_hostile_crash.py); otherwise it costs one dictionary lookup.
"""

from __future__ import annotations

import ctypes
import errno
import io
import json
import math
import os
import re
import secrets
import shutil
import signal
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

FAULT_VARIABLE = "FOCUSGROUP_FAULT"
LEFTOVER = re.compile(r"^\.(staging|new|old|tmp)-(\d+)-([0-9a-z_]{8})-(.+)$")
AT_FDCWD, RENAME_EXCHANGE = -100, 2
TARGET_TAKEN = (errno.EEXIST, errno.ENOTEMPTY)


def fault_point(point: str, *qualifiers: str) -> None:
    """Die here, as if killed, when FOCUSGROUP_FAULT is `point` or `point@qualifier`."""
    wanted = os.environ.get(FAULT_VARIABLE)
    if wanted and (wanted == point or wanted in {f"{point}@{qualifier}" for qualifier in qualifiers}):
        os.kill(os.getpid(), signal.SIGKILL)


def leftover_name(kind: str, name: str) -> str:
    return f".{kind}-{os.getpid()}-{secrets.token_hex(4)}-{name}"


def staging_folder(target: Path) -> Path:
    """A new, empty, private folder beside `target` in which to build its replacement."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".staging-{os.getpid()}-", suffix=f"-{target.name}", dir=target.parent))


@lru_cache(maxsize=1)
def process_umask() -> int:
    """This process's umask, read without changing it (os.umask can only set it, and
    setting it twice races with other threads); the usual 0o022 where /proc has no answer."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file beside it. The file gets the mode of
    the file it replaces, or that of a new file (0o666 less the umask): a temporary file is
    private (0o600), and an export or spec must stay readable as any other file would be."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = 0o666 & ~process_umask()
    handle, temporary = tempfile.mkstemp(prefix=f".tmp-{os.getpid()}-", suffix=f"-{path.name}", dir=path.parent)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        fault_point("write:before-replace", path.name)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def finite_json(value):
    """`value` with every infinite or NaN number replaced by None: strict JSON, which any
    reader can parse (Python writes NaN, which JSON does not have)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(item) for item in value]
    return value


def atomic_write_json(path: Path | str, value, indent: int | None = None) -> None:
    atomic_write_text(path, json.dumps(finite_json(value), indent=indent, allow_nan=False))


def atomic_save_npz(path: Path | str, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


# -- folders -----------------------------------------------------------------------------

def swap_into_place(staging: Path, target: Path) -> None:
    """Replace the folder `target` by the finished folder `staging` (same file system).

    `target` is whole at every moment a process could be killed (with the exchange; in the
    fallback a kill between its two renames leaves the old folder aside, which
    `recover_leftovers` puts back), and the old folder is deleted only once the new one is
    in place. Concurrent writers of one target all succeed; the last one's folder stays.
    """
    pending = target.with_name(leftover_name("new", target.name))
    os.rename(staging, pending)  # from here on a finished copy, which recovery may land
    fault_point("swap:before-exchange", target.name)
    while True:
        if _rename_if_absent(pending, target):
            return
        try:
            exchanged = _exchange(pending, target)
        except FileNotFoundError:
            continue  # another writer moved the target aside in between: look again
        if exchanged:
            fault_point("swap:after-exchange", target.name)
            _remove(pending)  # it holds the old folder now
            return
        if _replace_aside(pending, target):
            return


def _rename_if_absent(source: Path, target: Path) -> bool:
    """Rename `source` to `target` unless a non-empty `target` is there (an empty folder
    is replaced, as `os.rename` does)."""
    try:
        os.rename(source, target)
    except OSError as error:
        if error.errno in TARGET_TAKEN:
            return False
        raise
    return True


@lru_cache(maxsize=1)
def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step; False where the system cannot (no renameat2, or a file
    system without RENAME_EXCHANGE)."""
    try:
        renameat2 = _libc().renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _replace_aside(pending: Path, target: Path) -> bool:
    """The fallback swap: the target aside, the new one in, the old one deleted. False when
    another writer got in between (the caller tries again)."""
    old = target.with_name(leftover_name("old", target.name))
    try:
        os.rename(target, old)
    except FileNotFoundError:
        return False
    fault_point("swap:after-aside", target.name)
    try:
        landed = _rename_if_absent(pending, target)
    except OSError:
        _rename_if_absent(old, target)  # put the old one back before giving up
        raise
    if landed:
        fault_point("swap:after-rename", target.name)
    _remove(old)  # when another writer landed first, theirs is whole: ours goes round again
    return landed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# -- recovery ----------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _dead_leftovers(folder: Path, name: str | None = None) -> dict[str, list[tuple[str, Path]]]:
    """Target name -> [(kind, path)] of the leftovers in `folder` whose writer has ended."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found: dict[str, list[tuple[str, Path]]] = {}
    for entry in entries:
        match = LEFTOVER.match(entry.name)
        if match and (name is None or match[4] == name) and not _alive(int(match[2])):
            found.setdefault(match[4], []).append((match[1], Path(entry.path)))
    return found


def dead_leftovers(target: Path, kinds: tuple[str, ...]) -> list[Path]:
    """The leftovers of `target` of the given kinds whose writer has ended, newest first."""
    paths = [path for kind, path in _dead_leftovers(target.parent, target.name).get(target.name, [])
             if kind in kinds]
    return sorted(paths, key=lambda path: path.lstat().st_mtime_ns, reverse=True)


def recover_leftovers(target: Path) -> None:
    """Put back `target` if a killed swap left it missing; remove dead writers' leftovers."""
    for name, leftovers in _dead_leftovers(target.parent, target.name).items():
        _recover(target.parent / name, leftovers)


def recover_folder(folder: Path) -> None:
    """`recover_leftovers` for every target in `folder` that has leftovers."""
    for name, leftovers in _dead_leftovers(folder).items():
        _recover(folder / name, leftovers)


def _recover(target: Path, leftovers: list[tuple[str, Path]]) -> None:
    if not os.path.lexists(target):
        # A finished new copy beats the old one; a staging folder may be half written.
        for kind in ("new", "old"):
            candidates = sorted((path for found, path in leftovers if found == kind),
                                key=lambda path: path.lstat().st_mtime_ns, reverse=True)
            if candidates and _restore(candidates[0], target):
                break
    for _, path in leftovers:
        _remove(path)


def _restore(leftover: Path, target: Path) -> bool:
    try:
        return _rename_if_absent(leftover, target)
    except FileNotFoundError:
        return False  # another process restored it first
