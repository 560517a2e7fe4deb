"""Queue benchmark: worker processes on one PostgreSQL draining a pre-filled inbox, and the claim's cost.

    python -m bench.queue [--quick] [--events 20000] [--processes 4] [--threads 4] [--claims 300]
                          [--database-url postgresql://…] [--profile DIR]

A scratch database is created on the --database-url server (dropped afterwards) and migrated;
--events distinct Trustoo review/created events are parsed from signed deliveries and stored with
`app.core.queue_store.enqueue` in batches. Then, on the loaded queue:

  claim cost   --claims sequential `queue.claim` calls (one event each), timed, then released back;
               the claim statement itself (captured as the app sends it) under EXPLAIN ANALYZE;
  drain        --processes worker processes, each `create_app(env, targets=[RecordingTarget()])` and
               `build_worker(services).drain()` in --threads (WORKER_CONCURRENCY) threads until nothing is
               due, started together; events per second over the whole drain (goal >= 1,000/s).

The final `ratio:` line is the drain rate / 1,000. With --profile DIR py-spy records every worker
process during the drain. Exit status 1 when the goal is missed or an event is not done. The target
is in memory and the Trustoo API URL is a loopback port nothing calls: no traffic leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import event, func, select

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core import queue, queue_store
from app.core.db import upgrade
from app.core.models import InboxEvent, table, utcnow
from app.core.services import Services
from bench._common import DEFAULT_POSTGRES_URL, goal, percentile, scratch_postgres, spawn_children
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review

GOAL_PER_S = 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="WORKER_CONCURRENCY of each process")
    parser.add_argument("--claims", type=int, default=300, help="claim calls timed on the loaded queue")
    parser.add_argument("--batch", type=int, default=500, help="events per enqueue call")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_POSTGRES_URL,
        help="PostgreSQL server for the scratch database (default: %(default)s)",
    )
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the workers into this directory")
    parser.add_argument("--quick", action="store_true", help="a short run: 2,000 events, 100 claims")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child()
    if args.quick:
        args.events, args.claims = min(args.events, 2000), min(args.claims, 100)
    if min(args.events, args.processes, args.threads, args.batch) < 1 or args.claims < 0:
        parser.error("--events, --processes, --threads and --batch must be positive")

    with (
        scratch_postgres(args.database_url, prefix="bench_queue") as database_url,
        tempfile.TemporaryDirectory() as scratch,
    ):
        env = _env(database_url, args.threads)
        app = create_app(env, targets=[_recording_target()])
        services: Services = services_of(app)
        upgrade(services.engine)

        print("enqueueing …", file=sys.stderr)
        enqueue_s = _enqueue(services, args.events, args.batch)
        claim_ms = _time_claims(services, args.claims)
        plan = _explain_claim(services)

        print("draining …", file=sys.stderr)
        drain_s, children = _drain(env, args.processes, args.profile, Path(scratch))
        statuses = _statuses(services)
        services.engine.dispose()

    processed = sum(child["processed"] for child in children)
    upserts = sum(child["upserts"] for child in children)
    rate = args.events / drain_s
    print(
        f"events              {args.events} Trustoo review/created, enqueued in batches of {args.batch} "
        f"at {args.events / enqueue_s:,.0f}/s"
    )
    if claim_ms:
        print(
            f"claim (loaded)      {len(claim_ms)} sequential queue.claim calls: "
            f"mean {sum(claim_ms) / len(claim_ms):.2f} ms, "
            f"p50 {percentile(claim_ms, 50):.2f} ms, p99 {percentile(claim_ms, 99):.2f} ms"
        )
    print(
        f"claim plan          EXPLAIN ANALYZE on {args.events} pending rows: execution {plan['execution_ms']:.3f} ms, "
        f"planning {plan['planning_ms']:.3f} ms"
    )
    for line in plan["text"]:
        print(f"    {line}")
    print(
        f"drain               {args.processes} processes x {args.threads} threads: {drain_s:.2f} s, "
        f"{processed} claimed-and-processed, {upserts} target upserts"
    )
    print("per process         " + ", ".join(f"{c['processed']} in {c['elapsed_s']:.2f} s" for c in children))
    print("inbox after         " + ", ".join(f"{status} {count}" for status, count in sorted(statuses.items())))
    print(
        f"drain rate          {rate:,.0f} events/s (goal >= {GOAL_PER_S:,.0f}/s; {os.cpu_count()} CPUs, "
        f"PostgreSQL on the same machine)"
    )
    complete = statuses.get("done", 0) == args.events and len(statuses) == 1
    if not complete:
        print("not every event is done")
    available_ms = 1000 * drain_s * (os.cpu_count() or 1) / args.events
    workers_ms = 1000 * sum(child["cpu_s"] for child in children) / args.events
    print(
        f"CPU per event       workers {workers_ms:.2f} ms of the {available_ms:.2f} ms the machine's "
        f"{os.cpu_count()} CPUs had per event (the rest: PostgreSQL, and whatever else runs here)"
    )
    goal(
        f"queue: {args.processes} workers on PostgreSQL, no-op target",
        f"{rate:,.0f} events/s",
        ">= 1,000 events/s",
        rate >= GOAL_PER_S and complete,
        f"the workers used {workers_ms:.2f} ms of CPU per event of the "
        f"{available_ms:.2f} ms the {os.cpu_count()} CPUs had; the rest went to PostgreSQL and other load"
        + ("" if complete else "; not every event is done"),
    )
    goal("queue: claim statement (EXPLAIN ANALYZE)", f"{plan['execution_ms']:.3f} ms", "(reported)", True)
    print(f"ratio: {rate / GOAL_PER_S:.2f} of {GOAL_PER_S:,.0f} events/s")
    return 0 if rate >= GOAL_PER_S and complete else 1


def _env(database_url: str, threads: int) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "WORKER_CONCURRENCY": str(threads),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        "TRUSTOO_PUBLIC_TOKEN": TRUSTOO_PUBLIC_TOKEN,
        "TRUSTOO_PRIVATE_TOKEN": TRUSTOO_PRIVATE_TOKEN,
        "TRUSTOO_API_URL": "http://127.0.0.1:9",  # review/created events carry the review: never called
    }


def _recording_target():
    from tests.fakes.memory_target import RecordingTarget

    return RecordingTarget()


# --- filling the queue ------------------------------------------------------------------------------


def _enqueue(services: Services, count: int, batch: int) -> float:
    """Signed deliveries of `batch` reviews each, verified and parsed by the Trustoo source, then stored."""
    source = services.sources["trustoo"]
    elapsed = 0.0
    for start in range(0, count, batch):
        body = trustoo_body(*(trustoo_review() for _ in range(min(batch, count - start))))
        headers = trustoo_headers(body, request_id=uuid.uuid4().hex)
        account = source.verify(headers, body)
        items = source.parse(account, "review/created", headers, body)
        began = time.perf_counter()
        stored = queue_store.enqueue(
            services.engine, source.name, account, items, now=utcnow(), quarantine_id=f"bench:{uuid.uuid4().hex}"
        )
        elapsed += time.perf_counter() - began
        if stored != len(items):
            raise SystemExit(f"bench.queue: enqueue stored {stored} of {len(items)} events")
    with services.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE inbox")  # what autovacuum would do soon after such a load
    return elapsed


# --- the claim's cost -------------------------------------------------------------------------------


def _time_claims(services: Services, calls: int) -> list[float]:
    worker_id = f"bench-claim-{uuid.uuid4().hex[:6]}"
    timings = []
    for _ in range(calls):
        began = time.perf_counter()
        claimed = queue.claim(services.engine, worker_id, now=utcnow(), lease_s=60)
        timings.append((time.perf_counter() - began) * 1000)
        if len(claimed) != 1:
            raise SystemExit(f"bench.queue: claim returned {len(claimed)} events on a loaded queue")
    released = queue.release(services.engine, worker_id, now=utcnow())  # due again at once for the drain
    if released != calls:
        raise SystemExit(f"bench.queue: released {released} of {calls} claimed events")
    return timings


def _explain_claim(services: Services) -> dict:
    """Capture the SQL that queue.claim sends, then EXPLAIN ANALYZE it in a transaction rolled back."""
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "UPDATE INBOX SET" in statement.upper():  # after the claim's WITH on PostgreSQL
            captured.append((statement, parameters))

    event.listen(services.engine, "before_cursor_execute", capture)
    try:
        claimed = queue.claim(services.engine, "bench-explain", now=utcnow(), lease_s=60)
    finally:
        event.remove(services.engine, "before_cursor_execute", capture)
    queue.release(services.engine, "bench-explain", now=utcnow(), event_ids=[c.id for c in claimed])
    statement, parameters = captured[0]
    connection = services.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
        document = cursor.fetchone()[0]
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        text = [row[0] for row in cursor.fetchall()]
    finally:
        connection.rollback()
        connection.close()
    top = document[0] if isinstance(document, list) else json.loads(document)[0]
    return {"execution_ms": top["Execution Time"], "planning_ms": top["Planning Time"], "text": text}


# --- draining ---------------------------------------------------------------------------------------


def _drain(env: dict[str, str], processes: int, profile: Path | None, scratch: Path) -> tuple[float, list[dict]]:
    children = spawn_children("bench.queue", env, processes, scratch)
    try:
        spies = []
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
            py_spy = str(Path(sys.executable).with_name("py-spy"))
            spies = [
                subprocess.Popen(
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(child.pid),
                        "--format",
                        "raw",
                        "--rate",
                        "200",
                        "--nonblocking",
                        "-o",
                        str(profile / f"queue-worker-{i}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for i, child in enumerate(children)
            ]
            time.sleep(1.0)
        began = time.perf_counter()
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child in children:
            results.append(json.loads(child.stdout.readline()))
        elapsed = time.perf_counter() - began
        for child in children:
            child.stdin.close()
            child.wait(60)
        for spy in spies:
            spy.wait(60)
        return elapsed, results
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait(10)


def _child() -> int:
    """One worker process: build the app with an in-memory target, drain in WORKER_CONCURRENCY threads."""
    target = _recording_target()
    app = create_app(os.environ, targets=[target])
    services: Services = services_of(app)
    worker = build_worker(services)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    counts: list[int] = []
    began, cpu_began = time.perf_counter(), time.process_time()
    threads = [
        threading.Thread(target=lambda: counts.append(worker.drain()))
        for _ in range(services.settings.worker_concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, cpu_s = time.perf_counter() - began, time.process_time() - cpu_began
    print(
        json.dumps({"processed": sum(counts), "elapsed_s": elapsed, "cpu_s": cpu_s, "upserts": len(target.calls)}),
        flush=True,
    )
    sys.stdin.read()
    return 0


def _statuses(services: Services) -> Counter:
    inbox = table(InboxEvent)
    with services.engine.connect() as connection:
        rows = connection.execute(select(inbox.c.status, func.count()).group_by(inbox.c.status)).all()
    return Counter({status: count for status, count in rows})


if __name__ == "__main__":
    sys.exit(main())
