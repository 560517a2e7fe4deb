"""Real `reviewbridge worker` processes against one PostgreSQL and the in-process commercetools
emulator on loopback (R4 crashes, R6 scale-out): seeding, starting, waiting, reading attempts."""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import select

from app.bootstrap import services_of
from app.core import accounts
from app.core.db import transaction
from app.core.models import Attempt, InboxEvent, utcnow
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN, trustoo_review
from tests.reliability.conftest import (
    MORE_SHOPS,
    REVIEWBRIDGE,
    ROOT,
    inbox_counts,
    post_trustoo,
    process_environ,
    signed_trustoo,
    trustoo_key,
)

EDITS = 2  # each review: created, then edited twice: three events whose order matters
BATCH = 100  # review items per Trustoo delivery (a webhook body holds a list)


def trustoo_shops(app, count: int) -> list[tuple[str, str]]:
    """`count` Trustoo shops as (public token, private token): the environment's, then shops added
    as `reviewbridge accounts add trustoo` adds them."""
    services = services_of(app)
    for n, (public, private) in enumerate(MORE_SHOPS[: count - 1], start=2):
        accounts.add(
            services.engine,
            services.vault,
            source="trustoo",
            account=public,
            secret=private,
            label=f"rel-shop-{n:02d}.myshopify.com",
            now=utcnow(),
        )
    return [(TRUSTOO_PUBLIC_TOKEN, TRUSTOO_PRIVATE_TOKEN), *MORE_SHOPS[: count - 1]]


def seed_histories(app, reviews: int, first_id: int, shops: int = 1) -> dict[str, dict]:
    """Deliver `reviews` creates, then their first edits, then their second edits, one second apart
    (so that inbox order is history order), the reviews dealt round the `shops`; return the final
    item of each review by its commercetools key."""
    client = app.test_client()
    base = int(time.time()) - 30
    signers = trustoo_shops(app, shops)
    shop_of = {first_id + n: signers[n % shops] for n in range(reviews)}
    items = {
        first_id + n: trustoo_review(id=first_id + n, rating=1, content=f"Review {n}, as written")
        for n in range(reviews)
    }
    for step in range(EDITS + 1):
        if step:
            items = {
                rid: {**item, "rating": 1 + step, "content": f"{item['content']}; edit {step}"}
                for rid, item in items.items()
            }
        for shop in signers:
            ordered = [item for rid, item in items.items() if shop_of[rid] == shop]
            for start in range(0, len(ordered), BATCH):
                body, headers = signed_trustoo(
                    ordered[start : start + BATCH], base + step, request_id=f"{step}-{start}", shop=shop
                )
                post_trustoo(client, "review-updated" if step else "review-created", body, headers)
    assert inbox_counts(app)["pending"] == reviews * (EDITS + 1)
    return {trustoo_key(rid, shop_of[rid][0]): item for rid, item in items.items()}


def worker_environ(environ: dict[str, str], **extra: str) -> dict[str, str]:
    return process_environ(
        environ,
        LEASE_S="5",
        RETRY_BASE_S="0.05",
        RETRY_CAP_S="2",
        DRAIN_INTERVAL_S="0.1",
        WORKER_CONCURRENCY="4",
        LOG_LEVEL="INFO",
        **extra,
    )


def setup_commercetools(env: dict[str, str]) -> str:
    done = subprocess.run(
        [REVIEWBRIDGE, "setup", "commercetools"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def status_json(env: dict[str, str]) -> str:
    done = subprocess.run(
        [REVIEWBRIDGE, "status", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def wait_for_done(app, at_least: int, timeout_s: float, workers: list[subprocess.Popen]) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = inbox_counts(app).get("done", 0)
        if done >= at_least:
            return done
        for process in workers:
            if process.poll() is not None:
                raise AssertionError(f"worker {process.pid} exited with {process.returncode}")
        time.sleep(0.05)
    raise AssertionError(f"only {inbox_counts(app)} after {timeout_s} s (wanted {at_least} done)")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = 20) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=5)


def attempts_by_event(app) -> dict[int, list]:
    engine = services_of(app).engine
    with transaction(engine) as session:
        rows = session.execute(select(Attempt).order_by(Attempt.id)).scalars().all()
    out: dict[int, list] = defaultdict(list)
    for row in rows:
        out[row.event_pk].append(row)
    return out


def events_by_review(app) -> dict[str, list]:
    """Inbox rows per review, in inbox (= arrival = history) order."""
    engine = services_of(app).engine
    with transaction(engine) as session:
        rows = session.execute(
            select(InboxEvent.id, InboxEvent.account, InboxEvent.subject_id, InboxEvent.status).order_by(InboxEvent.id)
        ).all()
    out: dict[str, list] = defaultdict(list)
    for row in rows:
        out[f"{row.subject_id} of {row.account}"].append(row)
    return out


def order_violations(app) -> list[str]:
    """Reviews whose events were not applied one after another, in history order."""
    attempts = attempts_by_event(app)
    wrong = []
    for review_id, rows in events_by_review(app).items():
        done = [next((a for a in attempts.get(row.id, []) if a.status == "done"), None) for row in rows]
        if any(a is None for a in done):
            wrong.append(f"review {review_id}: an event has no done attempt")
            continue
        for earlier, later in itertools.pairwise(done):
            if later.started_at < earlier.finished_at:
                wrong.append(f"review {review_id}: event {later.event_pk} started before {earlier.event_pk} finished")
    return wrong


def read_logs(paths: list[Path]) -> str:
    return "\n".join(path.read_text(errors="replace") for path in paths if path.exists())
