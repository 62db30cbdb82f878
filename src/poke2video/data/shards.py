"""Sharded `prepare` and `poke2video merge`.

`prepare --shard i/n` collects the same input list as a plain `prepare` (the layout's order: inputs as
given, each searched in natural path order) and keeps the videos whose position g in that list has
g mod n = i. Each shard is a complete store of its own; its video directories keep the global number
(`videos/<g>`), and its manifest has a `shard` section: index, count, the number of inputs, a sha256 of
their names, and the global numbers of its kept and skipped videos.

`merge` checks that the shards come from one run (same options, same inputs, every index once), places
the video directories (hard links, or copies where links are impossible), puts the records and the
skipped inputs back in global order, and recomputes the splits over all kept videos exactly as
`prepare` does, so that the merged store equals `prepare` run once on all inputs. It writes into
`OUT.partial/` one video at a time and renames at the end; a re-run resumes.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from poke2video.data.layouts import VideoSource, get_layout, make_splits
from poke2video.data.store import Store, StoreWriter, video_dir_name
from poke2video.errors import UserError

MANIFEST_ONLY = ("format", "version", "videos", "splits", "skipped", "extra", "shard")


def shard_indices(count: int, shard: tuple[int, int]) -> list[int]:
    """Global positions of the inputs that shard `i/n` prepares (g mod n = i)."""
    index, shards = shard
    if not 0 <= index < shards:
        raise UserError(f"--shard {index}/{shards}: the index must be between 0 and {shards - 1}")
    chosen = list(range(index, count, shards))
    if not chosen:
        raise UserError(f"--shard {index}/{shards}: there are only {count} input video(s), so this shard "
                        f"has none; use at most {count} shards")
    return chosen


def shard_header(sources: list[VideoSource], shard: tuple[int, int]) -> dict[str, Any]:
    names = hashlib.sha256("\n".join(source.name for source in sources).encode()).hexdigest()
    return {"index": shard[0], "count": shard[1], "sources": len(sources), "sources_sha256": names}


def merge_shards(shards: list[str | os.PathLike], out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Merge the stores of `prepare --shard 0/n ... n-1/n` into one store at `out`; returns its path."""
    stores = [_open_shard(Path(path)) for path in shards]
    if any(Path(out).resolve() == store.root.resolve() for store in stores):
        raise UserError(f"--out {out} is one of the shards; choose a new directory")
    header = _common_header(stores)
    _check_complete(stores)
    videos = sorted(((g, store, record) for store in stores
                     for g, record in zip(store.manifest["shard"]["videos"], store.videos)), key=lambda v: v[0])
    if not videos:
        raise UserError(f"no usable video in any of the {len(stores)} shards")
    writer = StoreWriter(out, header, overwrite=overwrite)
    for g, store, record in tqdm(videos, desc="merge", unit="video", file=sys.stderr):
        if writer.completed(g) != record:
            writer.adopt_video(g, store.root / record["dir"], record)
    records = [record for _, _, record in videos]
    kept = [VideoSource(Path(r["source"]), r["name"], r.get("split_hint")) for r in records]
    splits = make_splits(get_layout(header["preset"]), kept, [r["num_frames"] for r in records],
                         header["split_seed"])
    return writer.finalize(records, splits, _skipped_in_order(stores))


def _open_shard(path: Path) -> Store:
    store = Store.open(path)
    shard = store.manifest.get("shard")
    if not isinstance(shard, dict):
        raise UserError(f"{path} is not a shard: it was not made by `poke2video prepare --shard I/N`")
    try:
        for g, record in zip(shard["videos"], store.videos, strict=True):
            if record["dir"] != f"videos/{video_dir_name(g)}":
                raise ValueError(record["dir"])
        expected = list(range(shard["index"], shard["sources"], shard["count"]))
        if sorted(shard["videos"] + shard["skipped"]) != expected:
            raise ValueError("videos and skipped do not cover the shard's share")
        if len(store.manifest["skipped"]) < len(shard["skipped"]):
            raise ValueError("fewer skipped inputs than skipped videos")
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path / 'manifest.json'} is damaged: bad shard section ({exc})") from exc
    return store


def _header(store: Store) -> dict[str, Any]:
    return {key: value for key, value in store.manifest.items() if key not in MANIFEST_ONLY}


def _common_header(stores: list[Store]) -> dict[str, Any]:
    first = stores[0]
    for other in stores[1:]:
        difference = _first_difference(_header(first), _header(other))
        if difference:
            raise UserError(f"{first.root} and {other.root} were prepared with different options ({difference}); "
                            "merge only the shards of one `prepare --shard` run")
        inputs = [{k: s.manifest["shard"][k] for k in ("count", "sources", "sources_sha256")} for s in (first, other)]
        difference = _first_difference(*inputs)
        if difference:
            raise UserError(f"{first.root} and {other.root} are shards of different inputs or shard counts "
                            f"({difference}); every shard needs the same inputs and the same N in --shard I/N")
    return _header(first)


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """'key.sub: a vs b' for the first field that differs between two JSON values, else None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r} vs {b!r}"


def _check_complete(stores: list[Store]) -> None:
    count = stores[0].manifest["shard"]["count"]
    given: dict[int, Path] = {}
    for store in stores:
        index = store.manifest["shard"]["index"]
        if index in given:
            raise UserError(f"shard {index}/{count} is given twice: {given[index]} and {store.root}")
        given[index] = store.root
    missing = [f"{i}/{count}" for i in range(count) if i not in given]
    if missing:
        raise UserError(f"shard {', '.join(missing)} missing: merge needs all {count} shards of the run "
                        f"(given: {', '.join(f'{i}/{count}' for i in sorted(given))})")


def _skipped_in_order(stores: list[Store]) -> list[dict[str, Any]]:
    """What prepare's listing passed over (every shard lists all inputs: the first shard's), then the videos
    the shards skipped, in global order (a shard's `skipped` ends with those, one per index)."""
    def listed_and_bad(store: Store) -> tuple[list, list]:
        items, count = store.manifest["skipped"], len(store.manifest["shard"]["skipped"])
        return items[:len(items) - count], items[len(items) - count:]

    skipped = [(g, item) for store in stores
               for g, item in zip(store.manifest["shard"]["skipped"], listed_and_bad(store)[1])]
    return listed_and_bad(stores[0])[0] + [item for _, item in sorted(skipped, key=lambda pair: pair[0])]
