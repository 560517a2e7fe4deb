"""The ASGI app the Procfile's web worker serves (app/web/front.py): it reads a request whole on the
event loop, then runs the Flask app on it in one of a pool of threads, and sends the answer.

A thread gets a request only once its body is in, so a client that trickles bytes costs a coroutine
and its buffer, never a thread. The thread runs the app to the end and hands the answer back in one
piece, so a request costs one hand-over between the loop and a thread (a2wsgi's bridge, measured
first, waited for the loop at every message: the answer's start, each part, its end, and the body's
read, and acknowledged a fifth fewer webhooks a second). An answer longer than `_HELD_BYTES` (an
export) is streamed: the first part at once, the rest a part at a time from the thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi.wsgi import build_environ

__all__ = ["WholeRequests"]

Message = dict[str, Any]

#: An answer up to this long is sent in one piece; past it, the rest streams.
_HELD_BYTES = 256 * 1024


class WholeRequests:
    """An ASGI app serving `wsgi_app`: bodies of at most `limit` + 1 bytes read whole within `within_s`
    seconds, the app run in `threads` threads.

    The app gets the body with its length as Content-Length (chunked framing is the server's
    business): one byte over the limit makes Flask answer its own 413, as for a declared
    Content-Length over it, and nothing past `limit` + 1 bytes is held in memory. A body not whole
    in time is answered 408 without the app."""

    def __init__(self, wsgi_app, *, limit: int, within_s: float, threads: int):
        self._app = wsgi_app
        self._limit, self._within_s = limit, within_s
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="web")

    async def __call__(self, scope: Message, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        if scope["type"] != "http":
            return await send({"type": "websocket.close", "code": 1000})
        try:
            async with asyncio.timeout(self._within_s):
                body = await self._body(receive)
        except TimeoutError:
            return await _answer_too_slow(send, self._within_s)
        if body is None:
            return None  # gone before the request was whole: no one to answer
        headers = [(name, value) for name, value in scope["headers"] if name not in _FRAMING]
        scope = scope | {"headers": [*headers, (b"content-length", str(len(body)).encode())]}
        await self._answer(build_environ(scope, io.BytesIO(body)), send)  # type: ignore[arg-type]

    async def _body(self, receive) -> bytes | None:
        body = bytearray()
        more = True
        while more and len(body) <= self._limit:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
        return bytes(body[: self._limit + 1])

    async def _answer(self, environ: dict, send) -> None:
        loop = asyncio.get_running_loop()
        run = contextvars.copy_context().run  # each request in a context of its own, as in a fresh thread
        answer = await loop.run_in_executor(self._threads, run, _call, self._app, environ)
        try:
            await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
            await send({"type": "http.response.body", "body": answer.held, "more_body": answer.rest is not None})
            while answer.rest is not None:
                part = await loop.run_in_executor(self._threads, run, next, answer.rest, None)
                await send({"type": "http.response.body", "body": part or b"", "more_body": part is not None})
                if part is None:
                    break
        finally:
            if answer.rest is not None:
                await loop.run_in_executor(self._threads, run, answer.close)


_FRAMING = (b"content-length", b"transfer-encoding")


class _Answer:
    """What the app answered: its status and headers, the start of its body, and the rest to stream."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], held: bytes, body: Iterable[bytes]):
        self.status, self.headers, self.held = status, headers, held
        self._body = body
        self.rest: Iterator[bytes] | None = None

    def close(self) -> None:
        getattr(self._body, "close", lambda: None)()


def _call(app, environ: dict) -> _Answer:
    """Run the WSGI app on `environ` in this thread; hold its body up to _HELD_BYTES."""
    started: list = []
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
        # Nothing is sent before the app returns, so a second call (with exc_info) simply replaces the first.
        started[:] = [status, headers]
        return written.append

    body = app(environ, start_response)
    parts = iter(body)
    held = written
    size = sum(len(part) for part in held)
    streaming = False
    try:
        for part in parts:
            held.append(part)
            size += len(part)
            if size >= _HELD_BYTES:
                streaming = True
                break
    except BaseException:
        getattr(body, "close", lambda: None)()
        raise
    status, headers = started
    answer = _Answer(
        int(status.split(" ", 1)[0]),
        [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers],
        b"".join(held),
        body,
    )
    if streaming:
        answer.rest = parts
    else:
        answer.close()
    return answer


async def _lifespan(receive, send) -> None:
    # Nothing to start or stop: the Flask app is built when gunicorn loads it.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


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
