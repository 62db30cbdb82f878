"""A few fixed PokeSim scenes for the demo and the app: the simulator's own scenes, pokes and true frames.

Each scene is one PokeSim clip with a fixed seed and one species (none held out), so it looks like the
training data of a PokeSim model. Object scenes carry the simulator's poke: the poked pixel and where it
truly is at the last frame; the background scene pokes the backdrop, where nothing should move.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from poke2video.sim.bodies import SPECIES
from poke2video.sim.generate import _scene_config
from poke2video.sim.scene import POKE_COLUMNS, ClipSpec, render_chunk

# (name, species, clip seed, background): picked by eye for clear motion at 64 px
EXAMPLE_SPECS = (
    ("willow", "willow", (2021, 1, 0), False),
    ("maple", "maple", (2021, 3, 1), False),
    ("jelly", "jelly", (2021, 3, 3), False),
    ("doll", "doll", (2021, 0, 4), False),
    ("background", "fern", (2021, 2, 2), True),
)
_COL = {name: i for i, name in enumerate(POKE_COLUMNS)}


@dataclass(frozen=True)
class ExampleScene:
    name: str
    species: str
    kind: str                       # plant | figure
    background: bool                # the poke is on the backdrop: the true video is still
    frames: np.ndarray              # uint8 [T + 1, R, R, 3]: the image (frame 0) and the simulator's frames
    source: tuple[float, float]     # poked pixel (x, y)
    target: tuple[float, float]     # object scenes: the poked point's true position at frame T;
                                    # background: source + the drag the simulator pairs with it
    true_target: tuple[float, float]  # where the poked pixel is at frame T (background: the source)

    @property
    def image(self) -> np.ndarray:
        return self.frames[0]


def _inside(xy, resolution: int) -> tuple[float, float]:
    return tuple(float(np.clip(v, 0, resolution - 1)) for v in xy)


@lru_cache(maxsize=4)
def example_scenes(resolution: int = 64) -> tuple[ExampleScene, ...]:
    """The example scenes rendered at `resolution` (deterministic; about 0.05 s at 64 px)."""
    by_name = {s.name: s for s in SPECIES}
    specs = [ClipSpec(seed, (by_name[species],), background)
             for _, species, seed, background in EXAMPLE_SPECS]
    arrays = render_chunk(specs, _scene_config(resolution))
    frames = arrays["frames"].reshape(len(specs), -1, resolution, resolution, 3)
    scenes = []
    for (name, species, _, background), clip, poke in zip(EXAMPLE_SPECS, frames, arrays["gt_poke"]):
        source = (float(poke[_COL["x"]]), float(poke[_COL["y"]]))
        drag = (float(poke[_COL["drag_x"]]), float(poke[_COL["drag_y"]]))
        target = _inside((source[0] + drag[0], source[1] + drag[1]), resolution)
        clip.setflags(write=False)
        true_target = source if background else target
        scenes.append(ExampleScene(name, species, by_name[species].kind, background, clip, source, target,
                                   true_target))
    return tuple(scenes)
