"""The Procfile web process's gunicorn worker: an event loop reads each request whole, and only then
does a thread run the Flask app.

gunicorn's gthread worker hands a connection to a thread as soon as it is accepted, and the thread
blocks reading it: eight clients trickling headers or a body held all of a dyno's threads, and
/healthz and every webhook waited for as long as they kept sending. Here gunicorn's asyncio worker
parses the request and `WholeRequests` (app/web/whole_requests.py) gathers its body on the event
loop, where a slow client costs a coroutine and its buffer, not a thread, and then runs the Flask app
in a pool of `threads` threads, as gthread did (database calls block, so the app stays synchronous).

A request must arrive whole within gunicorn's `timeout`: a connection whose first request's headers
are not complete by then is closed (gunicorn bounds later ones by `keepalive`, but not the first), and
a body still arriving then is answered 408. Slow clients cost little here, but each holds one of a
worker's `worker_connections` for as long as it is let.

`gunicorn.conf.py` names `Worker`; the Procfile's command is unchanged.
"""

from __future__ import annotations

import asyncio

from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi
from gunicorn.workers.gasgi import ASGIWorker

from app.web.whole_requests import WholeRequests

__all__ = ["Worker"]


class Worker(ASGIWorker):
    """gunicorn's asyncio worker serving the WSGI app (the Procfile's `app:create_app(role="web")`), bodies read
    before a thread runs it."""

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
        self.asgi = WholeRequests(
            flask_app, limit=flask_app.config["MAX_CONTENT_LENGTH"], within_s=self.cfg.timeout, threads=self.cfg.threads
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
