"""Ingest benchmark: signed webhooks acknowledged by the Procfile's `web` server, against a lean receiver.

    python -m bench.ingest [--quick] [--requests 4000] [--concurrency 16] [--rounds 4] [--rate 200] [--seconds 10]
                           [--wix-share 0.2] [--wakeups 60] [--database-url postgresql://…]
                           [--skip-postgres] [--profile DIR]

The Procfile's `web` command (gunicorn, its worker class, workers/threads/timeouts as written,
bound to a free loopback port) serves the app, first on a fresh SQLite file and then on a scratch
PostgreSQL database created on the --database-url server and dropped afterwards; `reviewbridge db
upgrade` runs first. Under the very same gunicorn settings run two baselines: `bench._bare` (a
Flask app that only reads the body and answers 200) and `bench._lean` (the leanest receiver that
does what the specs ask: verify, parse, one INSERT … ON CONFLICT DO NOTHING per review committed
before the answer, the database driven directly). All get the same deliveries from the same client
(stdlib http.client, one keep-alive connection per thread), measured back to back:

  closed loop  --concurrency threads send --requests unique deliveries as fast as answers come, in
               --rounds rounds with the lean receiver and the app taking turns to go first:
               the app's rate / the lean receiver's rate is the ratio (goal >= 0.85);
  open loop    --rate requests/s on a fixed schedule for --seconds; latency is counted from each
               request's scheduled time (no coordinated omission): p99 (goal <= 25 ms);
  wake-up      on an otherwise idle system, --wakeups single deliveries, one at a time, each timed
               from received (its inbox row) to its target write starting in a separate worker
               process (bench/wakeup.py); goal on PostgreSQL p50 <= 50 ms, p99 <= 250 ms.

Deliveries are correctly signed and unique: Trustoo review/created webhooks (HMAC) with one review
each, and a --wix-share of Wix review-created webhooks (RS256 JWTs from a WixEmulator's key, whose
public key the app gets as WIX_PUBLIC_KEY); Wix's verification cost gets a line of its own. With
--profile DIR, py-spy records the app's gunicorn workers during each closed loop (timings then
include its sampling). Exit status 1 when a goal is missed. Nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text

from app.bootstrap import services_of
from bench import _lean, wakeup
from bench._common import DEFAULT_POSTGRES_URL, free_port, goal, scratch_postgres, wait_for_http
from bench._load import Delivery, Result, closed_loop, combined, open_loop
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review
from tests.fakes.wix import WixEmulator

ROOT = Path(__file__).resolve().parent.parent
GOAL_RATIO = 0.85  # of the lean receiver's rate
GOAL_WAKE_P50_MS = 50.0
GOAL_WAKE_P99_MS = 250.0
GOAL_P99_MS = 25.0
TRUSTOO_PATH = "/webhooks/trustoo/review-created"
WIX_PATH = "/webhooks/wix"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="closed-loop requests per server")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop client threads")
    parser.add_argument("--rounds", type=int, default=4, help="closed-loop rounds, lean and app taking turns")
    parser.add_argument("--rate", type=float, default=200, help="open-loop requests per second")
    parser.add_argument("--seconds", type=float, default=10, help="open-loop duration")
    parser.add_argument("--open-threads", type=int, default=32, help="open-loop client threads")
    parser.add_argument("--wix-share", type=float, default=0.2, help="share of Wix (RS256) deliveries")
    parser.add_argument("--wakeups", type=int, default=60, help="single deliveries timed to the worker, per database")
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
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return wakeup.child()
    if args.quick:
        args.requests, args.seconds, args.wakeups = min(args.requests, 800), min(args.seconds, 3), min(args.wakeups, 20)
    if min(args.requests, args.concurrency, args.rounds, args.wakeups) < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--requests, --concurrency, --rounds, --rate, --seconds and --wakeups must be positive")
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
                    database_url, lean_url = f"sqlite:///{scratch}/ingest.db", f"sqlite:///{scratch}/lean.db"
                else:
                    database_url = stack.enter_context(scratch_postgres(server, prefix="bench_ingest"))
                    lean_url = stack.enter_context(scratch_postgres(server, prefix="bench_lean"))
                env = _app_env(database_url, factory.wix_public_key)
                lean_env = env | {"DATABASE_URL": lean_url}
                _upgrade(env)
                _lean.prepare(lean_url)
                app_url = stack.enter_context(_server(None, env, Path(scratch) / f"app-{name}.log"))
                lean = stack.enter_context(_server("bench._lean:create_app()", lean_env, Path(scratch) / "lean.log"))
                print(f"{name}: closed loop …", file=sys.stderr)
                bare_closed = closed_loop(bare_url, closed_set, args.concurrency)
                profiler = _py_spy(stack, app_url, args.profile, name) if args.profile else None
                lean_closed, app_closed, rounds = _rounds(lean, app_url, closed_set, args)
                if profiler is not None:
                    profiler.wait(120)
                print(f"{name}: open loop …", file=sys.stderr)
                lean_open = open_loop(lean, open_set, args.rate, args.open_threads)
                app_open = open_loop(app_url, open_set, args.rate, args.open_threads)
                stored = (_count(database_url, "inbox"), _count(lean_url, _lean.TABLE))
                cpu_ms = _cpu_per_delivery(env, lean_env, factory.make(args.cpu_sample))
                wix_ms = _wix_verify_ms(env, factory.make_wix(args.cpu_sample))
                print(f"{name}: received -> worker …", file=sys.stderr)
                wakeups = wakeup.measure(app_url, env, [factory.make_trustoo() for _ in range(args.wakeups)])
            rows.append(
                {
                    "db": name,
                    "bare": bare_closed,
                    "lean": lean_closed,
                    "app": app_closed,
                    "lean_open": lean_open,
                    "app_open": app_open,
                    "sent": args.requests + open_count,
                    "stored": stored,
                    "cpu": cpu_ms,
                    "wix": wix_ms,
                    "wakeups": wakeups,
                    "rounds": rounds,
                }
            )
    return _report(rows, args, open_count)


def _report(rows: list[dict], args, open_count: int) -> int:
    print(
        f"deliveries          {args.requests} closed-loop ({args.concurrency} threads) + {open_count} open-loop "
        f"({args.rate:g}/s for {args.seconds:g} s) per server; {args.wix_share:.0%} Wix RS256, rest Trustoo HMAC"
    )
    print(f"server              Procfile web: {_procfile_web()}  ({os.cpu_count()} CPUs, loopback port)")
    print("contenders          bare: reads the body, answers 200 (bench/_bare.py); lean: verifies, parses, one")
    print("                    INSERT … ON CONFLICT DO NOTHING per review committed, sqlite3/psycopg (bench/_lean.py)")
    print()
    print(
        f"{'database':<11} {'bare req/s':>10} {'lean req/s':>10} {'app req/s':>10} {'app/lean':>8} {'app/bare':>8} "
        f"{'lean p50/p99 ms':>16} {'app p50/p99 ms':>15} {'app max':>8} {'stored':>12} {'errors':>6}"
    )
    failed = False
    for row in rows:
        bare, lean, app, lean_open, app_open = row["bare"], row["lean"], row["app"], row["lean_open"], row["app_open"]
        row["ratio"] = app.rate / lean.rate
        row["errors"] = sum(len(result.errors) for result in (bare, lean, app, lean_open, app_open))
        stored, lean_stored = row["stored"]
        print(
            f"{row['db']:<11} {bare.rate:10.0f} {lean.rate:10.0f} {app.rate:10.0f} {row['ratio']:8.2f} "
            f"{app.rate / bare.rate:8.2f} {lean_open.p(50):7.1f}/{lean_open.p(99):<8.1f} "
            f"{app_open.p(50):6.1f}/{app_open.p(99):<8.1f} {app_open.p(100):8.1f} {stored:>5}/{row['sent']:<6} "
            f"{row['errors']:6d}"
        )
        for result in (app, app_open, lean, lean_open, bare):
            for error in result.errors[:3]:
                print(f"  {row['db']}: {error}")
        if lean_stored != row["sent"]:
            print(f"  {row['db']}: the lean receiver stored {lean_stored} of {row['sent']}")
    print()
    for row in rows:
        each = ", ".join(f"{ratio:.2f}" for ratio in row["rounds"])
        print(f"{row['db']:<11} app/lean by closed-loop round ({len(row['rounds'])}, taking turns to go first): {each}")
    for row in rows:
        bare_ms, lean_ms, app_ms = row["cpu"]
        print(
            f"{row['db']:<11} CPU per delivery in process (Flask test client, no server): bare {bare_ms:.2f} ms, "
            f"lean {lean_ms:.2f} ms, app {app_ms:.2f} ms"
        )
    for row in rows:
        lean_ms, verify_ms, app_ms = row["wix"]
        print(
            f"{row['db']:<11} Wix RS256 delivery in process (key loaded once): lean verify+decode {lean_ms:.3f} ms, "
            f"app verify {verify_ms:.3f} ms, app verify+parse {app_ms:.3f} ms"
        )
    for row in rows:
        p50, p99, worst, count = row["wakeups"]
        print(
            f"{row['db']:<11} received -> target write started, idle, a separate worker process: p50 {p50:.0f} ms, "
            f"p99 {p99:.0f} ms, max {worst:.0f} ms ({count} deliveries)"
        )
    print(
        f"goals               closed-loop app/lean >= {GOAL_RATIO}; open-loop p99 <= {GOAL_P99_MS:g} ms; no errors; "
        f"every delivery stored; PostgreSQL received -> worker p50 <= {GOAL_WAKE_P50_MS:g} ms, "
        f"p99 <= {GOAL_WAKE_P99_MS:g} ms"
    )
    for row in rows:
        app, bare_ms, app_ms = row["app"], row["cpu"][0], row["cpu"][2]
        failed |= _missed(
            f"ingest {row['db']}: app / lean receiver, closed loop",
            f"{row['ratio']:.2f} ({app.rate:.0f} of {row['lean'].rate:.0f} req/s)",
            f">= {GOAL_RATIO}",
            row["ratio"] >= GOAL_RATIO,
            f"a delivery costs the app {app_ms:.2f} ms of CPU in process, the lean receiver {row['cpu'][1]:.2f} ms, "
            f"the bare app {bare_ms:.2f} ms",
        )
        failed |= _missed(
            f"ingest {row['db']}: p99 acknowledgement at {args.rate:g}/s",
            f"{row['app_open'].p(99):.1f} ms",
            f"<= {GOAL_P99_MS:g} ms",
            row["app_open"].p(99) <= GOAL_P99_MS,
            "",
        )
        failed |= _missed(
            f"ingest {row['db']}: every delivery stored, no errors",
            f"{row['stored'][0]}/{row['sent']}",
            "all",
            row["stored"][0] == row["sent"] and not (row["app"].errors or row["app_open"].errors),
            "",
        )
    for row in rows:
        if row["db"] != "postgresql":
            continue
        p50, p99, _, _ = row["wakeups"]
        failed |= _missed(
            "ingest postgresql: received -> target write started, idle, separate worker",
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms",
            f"p50 <= {GOAL_WAKE_P50_MS:g} ms, p99 <= {GOAL_WAKE_P99_MS:g} ms",
            p50 <= GOAL_WAKE_P50_MS and p99 <= GOAL_WAKE_P99_MS,
            "NOTIFY from the intake, LISTEN in the worker",
        )
    worst = min(rows, key=lambda row: row["ratio"])
    detail = ", ".join(f"{row['db']} {row['ratio']:.2f}" for row in rows)
    print(
        f"ratio: {worst['ratio']:.2f} of the lean receiver's closed-loop rate, worst database "
        f"({detail}; goal >= {GOAL_RATIO})"
    )
    return 1 if failed else 0


def _missed(name: str, measured: str, target: str, met: bool, why: str) -> bool:
    goal(name, measured, target, met, why)
    return not met


def _rounds(lean_url: str, app_url: str, deliveries: list[Delivery], args) -> tuple[Result, Result, list[float]]:
    """The closed loop in --rounds rounds, the lean receiver and the app taking turns to go first: a
    machine whose speed drifts, or one unlucky round (SQLite's busy handler sleeps a writer that meets
    another for 1 to 100 ms), weighs on both alike. Each server's rounds combined, and each round's ratio."""
    share = -(-len(deliveries) // args.rounds)
    lean_rounds, app_rounds = [], []
    for index in range(args.rounds):
        part = deliveries[index * share : (index + 1) * share]
        order = [(lean_url, lean_rounds), (app_url, app_rounds)]
        for url, results in order if index % 2 == 0 else reversed(order):
            results.append(closed_loop(url, part, args.concurrency))
    ratios = [app.rate / lean.rate for lean, app in zip(lean_rounds, app_rounds, strict=True)]
    return combined(lean_rounds), combined(app_rounds), ratios


# --- CPU per delivery, in process -----------------------------------------------------------------


def _cpu_per_delivery(env: dict[str, str], lean_env: dict[str, str], deliveries: list[Delivery]):
    """CPU milliseconds per delivery of the bare app, the lean receiver and ReviewBridge, each driven by
    Flask's test client in this process: what a delivery costs without the server, the client or the
    network. (The deliveries are stored again: each app dedupes them, or writes them anew.)"""
    from app import create_app
    from bench._bare import create_app as create_bare

    app = create_app(env, role="web")
    try:
        lean = _lean.create_app(lean_env)
        return tuple(_cpu_ms(flask_app.test_client(), deliveries) for flask_app in (create_bare(), lean, app))
    finally:
        services_of(app).engine.dispose()


def _cpu_ms(client, deliveries: list[Delivery]) -> float:
    began = time.process_time()
    for delivery in deliveries:
        answer = client.post(delivery.path, data=delivery.body, headers=delivery.headers)
        if answer.status_code != 200:
            raise SystemExit(f"bench.ingest: in-process delivery answered {answer.status_code}: {answer.data[:200]!r}")
    return 1000 * (time.process_time() - began) / len(deliveries)


def _wix_verify_ms(env: dict[str, str], deliveries: list[Delivery]) -> tuple[float, float, float]:
    """CPU milliseconds per Wix delivery: the lean PyJWT decode with the key loaded once, the app's
    verification alone, and its verification and parse (nothing stored)."""
    import jwt
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from app import create_app

    app = create_app(env)
    try:
        source = services_of(app).webhook_source("wix")
        key = load_pem_public_key(env["WIX_PUBLIC_KEY"].encode())

        def timed(work) -> float:
            began = time.process_time()
            for delivery in deliveries:
                work(delivery)
            return 1000 * (time.process_time() - began) / len(deliveries)

        lean = timed(lambda d: jwt.decode(d.body, key, algorithms=["RS256"]))
        verify = timed(lambda d: source.verify(d.headers, d.body))
        both = timed(lambda d: source.parse(source.verify(d.headers, d.body), None, d.headers, d.body))
        return lean, verify, both
    finally:
        services_of(app).engine.dispose()


# --- deliveries -----------------------------------------------------------------------------------


class _DeliveryFactory:
    def __init__(self, wix_share: float):
        self.wix_share = wix_share
        self.emulator = WixEmulator(rate_limit_per_minute=None, seed=7)
        self.instance = self.emulator.add_instance()
        self.wix_public_key = self.emulator.public_key_pem
        self._rng = random.Random(11)

    def make_trustoo(self) -> Delivery:
        body = trustoo_body(trustoo_review())
        return Delivery(TRUSTOO_PATH, body, trustoo_headers(body, request_id=uuid.uuid4().hex))

    def make_wix(self, count: int) -> list[Delivery]:
        deliveries = []
        for _ in range(count):
            review = self.emulator.add_review(self.instance)
            body = self.emulator.review_webhook(self.instance, review["id"], "created")
            deliveries.append(Delivery(WIX_PATH, body, {"Content-Type": "text/plain"}))
        return deliveries

    def make(self, count: int) -> list[Delivery]:
        return [
            self.make_wix(1)[0] if self._rng.random() < self.wix_share else self.make_trustoo() for _ in range(count)
        ]


# --- servers --------------------------------------------------------------------------------------


def _procfile_web() -> str:
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    return line.partition(":")[2].strip()


def _web_command(app_spec: str | None, port: int) -> list[str]:
    """The Procfile's `web` line with its variables filled in, bound to loopback, serving `app_spec`
    (None: the Procfile's own app; a --config file it names is read by gunicorn from the project root,
    for both apps alike)."""
    command = _procfile_web()

    def substitute(match: re.Match) -> str:
        name, default = match.group(1) or match.group(3), match.group(2) or ""
        return str(port) if name == "PORT" else os.environ.get(name, default)

    command = re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)", substitute, command)
    argv = shlex.split(command)
    ours = [part for part in argv if part.startswith("app:create_app(")]
    if argv[0] != "gunicorn" or len(ours) != 1:
        raise SystemExit(f"bench.ingest: the Procfile's web command is not gunicorn 'app:create_app(…)': {command}")
    argv = [app_spec if part == ours[0] and app_spec else part for part in argv]
    argv = [part.replace("0.0.0.0:", "127.0.0.1:") for part in argv]  # loopback only
    return [sys.executable, "-m", "gunicorn", *argv[1:]]


@contextlib.contextmanager
def _server(app_spec: str | None, env: dict[str, str], log_path: Path) -> Iterator[str]:
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


def _upgrade(env: dict[str, str]) -> None:
    subprocess.run(
        [str(Path(sys.executable).with_name("reviewbridge")), "db", "upgrade"],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _count(database_url: str, table_name: str) -> int:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            return connection.execute(text(f"SELECT count(*) FROM {table_name}")).scalar_one()
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


if __name__ == "__main__":
    sys.exit(main())
