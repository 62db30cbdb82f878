"""The app against hostile requests: bodies bounded while they arrive, the Host and Origin checks, the
security headers on every answer, and one-line JSON details for bodies that are not JSON and for crashes."""
import base64
import hashlib
import json
import re
import select
import socket

import pytest

from app_support import TINY, GatedModel, ServerThread, tiny_checkpoint
from poke2video.app.images import Limits
from poke2video.app.server import MAX_JSON_BYTES, create_app
from poke2video.model import PokeModel
from poke2video.poker import Poker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")   # starlette's TestClient over httpx
TestClient = pytest.importorskip("fastapi.testclient").TestClient
LOCAL = "http://127.0.0.1"
POKE = {"image_id": "example-willow", "source": [30, 20], "target": [34, 22]}


@pytest.fixture(scope="module")
def poker(tmp_path_factory):
    return Poker.load(tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.safetensors"))


@pytest.fixture(scope="module")
def client(poker):
    with TestClient(create_app(poker, "tiny"), base_url=LOCAL, raise_server_exceptions=False) as test_client:
        yield test_client


def assert_error(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail and "Traceback" not in detail
    for word in words:
        assert word in detail, detail
    return detail


def uploads(app) -> int:
    return len(app.state.poke2video.images._uploads)


# --- bodies: bounded before and while they are read ------------------------------------------------------

def raw_exchange(port: int, head: bytes, chunks, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """Send `head` and then `chunks` (but never the end of the body) on a raw socket, stopping early when
    the server answers; returns the status, the headers and the body of its answer, read until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0]:
                    break                                  # the server has answered (or closed)
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while part := sock.recv(65536):
                answer += part
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail(f"no answer within {timeout} s: the server is still reading the body ({answer[:200]!r})")
    head_part, _, body = answer.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def chunked(size: int, count: int):
    return (b"%x\r\n" % size + b"7" * size + b"\r\n" for _ in range(count))


def assert_refused(status, headers, body, *words):
    assert status == 413, body
    detail = json.loads(body)["detail"]
    assert "\n" not in detail and all(word in detail for word in words), detail
    assert headers["connection"] == "close" and headers["x-content-type-options"] == "nosniff"


def test_a_huge_declared_json_body_is_refused_before_it_is_read(poker):
    with ServerThread(create_app(poker, "tiny")) as url:
        port = int(url.rsplit(":", 1)[1])
        head = (f"POST /api/poke HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: 200000000\r\n\r\n").encode()
        assert_refused(*raw_exchange(port, head, [b'{"image_id": "' + b"x" * 1000]), "200,000,000",
                       f"{MAX_JSON_BYTES:,}")


@pytest.mark.parametrize("path, content_type", [
    ("/api/poke", "application/json"),
    ("/api/images", "multipart/form-data; boundary=xyz"),
])
def test_a_chunked_body_without_length_is_stopped_at_the_limit(poker, path, content_type):
    """No Content-Length and no end: the server must answer 413 once the limit passes, not wait for the end."""
    app = create_app(poker, "tiny", Limits(max_upload_bytes=100_000))
    with ServerThread(app) as url:
        port = int(url.rsplit(":", 1)[1])
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
                f"Transfer-Encoding: chunked\r\n\r\n").encode()
        form = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        chunks = [b"%x\r\n" % len(form) + form + b"\r\n", *chunked(16384, 200)]     # 3.2 MB, never ended
        assert_refused(*raw_exchange(port, head, chunks), "passed", "at most")
        assert uploads(app) == 0


def test_json_bodies_over_the_limit_are_refused_and_smaller_ones_parsed(client):
    padding = {"image_id": "example-willow", "source": [30, 20], "target": [34, 22], "pad": " " * MAX_JSON_BYTES}
    assert_error(client.post("/api/poke", json=padding), 413, "at most 65,536 bytes")
    padding["pad"] = " " * (MAX_JSON_BYTES // 2)
    assert client.post("/api/poke", json=padding).status_code == 200


# --- bodies that are not JSON or not a form: 422, as docs/reliability.md's table says ----------------------

@pytest.mark.parametrize("body, words", [
    (b"{", ["not valid JSON", "character 1"]),
    (b'{"image_id": "\xff"}', ["cannot be parsed", "utf-8"]),                    # not UTF-8
    (b"\xff\xfe{", ["cannot be parsed"]),                                         # a UTF-16 mark, then nonsense
    (b"[" * 5000 + b"]" * 5000, ["cannot be parsed", "recursion"]),               # nesting deeper than Python's stack
    (b'{"a":' * 3000 + b"1" + b"}" * 3000, ["cannot be parsed", "recursion"]),
])
def test_bodies_that_are_not_json_get_422(client, body, words):
    response = client.post("/api/poke", content=body, headers={"content-type": "application/json"})
    assert_error(response, 422, "body", *words)


def test_a_form_that_cannot_be_parsed_gets_422(client):
    response = client.post("/api/images", content=b"--x\r\n", headers={"content-type": "multipart/form-data"})
    assert_error(response, 422, "body", "boundary")


# --- Host and Origin --------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["evil.example", "evil.example:7860", "127.0.0.1.evil.example", "localhost.evil",
                                  "192.168.1.7:7860", "testserver", "[::2]:7860"])
def test_other_host_names_are_refused(client, host):
    """A page that rebinds its DNS name to 127.0.0.1 sends that name: refused before anything runs."""
    for response in (client.get("/api/model", headers={"host": host}),
                     client.post("/api/poke", json=POKE, headers={"host": host}), client.get("/", headers={"host": host})):
        assert_error(response, 403, "does not answer for the host")


@pytest.mark.parametrize("host", ["127.0.0.1:7860", "127.0.0.1", "localhost", "LOCALHOST:80", "localhost.", "[::1]:7860"])
def test_loopback_names_are_served(client, host):
    assert client.get("/api/model", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("served, accepted, refused", [
    ("0.0.0.0", ["192.168.1.7:7860", "[fe80::1]:7860", socket.gethostname(), "localhost"], ["evil.example"]),
    ("myhost.lan", ["myhost.lan:7860", "MyHost.LAN", "127.0.0.1"], ["evil.example", "192.168.1.7"]),
])
def test_the_host_the_server_was_started_for_is_served(poker, served, accepted, refused):
    with TestClient(create_app(poker, "tiny", host=served), base_url=LOCAL) as wide:
        for host in accepted:
            assert wide.get("/api/model", headers={"host": host}).status_code == 200, host
        for host in refused:
            assert_error(wide.get("/api/model", headers={"host": host}), 403, host)


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1234", "https://127.0.0.1"])
def test_requests_from_other_sites_are_refused(poker, origin):
    """A form on another site can post an upload without CORS; it is refused before it is read or stored."""
    app = create_app(poker, "tiny")
    with TestClient(app, base_url=LOCAL) as test_client:
        response = test_client.post("/api/images", files={"file": ("a.png", b"\x89PNG", "image/png")},
                                    headers={"origin": origin})
        assert_error(response, 403, "another site")
        assert uploads(app) == 0
        assert test_client.post("/api/poke", json=POKE, headers={"origin": LOCAL}).status_code == 200


# --- what a browser is told ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [("GET", "/"), ("GET", "/docs"), ("GET", "/api/model"),
                                          ("GET", "/static/app.js"), ("GET", "/api/images/example-doll"),
                                          ("GET", "/nowhere"), ("POST", "/api/poke")])
def test_every_answer_carries_the_security_headers(client, method, path):
    response = client.request(method, path, json={} if method == "POST" else None)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy


def test_the_policy_allows_the_docs_page_its_own_inline_script_only(client):
    page = client.get("/docs")
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    assert inline
    digests = {base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() for script in inline}
    allowed = set(re.findall(r"'sha256-([^']+)'", page.headers["content-security-policy"]))
    assert allowed == digests
    assert "sha256-" not in client.get("/").headers["content-security-policy"]       # the app has no inline script


def test_a_crash_gives_a_one_line_500_with_headers():
    class Crashing(GatedModel):
        def forward(self, *args, **kwargs):
            raise RuntimeError('bad\n  File "/home/someone/src/model.py", line 3, in forward\n    x = y')

    app = create_app(Poker(Crashing(TINY)), "crashing")
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as crashing:
        response = crashing.post("/api/poke", json=POKE)
        detail = assert_error(response, 500, "internal error", "RuntimeError: bad")
        assert "model.py" not in detail
        assert response.headers["x-content-type-options"] == "nosniff"
        assert crashing.get("/api/model").status_code == 200


@pytest.mark.parametrize("metadata", [{"step": "abc", "name": "two\nlines"}, {"step": 1.5, "name": {"a": 1}},
                                      {"step": True, "name": "x" * 5000}])
def test_model_metadata_of_another_type_is_shown_not_a_500(metadata):
    """GET /api/model once answered a multi-line 500 for a `step` that was not an integer."""
    with TestClient(create_app(Poker(PokeModel(TINY), metadata), "odd"), base_url=LOCAL) as odd:
        model = odd.get("/api/model")
        assert model.status_code == 200, model.text
        assert model.json()["step"] is None
        assert "\n" not in model.json()["name"] and 0 < len(model.json()["name"]) <= 200
