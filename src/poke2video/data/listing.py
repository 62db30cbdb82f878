"""Listing the inputs of `prepare`: video files and image folders at or below each root, each real one once.

A file or folder is identified by its device and inode, so a second name for one already listed (a
symbolic link, a hard link, a bind mount) is not listed again, and no video lands on both sides of a split.
What a walk passes over is named in one line on stderr and kept in `Listing.skipped` (the manifest's
`skipped` list, before the videos that could not be prepared):

- a second name for a file or folder already listed;
- a link back to a folder it lies in (a loop), not followed;
- a name ending in a video suffix that is no regular file: a link that leads nowhere or round in a circle,
  a named pipe, a socket or a device (the same named directly is an error).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from poke2video.data.video import VIDEO_EXTENSIONS, is_image_folder, is_video_file, natural_key
from poke2video.errors import UserError, print_line
from poke2video.fsutil import os_reason, special_file_kind


@dataclass
class Listing:
    """What the walks of one `prepare` listed, by (device, inode), and what they passed over, with why."""

    seen: dict[tuple[int, int], Path] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def first_visit(self, path: Path, name: str) -> bool:
        """Whether `path` leads to a file or folder not listed yet (recording it); else skip it, saying why."""
        info = os.stat(path)
        identity = (info.st_dev, info.st_ino)
        if identity not in self.seen:
            self.seen[identity] = path
            return True
        first, real = self.seen[identity], os.path.realpath(path)
        where = os.path.realpath(path.parent)
        if path.is_dir() and (where == real or where.startswith(real.rstrip(os.sep) + os.sep)):
            self.skip(path, name, f"not followed: a link back to {first}, a folder it lies in (a loop)")
        else:
            self.skip(path, name, f"skipped: the same {'folder' if path.is_dir() else 'file'} as {first}")
        return False

    def skip(self, path: Path, name: str, reason: str) -> None:
        print_line(f"poke2video prepare: {path}: {reason}")
        self.skipped.append({"source": str(path), "name": name, "reason": reason})


def not_a_file(path: Path) -> str | None:
    """Why `path` cannot be read as a file (a link that leads nowhere, a FIFO, a device...); None if it can."""
    try:
        os.stat(path)
    except OSError as exc:
        return f"a link that leads nowhere ({os_reason(exc)})" if path.is_symlink() else os_reason(exc)
    kind = special_file_kind(path)
    return None if kind is None or kind == "a folder" else f"{kind}, not a file"


def find_videos(root: Path, listing: Listing | None = None) -> list[Path]:
    """Video files and image folders at or below `root`, in natural path order, each real one once; `listing`
    carries what was listed (and skipped) across several roots."""
    listing = Listing() if listing is None else listing
    if not (is_video_file(root) or is_image_folder(root)):
        if not root.exists():
            raise UserError(f"{root}: no such file or folder")
        if not root.is_dir():
            raise UserError(f"{root}: not a video file (mp4, avi, mkv, webm) or a folder")
    found, stack = [], [root]
    while stack:                                # depth first, children in natural order
        path = stack.pop()
        if not listing.first_visit(path, source_name(path, root)):
            continue
        if is_video_file(path) or is_image_folder(path):
            found.append(path)
            continue
        try:
            children = sorted(path.iterdir(), key=lambda p: natural_key(p.name))
        except OSError as exc:
            raise UserError(f"{path}: cannot read folder ({exc.strerror or exc})") from exc
        walked = []
        for child in children:
            if child.suffix.lower() in VIDEO_EXTENSIONS and (why := not_a_file(child)) is not None:
                listing.skip(child, source_name(child, root), f"skipped: {why}")
            elif child.is_dir() or is_video_file(child):
                walked.append(child)
        stack.extend(reversed(walked))
    return found


def source_name(path: Path, root: Path) -> str:
    """A video's stable name: the root's name and the path below it."""
    if path == root:
        return path.name
    return f"{root.name}/{path.relative_to(root).as_posix()}"
