"""The sync ledger: what we last did for each source review at each target, and what to do next.

`decide` is the whole "nothing twice" rule in one pure function; `load` and `record` move a
ledger row in and out of the database.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Engine, and_, delete, func, or_, select, update

from app.core.db import insert_for, transaction
from app.core.models import LedgerEntry, table
from connectors.base import EventKind, Review, TargetRef

__all__ = [
    "OUTCOMES",
    "Decision",
    "LedgerState",
    "Outcome",
    "content_hash",
    "decide",
    "dry_run_outcome",
    "entry",
    "is_echo",
    "load",
    "load_for",
    "load_many",
    "note_error",
    "put_back",
    "record",
    "reserve",
    "row_of",
    "write",
    "written_by_us",
    "written_since",
]

_ledger = table(LedgerEntry)
RESERVED = "reserved"


class Decision(enum.StrEnum):
    UPSERT = "upsert"  # the target lacks this content: write it
    UNCHANGED = "unchanged"  # the target already has exactly this content: no call
    DELETE = "delete"  # remove the target copy and leave a tombstone
    TOMBSTONE = "tombstone"  # deleted before we ever wrote it: only remember the deletion
    STALE = "stale"  # older than what the ledger holds: skip


class Outcome(enum.StrEnum):
    """How an event ended (the inbox's `outcome`), and what a resync counts per review: one
    spelling, kept in the database, the admin API, the runs' counts and the CLI's reports."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    UNCHANGED = "unchanged"
    TOMBSTONED = "tombstoned"
    STALE = "stale"
    ECHO = "echo"  # a review ReviewBridge itself wrote into this platform, coming back
    ROUTED_NOWHERE = "routed_nowhere"  # ROUTES sends this source to no configured target
    WOULD_CREATE = "would_create"  # a dry run's upsert of a review the target holds no copy of
    WOULD_UPDATE = "would_update"  # a dry run's upsert of a review the target holds
    WOULD_DELETE = "would_delete"  # a dry run's delete
    MERGED = "merged"  # joined another source's copy of the same review; its own extra copy deleted
    WOULD_MERGE = "would_merge"  # a dry run's merge
    ACCOUNT_INSTALLED = "account_installed"
    ACCOUNT_REMOVED = "account_removed"
    REVIEW_REQUESTED = "review_requested"
    REQUEST_ADOPTED = "request_adopted"  # an earlier attempt's request found at Wix and kept
    REQUEST_SKIPPED = "request_skipped"
    REQUEST_FAILED = "request_failed"
    ALREADY_REQUESTED = "already_requested"


class _Outcomes(NamedTuple):
    done: Outcome | None  # None: the target's answer tells (created or updated)
    dry_run: Outcome | None  # None: the ledger tells (would create or would update; dry_run_outcome)


#: What each decision comes to, carried out and in a dry run: the one table from decision to outcome.
OUTCOMES: dict[Decision, _Outcomes] = {
    Decision.UPSERT: _Outcomes(None, None),
    Decision.UNCHANGED: _Outcomes(Outcome.UNCHANGED, Outcome.UNCHANGED),
    Decision.DELETE: _Outcomes(Outcome.DELETED, Outcome.WOULD_DELETE),
    Decision.TOMBSTONE: _Outcomes(Outcome.TOMBSTONED, Outcome.TOMBSTONED),
    Decision.STALE: _Outcomes(Outcome.STALE, Outcome.STALE),
}


@dataclass(frozen=True)
class LedgerState:
    ref: TargetRef | None
    content_hash: str | None
    source_updated_at: datetime | None
    source_sequence: int | None
    deleted_at: datetime | None
    last_action: str | None = None

    @property
    def live_key(self) -> str | None:
        """The key of the target copy the ledger knows is there (written, not deleted since), or None."""
        return self.ref.key if self.ref is not None and self.deleted_at is None else None

    @property
    def in_doubt(self) -> bool:
        """A write was reserved and never confirmed: it may or may not have happened."""
        return self.last_action == RESERVED


def dry_run_outcome(decision: Decision, state: LedgerState | None) -> Outcome:
    """What a dry run reports for a decision. An upsert creates unless the ledger holds a live copy at
    the target (a copy deleted since, or never confirmed written, would be created again)."""
    outcome = OUTCOMES[decision].dry_run
    if outcome is not None:
        return outcome
    return Outcome.WOULD_UPDATE if state is not None and state.live_key else Outcome.WOULD_CREATE


def content_hash(review: Review) -> str:
    """A fingerprint of everything a target shows; `updated_at` alone changing is no change."""
    fields = dataclasses.asdict(dataclasses.replace(review, updated_at=None, extra={}))
    del fields["notes"]  # about what was left out, not shown; hashes from before notes stay the same
    canonical = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def decide(
    state: LedgerState | None, kind: EventKind, occurred_at: datetime, sequence: int | None, new_hash: str | None
) -> Decision:
    if state is None:
        return Decision.UPSERT if kind is EventKind.UPSERT else Decision.TOMBSTONE
    if _is_older(state, occurred_at, sequence):
        return Decision.STALE
    if kind is EventKind.DELETE:
        if state.live_key:
            return Decision.DELETE
        return Decision.TOMBSTONE
    if state.deleted_at is None and state.content_hash == new_hash and not state.in_doubt:
        return Decision.UNCHANGED
    return Decision.UPSERT


def _is_older(state: LedgerState, occurred_at: datetime, sequence: int | None) -> bool:
    if sequence is not None and state.source_sequence is not None:
        return sequence <= state.source_sequence
    if state.source_updated_at is None:
        return False
    if occurred_at == state.source_updated_at:
        # A tie with a tombstone goes to the tombstone: a delete is never undone by its equal.
        return state.deleted_at is not None
    return occurred_at < state.source_updated_at


def load(engine: Engine, source: str, account: str, review_id: str, target: str) -> LedgerState | None:
    return load_many(engine, source, account, [review_id], target).get(review_id)


def load_many(
    engine: Engine, source: str, account: str, review_ids: Sequence[str], target: str
) -> dict[str, LedgerState]:
    """The ledger states of several reviews at one target, in one query (a resync reads a page at once)."""
    found = load_for(engine, [(source, account, review_id) for review_id in review_ids], [target])
    return {review_id: state for (_, _, review_id, _), state in found.items()}


def _state(row) -> LedgerState:
    ref = (
        TargetRef(key=row["target_key"], id=row["target_id"], version=row["target_version"])
        if row["target_key"]
        else None
    )
    return LedgerState(
        ref=ref,
        content_hash=row["content_hash"],
        source_updated_at=row["source_updated_at"],
        source_sequence=row["source_sequence"],
        deleted_at=row["deleted_at"],
        last_action=row["last_action"],
    )


def load_for(
    engine: Engine, reviews: Iterable[tuple[str, str, str]], targets: Sequence[str]
) -> dict[tuple[str, str, str, str], LedgerState]:
    """The ledger states of a batch of (source, account, review) at several targets, in one query;
    keyed by (source, account, review, target). A worker reads its batch of events at once."""
    by_account: dict[tuple[str, str], set[str]] = {}
    for source, account, review_id in reviews:
        by_account.setdefault((source, account), set()).add(review_id)
    if not by_account or not targets:
        return {}
    # One query per (source, account), usually one per batch: it walks the ledger's unique index.
    either = or_(
        *(
            and_(_ledger.c.source == source, _ledger.c.account == account, _ledger.c.source_review_id.in_(sorted(ids)))
            for (source, account), ids in by_account.items()
        )
    )
    with transaction(engine) as session:
        rows = session.execute(select(_ledger).where(either, _ledger.c.target.in_(list(targets)))).mappings().all()
    return {(row["source"], row["account"], row["source_review_id"], row["target"]): _state(row) for row in rows}


def entry(
    *,
    source: str,
    account: str,
    review_id: str,
    target: str,
    action: str,
    event_id: str,
    occurred_at: datetime,
    sequence: int | None,
    now: datetime,
    ref: TargetRef | None = None,
    new_hash: str | None = None,
    deleted: bool = False,
    note: str | None = None,
) -> dict:
    """The ledger row for what was just done at a target (`write` stores it). `note` says what of
    the review was left out (Review.notes); it goes where a failed call's reason goes, for a person
    to see beside the review."""
    return {
        "source": source,
        "account": account,
        "source_review_id": review_id,
        "target": target,
        "last_action": action,
        "last_event_id": event_id,
        "source_updated_at": occurred_at,
        "source_sequence": sequence,
        "content_hash": None if deleted else new_hash,
        "deleted_at": occurred_at if deleted else None,
        "first_synced_at": now,
        "last_synced_at": now,
        "last_error": note,
        "target_key": ref.key if ref else None,
        "target_id": ref.id if ref else None,
        "target_version": ref.version if ref else None,
    }


def write(session, entries: Sequence[dict]) -> None:
    """Store ledger rows in the caller's transaction; the first write of a review creates its row."""
    if not entries:
        return
    statement = insert_for(session.get_bind(), _ledger)
    kept = {"source", "account", "source_review_id", "target", "first_synced_at"}
    updated = {name: statement.excluded[name] for name in entries[0] if name not in kept}
    # A row written without a target reference (a tombstone) keeps the one it had.
    updated |= {
        name: func.coalesce(statement.excluded[name], _ledger.c[name])
        for name in ("target_key", "target_id", "target_version")
    }
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["source", "account", "source_review_id", "target"], set_=updated
        ),
        list(entries),
    )


def record(engine: Engine, **what) -> None:
    """Write what was just done (the fields of `entry`), in a transaction of its own."""
    with transaction(engine) as session:
        write(session, [entry(**what)])


def note_error(
    engine: Engine, *, source: str, account: str, review_id: str, target: str, error: str, now: datetime
) -> None:
    """Keep a failed target call's reason on the review's ledger row, if it has one yet."""
    statement = (
        update(_ledger)
        .where(
            _ledger.c.source == source,
            _ledger.c.account == account,
            _ledger.c.source_review_id == review_id,
            _ledger.c.target == target,
        )
        .values(last_error=error, last_synced_at=now)
    )
    with transaction(engine) as session:
        session.execute(statement)


def reserve(
    engine: Engine, *, source: str, account: str, review_id: str, target: str, key: str, event_id: str, now: datetime
) -> None:
    """Before a write that the target cannot make idempotent: remember that it is under way and
    the key it will carry, so a retry knows to look first and an echo is recognised."""
    values = {"last_action": RESERVED, "target_key": key, "last_event_id": event_id, "last_synced_at": now}
    statement = (
        insert_for(engine, _ledger)
        .values(
            source=source, account=account, source_review_id=review_id, target=target, first_synced_at=now, **values
        )
        .on_conflict_do_update(index_elements=["source", "account", "source_review_id", "target"], set_=values)
    )
    with transaction(engine) as session:
        session.execute(statement)


def is_echo(engine: Engine, *, platform: str, review_id: str, key: str | None) -> bool:
    """Is this review on `platform` one that ReviewBridge wrote there (by its id, or by the key
    reserved before the write, for an echo that outruns the write's answer)?"""
    if written_by_us(engine, platform=platform, review_ids=[review_id]):
        return True
    if key is None:
        return False
    with transaction(engine) as session:
        return (
            session.execute(
                select(_ledger.c.id).where(_ledger.c.target == platform, _ledger.c.target_key == key).limit(1)
            ).first()
            is not None
        )


def written_by_us(engine: Engine, *, platform: str, review_ids: Sequence[str]) -> set[str]:
    """Which of these reviews on `platform` ReviewBridge created there, by the ids the platform gave them."""
    with transaction(engine) as session:
        return set(
            session.execute(
                select(_ledger.c.target_id).where(
                    _ledger.c.target == platform, _ledger.c.target_id.in_(list(review_ids))
                )
            ).scalars()
        )


_TIMES = ("source_updated_at", "deleted_at", "first_synced_at", "last_synced_at")


def row_of(session, *, source: str, account: str, review_id: str, target: str) -> dict | None:
    """A review's ledger row at a target as JSON-ready values (times in ISO form), or None: what a
    run's journal keeps, in the caller's transaction, so that a rollback can put the row back."""
    row = session.execute(select(_ledger).where(_review(source, account, review_id, target))).mappings().first()
    if row is None:
        return None
    kept = {name: value for name, value in row.items() if name != "id"}
    return kept | {name: kept[name].isoformat() for name in _TIMES if kept[name] is not None}


def put_back(
    engine: Engine, *, source: str, account: str, review_id: str, target: str, row: dict | None, ref: TargetRef | None
) -> None:
    """Make the review's ledger row what `row_of` read (None: no row at all), with the target's
    reference as it is now (a review created again has a new id)."""
    where = _review(source, account, review_id, target)
    with transaction(engine) as session:
        session.execute(delete(_ledger).where(where))
        if row is None:
            return
        values = row | {name: datetime.fromisoformat(row[name]) for name in _TIMES if row[name] is not None}
        if ref is not None:
            values |= {"target_key": ref.key, "target_id": ref.id, "target_version": ref.version}
        session.execute(insert_for(engine, _ledger).values(**values))


def _review(source: str, account: str, review_id: str, target: str):
    return and_(
        _ledger.c.source == source,
        _ledger.c.account == account,
        _ledger.c.source_review_id == review_id,
        _ledger.c.target == target,
    )


def written_since(engine: Engine, *, source: str, account: str, target: str, since: datetime) -> set[str]:
    """The account's reviews whose row at `target` changed at or after `since`: what was written there lately."""
    with transaction(engine) as session:
        return set(
            session.execute(
                select(_ledger.c.source_review_id).where(
                    _ledger.c.source == source,
                    _ledger.c.account == account,
                    _ledger.c.target == target,
                    _ledger.c.last_synced_at >= since,
                )
            ).scalars()
        )
