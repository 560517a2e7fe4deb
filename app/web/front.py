"""The Procfile web process's gunicorn worker: an event loop reads each request whole, and only then
does a thread run the Flask app.

gunicorn's gthread worker hands a connection to a thread as soon as it is accepted, and the thread
blocks reading it: eight clients trickling headers or a body held all of a dyno's threads, and
/healthz and every webhook waited for as long as they kept sending. Here gunicorn's asyncio worker
parses the request and `read_whole_first` gathers its body on the event loop, where a slow client
costs a coroutine and its buffer, not a thread; a2wsgi then runs the Flask app in a pool of
`threads` threads, as gthread did (database calls block, so the app stays synchronous).

`gunicorn.conf.py` names `Worker`; the Procfile's command is unchanged.
"""

from __future__ import annotations

from typing import Any

from a2wsgi import WSGIMiddleware
from gunicorn.workers.gasgi import ASGIWorker

__all__ = ["Worker", "read_whole_first"]

Message = dict[str, Any]


class Worker(ASGIWorker):
    """gunicorn's asyncio worker serving a WSGI app (`app:create_app()`), bodies read before a thread runs it."""

    @classmethod
    def check_config(cls, cfg, log):
        pass  # the base class warns that `threads` is unused; here it sizes the app's thread pool

    def load_wsgi(self):
        super().load_wsgi()
        flask_app = self.asgi
        self.asgi = read_whole_first(
            WSGIMiddleware(flask_app, workers=self.cfg.threads), flask_app.config["MAX_CONTENT_LENGTH"]
        )


def read_whole_first(asgi_app, limit: int):
    """An ASGI app that reads a request's body (at most `limit` + 1 bytes) before `asgi_app` sees it.

    The app gets the body in one piece with its length as Content-Length (chunked framing is the
    server's business): one byte over the limit makes Flask answer its own 413, as for a declared
    Content-Length over it, and nothing past `limit` + 1 bytes is held in memory."""

    async def app(scope: Message, receive, send) -> None:
        if scope["type"] != "http":
            return await asgi_app(scope, receive, send)
        body = bytearray()
        more = True
        while more and len(body) <= limit:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # gone (or stalled past gunicorn's timeout) before the request was whole: no one to answer
            body += message.get("body", b"")
            more = message.get("more_body", False)
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
