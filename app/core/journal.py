"""A resync run's journal: every commercetools write the run makes, with the review as it was before
(none: the run created it), what the run wrote (none: the run deleted it) and the review's ledger row
before. `reviewbridge rollback` (app/core/rollback.py) puts back what the journal says.

    resync ──sync──▶ target.upsert / delete ──told before each write──▶ Journal.witness ──▶ run_journal row

One row per run and review. A write that conflicts (409) is told again with the review as it is
then, and replaces the row's `before` (the first attempt wrote nothing); a second write of the same
review in the run (it finds the review as the run left it) keeps the first `before` and moves `after`.
The rows live as long as their run: retention deletes both (app/core/retention.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from app.core import ledger
from app.core.db import insert_for, transaction
from app.core.models import RunJournal, table
from connectors.base import Event, Review, ReviewTarget, TargetRef
from connectors.commercetools import CommercetoolsTarget, Witness
from connectors.commercetools_mapping import snapshot

__all__ = ["Entry", "Journal", "entries", "mark_rolled_back", "witnessed_delete", "witnessed_upsert"]

_journal = table(RunJournal)


@dataclass(frozen=True)
class Entry:
    """One journaled review of a run."""

    id: int
    run_id: int
    target: str
    target_key: str
    source: str
    account: str
    source_review_id: str
    before: dict | None  # the commercetools review before the run wrote it; None: it did not exist
    after: dict | None  # the snapshot of what the run left; None: the run deleted it
    ledger_before: dict | None
    written_at: datetime
    rolled_back_at: datetime | None
    rolled_back_by: int | None

    @property
    def change(self) -> str:
        """What the run did: created, updated or deleted."""
        if self.before is None:
            return "created"
        return "deleted" if self.after is None else "updated"


class Journal:
    """The journal of one run, handed to the pipeline's `sync` (app/core/pipeline.py)."""

    def __init__(self, engine: Engine, run_id: int, *, clock: Callable[[], datetime]):
        self._engine, self.run_id, self._clock = engine, run_id, clock

    def witness(self, event: Event, target: ReviewTarget) -> Witness | None:
        """What the target tells before each write of this event's review; None for a target that
        is not journaled (only commercetools writes can be rolled back)."""
        if not isinstance(target, CommercetoolsTarget):
            return None

        def told(key: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> None:
            self._keep(event, target.name, key, before, after)

        return told

    def _keep(
        self, event: Event, target: str, key: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
    ) -> None:
        review = {"source": event.source, "account": event.account, "review_id": event.subject_id, "target": target}
        values = {
            "run_id": self.run_id,
            "target": target,
            "target_key": key,
            "source": event.source,
            "account": event.account,
            "source_review_id": event.subject_id,
            "before": _dump(before),
            "after": _dump(after),
            "written_at": self._clock(),
        }
        this = (_journal.c.run_id == self.run_id) & (_journal.c.target == target) & (_journal.c.target_key == key)
        with transaction(self._engine) as session:
            values["ledger_before"] = _dump(ledger.row_of(session, **review))
            inserted = session.execute(
                insert_for(self._engine, _journal)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["run_id", "target", "target_key"])
                .returning(_journal.c.id)
            ).first()
            if inserted is not None:
                return
            kept = session.execute(select(_journal.c.after).where(this)).scalar_one()
            moved = {"after": values["after"], "written_at": values["written_at"]}
            if before is None or _load(kept) != snapshot(before):
                moved["before"] = values["before"]  # the earlier attempt wrote nothing: this is the state before
            session.execute(update(_journal).where(this).values(**moved))


def witnessed_upsert(
    target: ReviewTarget, review: Review, *, known: TargetRef | None, in_doubt: bool, witness: Witness | None
) -> TargetRef:
    """target.upsert, telling `witness` (Journal.witness gives one to commercetools only) before each write."""
    if witness is None:
        return target.upsert(review, known=known, in_doubt=in_doubt)
    assert isinstance(target, CommercetoolsTarget)
    return target.upsert(review, known=known, in_doubt=in_doubt, witness=witness)


def witnessed_delete(target: ReviewTarget, ref: TargetRef, *, witness: Witness | None) -> None:
    """target.delete, telling `witness` before the write, as witnessed_upsert."""
    if witness is None:
        target.delete(ref)
        return
    assert isinstance(target, CommercetoolsTarget)
    target.delete(ref, witness=witness)


def entries(engine: Engine, run_id: int) -> list[Entry]:
    """The run's journal, last write first: the order a rollback undoes them in."""
    with transaction(engine) as session:
        rows = (
            session.execute(select(_journal).where(_journal.c.run_id == run_id).order_by(_journal.c.id.desc()))
            .mappings()
            .all()
        )
    return [
        Entry(
            id=row["id"],
            run_id=row["run_id"],
            target=row["target"],
            target_key=row["target_key"],
            source=row["source"],
            account=row["account"],
            source_review_id=row["source_review_id"],
            before=_load(row["before"]),
            after=_load(row["after"]),
            ledger_before=_load(row["ledger_before"]),
            written_at=row["written_at"],
            rolled_back_at=row["rolled_back_at"],
            rolled_back_by=row["rolled_back_by"],
        )
        for row in rows
    ]


def mark_rolled_back(engine: Engine, entry_id: int, *, by: int | None, now: datetime) -> None:
    with transaction(engine) as session:
        session.execute(update(_journal).where(_journal.c.id == entry_id).values(rolled_back_at=now, rolled_back_by=by))


def _dump(value: Mapping[str, Any] | None) -> str | None:
    return json.dumps(value, sort_keys=True, default=str) if value is not None else None


def _load(text: str | None) -> Any:
    return json.loads(text) if text is not None else None
