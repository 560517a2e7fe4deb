"""The path of one event, as docs/design.md draws it:

    parse → canonical Review → route to targets → ledger check → target call → ledger update

A worker takes events in batches (`Batch`): their ledger rows are read at once and their outcomes
committed at once. `Batch` is the one place that turns an error into a queue outcome: a
PayloadError quarantines, a RetryableTargetError retries after backoff (a RateLimited one, which
sent nothing, when its turn comes and without using up an attempt), a ProductNotFound waits for a
product mapping, a FixAndReplayError waits dead for a person, a ConfigError retries slowly while
the operator fixes the variable it names. No database transaction stays open across a platform
call; the events' leases guard them meanwhile.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from app.core import accounts, ledger, merging, queue, review_requests
from app.core.db import transaction
from app.core.journal import Journal, witnessed_delete, witnessed_upsert
from app.core.ledger import OUTCOMES, Decision, Outcome
from app.core.metrics import Metrics
from app.core.models import EventStatus
from app.core.queue import ClaimedEvent
from app.core.services import Services
from connectors.base import (
    ConfigError,
    Event,
    EventKind,
    FixAndReplayError,
    PayloadError,
    ProductNotFound,
    RateLimited,
    RetryableTargetError,
    Review,
    ReviewTarget,
    TargetError,
    TargetRef,
    WebhookSource,
)
from connectors.commercetools import Witness

__all__ = ["Batch", "handle", "process"]

log = logging.getLogger(__name__)

#: Events `reconcile --fix` queues: the ledger may agree with the source while the target drifted.
RECONCILE_TOPIC = "reconcile"


#: An event routed to several targets ends with the first of its targets' outcomes in this order.
_SUMMARY_ORDER = (
    Outcome.CREATED,
    Outcome.UPDATED,
    Outcome.DELETED,
    Outcome.UNCHANGED,
    Outcome.TOMBSTONED,
    Outcome.STALE,
)


def handle(claimed: ClaimedEvent, services: Services) -> str:
    """Process one claimed event and settle it in the queue; return the status it ends in."""
    batch = Batch(services, [claimed])
    status = batch.handle(claimed)
    batch.commit()
    return status


class Batch:
    """A worker's batch of claimed events: their ledger rows read in one query, the events processed
    one by one, then settled together — each event's new status and attempt, and the ledger rows its
    target calls produced, in one transaction.

    Until that commit the events stay `processing` under this worker's lease. A worker that dies
    before it leaves them to be claimed again, and a replayed target call is no second write: the
    targets upsert by deterministic key, and a write they cannot make idempotent is reserved in the
    ledger (committed at once) before it is made.
    """

    def __init__(self, services: Services, claimed: Sequence[ClaimedEvent]):
        self.services = services
        reviews = [
            (c.source, c.account, c.subject_id)
            for c in claimed
            if c.kind in (EventKind.UPSERT.value, EventKind.DELETE.value)
        ]
        self._states = ledger.load_for(services.engine, reviews, [target.name for target in services.targets])
        self._entries: list[dict] = []
        self._settlements: list[queue.Settlement] = []

    def handle(self, claimed: ClaimedEvent) -> str:
        """Process one event of the batch; its settlement waits for `commit`."""
        try:
            settlement = self._outcome(claimed)
        except Exception as exc:  # the outer loop: anything unforeseen is retried, never a crash
            log.exception("event %s failed unexpectedly", claimed.event_id, extra={"event_id": claimed.event_id})
            settlement = retry_or_give_up(claimed, self.services, f"{type(exc).__name__}: {exc}")
        self._settlements.append(settlement)
        _log(settlement)
        return settlement.status.value

    def commit(self) -> int:
        """Store the batch's ledger rows and settle its events; return how many were still ours."""
        with transaction(self.services.engine) as session:
            ledger.write(session, self._entries)
            return queue.settle(session, self._settlements)

    def state(self, event: Event, target: ReviewTarget) -> ledger.LedgerState | None:
        return self._states.get((event.source, event.account, event.subject_id, target.name))

    def record(self, **what) -> None:
        self._entries.append(ledger.entry(**what))

    def _outcome(self, claimed: ClaimedEvent) -> queue.Settlement:
        services, now = self.services, self.services.clock
        try:
            outcome = process(claimed, services, batch=self)
        except PayloadError as exc:
            return queue.quarantined(claimed, exc.reason, now=now())
        except review_requests.Deferred as exc:
            return queue.deferred(claimed, exc.until, "delayed", now=now())
        except ProductNotFound as exc:
            return queue.waiting(claimed, exc.source_product_id, str(exc), now=now())
        except FixAndReplayError as exc:
            return queue.dead(claimed, _describe(exc), now=now())
        except ConfigError as exc:
            log.error(
                "configuration error, event %s will retry: %s",
                claimed.event_id,
                exc,
                extra={"event_id": claimed.event_id},
            )
            return retry_or_give_up(claimed, services, _describe(exc), retry_after_s=services.retry_cap_s)
        except RateLimited as exc:
            until = now() + timedelta(seconds=exc.retry_after or 0.0)
            return queue.deferred(claimed, until, "rate_limited", now=now())
        except RetryableTargetError as exc:
            return retry_or_give_up(claimed, services, _describe(exc), retry_after_s=exc.retry_after)
        return queue.done(claimed, outcome, now=now())


def retry_or_give_up(
    claimed: ClaimedEvent, services: Services, error: str, *, retry_after_s: float | None = None
) -> queue.Settlement:
    """The next attempt after a backoff, or a dead letter once the event's attempts are used up."""
    now = services.clock()
    if claimed.attempts >= services.max_attempts:
        return queue.dead(claimed, f"gave up after {claimed.attempts} attempts: {error}", now=now)
    delay = queue.backoff_delay(
        claimed.attempts,
        base_s=services.retry_base_s,
        cap_s=services.retry_cap_s,
        retry_after_s=retry_after_s,
        rng=services.rng,
    )
    return queue.retrying(claimed, error, now=now, delay_s=delay)


def process(claimed: ClaimedEvent, services: Services, *, batch: Batch | None = None) -> Outcome:
    """Apply one event to every target it is routed to; return one outcome. With a `batch`,
    the ledger is read from it and what was done is recorded into it."""
    event = to_event(claimed)
    if event.kind is EventKind.ORDER:
        return _order(event, services)
    if event.kind is EventKind.ACCOUNT:
        return _account(event, services)
    source = _source(event, services.sources)
    if _is_echo(event, source, services):
        return Outcome.ECHO
    review = source.resolve(event)
    if review is not None and review.notes:
        log.warning("event %s: %s", event.event_id, "; ".join(review.notes), extra={"event_id": event.event_id})
    new_hash = ledger.content_hash(review) if review is not None else None
    outcomes = [
        sync(
            event,
            review,
            target,
            services,
            read=(batch.state(event, target), new_hash) if batch else None,
            record=batch.record if batch else None,
        )
        for target in route(event, services.targets, services.routes)
    ]
    return next((outcome for outcome in _SUMMARY_ORDER if outcome in outcomes), Outcome.ROUTED_NOWHERE)


def _order(event: Event, services: Services) -> Outcome:
    if services.review_requests is None:
        raise ConfigError("review requests need WIX_APP_ID and WIX_APP_SECRET")
    return review_requests.handle_order(
        event,
        engine=services.engine,
        requester=services.review_requests,
        body_for=services.review_requests.body_for,
        delay_s=services.review_request_delay_s,
        clock=services.clock,
    )


def _account(event: Event, services: Services) -> Outcome:
    installed = event.payload.get("action") == "installed"
    accounts.set_enabled(
        services.engine, source=event.source, account=event.account, enabled=installed, now=services.clock()
    )
    return Outcome.ACCOUNT_INSTALLED if installed else Outcome.ACCOUNT_REMOVED


def to_event(claimed: ClaimedEvent) -> Event:
    return Event(
        source=claimed.source,
        account=claimed.account,
        event_id=claimed.event_id,
        kind=EventKind(claimed.kind),
        subject_id=claimed.subject_id,
        topic=claimed.topic,
        occurred_at=claimed.occurred_at,
        sequence=claimed.sequence,
        payload=json.loads(claimed.payload),
    )


def _is_echo(event: Event, source: WebhookSource, services: Services) -> bool:
    """Only a platform we also write into can send our own reviews back."""
    if not any(target.name == event.source for target in services.targets):
        return False
    return ledger.is_echo(
        services.engine, platform=event.source, review_id=event.subject_id, key=source.echo_key(event)
    )


#: How loud each ending is: a person acts on dead letters and quarantine, and watches retries.
_LOG_LEVELS = {
    EventStatus.DEAD: logging.ERROR,
    EventStatus.RETRY: logging.WARNING,
    EventStatus.QUARANTINED: logging.WARNING,
}


def _log(settlement: queue.Settlement) -> None:
    """One line per attempt, with the error that caused a retry, dead letter or quarantine."""
    event = settlement.event
    level = _LOG_LEVELS.get(settlement.status, logging.INFO)
    said = f"event {event.event_id} {settlement.status.value}"
    if settlement.status in (EventStatus.RETRY, EventStatus.DEAD):
        said += f" after attempt {event.attempts}"
    if settlement.outcome:
        said += f" ({settlement.outcome})"
    if settlement.error:
        said += f": {settlement.error}"
    log.log(level, "%s", said, extra={"event_id": event.event_id})


def _source(event: Event, sources: Mapping[str, WebhookSource]) -> WebhookSource:
    source = sources.get(event.source)
    if source is None:
        raise ConfigError(f"no connector configured for source {event.source!r}")
    return source


def route(
    event: Event, targets: Sequence[ReviewTarget], routes: Mapping[str, Sequence[str]] | None = None
) -> list[ReviewTarget]:
    """The targets ROUTES names for the source; never the platform the review came from."""
    wanted = routes.get(event.source, ()) if routes is not None else None
    return [target for target in targets if target.name != event.source and (wanted is None or target.name in wanted)]


def sync(
    event: Event,
    review: Review | None,
    target: ReviewTarget,
    services: Services,
    *,
    read: tuple[ledger.LedgerState | None, str | None] | None = None,
    record: Callable[..., None] | None = None,
    journal: Journal | None = None,
) -> Outcome:
    """Ledger check → target call → ledger update, for one target. `read` is the ledger state and
    content hash when the caller has them already (a resync reads a page at once); `record` keeps
    the ledger update for the caller to write (a worker's batch), instead of writing it at once;
    `journal` keeps each commercetools write with the state before it (a resync run's)."""
    if read is None:
        read = (
            ledger.load(services.engine, event.source, event.account, event.subject_id, target.name),
            ledger.content_hash(review) if review is not None else None,
        )
    state, new_hash = read
    kind = EventKind.DELETE if review is None else EventKind.UPSERT  # what the source says now
    decision = ledger.decide(state, kind, event.occurred_at, event.sequence, new_hash)
    if decision is Decision.UNCHANGED and event.topic == RECONCILE_TOPIC and target.idempotent:
        decision = Decision.UPSERT  # reconcile found the target drifted: let the target compare and mend
    if decision is Decision.STALE:
        return Outcome.STALE
    try:
        witness = journal.witness(event, target) if journal is not None else None
        merged = (
            merging.carry_out(decision, event, review, target, state, services, witness)
            if merging.applies(services, target)
            else None
        )
        outcome, ref = merged or _carry_out(decision, event, review, target, state, services, witness)
    except TargetError as exc:
        ledger.note_error(
            services.engine,
            source=event.source,
            account=event.account,
            review_id=event.subject_id,
            target=target.name,
            error=_describe(exc),
            now=services.clock(),
        )
        raise
    (record or functools.partial(ledger.record, services.engine))(
        source=event.source,
        account=event.account,
        review_id=event.subject_id,
        target=target.name,
        action=outcome,
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        sequence=event.sequence,
        now=services.clock(),
        ref=ref,
        new_hash=new_hash,
        deleted=decision in (Decision.DELETE, Decision.TOMBSTONE),
        note="; ".join(review.notes) if review is not None and review.notes else None,
    )
    return outcome


def _carry_out(
    decision: Decision,
    event: Event,
    review: Review | None,
    target: ReviewTarget,
    state: ledger.LedgerState | None,
    services: Services,
    witness: Witness | None = None,
) -> tuple[Outcome, TargetRef | None]:
    """The target call a decision needs, if any: what it came to, and the target's reference after it.
    A `witness` (only ever for commercetools: Journal.witness) is told before each write."""
    ref = state.ref if state else None
    if decision is Decision.UPSERT:
        assert review is not None  # decide() upserts only what the source still has
        known = ref if state and state.deleted_at is None else None
        in_doubt = bool(state and state.in_doubt)
        if not target.idempotent:
            ledger.reserve(
                services.engine,
                source=event.source,
                account=event.account,
                review_id=event.subject_id,
                target=target.name,
                key=target.key_for(review),
                event_id=event.event_id,
                now=services.clock(),
            )
        ref = _call(
            services.metrics,
            target,
            "upsert",
            lambda: witnessed_upsert(target, review, known=known, in_doubt=in_doubt, witness=witness),
        )
        return (Outcome.UPDATED if known is not None and known.id else Outcome.CREATED), ref
    if decision is Decision.DELETE:
        assert ref is not None  # decide() deletes only a copy it knows
        _call(services.metrics, target, "delete", lambda: witnessed_delete(target, ref, witness=witness))
    outcome = OUTCOMES[decision].done
    assert outcome is not None  # only an upsert's outcome comes from the target
    return outcome, ref


def _call(metrics: Metrics, target: ReviewTarget, operation: str, call):
    try:
        result = call()
    except TargetError as exc:
        metrics.target_calls.labels(target.name, operation, type(exc).__name__).inc()
        raise
    metrics.target_calls.labels(target.name, operation, "ok").inc()
    return result


def _describe(exc: TargetError) -> str:
    status = f" (HTTP {exc.status})" if exc.status else ""
    return f"{type(exc).__name__}{status}: {exc}"
