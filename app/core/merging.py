"""One commercetools review for a review several sources have (CROSS_SOURCE_IDENTITY, SOURCE_PRECEDENCE).

The pipeline's `sync` hands a commercetools write here when merging is on:

    source review ──link (identity)──▶ its group's key ──▶ the group's visible version ──▶ upsert / delete
                                                   └─ a copy it had under its own key ──▶ deleted (merged)

The target review shows the version of the first source in SOURCE_PRECEDENCE that still has the
review published (else the first that has it at all, hidden), lists every source that has it in
`linkedSources`, and goes when every source deleted it. Nothing is written when nothing visible
changes: the target compares before it writes. Two workers writing one group at once both finish
on what the group holds last: a worker whose group changed while it wrote writes again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from app.core import links
from app.core.identity import Member, identity_of, visible
from app.core.ledger import Decision, LedgerState, Outcome
from app.core.services import Services
from connectors.base import AuthorEmails, Event, Review, ReviewTarget, TargetRef
from connectors.commercetools import CommercetoolsTarget, Witness

__all__ = ["applies", "carry_out", "dry_run", "precedence", "shown_as"]

#: Writes of one group in a row before the worker leaves the rest to whoever changed it last.
_ROUNDS = 3


def applies(services: Services, target: ReviewTarget) -> bool:
    """Does merging decide what this target shows? Only commercetools reviews are merged."""
    return services.settings.cross_source_identity != "off" and isinstance(target, CommercetoolsTarget)


def precedence(services: Services) -> Sequence[str] | None:
    """SOURCE_PRECEDENCE while merging is on, else None: what reconcile compares merged reviews by."""
    return services.settings.source_precedence if services.settings.cross_source_identity != "off" else None


def carry_out(
    decision: Decision,
    event: Event,
    review: Review | None,
    target: ReviewTarget,
    state: LedgerState | None,
    services: Services,
    witness: Witness | None = None,
) -> tuple[Outcome, TargetRef | None] | None:
    """Apply the source's news to the review's group; what it came to and the group's reference.
    None when merging has nothing to say (a review deleted before it was ever linked)."""
    assert isinstance(target, CommercetoolsTarget)  # applies() said so
    engine, mode = services.engine, services.settings.cross_source_identity
    link = links.load(engine, target.name, event.source, event.account, event.subject_id)
    if link is None and review is None:
        return None
    own = state.live_key if state else None
    if decision is Decision.UNCHANGED and link is not None and link.mode == mode:
        return Outcome.UNCHANGED, state.ref if state else None
    if review is not None and (link is None or link.mode != mode):
        key = links.attach(
            engine,
            target=target.name,
            review=review,
            mode=mode,
            identity=_identity(services, target, review),
            own_key=link.target_key if link is not None else own or target.key_for(review),
            now=services.clock(),
        )
    else:
        assert link is not None
        links.tell(engine, link.id, review, services.clock())
        key = link.target_key
    if decision is Decision.UNCHANGED and own == key:
        return Outcome.UNCHANGED, state.ref if state else None  # linked on its own: nothing shows differently
    writes = _Writes(witness)
    ref = _show(services, target, key, writes)
    joined = review is not None and key != (own or target.key_for(review))
    if own is not None and own != key:
        target.discard(own, witness=writes)  # its sources are listed on the review it joined
    if joined and (link is None or link.target_key != key):
        return Outcome.MERGED, ref
    return writes.outcome(deleted=ref is None), ref or (state.ref if state else None)


def _show(services: Services, target: CommercetoolsTarget, key: str, writes: _Writes) -> TargetRef | None:
    """Make the target review show its group as the group stands; None when the group is all deleted."""
    ref: TargetRef | None = None
    for _ in range(_ROUNDS):
        members, stamp = links.group(services.engine, target.name, key)
        shown = visible(members, services.settings.source_precedence)
        if shown is None or shown.review is None:
            target.delete(TargetRef(key=key), witness=writes)
            ref = None
        else:
            ref = target.upsert(shown.review, key=key, linked=_provenance(members), witness=writes)
        if links.stamp(services.engine, target.name, key) == stamp:
            break
    return ref


def shown_as(
    engine: Engine, target: str, key: str, precedence: Sequence[str]
) -> tuple[Review | None, list[dict[str, str]]]:
    """What the target review under `key` shows (the visible version, None when all deleted) and the
    sources it lists: what reconcile compares it with."""
    members, _ = links.group(engine, target, key)
    shown = visible(members, precedence)
    return (shown.review if shown is not None else None), _provenance(members)


def dry_run(services: Services, target: CommercetoolsTarget, review: Review) -> str | None:
    """The key of another source's target review that this review would merge into, or None."""
    mode = services.settings.cross_source_identity
    link = links.load(services.engine, target.name, review.source, review.account, review.source_id)
    if link is not None and link.mode == mode:
        return None
    identity = _identity(services, target, review)
    if identity is None:
        return None
    return links.first_other(services.engine, target.name, review, identity)


def _identity(services: Services, target: CommercetoolsTarget, review: Review) -> str | None:
    mode = services.settings.cross_source_identity
    product = target.desired(review).target_id  # ProductNotFound: the review waits for its product
    email = None
    if mode == "customer":
        source = services.sources.get(review.source)
        email = source.author_email(review) if isinstance(source, AuthorEmails) else review.author_email
    return identity_of(mode, review, product=product, email=email)


def _provenance(members: list[Member]) -> list[dict[str, str]]:
    return [member.provenance for member in members if member.review is not None]


@dataclass
class _Writes:
    """Passes each write on to the run's witness, and remembers what was written."""

    witness: Witness | None
    created: bool = False
    written: list[str] = field(default_factory=list)

    def __call__(self, key: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> None:
        self.created = self.created or before is None
        self.written.append(key)
        if self.witness is not None:
            self.witness(key, before, after)

    def outcome(self, *, deleted: bool) -> Outcome:
        if deleted:
            return Outcome.DELETED if self.written else Outcome.TOMBSTONED
        if not self.written:
            return Outcome.UNCHANGED
        return Outcome.CREATED if self.created else Outcome.UPDATED
