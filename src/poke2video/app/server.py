"""`poke2video app`: the web app's HTTP server (FastAPI) and its JSON API.

    GET  /                  the page (static/index.html: canvas, drag, playback; no build step)
    GET  /api/model         the model: name, resolution, frames, modes
    GET  /api/examples      PokeSim example scenes (image ids, the simulator's own poke)
    POST /api/images        multipart upload (field `file`) -> {image_id, width, height, ...}
    GET  /api/images/{id}   the stored image as PNG (uploads are scaled to fit 512 px)
    POST /api/poke          {image_id, source: [x, y], target: [x, y], mode?, format?} -> T frames (base64 PNG
                            or JPEG) + the model's ms; several pokes: "pokes": [{source, target}, ...]
                            instead of source and target; "pins": [[x, y], ...] held still
    POST /api/video         the same + format mp4|gif, overlay -> the video file (image + T frames)

Errors are JSON {"detail": "one line"}: 400 bad poke (outside the image, wrong mode, both forms or none,
more pokes or pins than the limits), 403 a Host header
naming another host or an Origin of another site, 404 unknown image id, 413 a body or image too large (bytes,
counted as they arrive, or pixels), 415 not an image, 422 malformed request (not JSON, NaN, missing field), 429
too many requests waiting for the model. Every answer carries nosniff and frame and content policies (Guard).
The OpenAPI page is /docs (Swagger UI, its script and style served from the fastapi-offline package, so it
works offline; ReDoc is off, its page fetches a logo from a CDN); the specification is /openapi.json.
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import re
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, File, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException

from poke2video import __version__
from poke2video.app import schemas
from poke2video.app.images import AppError, ImageStore, Limits, decode_upload
from poke2video.app.work import VIDEO_TYPES, PokeInputs, WorkQueue, png_bytes, poke_job, video_job
from poke2video.errors import UserError, first_line
from poke2video.poker import Poker, bundled_name
from poke2video.poking.request import MAX_PINS, MAX_POKES, requested_pins, requested_pokes

STATIC_DIR = Path(__file__).parent / "static"
DOCS_ASSETS = "/docs-assets"   # the OpenAPI pages' scripts and styles (fastapi-offline)
EXAMPLE_RESOLUTION = 64
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")
MAX_JSON_BYTES = 64 * 1024         # a poke is under 1 KiB; a larger JSON body is refused (413) unparsed
FORM_OVERHEAD = 64 * 1024          # an upload's multipart framing, on top of Limits.max_upload_bytes
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
                    "Cross-Origin-Resource-Policy": "same-origin"}
CONTENT_POLICY = ("default-src 'self'; script-src 'self'{scripts}; style-src 'self'; "
                  "img-src 'self' data: blob:; media-src 'self' data: blob:; connect-src 'self'; "
                  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)    # /docs starts Swagger UI from one
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
    """/api/model's answer. The checkpoint's `name` is shown as one line of at most 200 characters and its
    `step` only when it is an integer: metadata of another type made every GET /api/model a 500."""
    parameters = sum(p.numel() for p in poker.model.parameters())
    step = poker.metadata.get("step")
    return {"name": " ".join(str(poker.metadata.get("name") or name).split())[:200] or name,
            "resolution": poker.resolution, "frames": poker.frames, "parameters": parameters,
            "modes": list(poker.modes), "default_mode": poker.modes[0], "impulse_scale": poker.impulse_scale,
            "max_pokes": MAX_POKES, "max_pins": MAX_PINS if poker.has_flow else 0,
            "step": step if isinstance(step, int) and not isinstance(step, bool) else None}


def model_name(checkpoint: str | None) -> str:
    if (bundled := bundled_name(checkpoint)) is not None:
        return f"bundled {bundled} model"
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


def create_app(poker: Poker, name: str = "model", limits: Limits | None = None, threads: int = 1,
               host: str = "127.0.0.1") -> FastAPI:
    """The app for one loaded model. `threads`: torch threads of the inference worker; `host`: the address
    it serves (requests whose Host header names anything else are refused, see HostNames)."""
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
    _add_routes(app, state)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    build = app.build_middleware_stack       # Guard goes outside Starlette's error layer: its 500s get headers too
    app.build_middleware_stack = lambda: Guard(build(), HostNames.serving(host), limits.max_upload_bytes)
    return app


def attachment(filename: str) -> str:
    """Content-Disposition of a download: an ASCII `filename` (what the page reads) and the UTF-8 `filename*`.

    Headers are latin-1: an upload named in another script (植物.png) made /api/video answer 500 (fuzzing)."""
    plain = re.sub(r"[^A-Za-z0-9._-]+", "_", filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _error(status: int, detail: str, headers: dict | None = None, **extra) -> JSONResponse:
    """Every error the app answers: JSON whose `detail` is one line (at most 500 characters)."""
    return JSONResponse(status_code=status, headers=headers,
                        content={"detail": " ".join(str(detail).split())[:500] or "error", **extra})


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_request, exc: AppError):
        return _error(exc.status, str(exc))

    @app.exception_handler(UserError)
    async def user_error(_request, exc: UserError):
        return _error(400, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_request, exc: HTTPException):
        if exc.status_code == 400:    # FastAPI's and Starlette's answer to a body they cannot parse
            cause = exc.__cause__ or exc.__context__
            return _error(422, f"body: cannot be parsed ({first_line(cause) if cause else exc.detail})")
        return _error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request, exc: RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]      # without the offending input: it may be NaN, which JSON lacks
        first = errors[0] if errors else {"loc": [], "msg": "invalid request", "type": ""}
        where = ".".join(str(part) for part in first["loc"] if part != "body") or "request"
        message = first["msg"]
        if first["type"] == "json_invalid":
            where = f"body: not valid JSON at character {first['loc'][-1]}"
            message = exc.errors()[0].get("ctx", {}).get("error") or message
        return _error(422, f"{where}: {message}", errors=errors)

    @app.exception_handler(Exception)
    async def crashed(_request, exc: Exception):
        log.exception("internal error")
        return _error(500, f"internal error ({type(exc).__name__}: {first_line(exc)[:200]}); "
                           "the server keeps running and logs the details")


@dataclass(frozen=True)
class HostNames:
    """The host names requests may be addressed to: the loopback names, the address served and, where that
    is a wildcard (0.0.0.0, ::), this machine's names and any IP address. A web page that rebinds its own
    DNS name to this machine sends that name in its Host header and is refused; an IP address cannot be
    rebound."""

    names: frozenset[str]
    any_address: bool

    @classmethod
    def serving(cls, host: str) -> "HostNames":
        wildcard = host in WILDCARD
        machine = {socket.gethostname(), socket.getfqdn()} if wildcard else set()
        return cls(frozenset(_host_name(n) for n in {*LOOPBACK, host, *machine}), wildcard)

    def allows(self, host_header: str) -> bool:
        name = _host_name(host_header)
        if name in self.names:
            return True
        try:
            return self.any_address and bool(ipaddress.ip_address(name))
        except ValueError:
            return False


def _host_name(authority: str) -> str:
    """The host of a Host header or an address: no port, no brackets, no final dot, lower case."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        name = authority[1:].partition("]")[0]
    else:
        name = authority.rpartition(":")[0] if authority.count(":") == 1 else authority
    return name.removesuffix(".")


class Guard:
    """The app's outermost layer. It refuses, before reading a body, a Host header naming another host
    (403), an Origin of another site (403) and a declared Content-Length over the limit (413); it counts a
    body as it arrives (chunked uploads declare no length) and stops it at the limit with 413; and it adds
    the security headers to every answer."""

    def __init__(self, app, hosts: HostNames, upload_bytes: int):
        self.app, self.hosts, self.upload_bytes = app, hosts, upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        send = _with_policies(send)
        upload = scope["path"] == "/api/images"
        shown, kind = (self.upload_bytes, "an upload") if upload else (MAX_JSON_BYTES, "a JSON request")
        limit = shown + FORM_OVERHEAD if upload else shown
        refused = self._refusal(scope, limit, f"{kind} may have at most {shown:,} bytes")
        if refused is not None:
            return await refused(scope, receive, send)
        await self.app(scope, _bounded(receive, limit, f"{kind} may have at most {shown:,} bytes"), send)

    def _refusal(self, scope, limit: int, most: str) -> JSONResponse | None:
        headers = Headers(scope=scope)
        host, origin = headers.get("host"), headers.get("origin")
        if host is not None and not self.hosts.allows(host):
            return _error(403, f"this server does not answer for the host {host[:100]!r}; open it as "
                               f"http://127.0.0.1 or by the address it was started with (--host)")
        if origin is not None and origin.strip().lower() != f"{scope['scheme']}://{host}".lower():
            return _error(403, f"a request from another site ({origin[:100]!r}) is refused")
        length = headers.get("content-length")
        if length is not None and not length.strip().isdigit():
            return _error(400, f"bad Content-Length header {length[:40]!r}", {"Connection": "close"})
        if length is not None and int(length) > limit:
            return _error(413, f"the request has {int(length):,} bytes; {most}", {"Connection": "close"})
        return None


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a body passes its limit: the app answers 413 and closes the connection."""

    def __init__(self, limit: int, most: str):
        super().__init__(413, f"the request body passed {limit:,} bytes; {most}", {"Connection": "close"})


def _bounded(receive, limit: int, most: str):
    """`receive` that raises BodyTooLarge as soon as more than `limit` body bytes have arrived."""
    seen = 0

    async def bounded():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit, most)
        return message
    return bounded


def _with_policies(send):
    """`send` that adds SECURITY_HEADERS and CONTENT_POLICY to every answer; an HTML page is held until
    complete so that the policy can allow its inline scripts by their sha256."""
    held: list[dict] = []

    async def policed(message):
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers.update(SECURITY_HEADERS)
            if headers.get("content-type", "").startswith("text/html"):
                held.append(message)                         # sent with the whole page
                return
            headers["Content-Security-Policy"] = CONTENT_POLICY.format(scripts="")
        elif held and message["type"] == "http.response.body":
            held.append(message)
            if message.get("more_body"):
                return
            start, page = held[0], b"".join(part.get("body", b"") for part in held[1:])
            held.clear()
            scripts = "".join(f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
                              for script in INLINE_SCRIPT.findall(page))
            MutableHeaders(scope=start)["Content-Security-Policy"] = CONTENT_POLICY.format(scripts=scripts)
            await send(start)
            message = {"type": "http.response.body", "body": page}
        await send(message)
    return policed


def _checked_request(request: schemas.PokeRequest) -> PokeInputs:
    """The request's pokes and pins, their form and counts checked before it waits for the model (a
    UserError, 400, names what is wrong); whether they lie inside the image is checked with the image."""
    requested_pokes(request.source, request.target, request.poke_pairs())
    requested_pins(request.pins)
    return PokeInputs(request.source, request.target, request.poke_pairs(), request.pins)


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
        pokes = _checked_request(request)
        return await state.queue.run(poke_job, state.poker, entry, pokes, request.mode, request.format)

    @app.post("/api/video", responses={200: {"content": {t: {} for t in VIDEO_TYPES.values()}},
                                       **errors(400, 404, 422, 429)},
              response_class=Response, summary="Poke an image and download the video (mp4 or gif)")
    async def video(request: schemas.VideoRequest):
        entry = state.images.get(request.image_id)
        pokes = _checked_request(request)
        data = await state.queue.run(video_job, state.poker, entry, pokes, request.mode, request.format,
                                     request.overlay)
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
    app = create_app(poker, model_name(checkpoint), threads=threads, host=host)
    shown = f"[{host}]" if ":" in host else host
    print(f"poke2video app: {app.state.poke2video.model['name']} at http://{shown}:{port}/ "
          f"(API: http://{shown}:{port}/docs; Ctrl-C stops)", flush=True)
    if host not in LOOPBACK:
        print(f"poke2video app: warning: listening on {host}, not only this machine; "
              "anyone who can reach it can use the model", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning")
