"""Runs in the database (app/core/runs.py, app/core/runner.py): one unfinished run per account, claimed
by one worker, taken over when its worker dies, handed back when its worker stops. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from sqlalchemy import select, update

from app.core import runner, runs
from app.core.db import transaction
from app.core.models import Run
from tests.builders import TRUSTOO_PUBLIC_TOKEN


@pytest.fixture
def deps(services, clock):
    """The services against the Trustoo emulator and the recording target, on the test clock."""
    return replace(services, clock=clock)


def _queue(engine, clock, *accounts: str, kind: str = runs.RESYNC) -> list[int]:
    return runs.request(engine, kind, "trustoo", list(accounts), {"dry_run": False}, now=clock())


def _row(engine, run_id: int) -> Run:
    with transaction(engine) as session:
        return session.execute(select(Run).where(Run.id == run_id)).scalar_one()


def test_second_unfinished_run_of_an_account_is_busy_and_a_finished_one_frees_it(engine, clock):
    [first] = _queue(engine, clock, "shop-a")
    with pytest.raises(runs.Busy) as busy:
        _queue(engine, clock, "shop-b", "shop-a")
    assert busy.value.accounts == ["shop-a"]
    assert [run.account for run in runs.recent(engine, now=clock())] == ["shop-a"], "all or none"
    _queue(engine, clock, "shop-a", kind=runs.RECONCILE)  # another kind is another run
    with transaction(engine) as session:
        session.execute(update(Run).where(Run.id == first).values(state="done"))
    _queue(engine, clock, "shop-a")


def test_claim_takes_the_oldest_queued_run_and_marks_it_running_for_the_worker(engine, clock):
    first, second = _queue(engine, clock, "shop-a", "shop-b")
    claimed = runner.claim(engine, "w1", now=clock())
    assert (claimed.id, claimed.state, claimed.worker_id, claimed.started_at) == (first, "running", "w1", clock())
    assert runner.claim(engine, "w2", now=clock()).id == second
    assert runner.claim(engine, "w3", now=clock()) is None


def test_workers_claiming_together_take_each_run_once(engine, clock):
    queued = _queue(engine, clock, *(f"shop-{n}" for n in range(12)))
    taken: list[int] = []
    start = threading.Barrier(4)

    def worker(name: str) -> None:
        start.wait()
        while (run := runner.claim(engine, name, now=clock())) is not None:
            taken.append(run.id)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == queued


def test_running_run_is_left_to_its_worker_until_its_heartbeat_is_stale(engine, clock):
    [run_id] = _queue(engine, clock, "shop-a")
    started = clock()
    runner.claim(engine, "w-dead", now=started)
    clock.advance(runs.STALE_S - 1)
    assert runner.claim(engine, "w2", now=clock()) is None
    assert not runs.get(engine, run_id, now=clock()).abandoned
    clock.advance(2)
    assert runs.get(engine, run_id, now=clock()).shown_state == "abandoned"
    taken = runner.claim(engine, "w2", now=clock())
    assert (taken.id, taken.worker_id, taken.started_at) == (run_id, "w2", started)
    assert runs.get(engine, run_id, now=clock()).shown_state == "running"


def test_worker_runs_a_queued_resync_to_done_with_its_counts(engine, deps, trustoo, target, clock):
    for _ in range(2):
        trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, rating=5)
    [run_id] = _queue(engine, clock, TRUSTOO_PUBLIC_TOKEN)
    assert runner.run_queued(deps, "w1", stopping=threading.Event()) == 1
    done = runs.get(engine, run_id, now=clock())
    assert (done.state, done.error, done.finished_at) == ("done", None, clock())
    assert done.counts["counts"]["created"] == 2 and done.failures == []
    assert len(target.reviews) == 2


def test_stopping_worker_hands_its_run_back_to_the_queue(engine, deps, trustoo, target, clock):
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, rating=5)
    [run_id] = _queue(engine, clock, TRUSTOO_PUBLIC_TOKEN)
    run = runner.claim(engine, "w1", now=clock())
    stopping = threading.Event()
    stopping.set()  # SIGTERM came while the first page was read
    runner.execute(deps, run, "w1", stopping=stopping)
    row = _row(engine, run_id)
    assert (row.state, row.worker_id, row.finished_at) == ("queued", None, None)
    assert runner.claim(engine, "w2", now=clock()).id == run_id  # another worker takes it at once


def test_worker_whose_run_was_taken_over_leaves_it_to_the_new_worker(engine, deps, trustoo, clock):
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, rating=5)
    [run_id] = _queue(engine, clock, TRUSTOO_PUBLIC_TOKEN)
    run = runner.claim(engine, "w-slow", now=clock())
    with transaction(engine) as session:  # w-slow looked dead; w2 took the run over
        session.execute(update(Run).where(Run.id == run_id).values(worker_id="w2"))
    runner.execute(deps, run, "w-slow", stopping=threading.Event())
    row = _row(engine, run_id)
    assert (row.state, row.worker_id, row.finished_at) == ("running", "w2", None)


def test_run_of_a_source_that_cannot_be_read_fails_naming_it(engine, deps, clock):
    [run_id] = runs.request(engine, runs.RESYNC, "wix", ["site-1"], {}, now=clock())
    runner.run_queued(deps, "w1", stopping=threading.Event())
    failed = runs.get(engine, run_id, now=clock())
    assert failed.state == "failed" and failed.error.startswith("source: cannot read reviews from 'wix'")


def test_a_command_started_run_replaces_an_abandoned_one_of_the_account_and_is_busy_beside_a_live_one(engine, clock):
    dead = runs.start(engine, runs.RESYNC, "trustoo", "shop-a", {}, holder="cli:killed", now=clock())
    with pytest.raises(runs.Busy):
        runs.start(engine, runs.RESYNC, "trustoo", "shop-a", {}, holder="cli:second", now=clock())
    clock.advance(runs.STALE_S + 1)
    fresh = runs.start(engine, runs.RESYNC, "trustoo", "shop-a", {}, holder="cli:third", now=clock())
    ended = runs.get(engine, dead.id, now=clock())
    assert (fresh.state, fresh.worker_id) == ("running", "cli:third")
    assert ended.state == "failed" and "abandoned" in ended.error
    assert runner.claim(engine, "w1", now=clock()) is None, "no worker claims a command's own run"
