"""The ingest benchmark's client: signed deliveries sent over keep-alive connections, in a closed loop
(as fast as answers come) or an open loop (on a fixed schedule, latency counted from each request's
scheduled time, so a slow answer is not hidden by the requests it delayed)."""

from __future__ import annotations

import http.client
import itertools
import queue as queue_module
import threading
import time
from dataclasses import dataclass, field

from bench._common import percentile

__all__ = ["Delivery", "Result", "closed_loop", "open_loop"]


@dataclass(frozen=True)
class Delivery:
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Result:
    requests: int
    elapsed_s: float
    latencies_s: list[float]
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed_s

    def p(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000 if self.latencies_s else float("nan")


def combined(results: list[Result]) -> Result:
    """Several rounds of one server as one: all their requests over all their time."""
    return Result(
        sum(r.requests for r in results),
        sum(r.elapsed_s for r in results),
        [latency for r in results for latency in r.latencies_s],
        [error for r in results for error in r.errors],
    )


class _Client:
    """One keep-alive HTTP/1.1 connection; reconnects once when the server closed an idle one."""

    def __init__(self, url: str):
        host, port = url.removeprefix("http://").split(":")
        self._host, self._port = host, int(port)
        self._connection: http.client.HTTPConnection | None = None

    def post(self, delivery: Delivery) -> int:
        for attempt in (0, 1):
            reused = self._connection is not None
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=30)
            try:
                self._connection.request("POST", delivery.path, body=delivery.body, headers=delivery.headers)
                response = self._connection.getresponse()
                response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                return response.status
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if not reused or attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def closed_loop(url: str, deliveries: list[Delivery], concurrency: int) -> Result:
    counter = itertools.count()
    latencies: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(concurrency + 1)

    def run() -> None:
        client = _Client(url)
        mine = []
        start.wait()
        try:
            while (index := next(counter)) < len(deliveries):
                begun = time.perf_counter()
                try:
                    status = client.post(deliveries[index])
                except OSError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                mine.append(time.perf_counter() - begun)
                if status != 200:
                    errors.append(f"HTTP {status} for {deliveries[index].path}")
        finally:
            client.close()
            latencies.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return Result(len(deliveries), time.perf_counter() - began, latencies, errors)


def open_loop(url: str, deliveries: list[Delivery], rate: float, threads: int) -> Result:
    """Send on a fixed schedule; a request's latency runs from its scheduled time to its answer."""
    work: queue_module.SimpleQueue = queue_module.SimpleQueue()
    latencies: list[float] = []
    errors: list[str] = []

    def run() -> None:
        client = _Client(url)
        try:
            while (item := work.get()) is not None:
                index, scheduled = item
                try:
                    status = client.post(deliveries[index])
                except OSError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - scheduled)
                if status != 200:
                    errors.append(f"HTTP {status} for {deliveries[index].path}")
        finally:
            client.close()

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    began = time.perf_counter() + 0.05
    for index in range(len(deliveries)):
        scheduled = began + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        work.put((index, scheduled))
    for _ in pool:
        work.put(None)
    for thread in pool:
        thread.join(60)
    return Result(len(deliveries), time.perf_counter() - began, latencies, errors)
