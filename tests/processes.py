"""The real processes as a PaaS or `make run` starts them: the Procfile's commands, `reviewbridge serve`.

Shared by the end-to-end tests of the processes and the reliability scenarios that need a real server
(a test client never sees what a socket does: slow senders, chunked bodies).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from app.core.db import make_engine, transaction
from app.core.models import InboxEvent

ROOT = Path(__file__).resolve().parents[1]
REVIEWBRIDGE = str(Path(sys.executable).parent / "reviewbridge")
#: The Trustoo shop every process here is configured with (the README's demo tokens).
PUBLIC_TOKEN, PRIVATE_TOKEN = "demo-public-token", "demo-private-token"
WEBHOOK = "/webhooks/trustoo/review-created"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environ(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TRUSTOO_", "DATABASE_URL"))}
    # Nothing here calls Trustoo; if something did, it would find a closed loopback port, not the internet.
    return keep | {"LOG_LEVEL": "INFO", "TRUSTOO_API_URL": "http://127.0.0.1:9"} | extra


def wait_for(url: str, process: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else "(see its log)"
            raise AssertionError(f"process exited early: {output}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


def read_until(process: subprocess.Popen, wanted: str, timeout_s: float = 30) -> list[str]:
    """The lines a process prints (its output a text pipe) up to the first that holds `wanted`."""
    deadline, lines = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        line = process.stdout.readline() if process.stdout else ""
        lines.append(line)
        if wanted in line or not line:
            break
    assert any(wanted in line for line in lines), "".join(lines)
    return lines


def stop(process: subprocess.Popen, timeout_s: float) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=timeout_s)
    return code, time.monotonic() - started


def procfile(process: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name == process:
            return command.strip()
    raise AssertionError(f"Procfile has no {process} process")


def procfile_environ(port: int, database_url: str, **extra: str) -> dict[str, str]:
    """What the PaaS would set for the Procfile's processes: the port, the database, one Trustoo shop."""
    return environ(
        PORT=str(port),
        DATABASE_URL=database_url,
        TRUSTOO_PUBLIC_TOKEN=PUBLIC_TOKEN,
        TRUSTOO_PRIVATE_TOKEN=PRIVATE_TOKEN,
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        **extra,
    )


def start_web(env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    """The Procfile's web command, as the PaaS runs it, ready to answer; its output on `stdout`, or in
    `log` for a test that makes it write more than a pipe holds."""
    return _started(["bash", "-c", f"exec {procfile('web')}"], env, ROOT, log)


def start_serve(env: dict[str, str], cwd: Path, log: Path | None = None) -> subprocess.Popen:
    """`reviewbridge serve` on loopback (`make run`), migrations applied, ready to answer."""
    return _started([REVIEWBRIDGE, "serve", "--host", "127.0.0.1"], env, cwd, log)


def _started(argv: list[str], env: dict[str, str], cwd: Path, log: Path | None) -> subprocess.Popen:
    if log is None:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    else:
        with open(log, "ab") as handle:  # the child holds its own copy of the file
            process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{env['PORT']}/readyz", process)
    except BaseException:
        process.kill()
        raise
    return process


def stored_events(database_url: str) -> int:
    """How many events a process stored in its inbox."""
    engine = make_engine(database_url)
    try:
        with transaction(engine) as session:
            return session.execute(select(func.count()).select_from(InboxEvent)).scalar_one()
    finally:
        engine.dispose()
