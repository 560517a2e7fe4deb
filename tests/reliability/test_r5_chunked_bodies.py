"""R5 chunked bodies on the real servers: a body sent with Transfer-Encoding: chunked (no Content-Length)
is held to WEBHOOK_MAX_BYTES like any other. Over it: 413 and nothing stored, never a body cut at the
limit and read as if whole (a delivery signed over its first MiB was accepted that way, and a genuine
oversized one was answered 401). Exactly at it: processed normally.

Both servers: the Procfile's web command (gunicorn) and `reviewbridge serve` (waitress), raw sockets.
"""

from __future__ import annotations

import contextlib
import http.client
import socket

import pytest

from tests.builders import trustoo_body, trustoo_headers, trustoo_review
from tests.processes import (
    PRIVATE_TOKEN,
    PUBLIC_TOKEN,
    WEBHOOK,
    free_port,
    procfile_environ,
    start_serve,
    start_web,
    stop,
    stored_events,
)
from tests.reliability.conftest import ADMIN_TOKEN

LIMIT = 1024 * 1024  # WEBHOOK_MAX_BYTES's default
CHUNK = 64 * 1024


# What is read and refused happens before any storage: one database is enough.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(params=["procfile web", "serve"])
def server(request, tmp_path, database_url):
    """(port, database URL) of a real server, the admin API on."""
    env = procfile_environ(free_port(), database_url, ADMIN_TOKEN=ADMIN_TOKEN)
    log = tmp_path / "server.log"
    process = start_web(env, log=log) if request.param == "procfile web" else start_serve(env, tmp_path, log=log)
    try:
        yield int(env["PORT"]), database_url
        assert stop(process, timeout_s=30)[0] == 0
    finally:
        process.kill()
    assert "Traceback" not in log.read_text()


def test_trustoo_chunked_body_over_the_limit_is_413_and_not_stored(server):
    port, database_url = server
    assert _post_chunked(port, WEBHOOK, b"a" * (LIMIT + CHUNK), {}) == 413
    assert stored_events(database_url) == 0


def test_trustoo_chunked_body_exactly_at_the_limit_is_stored(server):
    port, database_url = server
    body = _signed_padded_to(LIMIT)
    assert _post_chunked(port, WEBHOOK, body, _signed(body)) == 200
    assert stored_events(database_url) == 1


def test_trustoo_chunked_body_signed_over_its_first_mib_with_more_after_is_413_and_not_stored(server):
    port, database_url = server
    signed = _signed_padded_to(LIMIT)
    assert _post_chunked(port, WEBHOOK, signed + b" " * 100, _signed(signed)) == 413
    assert stored_events(database_url) == 0


def test_admin_api_chunked_json_body_over_the_limit_is_413(server):
    port, _ = server
    body = b'{"ids": [1], "reason": "' + b"x" * LIMIT + b'"}'
    assert _post_chunked(port, "/admin/api/events/replay", body, {"Authorization": f"Bearer {ADMIN_TOKEN}"}) == 413


def _signed_padded_to(size: int) -> bytes:
    """A Trustoo delivery of exactly `size` bytes: JSON allows the whitespace after it."""
    body = trustoo_body(trustoo_review())
    return body + b" " * (size - len(body))


def _signed(body: bytes) -> dict[str, str]:
    return trustoo_headers(body, public_token=PUBLIC_TOKEN, private_token=PRIVATE_TOKEN)


def _post_chunked(port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    """POST `body` in 64 KiB chunks on a socket of its own; the answer's status."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked", "Connection: close"]
    head += [f"{name}: {value}" for name, value in ({"Content-Type": "application/json"} | headers).items()]
    framed = b"".join(
        b"%x\r\n%s\r\n" % (len(body[at : at + CHUNK]), body[at : at + CHUNK]) for at in range(0, len(body), CHUNK)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        # A server may answer 413 and stop reading before the whole body is in.
        with contextlib.suppress(OSError):
            sock.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + framed + b"0\r\n\r\n")
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status
