"""Bulk decisions and whole-filter reads, on SQLite and PostgreSQL: count, then replay or discard
exactly what was counted; page through every matching event; name accounts by their label."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import select, update

from app.core import accounts, bulk, events, queue, queue_store
from app.core.db import transaction
from app.core.events import EventFilter
from app.core.models import EventStatus, InboxEvent
from tests.integration.conftest import make_event

DEAD = EventFilter(status=EventStatus.DEAD.value)


def _enqueue(engine, clock, *events, account: str = "shop-a", topic: str | None = None) -> None:
    if topic is not None:
        events = tuple(dataclasses.replace(event, topic=topic) for event in events)
    queue_store.enqueue(engine, "trustoo", account, list(events), now=clock(), quarantine_id="q")


def _set_status(engine, status: str, *subjects: str) -> None:
    with transaction(engine) as session:
        session.execute(update(InboxEvent).where(InboxEvent.subject_id.in_(subjects)).values(status=status))


def _statuses(engine) -> dict[str, str]:
    with transaction(engine) as session:
        return dict(session.execute(select(InboxEvent.subject_id, InboxEvent.status)).all())


# --- count, then act ------------------------------------------------------------------------------


def test_count_gives_the_matching_events_by_status_and_the_newest_of_them(engine, clock):
    _enqueue(engine, clock, *(make_event(f"r{i}", at=clock()) for i in range(1, 6)))
    _set_status(engine, "dead", "r1", "r2")
    _set_status(engine, "processing", "r3")
    _set_status(engine, "done", "r4")
    count = bulk.count(engine, EventFilter(source="trustoo"))
    assert count.by_status == {"dead": 2, "processing": 1, "done": 1, "pending": 1}
    assert (count.matching, count.in_flight, count.replayable, count.discardable) == (5, 1, 3, 4)
    assert count.where.up_to_id == max(event["id"] for event in events.find(engine, EventFilter()))
    assert count.where.source == "trustoo"


def test_count_of_nothing_is_bounded_by_id_0_so_its_action_takes_nothing(engine, clock):
    _enqueue(engine, clock, make_event("r1", at=clock()))
    count = bulk.count(engine, DEAD)
    assert (count.matching, count.where.up_to_id) == (0, 0)
    _set_status(engine, "dead", "r1")
    assert bulk.act(engine, "replay", count.where, now=clock()).done == 0
    assert _statuses(engine) == {"r1": "dead"}


def test_replay_after_a_count_leaves_dead_letters_that_died_after_the_count(engine, clock):
    _enqueue(engine, clock, make_event("r1", at=clock()), make_event("r2", at=clock()))
    _set_status(engine, "dead", "r1", "r2")
    count = bulk.count(engine, DEAD)
    _enqueue(engine, clock, make_event("r3", at=clock()))
    _set_status(engine, "dead", "r3")
    outcome = bulk.act(engine, "replay", count.where, now=clock())
    assert (outcome.done, outcome.in_flight) == (count.replayable, 0) == (2, 0)
    assert _statuses(engine) == {"r1": "pending", "r2": "pending", "r3": "dead"}


def test_discard_after_a_count_leaves_events_a_worker_claimed_meanwhile_and_says_how_many(engine, clock):
    _enqueue(engine, clock, make_event("r1", at=clock()), make_event("r2", at=clock()))
    count = bulk.count(engine, EventFilter(account="shop-a"))
    assert count.discardable == 2
    [claimed] = queue.claim(engine, "w1", now=clock(), lease_s=30)
    outcome = bulk.act(engine, "discard", count.where, reason="test reviews", now=clock())
    assert (outcome.done, outcome.in_flight) == (1, 1)
    statuses = _statuses(engine)
    assert statuses.pop(claimed.subject_id) == "processing" and list(statuses.values()) == ["discarded"]


def test_discard_matching_keeps_the_reason_and_needs_one(engine, clock):
    _enqueue(engine, clock, make_event("r1", at=clock()))
    with pytest.raises(ValueError, match="reason"):
        queue.discard_matching(engine, EventFilter(source="trustoo"), "  ", now=clock())
    assert queue.discard_matching(engine, EventFilter(source="trustoo"), " spam ", now=clock()) == 1
    with transaction(engine) as session:
        row = session.execute(select(InboxEvent)).scalar_one()
    assert (row.status, row.last_error, row.finished_at, row.next_attempt_at) == (
        "discarded",
        "discarded: spam",
        clock(),
        None,
    )


@pytest.mark.parametrize("action", ["replay", "discard"])
def test_act_without_the_bound_of_a_count_is_refused(engine, clock, action):
    with pytest.raises(ValueError, match="count the events first"):
        bulk.act(engine, action, DEAD, reason="x", now=clock())


# --- every matching event, batch by batch ---------------------------------------------------------


def test_iter_matching_pages_through_every_matching_event_newest_first_with_its_payload(engine, clock):
    _enqueue(engine, clock, *(make_event(f"r{i}", at=clock()) for i in range(1, 8)))
    _enqueue(engine, clock, make_event("other", at=clock()), account="shop-b")
    found = list(events.iter_matching(engine, EventFilter(account="shop-a"), batch=2))
    assert [event["subject_id"] for event in found] == [f"r{i}" for i in range(7, 0, -1)]
    assert [json.loads(event["payload"])["id"] for event in found] == [f"r{i}" for i in range(7, 0, -1)]


# --- account labels -------------------------------------------------------------------------------


def test_labels_prefer_the_stored_label_then_the_shop_domain_of_a_webhook_then_a_short_id(engine, clock, services):
    webhook = make_event("r1", at=clock(), payload={"id": "r1", "rating": 5, "my_shopify_domain": "a.myshopify.com"})
    _enqueue(engine, clock, webhook, account="shop-with-a-webhook-token", topic="review/created")
    _enqueue(engine, clock, make_event("r2", at=clock()), account="resynced-shop-0123456789", topic="resync")
    _enqueue(engine, clock, make_event("r3", at=clock()), account="labelled-shop")
    assert services.vault is not None
    accounts.add(engine, services.vault, source="trustoo", account="labelled-shop", label="Shop B", now=clock())
    known = accounts.labels(engine, [("trustoo", "env-token-0123456789==")])
    assert {pair[1]: label.label for pair, label in known.items()} == {
        "shop-with-a-webhook-token": "a.myshopify.com",
        "resynced-shop-0123456789": "resynced-s…",  # a resync's payload names no domain
        "labelled-shop": "Shop B",
        "env-token-0123456789==": "env-token-…",
    }
    assert [label.label for label in known.values()] == ["a.myshopify.com", "env-token-…", "resynced-s…", "Shop B"]


def test_a_shops_label_comes_from_its_webhooks_whatever_other_rows_it_holds(engine, clock):
    _enqueue(engine, clock, make_event("r0", at=clock()), topic="resync")
    webhook = make_event("r1", at=clock(), payload={"id": "r1", "rating": 5, "my_shopify_domain": "shop.myshopify.com"})
    _enqueue(engine, clock, webhook, topic="review/updated")
    _enqueue(engine, clock, make_event("r2", at=clock()), topic="resync")
    assert accounts.labels(engine)[("trustoo", "shop-a")].label == "shop.myshopify.com"
