"""Helpers shared by the benchmarks: loopback ports, scratch PostgreSQL databases, percentiles, and
the `goal:` lines that `python -m bench` gathers into one table."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
ROOT = Path(__file__).resolve().parent.parent


def spawn_children(module: str, env: dict[str, str], count: int, logs: Path) -> list[subprocess.Popen]:
    """`count` processes of `python -m <module> --child` with the benchmark's environment (none of
    the shell's platform settings), each logging to a file in `logs`; returned once each said
    "ready" on its stdout. The children read their orders from stdin, one line at a time."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("TRUSTOO_", "WIX_", "CTP_"))} | env
    children = []
    for index in range(count):
        with open(logs / f"worker-{index}.log", "wb") as log:  # the child holds its own copy
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", module, "--child"],
                    cwd=ROOT,
                    env=child_env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            )
    for child in children:
        if (line := child.stdout.readline()).strip() != "ready":
            for each in children:
                each.kill()
            raise SystemExit(f"{module}: a worker did not start: {line!r}; see its log in {logs}")
    return children


def worker_child(target) -> int:
    """The body of a child that `spawn_children` started: `reviewbridge worker`'s worker on the
    environment's database, writing to `target` (a tests.fakes RecordingTarget). It says "ready",
    starts on "go", stops on "stop" (or the end of its input), then prints how many calls it made."""
    import json

    from app import create_app
    from app.bootstrap import build_worker, services_of

    worker = build_worker(services_of(create_app(os.environ, targets=[target])))
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    worker.start()
    sys.stdin.readline()
    worker.stop()
    print(json.dumps({"processed": len(target.calls)}), flush=True)
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, *, timeout_s: float = 30.0, process=None) -> None:
    """Poll `url` until it answers anything at all (or the process died, or time ran out)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} before answering")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")


@contextlib.contextmanager
def scratch_postgres(server_url: str = DEFAULT_POSTGRES_URL, prefix: str = "bench") -> Iterator[str]:
    """A fresh database on the server of `server_url`, dropped afterwards; yields its URL."""
    url = make_url(_driver_url(server_url))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _driver_url(value: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix) :]
    return value


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


GOAL_PREFIX = "goal: "


def goal(name: str, measured: str, target: str, met: bool, why: str = "") -> None:
    """One line per goal, `goal: name | measured | target | met | why`, for `python -m bench`'s table.
    `why` is what the benchmark measured about the cause when the goal is missed."""
    fields = (name, measured, target, "met" if met else "MISSED", "" if met else why)
    print(GOAL_PREFIX + " | ".join(field.replace("|", "/") for field in fields), flush=True)
