"""Many-shops benchmark: one shop's backlog against every other shop's live reviews, on PostgreSQL.

    python -m bench.many_shops [--quick] [--shops 100] [--backlog 50000] [--processes 4] [--threads 4]
                               [--latency-ms 50] [--live-rate 10] [--windows 12] [--window-s 5]
                               [--trustoo-limit 5] [--database-url postgresql://…]

A scratch database is created on the --database-url server (dropped afterwards) and migrated;
--shops Trustoo shops are set up (the environment's, the others as `accounts add trustoo` adds
them), and the first shop gets a backlog of --backlog review events, stored as the intake stores
verified deliveries. One in 40 of them arrives without its rating, so the worker reads the review
from Trustoo's Open API: the Trustoo emulator on loopback enforces the per-shop limit
(--trustoo-limit calls a second) for every caller together and answers 429 past it, as Trustoo may.

--processes worker processes (each `build_worker(...).start()`, WORKER_CONCURRENCY --threads) write
to a target taking --latency-ms per call. Then --windows windows of --window-s seconds each,
alternately quiet (the backlog alone) and live (the other shops send --live-rate reviews a second in
all, each stored at once). The backlog's drain rate is measured in both kinds of window, which
alternate so that a drift of the rate over the run (the inbox filling with finished rows) weighs on
both alike; for every live review, the time from received (stored in the inbox) to landed (its
event done at the target).

Goals: live p99 <= 1 s, the backlog's drain rate with live traffic >= 0.9 of the rate without,
and no 429 from Trustoo. The final `ratio:` line is the drain rate with live traffic / without.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

from app import create_app
from app.bootstrap import services_of
from app.core import accounts, queue_store
from app.core.db import upgrade
from app.core.models import InboxEvent, table, utcnow
from app.core.services import Services
from bench._common import DEFAULT_POSTGRES_URL, goal, percentile, scratch_postgres, spawn_children, worker_child
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review
from tests.fakes.serving import serve_wsgi
from tests.fakes.trustoo import PREFIX, TrustooEmulator

P99_GOAL_S = 1.0
DRAIN_GOAL = 0.9
INCOMPLETE_EVERY = 40  # one backlog event in this many makes the worker call Trustoo
_inbox = table(InboxEvent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", type=int, default=100)
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="WORKER_CONCURRENCY of each process")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the target's time per call")
    parser.add_argument("--live-rate", type=float, default=10.0, help="live reviews a second, all shops together")
    parser.add_argument("--windows", type=int, default=12, help="quiet and live windows, alternating")
    parser.add_argument("--window-s", type=float, default=5.0)
    parser.add_argument("--trustoo-limit", type=float, default=5.0, help="Trustoo calls a second per shop")
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--quick", action="store_true", help="20 shops, an 8,000-event backlog, short phases")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child()
    if args.quick:
        args.shops, args.backlog, args.windows, args.window_s = min(args.shops, 20), 8000, 6, 3.0
    if args.shops < 2 or args.windows < 2 or min(args.backlog, args.processes, args.threads) < 1:
        parser.error("--shops and --windows must be at least 2; --backlog, --processes and --threads positive")

    shops = _shops(args.shops)
    trustoo = TrustooEmulator(shops=dict(shops), retry_delays_s=(0,) * 10, rate_limit_per_s=args.trustoo_limit)
    with (
        serve_wsgi(trustoo) as trustoo_url,
        scratch_postgres(args.database_url, prefix="bench_shops") as database_url,
        tempfile.TemporaryDirectory() as scratch,
    ):
        env = _env(database_url, trustoo_url, args)
        app = create_app(env, targets=[])
        services: Services = services_of(app)
        upgrade(services.engine)
        _add_shops(services, shops[1:])
        print(f"enqueueing a backlog of {args.backlog:,} for one shop …", file=sys.stderr)
        _backlog(services, trustoo, shops[0], args.backlog)

        children = spawn_children("bench.many_shops", env, args.processes, Path(scratch))
        try:
            _go(children)
            time.sleep(3.0)  # the workers warm up
            live = _LiveTraffic(services, shops[1:], args.live_rate)
            baseline, with_live = _alternate(services, shops[0][0], live, args.windows, args.window_s)
            latencies, unfinished = _latencies(services, shops[0][0], wait_s=30)
        finally:
            results = _stop(children)
        backlog_left = _open(services, shops[0][0])
        services.engine.dispose()

    p50, p99 = (percentile(latencies, q) for q in (50, 99)) if latencies else (float("nan"),) * 2
    ratio = with_live / baseline if baseline else 0.0
    rejected = sum(trustoo.rate_limited.values())
    trustoo_calls = sum(1 for request in trustoo.requests if request.path.startswith(PREFIX))
    trustoo.close()
    print(
        f"setup               {args.shops} Trustoo shops, {args.processes} worker processes x {args.threads} threads, "
        f"target {args.latency_ms:.0f} ms a call, PostgreSQL; {os.cpu_count()} CPUs"
    )
    print(f"backlog             {args.backlog:,} events of one shop; {backlog_left:,} still open at the end")
    quiet_s, live_s = (args.windows + 1) // 2 * args.window_s, args.windows // 2 * args.window_s
    print(f"drain, backlog only {baseline:,.1f} events/s over {quiet_s:.0f} s (quiet windows)")
    print(f"drain, with live    {with_live:,.1f} events/s over {live_s:.0f} s (live windows; {ratio:.2f} of quiet)")
    print(
        f"live reviews        {live.sent} from {args.shops - 1} shops at {args.live_rate:g}/s: received -> landed "
        f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(latencies, default=0) * 1000:.0f} ms; "
        f"{unfinished} not landed"
    )
    print(
        f"Trustoo             {trustoo_calls} Open API calls, {rejected} answered 429 "
        f"(limit {args.trustoo_limit:g}/s per shop, enforced across all workers)"
    )
    print("per process         " + ", ".join(f"{r['processed']} processed" for r in results))
    goal(
        f"many shops: live review received -> landed, p99 ({args.shops} shops, backlog {args.backlog:,})",
        f"{p99 * 1000:.0f} ms",
        f"<= {P99_GOAL_S * 1000:.0f} ms",
        p99 <= P99_GOAL_S and unfinished == 0,
        f"p50 {p50 * 1000:.0f} ms; {unfinished} live reviews not landed",
    )
    goal(
        "many shops: backlog drain with live traffic / without",
        f"{ratio:.2f}",
        f">= {DRAIN_GOAL}",
        ratio >= DRAIN_GOAL,
        f"{with_live:,.1f} vs {baseline:,.1f} events/s",
    )
    goal("many shops: 429s from Trustoo (per-shop limit, all workers)", str(rejected), "0", rejected == 0)
    print(f"ratio: {ratio:.2f} of the backlog's drain rate without live traffic")
    met = p99 <= P99_GOAL_S and unfinished == 0 and ratio >= DRAIN_GOAL and rejected == 0
    return 0 if met else 1


def _shops(count: int) -> list[tuple[str, str]]:
    """(public token, private token) per shop; the first is the environment's."""
    more = [(f"bench-shop-{n:03d}", f"bench-private-{n:03d}-{uuid.uuid4().hex[:8]}") for n in range(1, count)]
    return [(TRUSTOO_PUBLIC_TOKEN, TRUSTOO_PRIVATE_TOKEN), *more]


def _env(database_url: str, trustoo_url: str, args) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "bench-secret-key-" + uuid.uuid4().hex,
        "WORKER_CONCURRENCY": str(args.threads),
        "DRAIN_INTERVAL_S": "0.1",
        "POLL_INTERVAL": "0",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        "TRUSTOO_PUBLIC_TOKEN": TRUSTOO_PUBLIC_TOKEN,
        "TRUSTOO_PRIVATE_TOKEN": TRUSTOO_PRIVATE_TOKEN,
        "TRUSTOO_API_URL": trustoo_url,
        "TRUSTOO_RATE_LIMIT": f"{args.trustoo_limit:g}",
        "BENCH_LATENCY_S": str(args.latency_ms / 1000),
    }


def _add_shops(services: Services, shops: list[tuple[str, str]]) -> None:
    for public, private in shops:
        accounts.add(
            services.engine,
            services.vault,
            source="trustoo",
            account=public,
            secret=private,
            label=f"{public}.myshopify.com",
            now=utcnow(),
        )


def _backlog(services: Services, trustoo: TrustooEmulator, shop: tuple[str, str], count: int, batch: int = 500) -> None:
    """Signed deliveries of the shop's reviews, verified and parsed by the Trustoo source, then stored."""
    source = services.sources["trustoo"]
    public = shop[0]
    for start in range(0, count, batch):
        items = []
        for n in range(start, min(start + batch, count)):
            if n % INCOMPLETE_EVERY == INCOMPLETE_EVERY - 1:  # Trustoo holds it; the webhook lacks its rating
                stored = trustoo.add_review(public, rating=4)
                items.append({key: value for key, value in stored.items() if key not in ("rating", "star")})
            else:
                items.append(trustoo_review())
        _store(services, source, shop, items, "review/created")
    with services.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE inbox")  # what autovacuum would do soon after such a load


def _store(services: Services, source, shop: tuple[str, str], items: list[dict], topic: str) -> None:
    body = trustoo_body(*items)
    headers = trustoo_headers(body, public_token=shop[0], private_token=shop[1], request_id=uuid.uuid4().hex)
    account = source.verify(headers, body)
    events = source.parse(account, topic, headers, body)
    queue_store.enqueue(
        services.engine, source.name, account, events, now=utcnow(), quarantine_id=f"bench:{uuid.uuid4().hex}"
    )


class _LiveTraffic:
    """The other shops' reviews, one at a time at a steady rate while `on`, each stored as the intake
    stores it."""

    def __init__(self, services: Services, shops: list[tuple[str, str]], rate: float):
        self._services, self._shops, self._interval = services, shops, 1 / rate
        self.on = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.on.set()
        self._thread.join()

    def _run(self) -> None:
        source = self._services.sources["trustoo"]
        rng = random.Random(7)
        while not self._stopping.is_set():
            self.on.wait()
            next_at = time.monotonic()
            while self.on.is_set() and not self._stopping.is_set():
                _store(self._services, source, rng.choice(self._shops), [trustoo_review()], "review/created")
                self.sent += 1
                next_at += self._interval
                self._stopping.wait(max(0.0, next_at - time.monotonic()))


def _alternate(services: Services, account: str, live: _LiveTraffic, windows: int, window_s: float):
    """The backlog's drain rate in quiet windows and in live ones, alternating (quiet first)."""
    done = {False: 0, True: 0}
    spent = {False: 0.0, True: 0.0}
    live.start()
    for index in range(windows):
        busy = index % 2 == 1
        if busy:
            live.on.set()
        before, began = _done(services, account), time.monotonic()
        time.sleep(window_s)
        done[busy] += _done(services, account) - before
        spent[busy] += time.monotonic() - began
        live.on.clear()
    live.stop()
    return done[False] / spent[False], done[True] / spent[True]


def _done(services: Services, account: str) -> int:
    with services.engine.connect() as connection:
        statement = select(func.count()).where(_inbox.c.account == account, _inbox.c.status == "done")
        return connection.execute(statement).scalar_one()


def _open(services: Services, account: str) -> int:
    with services.engine.connect() as connection:
        statement = select(func.count()).where(_inbox.c.account == account, _inbox.c.status != "done")
        return connection.execute(statement).scalar_one()


def _latencies(services: Services, backlog_account: str, wait_s: float) -> tuple[list[float], int]:
    """Received -> landed of every live review, once they are all done (or `wait_s` ran out)."""
    live = _inbox.c.account != backlog_account
    deadline = time.monotonic() + wait_s
    with services.engine.connect() as connection:
        while True:
            open_ = connection.execute(select(func.count()).where(live, _inbox.c.status != "done")).scalar_one()
            connection.rollback()
            if open_ == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        rows = connection.execute(
            select(_inbox.c.received_at, _inbox.c.finished_at).where(live, _inbox.c.status == "done")
        ).all()
    return [(finished - received).total_seconds() for received, finished in rows], open_


# --- the worker processes ---------------------------------------------------------------------------


def _go(children: list[subprocess.Popen]) -> None:
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()


def _stop(children: list[subprocess.Popen]) -> list[dict]:
    results = []
    for child in children:
        if child.poll() is None:
            child.stdin.write("stop\n")
            child.stdin.flush()
    for child in children:
        try:
            results.append(json.loads(child.stdout.readline() or "{}"))
            child.wait(60)
        except (ValueError, subprocess.TimeoutExpired):
            child.kill()
            child.wait(10)
    return [result for result in results if "processed" in result]


def _child() -> int:
    """One worker process, as `reviewbridge worker` runs it, writing to a target that takes its time."""
    from tests.fakes.memory_target import RecordingTarget

    return worker_child(RecordingTarget(latency_s=float(os.environ["BENCH_LATENCY_S"])))


if __name__ == "__main__":
    sys.exit(main())
