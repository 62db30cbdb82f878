"""Nearest training frames in the object encoder's bottleneck space (paper, appendix B.3): one sheet.

    python benchmarks/nearest_neighbours.py --checkpoint runs/a/model.safetensors --data data/pokesim64 \
        --query-split test_unseen --queries 6 --k 5 --out docs/neighbours_unseen.png
    python benchmarks/nearest_neighbours.py --checkpoint runs/a/model.safetensors --data data/pokesim64 \
        --image plant.png --out neighbours.png

Each row: the query (a given image, or the source frame of a clip of --query-split), then its k nearest
source frames of --bank-split (default train), captioned with their clip (video/row) and distance.
"""
from __future__ import annotations

import argparse
import sys

from poke2video.errors import UserError
from poke2video.evaluate.neighbours import METRICS, nearest_neighbours_to_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model.safetensors (default: the bundled model)")
    parser.add_argument("--data", required=True, help="dataset store whose frames are searched")
    parser.add_argument("--out", required=True, help="sheet to write (.png)")
    parser.add_argument("--image", nargs="+", default=None, help="query images")
    parser.add_argument("--query-split", default=None, help="or: query with the first clips of this split")
    parser.add_argument("--queries", type=int, default=4, help="clips of --query-split to query with")
    parser.add_argument("--k", type=int, default=5, help="neighbours per query")
    parser.add_argument("--bank-split", default="train", help="split searched (default train)")
    parser.add_argument("--metric", choices=METRICS, default="cosine")
    args = parser.parse_args(argv)
    try:
        path = nearest_neighbours_to_file(args.checkpoint, args.data, args.out, args.image, args.query_split,
                                          args.queries, args.k, args.bank_split, args.metric)
    except UserError as exc:
        print(f"nearest_neighbours: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
