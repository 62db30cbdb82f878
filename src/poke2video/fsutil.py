"""Filesystem helpers: outputs appear complete or not at all."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from poke2video.errors import DiskFull, UserError


# Test hook for the fault tests (tests/test_train_faults.py): when this variable holds "NAME:N", the
# process kills itself with SIGKILL the N-th time it is about to rename a finished temporary onto a file
# called NAME (N defaults to 1), leaving the temporary behind as a real crash would. Inert when unset.
KILL_BEFORE_RENAME_ENV = "POKE2VIDEO_TEST_KILL_BEFORE_RENAME"
_renames_seen: dict[str, int] = {}


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Temporaries that `atomic_path` left in `folder` when its process was killed."""
    folder = Path(folder)
    return sorted(folder.glob(".*.tmp-*")) if folder.is_dir() else []


def _test_kill_point(final: Path) -> None:
    spec = os.environ.get(KILL_BEFORE_RENAME_ENV)
    if not spec:
        return
    name, _, count = spec.partition(":")
    if name == final.name:
        _renames_seen[name] = _renames_seen.get(name, 0) + 1
        if _renames_seen[name] == int(count or 1):
            os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, on failure remove it.

    Works for files and directories. A full disk becomes a `DiskFull` (a `UserError`) naming the output,
    however the writer reported it (`is_disk_full`); any other OSError about the temporary or `path` (a
    folder in the way, a name the OS refuses) becomes a `UserError`: `cannot write PATH: why`.
    """
    final = Path(path)
    tmp = _tmp_name(final)
    try:
        remove_path(tmp)
        yield tmp
        _test_kill_point(final)
        os.replace(tmp, final)
    except BaseException as exc:
        full = is_disk_full(exc, final.parent)  # asked before the temporary's space is given back
        try:
            remove_path(tmp)
        except OSError:
            pass                                # the name the OS refused was never created
        if isinstance(exc, DiskFull) and tmp in Path(exc.path).parents:   # a file inside this temporary folder
            raise DiskFull(final / Path(exc.path).relative_to(tmp)) from exc.__cause__
        if full:
            raise DiskFull(final) from exc
        if isinstance(exc, OSError) and _concerns(exc, tmp, final):
            raise UserError(f"cannot write {final}: {os_reason(exc)}") from exc
        raise


# A write that failed while the file system has less than this left failed because the disk is full.
LOW_SPACE_BYTES = 1 << 20
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException, where: str | os.PathLike) -> bool:
    """Whether `exc`, raised while writing at `where` (a file or folder, existing or not), means the disk is full.

    An OSError with an errno says itself whether it is one (ENOSPC, EDQUOT). Libraries that write through
    their own C code report a short write in their own words and without errno (numpy's `tofile`: "8110080
    requested and 1044352 written"; torch.save: "unexpected pos ..."), so any other error (not a UserError,
    not an interrupt) counts as a full disk when the file system holding `where` has less than
    LOW_SPACE_BYTES left for this process."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno in _FULL_ERRNOS
    if not isinstance(exc, Exception) or isinstance(exc, UserError):
        return False
    return free_bytes(where) < LOW_SPACE_BYTES


def free_bytes(where: str | os.PathLike) -> float:
    """Bytes this process may still write on the file system holding `where` (or its nearest existing
    parent); infinity when that cannot be told."""
    for folder in (Path(where), *Path(where).absolute().parents):
        try:
            info = os.statvfs(folder)
        except (OSError, ValueError):
            continue
        return info.f_bavail * info.f_frsize
    return float("inf")


def _concerns(exc: OSError, *paths: Path) -> bool:
    """Whether an OSError names one of `paths` or a file inside one of them."""
    named = [Path(os.fsdecode(n)) for n in (exc.filename, exc.filename2) if isinstance(n, (str, bytes, os.PathLike))]
    return any(n == p or p in n.parents for n in named for p in paths)


def os_reason(exc: OSError) -> str:
    """An OSError's reason in words, lower case (e.g. "is a directory"), on one line."""
    reason = " ".join((exc.strerror or str(exc) or type(exc).__name__).split())
    return reason[:1].lower() + reason[1:]


def os_error_line(exc: OSError) -> str:
    """An OSError on one line: the file name(s) it names, then its reason (`os_reason`); a full disk as
    `disk full while writing NAME`, the words of every other full disk."""
    names = [str(os.fsdecode(n)) for n in (exc.filename, exc.filename2) if n is not None]
    if exc.errno in _FULL_ERRNOS:
        return f"disk full while writing {names[-1]}" if names else "disk full"
    return f"{' -> '.join(names)}: {os_reason(exc)}" if names else os_reason(exc)


def check_output(path: str | os.PathLike, *, folder: bool) -> Path:
    """Refuse, before any work is done, an output this process cannot write; returns it as a Path.

    `folder`: the output is a folder (created with its missing parents) rather than a file (whose folder
    must exist). An existing folder where a file goes, an existing file where a folder goes, a parent that
    is a file, and a folder the OS refuses new names in (read-only, no permission, a name too long,
    /proc) are each a UserError: `cannot write PATH: why`. Probes by creating and removing the temporary
    name `atomic_path` would use."""
    path = Path(path)
    try:
        _check_output(path, folder)
    except OSError as exc:                      # e.g. a name too long to even look up
        raise UserError(f"cannot write {path}: {os_reason(exc)}") from None
    return path


def _check_output(path: Path, folder: bool) -> None:
    if folder and path.exists() and not path.is_dir():
        raise UserError(f"cannot write {path}: it exists and is not a folder")
    if not folder and path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder")
    if folder and path.is_dir():                # written into (a resumed run) or replaced (--overwrite)
        _probe(path, path / f".write-check.tmp-{os.getpid()}")
        return
    missing, parent = path, path.parent
    while folder and not parent.exists() and parent != parent.parent:
        missing, parent = parent, parent.parent
    if not parent.exists():
        raise UserError(f"cannot write {path}: folder {parent} does not exist")
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: {parent} is a file, not a folder")
    _probe(path, _tmp_name(missing))


def _probe(path: Path, probe: Path) -> None:
    try:
        remove_path(probe)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as exc:
        if exc.errno == errno.ENOENT:           # the folder exists, yet takes no new names (procfs, sysfs)
            raise UserError(f"cannot write {path}: folder {probe.parent} does not take new files") from None
        raise UserError(f"cannot write {path}: {os_reason(exc)}") from None


_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def special_file_kind(path: str | os.PathLike) -> str | None:
    """What `path` is when it exists but is not a regular file, e.g. "a named pipe (FIFO)" (opening one to read
    would wait for a writer); None for a regular file or a path that does not exist."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file to the disk (before renaming it into place, so a crash never leaves it torn)."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def remove_path(path: str | os.PathLike) -> None:
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink()


def write_json(path: str | os.PathLike, obj) -> None:
    """Write JSON atomically (fsync before the rename so a crash never leaves a torn file)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())


def disk_full_guard(path: str | os.PathLike):
    """Context manager turning ENOSPC raised inside into a one-line `DiskFull` error about `path`."""
    return _DiskFullGuard(Path(path))


class _DiskFullGuard:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and is_disk_full(exc, self.path):
            raise DiskFull(self.path) from exc
        return False
