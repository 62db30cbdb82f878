"""`poke2video app`: the web app's HTTP server (FastAPI) and its JSON API.

    GET  /                  the page (static/index.html: canvas, drag, playback; no build step)
    GET  /api/model         the model: name, resolution, frames, modes
    GET  /api/examples      PokeSim example scenes (image ids, the simulator's own poke)
    POST /api/images        multipart upload (field `file`) -> {image_id, width, height, ...}
    GET  /api/images/{id}   the stored image as PNG (uploads are scaled to fit 512 px)
    POST /api/poke          {image_id, source: [x, y], target: [x, y], mode?, format?} -> T frames (base64 PNG
                            or JPEG) + the model's ms
    POST /api/video         the same + format mp4|gif, overlay -> the video file (image + T frames)

Errors are JSON {"detail": "one line"}: 400 bad poke (outside the image, wrong mode), 404 unknown image id,
413 upload too large (bytes or pixels), 415 not an image, 422 malformed request (NaN, missing field), 429
too many requests waiting for the model. The OpenAPI page is /docs (Swagger UI, its script and style served from
the fastapi-offline package, so it works offline; ReDoc is off, its page fetches a logo from a CDN); the
specification is /openapi.json.
"""
from __future__ import annotations

import logging
import re
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from poke2video import __version__
from poke2video.app import schemas
from poke2video.app.images import AppError, ImageStore, Limits, check_body_size, decode_upload
from poke2video.app.work import VIDEO_TYPES, WorkQueue, png_bytes, poke_job, video_job
from poke2video.errors import UserError
from poke2video.poker import Poker

STATIC_DIR = Path(__file__).parent / "static"
DOCS_ASSETS = "/docs-assets"   # the OpenAPI pages' scripts and styles (fastapi-offline)
EXAMPLE_RESOLUTION = 64
LOOPBACK = ("127.0.0.1", "localhost", "::1")
log = logging.getLogger("poke2video.app")


@dataclass
class AppState:
    poker: Poker
    model: dict
    limits: Limits
    images: ImageStore
    queue: WorkQueue
    examples: list[dict]


def describe_model(poker: Poker, name: str) -> dict:
    parameters = sum(p.numel() for p in poker.model.parameters())
    return {"name": str(poker.metadata.get("name") or name), "resolution": poker.resolution,
            "frames": poker.frames, "parameters": parameters, "modes": list(poker.modes),
            "default_mode": poker.modes[0], "impulse_scale": poker.impulse_scale,
            "step": poker.metadata.get("step")}


def model_name(checkpoint: str | None) -> str:
    if checkpoint is None:
        return "bundled default model"
    path = Path(checkpoint)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _add_examples(images: ImageStore) -> list[dict]:
    from poke2video.sim.examples import example_scenes

    examples = []
    for scene in example_scenes(EXAMPLE_RESOLUTION):
        entry = images.add_fixed(f"example-{scene.name}", scene.name, scene.image)
        examples.append({**entry.describe(), "kind": scene.kind, "species": scene.species,
                         "background": scene.background, "source": list(scene.source),
                         "target": list(scene.target)})
    return examples


def create_app(poker: Poker, name: str = "model", limits: Limits | None = None, threads: int = 1) -> FastAPI:
    """The app for one loaded model. `threads`: torch threads of the inference worker."""
    limits = limits or Limits()
    images = ImageStore(limits.max_images)
    state = AppState(poker, describe_model(poker, name), limits, images, WorkQueue(limits.max_waiting, threads),
                     _add_examples(images))

    @asynccontextmanager
    async def lifespan(_app):
        yield
        state.queue.close()

    app = FastAPIOffline(title="poke2video", version=__version__, lifespan=lifespan,
                         description="Poke one pixel of a still image and get a video of how the object "
                                     "responds. Errors are JSON objects with a one-line `detail`.",
                         static_url=DOCS_ASSETS, redoc_url=None)   # Swagger UI from the package, not a CDN
    app.state.poke2video = state
    _add_error_handlers(app)
    _add_upload_guard(app)
    _add_routes(app, state)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def attachment(filename: str) -> str:
    """Content-Disposition of a download: an ASCII `filename` (what the page reads) and the UTF-8 `filename*`.

    Headers are latin-1: an upload named in another script (植物.png) made /api/video answer 500 (fuzzing)."""
    plain = re.sub(r"[^A-Za-z0-9._-]+", "_", filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_request, exc: AppError):
        return _error(exc.status, str(exc))

    @app.exception_handler(UserError)
    async def user_error(_request, exc: UserError):
        return _error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request, exc: RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]      # without the offending input: it may be NaN, which JSON lacks
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"] if part != "body") or "request"
        return JSONResponse(status_code=422, content={"detail": f"{where}: {first['msg']}", "errors": errors})

    @app.exception_handler(Exception)
    async def crashed(_request, exc: Exception):
        log.exception("internal error")
        return _error(500, f"internal error ({type(exc).__name__}: {exc}); the server keeps running")


def _add_upload_guard(app: FastAPI) -> None:
    """Refuse an oversized upload from its Content-Length, before the body is read and parsed."""

    @app.middleware("http")
    async def upload_size(request: Request, call_next):
        if request.method == "POST" and request.url.path == "/api/images":
            try:
                check_body_size(request.headers.get("content-length"), app.state.poke2video.limits)
            except AppError as exc:
                return _error(exc.status, str(exc))
        return await call_next(request)


def _add_routes(app: FastAPI, state: AppState) -> None:
    errors = schemas.error_responses

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/api/model", response_model=schemas.ModelInfo, summary="The loaded model")
    async def model():
        return state.model

    @app.get("/api/examples", response_model=list[schemas.ExampleInfo], summary="PokeSim example scenes")
    async def examples():
        return state.examples

    @app.post("/api/images", response_model=schemas.ImageInfo, responses=errors(400, 413, 415, 422, 429),
              summary="Upload an image (multipart field `file`)")
    async def upload(file: UploadFile = File(..., description="png, jpeg, webp, gif, bmp or tiff")):
        data = await file.read(state.limits.max_upload_bytes + 1)
        rgb = await state.queue.run(decode_upload, data, state.limits)
        name = Path(file.filename or "upload").name[:100]
        return state.images.add_upload(name, rgb).describe()

    @app.get("/api/images/{image_id}", responses={200: {"content": {"image/png": {}}}, **errors(404)},
             response_class=Response, summary="A stored image as PNG")
    async def image(image_id: str):
        return Response(png_bytes(state.images.get(image_id).rgb), media_type="image/png")

    @app.post("/api/poke", response_model=schemas.PokeResponse, responses=errors(400, 404, 422, 429),
              summary="Poke an image: T frames (base64 PNG or JPEG) and the model's milliseconds")
    async def poke(request: schemas.FramesRequest):
        entry = state.images.get(request.image_id)
        return await state.queue.run(poke_job, state.poker, entry, request.source, request.target, request.mode,
                                     request.format)

    @app.post("/api/video", responses={200: {"content": {t: {} for t in VIDEO_TYPES.values()}},
                                       **errors(400, 404, 422, 429)},
              response_class=Response, summary="Poke an image and download the video (mp4 or gif)")
    async def video(request: schemas.VideoRequest):
        entry = state.images.get(request.image_id)
        data = await state.queue.run(video_job, state.poker, entry, request.source, request.target,
                                     request.mode, request.format, request.overlay)
        filename = f"poke2video-{Path(entry.name).stem or 'poke'}.{request.format}"
        return Response(data, media_type=VIDEO_TYPES[request.format],
                        headers={"Content-Disposition": attachment(filename)})


def _check_port(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UserError(f"--host {host}: {exc.strerror or exc}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                            "pick another with --port") from None


def serve(checkpoint: str | None = None, host: str = "127.0.0.1", port: int = 7860, threads: int = 1) -> None:
    """Load the model and serve the app until Ctrl-C."""
    import sys

    import torch
    import uvicorn

    torch.set_num_threads(threads)
    poker = Poker.load(checkpoint)
    _check_port(host, port)
    app = create_app(poker, model_name(checkpoint), threads=threads)
    shown = f"[{host}]" if ":" in host else host
    print(f"poke2video app: {app.state.poke2video.model['name']} at http://{shown}:{port}/ "
          f"(API: http://{shown}:{port}/docs; Ctrl-C stops)", flush=True)
    if host not in LOOPBACK:
        print(f"poke2video app: warning: listening on {host}, not only this machine; "
              "anyone who can reach it can use the model", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning")
