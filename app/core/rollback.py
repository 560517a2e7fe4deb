"""Rolling back one resync run: every commercetools write it journaled (app/core/journal.py) is put
back, last write first, and the review's ledger row with it.

    created by the run  ──▶ deleted
    updated by the run  ──▶ its fields as they were before the run
    deleted by the run  ──▶ created again with the same key (commercetools gives it a new id)

A review whose commercetools state is no longer what the run left was changed by a later write (a
webhook, another run): it is skipped and listed, unless `force`. A later run rolled back first puts
its reviews back as this run left them, so rolling back that later run and then this one works. A
review already as it was before the run needs no write. Each put-back entry is marked, so a second
rollback writes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.core import journal, ledger, runs
from app.core.services import Services
from connectors.base import ConfigError, RetryableTargetError, TargetError, TargetRef
from connectors.commercetools import CommercetoolsTarget
from connectors.commercetools_mapping import snapshot

__all__ = ["NEW_ID_NOTE", "RollbackReport", "plan", "rollback"]

_CONFLICT_RETRIES = 5
NEW_ID_NOTE = "created again with the same key; commercetools gave it a new id"

#: What a rollback does to a review, by what the run did to it; the dry run's words beside them.
_UNDO = {"created": "deleted", "updated": "restored", "deleted": "recreated"}
_WOULD = {"deleted": "would_delete", "restored": "would_restore", "recreated": "would_recreate"}


@dataclass
class RollbackReport:
    run_id: int  # the resync run rolled back
    dry_run: bool = False
    force: bool = False
    #: deleted, restored, recreated (or would_…), in_line, already, skipped, failed
    counts: Counter = field(default_factory=Counter)
    reviews: list[dict] = field(default_factory=list)  # one per journaled review, in the order undone

    @property
    def skipped(self) -> list[dict]:
        return [review for review in self.reviews if review["action"] == "skipped"]

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "force": self.force,
            "counts": dict(self.counts),
            "reviews": self.reviews,
        }


def plan(services: Services, run_id: int) -> runs.Run:
    """The resync run to roll back; Refused when it is no finished resync."""
    run = runs.get(services.engine, run_id, now=services.clock())
    if run is None:
        raise runs.Refused(f"run_id: there is no run {run_id}")
    if run.kind != runs.RESYNC:
        raise runs.Refused(f"run_id: run {run_id} is a {run.kind}; only a resync's writes can be rolled back")
    if run.running:
        raise runs.Refused(f"run_id: run {run_id} is {run.shown_state}; roll it back once it has ended")
    busy = runs.active(services.engine, runs.RESYNC, run.source, run.account)
    if busy is not None:
        raise runs.Refused(
            f"run_id: resync run {busy} of {run.source} {run.account} is queued or running; roll back once it has ended"
        )
    return run


def rollback(
    services: Services,
    run_id: int,
    *,
    by: int | None = None,
    dry_run: bool = False,
    force: bool = False,
    progress: Callable[[RollbackReport], None] | None = None,
) -> RollbackReport:
    """Put back what resync run `run_id` wrote; `by` is the rollback's own run, kept on each entry."""
    target = next((t for t in services.targets if isinstance(t, CommercetoolsTarget)), None)
    if target is None:
        raise ConfigError("commercetools is not configured: set CTP_PROJECT_KEY, CTP_CLIENT_ID and CTP_CLIENT_SECRET")
    report = RollbackReport(run_id=run_id, dry_run=dry_run, force=force)
    for entry in journal.entries(services.engine, run_id):
        line: dict[str, Any] = {
            "key": entry.target_key,
            "review": entry.source_review_id,
            "run_did": entry.change,
        }
        if entry.rolled_back_at is not None:
            line |= {"action": "already", "reason": f"rolled back already (run {entry.rolled_back_by})"}
        else:
            try:
                line |= _undo(services, target, entry, by=by, dry_run=dry_run, force=force)
            except ConfigError:
                raise  # wrong credentials: every other review would fail the same way
            except TargetError as exc:
                line |= {"action": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        report.counts[line["action"]] += 1
        report.reviews.append(line)
        if progress is not None:
            progress(report)
    return report


def _undo(
    services: Services,
    target: CommercetoolsTarget,
    entry: journal.Entry,
    *,
    by: int | None,
    dry_run: bool,
    force: bool,
) -> dict[str, Any]:
    """Put one review back; what was done, as a line of the report."""
    for _ in range(_CONFLICT_RETRIES):
        current = target.get(entry.target_key)
        now = _shot(current)
        if now == _shot(entry.before):
            line: dict[str, Any] = {"action": "in_line", "reason": "already as it was before the run"}
            if not dry_run:
                _settle(services, entry, current, by=by)
            return line
        if now != entry.after and not force:
            return {"action": "skipped", "reason": "changed after this run by a later write (--force puts it back)"}
        action = _action(entry.before, current)
        if dry_run:
            return {"action": _WOULD[action]}
        done = _write(target, entry.before, current)
        if done is False:
            continue  # a version conflict: read again
        line = {"action": action}
        if action == "recreated" and isinstance(done, Mapping) and entry.before is not None:
            line |= {"old_id": entry.before.get("id"), "new_id": done.get("id"), "reason": NEW_ID_NOTE}
        _settle(services, entry, done if isinstance(done, Mapping) else None, by=by)
        return line
    raise RetryableTargetError(
        f"review {entry.target_key} kept changing under us ({_CONFLICT_RETRIES} conflicts)", status=409
    )


def _action(before: Mapping[str, Any] | None, current: Mapping[str, Any] | None) -> str:
    if before is None:
        return "deleted"
    return "recreated" if current is None else "restored"


def _write(
    target: CommercetoolsTarget, before: Mapping[str, Any] | None, current: Mapping[str, Any] | None
) -> Mapping[str, Any] | bool:
    """The one write that puts the review back: the review as it is now (True: deleted), or False on
    a conflict (read again)."""
    if before is None:
        assert current is not None  # _undo returns early when both are gone
        return target.remove(current)
    if current is None:
        return target.recreate(before) or False
    return target.restore(current, before) or False


def _settle(services: Services, entry: journal.Entry, review: Mapping[str, Any] | None, *, by: int | None) -> None:
    """The ledger as it was before the run, pointing at the review as it is now; the entry marked."""
    ref = TargetRef(key=review["key"], id=review["id"], version=review["version"]) if review is not None else None
    ledger.put_back(
        services.engine,
        source=entry.source,
        account=entry.account,
        review_id=entry.source_review_id,
        target=entry.target,
        row=entry.ledger_before,
        ref=ref,
    )
    journal.mark_rolled_back(services.engine, entry.id, by=by, now=services.clock())


def _shot(review: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return snapshot(review) if review is not None else None
