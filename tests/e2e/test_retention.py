"""Retention end to end: `reviewbridge db prune`, the worker's daily prune under a lease, and a
Trustoo redelivery after its inbox row was pruned, which the ledger still keeps from writing twice."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select, update

from app.bootstrap import build_worker
from app.core import retention
from app.core.db import transaction
from app.core.models import InboxEvent, table
from tests.builders import trustoo_body, trustoo_headers, trustoo_review
from tests.cli import cli_runner

_inbox = table(InboxEvent)


def _deliver(client, *items) -> None:
    body = trustoo_body(*items)
    assert client.post("/webhooks/trustoo/review-created", data=body, headers=trustoo_headers(body)).status_code == 200


def _age_everything(services, days: int) -> None:
    """Every event arrived and was settled `days` ago."""
    then = services.clock() - timedelta(days=days)
    with transaction(services.engine) as session:
        session.execute(update(_inbox).values(received_at=then, finished_at=then))


def _events(engine) -> int:
    with transaction(engine) as session:
        return session.execute(select(func.count()).select_from(_inbox)).scalar_one()


def test_trustoo_redelivery_after_its_event_was_pruned_writes_nothing(client, services, target):
    worker = build_worker(services)
    review = trustoo_review()
    _deliver(client, review)
    assert worker.drain() == 1 and len(target.calls) == 1

    _age_everything(services, 31)
    assert retention.prune(services.engine, now=services.clock(), older_than_days=30).events == 1
    _deliver(client, review)  # Trustoo delivers the same review again, weeks later
    worker.drain()

    assert len(target.calls) == 1
    with transaction(services.engine) as session:
        assert session.execute(select(_inbox.c.outcome)).scalar_one() == "unchanged"


def test_db_prune_deletes_what_is_older_than_retention_and_dry_run_only_counts(app, client, services):
    _deliver(client, trustoo_review(), trustoo_review())
    build_worker(services).drain()
    _age_everything(services, 40)

    dry = json.loads(cli_runner(app).invoke(args=["db", "prune", "--dry-run", "--json"]).output)
    assert dry["events"] == 2 and dry["dry_run"] is True and _events(services.engine) == 2
    kept = cli_runner(app).invoke(args=["db", "prune", "--older-than", "60"])
    assert kept.exit_code == 0 and "deleted 0 finished event(s)" in kept.output
    pruned = cli_runner(app).invoke(args=["db", "prune"])
    assert "deleted 2 finished event(s)" in pruned.output and "(30 days)" in pruned.output
    assert _events(services.engine) == 0


def test_only_one_worker_prunes_a_day(client, services):
    first, second = build_worker(services), build_worker(services)
    _deliver(client, trustoo_review())
    first.drain()
    _age_everything(services, 31)

    assert first.prune() == 1
    _deliver(client, trustoo_review())
    first.drain()
    _age_everything(services, 31)

    assert second.prune() == 0 and _events(services.engine) == 1  # the day's lease is the first's
