"""A run's journal (app/core/journal.py): one row per review, holding the state before the run's first
write that landed, on SQLite and PostgreSQL."""

from __future__ import annotations

from app.core import journal, ledger
from app.core.journal import Journal
from connectors.commercetools import CommercetoolsTarget
from connectors.commercetools_api import CommercetoolsConfig
from connectors.commercetools_mapping import snapshot
from tests.fakes.memory_target import RecordingTarget
from tests.integration.conftest import make_event

KEY = "trustoo-880000001-0123456789abcdef0123456789abcdef"


def _target() -> CommercetoolsTarget:
    config = CommercetoolsConfig(
        project_key="p", client_id="c", client_secret="s", api_url="http://ct.test", auth_url="http://ct.test"
    )
    return CommercetoolsTarget(config)


def _review(version: int, rating: int) -> dict:
    return {"id": "r-1", "key": KEY, "version": version, "rating": rating, "target": {"typeId": "product", "id": "p1"}}


def test_journal_keeps_the_state_before_the_runs_first_write_when_the_run_writes_a_review_again(engine, clock):
    told = Journal(engine, 7, clock=clock).witness(make_event("880000001", at=clock()), _target())
    created = _review(1, 5)
    told(KEY, None, snapshot(created))
    told(KEY, created, snapshot(_review(2, 3)))

    [entry] = journal.entries(engine, 7)
    assert (entry.change, entry.before, entry.after["rating"]) == ("created", None, 3)


def test_journal_told_again_after_a_conflict_keeps_the_review_the_write_overwrote(engine, clock):
    told = Journal(engine, 7, clock=clock).witness(make_event("880000001", at=clock()), _target())
    ours = snapshot(_review(3, 1))
    told(KEY, _review(1, 5), ours)  # answered 409: another writer had made it version 2
    told(KEY, _review(2, 4), ours)

    [entry] = journal.entries(engine, 7)
    assert (entry.change, entry.before["version"], entry.before["rating"]) == ("updated", 2, 4)


def test_journal_keeps_the_ledger_row_before_the_write(engine, clock):
    event = make_event("880000001", at=clock())
    ledger.record(
        engine,
        source="trustoo",
        account="shop-a",
        review_id="880000001",
        target="commercetools",
        action="created",
        event_id="e1",
        occurred_at=clock(),
        sequence=None,
        now=clock(),
        new_hash="h1",
    )
    Journal(engine, 7, clock=clock).witness(event, _target())(KEY, _review(1, 5), None)

    [entry] = journal.entries(engine, 7)
    assert (entry.change, entry.ledger_before["content_hash"], entry.ledger_before["last_action"]) == (
        "deleted",
        "h1",
        "created",
    )


def test_journal_has_no_witness_for_a_target_other_than_commercetools(engine, clock):
    event = make_event("880000001", at=clock())
    assert Journal(engine, 7, clock=clock).witness(event, RecordingTarget()) is None
