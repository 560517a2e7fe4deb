"""The Procfile web process's gunicorn worker: an event loop reads each request whole, and only then
does a thread run the Flask app.

gunicorn's gthread worker hands a connection to a thread as soon as it is accepted, and the thread
blocks reading it: eight clients trickling headers or a body held all of a dyno's threads, and
/healthz and every webhook waited for as long as they kept sending. Here gunicorn's asyncio worker
parses the request and `read_whole_first` gathers its body on the event loop, where a slow client
costs a coroutine and its buffer, not a thread; a2wsgi then runs the Flask app in a pool of
`threads` threads, as gthread did (database calls block, so the app stays synchronous).

A request must arrive whole within gunicorn's `timeout`: a connection whose first request's headers
are not complete by then is closed (gunicorn bounds later ones by `keepalive`, but not the first), and
a body still arriving then is answered 408. Slow clients cost little here, but each holds one of a
worker's `worker_connections` for as long as it is let.

`gunicorn.conf.py` names `Worker`; the Procfile's command is unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from a2wsgi import WSGIMiddleware
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi
from gunicorn.workers.gasgi import ASGIWorker

__all__ = ["Worker", "read_whole_first"]

Message = dict[str, Any]


class Worker(ASGIWorker):
    """gunicorn's asyncio worker serving a WSGI app (`app:create_app()`), bodies read before a thread runs it."""

    @classmethod
    def check_config(cls, cfg, log):
        pass  # the base class warns that `threads` is unused; here it sizes the app's thread pool

    def init_process(self):
        # The base worker builds its connections from the module's name for the protocol.
        gasgi.ASGIProtocol = _HeadersOnTime
        super().init_process()

    def load_wsgi(self):
        super().load_wsgi()
        flask_app = self.asgi
        self.asgi = read_whole_first(
            WSGIMiddleware(flask_app, workers=self.cfg.threads),
            flask_app.config["MAX_CONTENT_LENGTH"],
            within_s=self.cfg.timeout,
        )


class _HeadersOnTime(ASGIProtocol):
    """gunicorn's HTTP protocol, closing a connection whose first request's headers are not whole
    within `timeout` seconds of its opening."""

    _headers_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport):
        super().connection_made(transport)
        self._headers_deadline = self.worker.loop.call_later(self.cfg.timeout, self._headers_late)

    def _on_headers_complete(self):
        self._cancel_headers_deadline()
        return super()._on_headers_complete()

    def connection_lost(self, exc):
        self._cancel_headers_deadline()
        super().connection_lost(exc)

    def _headers_late(self) -> None:
        self._headers_deadline = None
        self._keepalive_timeout()  # what gunicorn does to an idle keep-alive connection: close it

    def _cancel_headers_deadline(self) -> None:
        if self._headers_deadline is not None:
            self._headers_deadline.cancel()
            self._headers_deadline = None


def read_whole_first(asgi_app, limit: int, within_s: float):
    """An ASGI app that reads a request's body (at most `limit` + 1 bytes) before `asgi_app` sees it.

    The app gets the body in one piece with its length as Content-Length (chunked framing is the
    server's business): one byte over the limit makes Flask answer its own 413, as for a declared
    Content-Length over it, and nothing past `limit` + 1 bytes is held in memory. A body not whole
    within `within_s` seconds is answered 408 without the app."""

    async def app(scope: Message, receive, send) -> None:
        if scope["type"] != "http":
            return await asgi_app(scope, receive, send)
        body = bytearray()
        try:
            async with asyncio.timeout(within_s):
                more = True
                while more and len(body) <= limit:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # gone before the request was whole: no one to answer
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
        except TimeoutError:
            return await _answer_too_slow(send, within_s)
        whole = bytes(body[: limit + 1])
        headers = [
            (name, value) for name, value in scope["headers"] if name not in (b"content-length", b"transfer-encoding")
        ]
        scope = scope | {"headers": [*headers, (b"content-length", str(len(whole)).encode())]}
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: the client's disconnect, if the app asks
            replayed = True
            return {"type": "http.request", "body": whole, "more_body": False}

        await asgi_app(scope, replay, send)

    return app


async def _answer_too_slow(send, within_s: float) -> None:
    text = f"The request's body did not arrive within {within_s:g} s.\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 408,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(text)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": text})
