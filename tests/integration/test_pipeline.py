"""One event through parse → ledger check → target call → ledger update, on both databases."""

from __future__ import annotations

import dataclasses
import logging
import random
from datetime import timedelta

from sqlalchemy import select

from app.core import pipeline, queue, queue_store
from app.core.db import transaction
from app.core.models import InboxEvent, LedgerEntry
from connectors.base import ConfigError, EventKind, FixAndReplayError, RateLimited, RetryableTargetError
from tests.integration.conftest import make_event


def _run_all(engine, deps, *events) -> list[str]:
    """Enqueue the events, then claim and run each in turn; return the statuses they end in."""
    queue_store.enqueue(engine, "trustoo", "shop-a", list(events), now=deps.clock(), quarantine_id="q")
    results = []
    while claimed := queue.claim(engine, "w1", now=deps.clock(), lease_s=30):
        results.append(pipeline.handle(claimed[0], deps))
    return results


def _inbox(engine) -> list[InboxEvent]:
    with transaction(engine) as session:
        return list(session.execute(select(InboxEvent).order_by(InboxEvent.id)).scalars())


def _ledger(engine) -> list[LedgerEntry]:
    with transaction(engine) as session:
        return list(session.execute(select(LedgerEntry)).scalars())


def test_new_review_is_created_once_at_the_target(engine, deps, target, clock):
    assert _run_all(engine, deps, make_event("r1", at=clock())) == ["done"]
    assert [op for op, _ in target.calls] == ["upsert"]
    [entry] = _ledger(engine)
    assert (entry.last_action, entry.target_key, entry.target_version) == ("created", target.calls[0][1], 1)
    assert _inbox(engine)[0].outcome == "created"


def test_media_url_that_is_not_an_http_link_never_reaches_the_target_and_is_noted_in_the_ledger(
    engine, deps, target, clock
):
    media = [{"url": "javascript:alert(1)"}, {"url": "https://img.trustoo.io/r/1.jpg"}]
    payload = {"id": "r1", "rating": 5, "content": "v1", "product_id": "42", "media": media}
    assert _run_all(engine, deps, make_event("r1", at=clock(), payload=payload)) == ["done"]
    [written] = target.reviews.values()
    assert [m.url for m in written.media] == ["https://img.trustoo.io/r/1.jpg"]
    [entry] = _ledger(engine)
    assert entry.last_error == "media URL 'javascript:alert(1)' left out: not an http(s) link"


def test_same_content_again_makes_no_target_call(engine, deps, target, clock):
    _run_all(engine, deps, make_event("r1", at=clock(), version=1))
    clock.advance(5)
    same = make_event(
        "r1", at=clock(), version=2, payload={"id": "r1", "rating": 5, "content": "v1", "product_id": "42"}
    )
    _run_all(engine, deps, same)
    assert len(target.calls) == 1
    assert _inbox(engine)[1].outcome == "unchanged"


def test_edit_updates_the_target(engine, deps, target, clock):
    _run_all(engine, deps, make_event("r1", at=clock(), version=1))
    clock.advance(5)
    _run_all(engine, deps, make_event("r1", at=clock(), version=2))
    assert [op for op, _ in target.calls] == ["upsert", "upsert"]
    assert _ledger(engine)[0].last_action == "updated"
    assert next(iter(target.reviews.values())).body == "v2"


def test_event_older_than_the_ledger_is_skipped_and_recorded(engine, deps, target, clock):
    newer = make_event("r1", at=clock(), version=2)
    older = make_event("r1", at=clock() - timedelta(minutes=1), version=1)
    _run_all(engine, deps, newer, older)
    assert len(target.calls) == 1
    assert next(iter(target.reviews.values())).body == "v2"
    assert [row.outcome for row in _inbox(engine)] == ["created", "stale"]


def test_delete_removes_the_review_and_leaves_a_tombstone(engine, deps, target, clock):
    _run_all(engine, deps, make_event("r1", at=clock(), version=1))
    clock.advance(5)
    _run_all(engine, deps, make_event("r1", at=clock(), version=2, kind=EventKind.DELETE))
    assert target.reviews == {}
    [entry] = _ledger(engine)
    assert entry.deleted_at == clock() and entry.last_action == "deleted"


def test_tombstone_wins_over_an_older_upsert_delivered_late(engine, deps, target, clock):
    _run_all(engine, deps, make_event("r1", at=clock(), version=9, kind=EventKind.DELETE))
    _run_all(engine, deps, make_event("r1", at=clock() - timedelta(seconds=30), version=1))
    _run_all(engine, deps, make_event("r1", at=clock(), version=2))  # a tie goes to the tombstone too
    assert target.calls == []
    assert [row.outcome for row in _inbox(engine)] == ["tombstoned", "stale", "stale"]


def test_upsert_newer_than_a_tombstone_brings_the_review_back(engine, deps, target, clock):
    _run_all(engine, deps, make_event("r1", at=clock(), version=1))
    clock.advance(1)
    _run_all(engine, deps, make_event("r1", at=clock(), version=2, kind=EventKind.DELETE))
    clock.advance(1)
    _run_all(engine, deps, make_event("r1", at=clock(), version=3))
    assert [op for op, _ in target.calls] == ["upsert", "delete", "upsert"]
    assert _ledger(engine)[0].deleted_at is None
    assert _ledger(engine)[0].last_action == "created"


def test_retryable_error_schedules_a_backoff_honouring_retry_after(engine, deps, target, clock):
    target.fail_next(RetryableTargetError("rate limited", status=429, retry_after=20))
    assert _run_all(engine, deps, make_event("r1", at=clock())) == ["retry"]
    [row] = _inbox(engine)
    assert row.status == "retry" and "HTTP 429" in row.last_error
    assert row.next_attempt_at == clock() + timedelta(seconds=20)
    clock.advance(20)
    assert _run_all(engine, deps) == ["done"]
    assert _inbox(engine)[0].attempts == 2


def test_rate_limited_event_waits_for_its_turn_without_using_up_an_attempt(engine, deps, target, clock):
    target.fail_next(RateLimited("trustoo shop-a: no turn under its rate limit for 30.0 s", retry_after=30))
    assert _run_all(engine, deps, make_event("r1", at=clock())) == ["pending"]
    [row] = _inbox(engine)
    assert (row.status, row.attempts, row.outcome) == ("pending", 0, "rate_limited")
    assert row.next_attempt_at == clock() + timedelta(seconds=30)
    clock.advance(30)
    assert _run_all(engine, deps) == ["done"]
    assert _inbox(engine)[0].attempts == 1


def test_backoff_grows_exponentially_with_full_jitter(engine, deps, target, clock):
    deps = dataclasses.replace(deps, rng=random.Random(7), max_attempts=10, retry_cap_s=1e6)
    delays = []
    queue_store.enqueue(engine, "trustoo", "shop-a", [make_event("r1", at=clock())], now=clock(), quarantine_id="q")
    for attempt in range(1, 7):
        target.fail_next(RetryableTargetError("unavailable", status=503))
        [claimed] = queue.claim(engine, "w1", now=clock(), lease_s=30)
        assert pipeline.handle(claimed, deps) == "retry"
        delay = (_inbox(engine)[0].next_attempt_at - clock()).total_seconds()
        assert 0 <= delay <= deps.retry_base_s * 2 ** (attempt - 1)
        delays.append(delay)
        clock.advance(delay)
    assert max(delays) > deps.retry_base_s * 4  # the ceiling did grow


def test_event_is_dead_after_max_attempts(engine, deps, target, clock):
    queue_store.enqueue(engine, "trustoo", "shop-a", [make_event("r1", at=clock())], now=clock(), quarantine_id="q")
    statuses = []
    for _ in range(deps.max_attempts):
        target.fail_next(RetryableTargetError("timeout"))
        clock.advance(deps.retry_cap_s)
        [claimed] = queue.claim(engine, "w1", now=clock(), lease_s=30)
        statuses.append(pipeline.handle(claimed, deps))
    assert statuses == ["retry"] * (deps.max_attempts - 1) + ["dead"]
    [row] = _inbox(engine)
    assert row.status == "dead" and row.last_error.startswith(f"gave up after {deps.max_attempts} attempts")
    clock.advance(deps.retry_cap_s)
    assert queue.claim(engine, "w1", now=clock(), lease_s=30) == []


def test_fix_and_replay_error_goes_dead_at_once_with_its_reason(engine, deps, target, clock):
    target.fail_next(FixAndReplayError("product 42 has no commercetools match", status=400))
    assert _run_all(engine, deps, make_event("r1", at=clock())) == ["dead"]
    assert "product 42 has no commercetools match" in _inbox(engine)[0].last_error


def test_config_error_retries_at_the_slowest_pace(engine, deps, target, clock):
    target.fail_next(ConfigError("CTP_CLIENT_SECRET was refused", status=401))
    assert _run_all(engine, deps, make_event("r1", at=clock())) == ["retry"]
    assert _inbox(engine)[0].next_attempt_at == clock() + timedelta(seconds=deps.retry_cap_s)


def test_unmappable_review_is_quarantined_with_the_reason(engine, deps, target, clock):
    bad = make_event("r1", at=clock(), payload={"id": "r1", "rating": 9})
    assert _run_all(engine, deps, bad) == ["quarantined"]
    assert "rating 9 is outside 1-5" in _inbox(engine)[0].last_error
    assert target.calls == []


def test_review_is_never_copied_back_to_its_own_platform(engine, deps, target, clock):
    target.name = "trustoo"
    assert _run_all(engine, deps, make_event("r1", at=clock())) == ["done"]
    assert target.calls == [] and _inbox(engine)[0].outcome == "routed_nowhere"


def test_failed_target_call_is_noted_on_the_ledger_row(engine, deps, target, clock):
    _run_all(engine, deps, make_event("r1", at=clock(), version=1))
    clock.advance(5)
    target.fail_next(RetryableTargetError("unavailable", status=503))
    _run_all(engine, deps, make_event("r1", at=clock(), version=2))
    assert _ledger(engine)[0].last_error == "RetryableTargetError (HTTP 503): unavailable"
    clock.advance(deps.retry_cap_s)
    _run_all(engine, deps)
    assert _ledger(engine)[0].last_error is None


def test_retry_and_dead_letter_log_lines_carry_the_error_that_caused_them(engine, deps, target, clock, caplog):
    caplog.set_level(logging.INFO, logger="app.core.pipeline")
    target.fail_next(RetryableTargetError("unavailable", status=503))
    target.fail_next(FixAndReplayError("product 42 has no commercetools match", status=400))
    queue_store.enqueue(engine, "trustoo", "shop-a", [make_event("r1", at=clock())], now=clock(), quarantine_id="q")
    _run_all(engine, deps)
    clock.advance(deps.retry_cap_s)
    _run_all(engine, deps)
    [retry, dead] = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert retry[0] == "WARNING" and retry[1].startswith("event review/updated:r1:0 retry after attempt 1: ")
    assert "unavailable" in retry[1] and "503" in retry[1]
    assert dead[0] == "ERROR" and "dead after attempt 2" in dead[1]
    assert "product 42 has no commercetools match" in dead[1]
