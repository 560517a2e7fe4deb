"""R5 slow clients on the real servers: hundreds of connections that trickle a request, or send nothing
at all, keep neither /healthz nor a signed Trustoo delivery waiting, on the Procfile's web command
(gunicorn) and on `reviewbridge serve` (waitress, what `make run` starts).

The slow connections are what a slowloris client opens: a third connect and send nothing, a third
send a request's headers a byte at a time and never finish them, a third send whole headers and then
the body a byte at a time. While they are held, every /healthz and every correctly signed delivery is
answered within a second, and those deliveries, and nothing else, are stored.

Full: 600 slow connections while 30 rounds are timed. Reduced: 200 and 5 rounds.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator

import httpx
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
from tests.reliability.conftest import report, scale

SLOW = scale(200, 600)
ROUNDS = scale(5, 30)
ANSWER_WITHIN_S = 1.0
TRICKLE_EVERY_S = 0.25
_HEAD = f"POST {WEBHOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()


def test_procfile_web_answers_within_a_second_while_hundreds_of_clients_trickle(tmp_path, database_url):
    env = procfile_environ(free_port(), database_url)
    _hold_and_time(start_web(env, log=tmp_path / "web.log"), env, "R5 slow clients, Procfile web")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_answers_within_a_second_while_hundreds_of_clients_trickle(tmp_path, database_url):
    env = procfile_environ(free_port(), database_url)
    _hold_and_time(start_serve(env, tmp_path, log=tmp_path / "serve.log"), env, "R5 slow clients, serve")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_procfile_web_lets_a_request_take_at_most_its_timeout_to_arrive(tmp_path, database_url):
    # A client that never finishes its headers is closed; one that never finishes its body hears 408.
    env = procfile_environ(free_port(), database_url, GUNICORN_CMD_ARGS="--timeout 2")
    server = start_web(env, log=tmp_path / "web.log")
    try:
        with _SlowClients(int(env["PORT"]), 3) as slow:
            deadline = time.monotonic() + 10
            while slow.open() and time.monotonic() < deadline:
                time.sleep(0.2)
            still_open, answers = slow.open(), slow.answers()
        assert stop(server, timeout_s=30)[0] == 0
    finally:
        server.kill()
    assert still_open == 0
    assert [answer.split(b"\r\n", 1)[0] for answer in answers] == [b"", b"", b"HTTP/1.1 408 Request Timeout"]


def _hold_and_time(server, env: dict[str, str], scenario: str) -> None:
    port = int(env["PORT"])
    try:
        with _SlowClients(port, SLOW) as slow:
            health, deliveries = [], []
            for _ in range(ROUNDS):
                health.append(_timed(lambda client: client.get(f"http://127.0.0.1:{port}/healthz")))
                deliveries.append(_timed(lambda client: _deliver(client, port)))
            still_open = slow.open()
        assert stop(server, timeout_s=30)[0] == 0
    finally:
        server.kill()
    stored = stored_events(env["DATABASE_URL"])
    report(
        scenario,
        slow=SLOW,
        still_open=still_open,
        healthz_s_max=max(took for took, _ in health),
        webhook_s_max=max(took for took, _ in deliveries),
        stored=stored,
    )
    assert [status for _, status in health + deliveries] == [200] * (2 * ROUNDS)
    assert max(took for took, _ in health + deliveries) < ANSWER_WITHIN_S
    assert stored == ROUNDS


def _timed(send) -> tuple[float, int | str]:
    """How long one request took on a connection of its own (as a router opens one), and its status."""
    started = time.perf_counter()
    try:
        with httpx.Client(trust_env=False, timeout=ANSWER_WITHIN_S * 5) as client:
            status: int | str = send(client).status_code
    except httpx.TransportError as exc:
        status = type(exc).__name__
    return time.perf_counter() - started, status


def _deliver(client: httpx.Client, port: int) -> httpx.Response:
    body = trustoo_body(trustoo_review())
    headers = trustoo_headers(body, public_token=PUBLIC_TOKEN, private_token=PRIVATE_TOKEN)
    return client.post(f"http://127.0.0.1:{port}{WEBHOOK}", content=body, headers=headers)


class _SlowClients:
    """`count` connections, each fed one more byte every TRICKLE_EVERY_S by one thread, until the block ends."""

    def __init__(self, port: int, count: int):
        self._port, self._count = port, count
        self._feeds: list[tuple[socket.socket, Iterator[bytes]]] = []
        self._closed: set[socket.socket] = set()
        self._answers: dict[socket.socket, bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, name="slow-clients", daemon=True)

    def __enter__(self) -> _SlowClients:
        for n in range(self._count):
            sock = socket.create_connection(("127.0.0.1", self._port), timeout=5)
            kind = n % 3
            if kind == 2:
                sock.sendall(_HEAD + b"Content-Length: 100000\r\n\r\n")
            sock.setblocking(False)
            self._feeds.append((sock, _slow_bytes(kind)))
        self._thread.start()
        time.sleep(2 * TRICKLE_EVERY_S)  # every connection has been accepted and sent its first bytes
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock, _ in self._feeds:
            sock.close()

    def open(self) -> int:
        """How many slow connections the server still holds (it may close the slowest)."""
        return self._count - len(self._closed)

    def answers(self) -> list[bytes]:
        """What the server sent on each connection before closing it, in the order they were opened."""
        return [self._answers.get(sock, b"") for sock, _ in self._feeds]

    def _trickle(self) -> None:
        while not self._stop.wait(TRICKLE_EVERY_S):
            for sock, feed in self._feeds:
                if sock not in self._closed:
                    self._feed(sock, next(feed))

    def _feed(self, sock: socket.socket, data: bytes) -> None:
        try:
            answer = sock.recv(65536)
        except BlockingIOError:
            answer = None  # nothing from the server yet: the connection is still being held
        except OSError:
            answer = b""
        if answer is not None:
            self._answers[sock] = self._answers.get(sock, b"") + answer
            if answer == b"":
                self._closed.add(sock)  # the server closed it
                return
        try:
            if data:
                sock.send(data)
        except BlockingIOError:
            pass
        except OSError:
            self._closed.add(sock)


def _slow_bytes(kind: int) -> Iterator[bytes]:
    """What one slow connection sends, a byte at a time: nothing (kind 0), headers that never end (1),
    a body that never ends after whole headers (2)."""
    if kind == 0:
        return itertools.repeat(b"")
    if kind == 1:
        endless = itertools.chain([_HEAD], itertools.repeat(b"X-Slow: 1\r\n"))
    else:
        endless = itertools.chain([b'{"list":['], itertools.repeat(b" "))
    return (bytes([byte]) for chunk in endless for byte in chunk)
