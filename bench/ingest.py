"""Ingest benchmark: signed webhooks acknowledged by the Procfile's `web` server, against a bare Flask app.

    python -m bench.ingest [--quick] [--requests 4000] [--concurrency 16] [--rate 200] [--seconds 10]
                           [--wix-share 0.2] [--database-url postgresql://…] [--skip-postgres] [--profile DIR]

The Procfile's `web` command (gunicorn, its worker class, workers/threads/timeouts as written,
bound to a free loopback port) serves the app, first on a fresh SQLite file and then on a scratch
PostgreSQL database created on the --database-url server and dropped afterwards; `reviewbridge db
upgrade` runs first. Under the very same gunicorn settings `bench._bare:create_app()` - a Flask app
that only reads the body and answers 200 - is the baseline. Both get the same deliveries from the
same client (stdlib http.client, one keep-alive connection per thread), measured back to back:

  closed loop  --concurrency threads send --requests unique deliveries as fast as answers come:
               the app's rate / the bare app's rate is the ratio (goal >= 0.7);
  open loop    --rate requests/s on a fixed schedule for --seconds; latency is counted from each
               request's scheduled time (no coordinated omission): p99 (goal <= 25 ms).

Deliveries are correctly signed and unique: Trustoo review/created webhooks (HMAC) with one review
each, and a --wix-share of Wix review-created webhooks (RS256 JWTs from a WixEmulator's key, whose
public key the app gets as WIX_PUBLIC_KEY). With --profile DIR, py-spy records the app's gunicorn
workers during each closed loop (timings then include its sampling). Exit status 1 when a
goal is missed. Nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import os
import queue as queue_module
import random
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, func, select

from app.bootstrap import services_of
from app.core.models import InboxEvent, table
from bench._common import DEFAULT_POSTGRES_URL, free_port, goal, percentile, scratch_postgres, wait_for_http
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review
from tests.fakes.wix import WixEmulator

ROOT = Path(__file__).resolve().parent.parent
GOAL_RATIO = 0.7
GOAL_P99_MS = 25.0
TRUSTOO_PATH = "/webhooks/trustoo/review-created"
WIX_PATH = "/webhooks/wix"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="closed-loop requests per server")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop client threads")
    parser.add_argument("--rate", type=float, default=200, help="open-loop requests per second")
    parser.add_argument("--seconds", type=float, default=10, help="open-loop duration")
    parser.add_argument("--open-threads", type=int, default=32, help="open-loop client threads")
    parser.add_argument("--wix-share", type=float, default=0.2, help="share of Wix (RS256) deliveries")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_POSTGRES_URL,
        help="PostgreSQL server for the scratch database (default: %(default)s)",
    )
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the app's workers into this directory")
    parser.add_argument(
        "--cpu-sample",
        type=int,
        default=500,
        help="deliveries sent through each app in process to measure CPU time per delivery",
    )
    parser.add_argument("--quick", action="store_true", help="a short run: 800 requests, 3 s open loop")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.seconds = min(args.requests, 800), min(args.seconds, 3)
    if args.requests < 1 or args.concurrency < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--requests, --concurrency, --rate and --seconds must be positive")
    open_count = max(1, round(args.rate * args.seconds))

    print("signing deliveries …", file=sys.stderr)
    factory = _DeliveryFactory(args.wix_share)
    rows: list[dict] = []
    with (
        tempfile.TemporaryDirectory() as scratch,
        _server("bench._bare:create_app()", dict(os.environ), Path(scratch) / "bare.log") as bare_url,
    ):
        databases = [("sqlite", None)] + ([] if args.skip_postgres else [("postgresql", args.database_url)])
        for name, server in databases:
            closed_set = factory.make(args.requests)
            open_set = factory.make(open_count)
            with contextlib.ExitStack() as stack:
                if server is None:
                    database_url = f"sqlite:///{scratch}/ingest.db"
                else:
                    database_url = stack.enter_context(scratch_postgres(server, prefix="bench_ingest"))
                env = _app_env(database_url, factory.wix_public_key)
                subprocess.run(
                    [str(Path(sys.executable).with_name("reviewbridge")), "db", "upgrade"],
                    env=env,
                    cwd=ROOT,
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                app_url = stack.enter_context(_server("app:create_app()", env, Path(scratch) / f"app-{name}.log"))
                print(f"{name}: closed loop …", file=sys.stderr)
                bare_closed = _closed_loop(bare_url, closed_set, args.concurrency)
                profiler = _py_spy(stack, app_url, args.profile, name) if args.profile else None
                app_closed = _closed_loop(app_url, closed_set, args.concurrency)
                if profiler is not None:
                    profiler.wait(120)
                print(f"{name}: open loop …", file=sys.stderr)
                bare_open = _open_loop(bare_url, open_set, args.rate, args.open_threads)
                app_open = _open_loop(app_url, open_set, args.rate, args.open_threads)
                stored = _count_inbox(database_url)
                cpu_ms = _cpu_per_delivery(env, factory.make(args.cpu_sample))
            rows.append(
                {
                    "db": name,
                    "bare_closed": bare_closed,
                    "app_closed": app_closed,
                    "bare_open": bare_open,
                    "app_open": app_open,
                    "sent": args.requests + open_count,
                    "stored": stored,
                    "cpu": cpu_ms,
                }
            )

    cpu = os.cpu_count()
    print(
        f"deliveries          {args.requests} closed-loop ({args.concurrency} threads) + {open_count} open-loop "
        f"({args.rate:g}/s for {args.seconds:g} s) per server; {args.wix_share:.0%} Wix RS256, rest Trustoo HMAC"
    )
    print(f"server              Procfile web: {_procfile_web()}  ({cpu} CPUs, loopback port)")
    print()
    print(
        f"{'database':<11} {'bare req/s':>10} {'app req/s':>10} {'ratio':>6} {'sat p99 ms':>10} "
        f"{'bare p50/p99 ms':>16} {'app p50/p99 ms':>15} {'app max':>8} {'stored':>12} {'errors':>6}"
    )
    failed = False
    ratios = []
    for row in rows:
        bare_c, app_c, bare_o, app_o = row["bare_closed"], row["app_closed"], row["bare_open"], row["app_open"]
        ratio = app_c.rate / bare_c.rate
        ratios.append(ratio)
        errors = len(app_c.errors) + len(app_o.errors) + len(bare_c.errors) + len(bare_o.errors)
        print(
            f"{row['db']:<11} {bare_c.rate:10.0f} {app_c.rate:10.0f} {ratio:6.2f} {app_c.p(99):10.1f} "
            f"{bare_o.p(50):7.1f}/{bare_o.p(99):<8.1f} {app_o.p(50):6.1f}/{app_o.p(99):<8.1f} "
            f"{app_o.p(100):8.1f} {row['stored']:>5}/{row['sent']:<6} {errors:6d}"
        )
        for result in (app_c, app_o, bare_c, bare_o):
            for error in result.errors[:3]:
                print(f"  {row['db']}: {error}")
        failed |= ratio < GOAL_RATIO or app_o.p(99) > GOAL_P99_MS or errors > 0 or row["stored"] != row["sent"]
    print()
    for row in rows:
        bare_ms, app_ms = row["cpu"]
        print(
            f"{row['db']:<11} CPU per delivery in process (Flask test client, no server): bare {bare_ms:.2f} ms, "
            f"app {app_ms:.2f} ms (verify, parse, store and commit)"
        )
    print(
        f"goals               closed-loop app/bare >= {GOAL_RATIO}; open-loop p99 <= {GOAL_P99_MS:g} ms; "
        f"no errors; every delivery stored"
    )
    for row, ratio in zip(rows, ratios, strict=True):
        app_c, app_o = row["app_closed"], row["app_open"]
        bare_ms, app_ms = row["cpu"]
        goal(
            f"ingest {row['db']}: app / bare Flask, closed loop",
            f"{ratio:.2f} ({app_c.rate:.0f} of {row['bare_closed'].rate:.0f} req/s)",
            f">= {GOAL_RATIO}",
            ratio >= GOAL_RATIO,
            f"CPU-bound on {cpu} CPUs shared with the client: a delivery costs the app {app_ms:.2f} ms of CPU "
            f"in process, the bare app {bare_ms:.2f} ms",
        )
        goal(
            f"ingest {row['db']}: p99 acknowledgement at {args.rate:g}/s",
            f"{app_o.p(99):.1f} ms",
            f"<= {GOAL_P99_MS:g} ms",
            app_o.p(99) <= GOAL_P99_MS,
            "",
        )
        goal(
            f"ingest {row['db']}: every delivery stored, no errors",
            f"{row['stored']}/{row['sent']}",
            "all",
            row["stored"] == row["sent"] and not (app_c.errors or app_o.errors),
            "",
        )
    worst = min(ratios)
    detail = ", ".join(f"{row['db']} {r:.2f}" for row, r in zip(rows, ratios, strict=True))
    print(
        f"ratio: {worst:.2f} of the bare Flask app's closed-loop rate, worst database ({detail}; goal >= {GOAL_RATIO})"
    )
    return 1 if failed else 0


# --- CPU per delivery, in process -----------------------------------------------------------------


def _cpu_per_delivery(env: dict[str, str], deliveries: list[Delivery]) -> tuple[float, float]:
    """CPU milliseconds per delivery of the bare app and of ReviewBridge, each driven by Flask's test
    client in this process: what a delivery costs without the server, the client or the network."""
    from app import create_app
    from bench._bare import create_app as create_bare

    app = create_app(env)
    try:
        return tuple(_cpu_ms(flask_app.test_client(), deliveries) for flask_app in (create_bare(), app))
    finally:
        services_of(app).engine.dispose()


def _cpu_ms(client, deliveries: list[Delivery]) -> float:
    began = time.process_time()
    for delivery in deliveries:
        answer = client.post(delivery.path, data=delivery.body, headers=delivery.headers)
        if answer.status_code != 200:
            raise SystemExit(f"bench.ingest: in-process delivery answered {answer.status_code}: {answer.data[:200]!r}")
    return 1000 * (time.process_time() - began) / len(deliveries)


# --- deliveries -----------------------------------------------------------------------------------


class _DeliveryFactory:
    def __init__(self, wix_share: float):
        self.wix_share = wix_share
        self.emulator = WixEmulator(rate_limit_per_minute=None, seed=7)
        self.instance = self.emulator.add_instance()
        self.wix_public_key = self.emulator.public_key_pem
        self._rng = random.Random(11)

    def make(self, count: int) -> list[Delivery]:
        deliveries = []
        for _ in range(count):
            if self._rng.random() < self.wix_share:
                review = self.emulator.add_review(self.instance)
                body = self.emulator.review_webhook(self.instance, review["id"], "created")
                deliveries.append(Delivery(WIX_PATH, body, {"Content-Type": "text/plain"}))
            else:
                body = trustoo_body(trustoo_review())
                deliveries.append(Delivery(TRUSTOO_PATH, body, trustoo_headers(body, request_id=uuid.uuid4().hex)))
        return deliveries


# --- servers --------------------------------------------------------------------------------------


def _procfile_web() -> str:
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    return line.partition(":")[2].strip()


def _web_command(app_spec: str, port: int) -> list[str]:
    """The Procfile's `web` line with its variables filled in, bound to loopback, serving `app_spec`
    (a --config file it names is read by gunicorn from the project root, for both apps alike)."""
    command = _procfile_web()

    def substitute(match: re.Match) -> str:
        name, default = match.group(1) or match.group(3), match.group(2) or ""
        return str(port) if name == "PORT" else os.environ.get(name, default)

    command = re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)", substitute, command)
    argv = shlex.split(command)
    if argv[0] != "gunicorn" or "app:create_app()" not in argv:
        raise SystemExit(f"bench.ingest: the Procfile's web command is not gunicorn 'app:create_app()': {command}")
    argv = [app_spec if part == "app:create_app()" else part for part in argv]
    argv = [part.replace("0.0.0.0:", "127.0.0.1:") for part in argv]  # loopback only
    return [sys.executable, "-m", "gunicorn", *argv[1:]]


@contextlib.contextmanager
def _server(app_spec: str, env: dict[str, str], log_path: Path) -> Iterator[str]:
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            _web_command(app_spec, port), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{url}/healthz", process=process)
            yield url
        except BaseException:
            sys.stderr.write(log_path.read_text(errors="replace")[-3000:])
            raise
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _app_env(database_url: str, wix_public_key: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRUSTOO_", "WIX_", "CTP_", "DATABASE_URL", "ADMIN_TOKEN", "ROUTES"))
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "TRUSTOO_PUBLIC_TOKEN": TRUSTOO_PUBLIC_TOKEN,
            "TRUSTOO_PRIVATE_TOKEN": TRUSTOO_PRIVATE_TOKEN,
            "TRUSTOO_API_URL": "http://127.0.0.1:9",  # never called on intake; loopback all the same
            "WIX_PUBLIC_KEY": wix_public_key,
        }
    )
    return env


def _count_inbox(database_url: str) -> int:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(table(InboxEvent))).scalar_one()
    finally:
        engine.dispose()


def _py_spy(stack: contextlib.ExitStack, app_url: str, directory: Path, name: str) -> subprocess.Popen | None:
    """py-spy record --subprocesses on the app's gunicorn master for the closed loop's duration."""
    directory.mkdir(parents=True, exist_ok=True)
    port = app_url.rsplit(":", 1)[1]
    master = subprocess.run(["pgrep", "-f", f"127.0.0.1:{port}"], capture_output=True, text=True).stdout.split()
    if not master:
        print("py-spy: gunicorn master not found", file=sys.stderr)
        return None
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    out = directory / f"ingest-{name}.txt"
    process = subprocess.Popen(
        [
            py_spy,
            "record",
            "--subprocesses",
            "--pid",
            min(master, key=int),
            "--format",
            "raw",
            "--duration",
            "15",
            "--rate",
            "200",
            "--nonblocking",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    return process


# --- the client -----------------------------------------------------------------------------------


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


def _closed_loop(url: str, deliveries: list[Delivery], concurrency: int) -> Result:
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


def _open_loop(url: str, deliveries: list[Delivery], rate: float, threads: int) -> Result:
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


if __name__ == "__main__":
    sys.exit(main())
