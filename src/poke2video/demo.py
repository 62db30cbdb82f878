"""`poke2video demo`: poke a few PokeSim scenes with the bundled model."""
from __future__ import annotations

from poke2video.errors import UserError
from poke2video.poker import DEFAULT_WEIGHTS


def run_demo(out: str) -> None:
    if not DEFAULT_WEIGHTS.is_file():
        raise UserError(
            "this build has no bundled model yet; train one on PokeSim and poke with it: "
            "poke2video simulate --out data/pokesim64 --clips 4000 && "
            "poke2video train --data data/pokesim64 --out runs/a --max-minutes 30")
    raise UserError("the demo scenes are not part of this build yet")
