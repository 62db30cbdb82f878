"""The app's JSON shapes (pydantic), which FastAPI validates and shows on /docs."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

Coordinate = Annotated[float, Field(allow_inf_nan=False, strict=True)]   # a JSON number: not "1", not true
Point = Annotated[list[Coordinate], Field(min_length=2, max_length=2,
                                          description="[x, y] in the stored image's pixels, x right, y down")]
Mode = Literal["displacement", "impulse"]


class Error(BaseModel):
    detail: str = Field(description="one line saying what was wrong")


def error_responses(*statuses: int) -> dict:
    return {status: {"model": Error} for status in statuses}


class ModelInfo(BaseModel):
    name: str
    resolution: int = Field(description="the model's square resolution in pixels")
    frames: int = Field(description="T: frames generated per poke")
    parameters: int
    modes: list[Mode] = Field(description="how a drag can be read; the first is the model's own")
    default_mode: Mode
    impulse_scale: float | None = Field(description="impulse models: per-step motion at strength 1")
    max_pokes: int = Field(description="the most pokes one request may hold")
    max_pins: int = Field(description="the most pins one request may hold (0: this model takes none)")
    step: int | None = Field(description="training step of the weights, when recorded")


class ImageInfo(BaseModel):
    image_id: str
    name: str
    width: int
    height: int
    url: str = Field(description="GET it for the stored image as PNG")


class ExampleInfo(ImageInfo):
    kind: str = Field(description="plant or figure")
    species: str
    background: bool = Field(description="the simulator's poke is on the background: nothing should move")
    source: list[float] = Field(description="the simulator's poked pixel [x, y]")
    target: list[float] = Field(description="where the simulator moved it by the last frame [x, y]")


class PokeItem(BaseModel):
    source: Point
    target: Point


class PokeRequest(BaseModel):
    image_id: str = Field(max_length=200)
    source: Point | None = Field(None, description="one poke: the pixel to move (with `target`)")
    target: Point | None = Field(None, description="one poke: where it should go")
    pokes: list[PokeItem] | None = Field(None, description="several pokes at once, instead of source and target "
                                                           "(at most /api/model max_pokes)")
    pins: list[Point] | None = Field(None, description="pixels to hold still (at most /api/model max_pins)")
    mode: Mode | None = Field(None, description="displacement | impulse (see /api/model modes); "
                                                "default: the model's own")

    def poke_pairs(self) -> list[tuple[list[float], list[float]]] | None:
        """`pokes` as [(source, target), ...], or None when the request holds none."""
        return None if self.pokes is None else [(item.source, item.target) for item in self.pokes]


class FramesRequest(PokeRequest):
    format: Literal["png", "jpeg"] = Field("png", description="frame encoding: png (lossless) or jpeg "
                                                              "(quality 90; much faster for large images)")


class VideoRequest(PokeRequest):
    format: Literal["mp4", "gif"] = "mp4"
    overlay: bool = Field(True, description="draw the pokes' arrows and target dots, and the pins, on every frame")


class PokeResponse(BaseModel):
    frames: list[str] = Field(description="frames 1..T, each a base64-encoded PNG or JPEG at the image's size")
    format: Literal["png", "jpeg"]
    width: int
    height: int
    count: int = Field(description="number of frames (T)")
    ms: float = Field(description="milliseconds the model took for this video (batch 1)")
    mode: Mode
