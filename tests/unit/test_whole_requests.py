"""The Procfile web worker's bridge to the Flask app: a body is read whole (at most limit + 1 bytes,
within its time) before a thread runs the app, a short answer goes out in one piece, a long one
streams, and the app's body is always closed."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.web.whole_requests import WholeRequests

LIMIT = 1000


class _Body:
    """A WSGI body that records whether the server closed it."""

    def __init__(self, parts: list[bytes]):
        self.parts, self.closed = parts, False

    def __iter__(self):
        return iter(self.parts)

    def close(self) -> None:
        self.closed = True


class _App:
    def __init__(self, parts: list[bytes], headers: list[tuple[str, str]] | None = None):
        self.body = _Body(parts)
        self.headers = headers or [("Content-Type", "text/plain")]
        self.environ: dict = {}
        self.input = b""

    def __call__(self, environ, start_response):
        self.environ = environ
        self.input = environ["wsgi.input"].read()
        start_response("201 Created", self.headers)
        return self.body


def _run(coroutine):
    """Run `coroutine` on an event loop of its own, in a thread of its own: a browser test's driver
    may hold a running loop in this one."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def _scope(headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/trustoo",
        "raw_path": b"/webhooks/trustoo",
        "root_path": "",
        "query_string": b"a=1",
        "headers": headers or [(b"transfer-encoding", b"chunked"), (b"x-trustoo-token", b"t")],
        "server": ("127.0.0.1", 8000),
        "client": ("198.51.100.7", 51000),
    }


def _serve(app, chunks: list[bytes], *, within_s: float = 5, stall: bool = False, scope: dict | None = None):
    """Run one request through WholeRequests; return the messages it sent."""

    async def run() -> list[dict]:
        pending = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
        pending.append({"type": "http.request", "body": b"", "more_body": False})
        sent: list[dict] = []

        async def receive():
            if stall and len(pending) == 1:
                await asyncio.sleep(10)
            return pending.pop(0)

        async def send(message):
            sent.append(message)

        bridge = WholeRequests(app, limit=LIMIT, within_s=within_s, threads=2)
        await bridge(scope or _scope(), receive, send)
        return sent

    return _run(run())


def test_a_chunked_body_reaches_the_app_whole_with_its_length_and_a_short_answer_goes_in_one_piece():
    app = _App([b"ok", b"!"])
    sent = _serve(app, [b'{"a":', b"1}"])
    assert app.input == b'{"a":1}' and app.environ["CONTENT_LENGTH"] == "7"
    assert "HTTP_TRANSFER_ENCODING" not in app.environ and app.environ["HTTP_X_TRUSTOO_TOKEN"] == "t"
    assert (app.environ["REMOTE_ADDR"], app.environ["QUERY_STRING"]) == ("198.51.100.7", "a=1")
    assert sent == [
        {"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"text/plain")]},
        {"type": "http.response.body", "body": b"ok!", "more_body": False},
    ]
    assert app.body.closed


def test_a_body_over_the_limit_reaches_the_app_cut_at_one_byte_over_so_that_it_answers_413():
    app = _App([b""])
    _serve(app, [b"x" * 600, b"x" * 600, b"x" * 600])
    assert len(app.input) == LIMIT + 1 and app.environ["CONTENT_LENGTH"] == str(LIMIT + 1)


def test_a_body_not_whole_in_time_is_answered_408_without_the_app():
    app = _App([b"never"])
    sent = _serve(app, [b"{"], within_s=0.2, stall=True)
    assert sent[0]["status"] == 408 and app.environ == {}


def test_a_client_gone_before_its_body_is_whole_gets_no_answer():
    app = _App([b"never"])

    async def run() -> list[dict]:
        messages = [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        async def receive():
            return messages.pop(0)

        await WholeRequests(app, limit=LIMIT, within_s=5, threads=1)(_scope(), receive, send)
        return sent

    assert _run(run()) == [] and app.environ == {}


def test_a_long_answer_streams_after_its_first_quarter_mebibyte_and_the_body_is_closed():
    parts = [b"x" * 65536 for _ in range(10)]
    app = _App(parts)
    sent = _serve(app, [b"{}"])
    bodies = [message for message in sent if message["type"] == "http.response.body"]
    assert len(bodies[0]["body"]) == 4 * 65536 and bodies[0]["more_body"] is True
    assert b"".join(message["body"] for message in bodies) == b"".join(parts)
    assert bodies[-1]["more_body"] is False and app.body.closed


def test_every_set_cookie_header_is_kept():
    app = _App([b""], headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    start = _serve(app, [b""])[0]
    assert start["headers"] == [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]


def test_an_app_that_fails_while_its_body_is_read_has_its_body_closed():
    class Failing(_Body):
        def __iter__(self):
            yield b"start"
            raise RuntimeError("broken")

    app = _App([])
    app.body = Failing([])
    with pytest.raises(RuntimeError):
        _serve(app, [b""])
    assert app.body.closed
