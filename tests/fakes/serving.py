"""Run any WSGI app (a platform emulator) on loopback in a background thread, for tests and shells.

    with serve_wsgi(emulator) as base_url:      # http://127.0.0.1:<free port>
        httpx.get(f"{base_url}/...")

werkzeug's threaded server answers each connection in its own thread, so several clients can
talk to the app at once; the app is responsible for its own locking.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

__all__ = ["serve_wsgi"]

_LOOPBACK = "127.0.0.1"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextmanager
def serve_wsgi(
    app: Callable[..., Any], host: str = _LOOPBACK, port: int = 0, *, log_requests: bool = False
) -> Iterator[str]:
    """Serve `app` on host:port (port 0: a free one) until the block ends; yields the base URL."""
    if host != _LOOPBACK:
        raise ValueError(f"serve_wsgi only binds to {_LOOPBACK}, not {host!r}")
    handler = WSGIRequestHandler if log_requests else _QuietHandler
    server = make_server(host, port, app, threaded=True, request_handler=handler)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"serve_wsgi:{server.server_port}",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://{_LOOPBACK}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
