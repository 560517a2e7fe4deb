"""Sync benchmark: review events drained into the commercetools emulator with per-call latency.

    python -m bench.sync [--events 5000] [--latency-ms 50] [--concurrency 16] [--database-url URL]

Prints the drain rate, the latency-bound limit (concurrency ÷ the per-event time of a sequential
drain, both measured in this run), the ratio of the two (goal ≥ 0.8) and the ratio to the
sequential drain (goal ≥ 12x). The emulator runs as its own process, as a remote API would, so
it does not share the worker's interpreter; everything stays on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
from sqlmodel import SQLModel

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core.db import upgrade
from app.core.intake import receive
from app.core.models import utcnow
from app.core.services import Services
from bench._common import goal
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review

PRODUCT = "7982301249581"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--sequential-events", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args(argv)

    with _emulator(args.latency_ms) as url, tempfile.TemporaryDirectory() as scratch:
        database_url = args.database_url or f"sqlite:///{scratch}/bench.db"
        app = create_app(
            {
                "DATABASE_URL": database_url,
                "LOG_LEVEL": "WARNING",
                "WORKER_CONCURRENCY": str(args.concurrency),
                "TRUSTOO_PUBLIC_TOKEN": TRUSTOO_PUBLIC_TOKEN,
                "TRUSTOO_PRIVATE_TOKEN": TRUSTOO_PRIVATE_TOKEN,
                "TRUSTOO_API_URL": "http://127.0.0.1:9",  # only review/created events: no Trustoo call is made
                "CTP_PROJECT_KEY": "bench",
                "CTP_CLIENT_ID": "bench",
                "CTP_CLIENT_SECRET": "bench-secret-0123456789",
                "CTP_API_URL": url,
                "CTP_AUTH_URL": url,
            }
        )
        services: Services = services_of(app)
        upgrade(services.engine)
        _reset(services)
        services.targets[0].setup()

        _ingest(services, args.sequential_events)
        sequential_s = _drain(services, threads=1)
        per_event_s = sequential_s / args.sequential_events
        sequential_rate = args.sequential_events / sequential_s

        _ingest(services, args.events)
        cpu_began = time.process_time()
        concurrent_s = _drain(services, threads=args.concurrency)
        cpu_share = (time.process_time() - cpu_began) / concurrent_s
        rate = args.events / concurrent_s

    limit = args.concurrency / per_event_s
    print(f"events                 {args.events} (+{args.sequential_events} sequential)")
    print(f"latency per call       {args.latency_ms:.0f} ms; per event, sequential: {per_event_s * 1000:.1f} ms")
    print(f"sequential drain       {sequential_rate:8.1f} events/s")
    print(f"concurrent drain       {rate:8.1f} events/s with {args.concurrency} threads")
    print(f"latency-bound limit    {limit:8.1f} events/s (concurrency / per-event time)")
    print(f"speed-up vs sequential {rate / sequential_rate:8.1f}x (goal >= 12x)")
    ratio = rate / limit
    waited = (
        f"the draining process used {cpu_share:.0%} of one CPU ({os.cpu_count()} here): its threads spent the "
        f"rest waiting - on the emulator, and on SQLite, which lets one writer in at a time"
    )
    print(f"drain CPU              {cpu_share:8.0%} of one CPU while {args.concurrency} threads drained")
    goal(
        "sync: concurrent / latency-bound limit",
        f"{ratio:.2f} ({rate:.1f} of {limit:.1f} events/s)",
        ">= 0.8",
        ratio >= 0.8,
        waited,
    )
    goal(
        "sync: speed-up over one thread",
        f"{rate / sequential_rate:.1f}x",
        ">= 12x",
        rate / sequential_rate >= 12,
        waited,
    )
    print(f"ratio: {ratio:.2f} of the latency-bound limit (goal >= 0.8)")
    return 0 if ratio >= 0.8 and rate / sequential_rate >= 12 else 1


@contextlib.contextmanager
def _emulator(latency_ms: float) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.commercetools",
            "--port",
            str(port),
            "--latency-ms",
            str(latency_ms),
            "--project-key",
            "bench",
            "--client-id",
            "bench",
            "--client-secret",
            "bench-secret-0123456789",
            "--product",
            PRODUCT,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/-/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reset(services: Services) -> None:
    with services.engine.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(table.delete())


def _ingest(services: Services, count: int) -> None:
    """Store `count` distinct review/created events, as signed webhooks would."""
    source = services.sources["trustoo"]
    for _ in range(count):
        body = trustoo_body(trustoo_review())
        receive(services.inbox, source, "review/created", trustoo_headers(body), body, now=utcnow())


def _drain(services: Services, *, threads: int) -> float:
    worker = build_worker(replace(services, settings=replace(services.settings, worker_concurrency=threads)))
    started = time.perf_counter()
    runners = [threading.Thread(target=worker.drain) for _ in range(threads)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
