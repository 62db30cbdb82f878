"""Filesystem helpers: outputs appear complete or not at all."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from poke2video.errors import DiskFull


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

    Works for files and directories. A full disk becomes a `DiskFull` (a `UserError`) naming the output.
    """
    final = Path(path)
    tmp = _tmp_name(final)
    remove_path(tmp)
    try:
        yield tmp
        _test_kill_point(final)
        os.replace(tmp, final)
    except BaseException as exc:
        remove_path(tmp)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"disk full while writing {final}") from exc
        raise


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
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"disk full while writing {self.path}") from exc
        return False
