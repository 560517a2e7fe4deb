"""The link table: each source review linked to the one target review it shows as (CROSS_SOURCE_IDENTITY).

Reviews of different sources with the same identity (app/core/identity.py) share a `target_key`, the
key of the first of them linked: the target review it already had, so turning merging on for an
existing deployment keeps that review and only the later ones' copies go. Workers that link two
such reviews at the same moment agree: each stores its own row and joins the group of the earliest
row with its identity in one transaction, and those transactions take turns per identity.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, select, text, update

from app.core.db import insert_for, transaction
from app.core.identity import Member
from app.core.models import ReviewLink, table
from connectors.base import Media, Reply, Review

__all__ = ["Link", "attach", "dump", "first_other", "group", "linked_of", "load", "stamp", "tell"]

_link = table(ReviewLink)


@dataclass(frozen=True)
class Link:
    id: int
    source: str
    account: str
    source_review_id: str
    target_key: str
    mode: str
    identity: str | None
    review: Review | None


def load(engine: Engine, target: str, source: str, account: str, review_id: str) -> Link | None:
    with transaction(engine) as session:
        row = session.execute(select(_link).where(_one(target, source, account, review_id))).mappings().first()
    return _as_link(row) if row is not None else None


def linked_of(engine: Engine, target: str, source: str, account: str) -> dict[str, Link]:
    """Every linked review of a source account, by source review id (reconcile reads them at once)."""
    with transaction(engine) as session:
        rows = session.execute(
            select(_link).where(_link.c.target == target, _link.c.source == source, _link.c.account == account)
        ).mappings()
        return {row["source_review_id"]: _as_link(row) for row in rows}


def attach(
    engine: Engine,
    *,
    target: str,
    review: Review,
    mode: str,
    identity: str | None,
    own_key: str,
    now: datetime,
) -> str:
    """Link the review (first time, or again under another mode) and return the key of the target
    review it shows as: the group of the earliest review with its identity that has no other review
    of its own source account, else its own."""
    values = {
        "mode": mode,
        "identity": identity,
        "review": dump(review),
        "updated_at": now,
    }
    statement = insert_for(engine, _link).values(
        target=target,
        source=review.source,
        account=review.account,
        source_review_id=review.source_id,
        target_key=own_key,
        linked_at=now,
        revision=0,
        **values,
    )
    with transaction(engine) as session:
        if identity is not None:
            _take_turns(engine, session, target, identity)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["target", "source", "account", "source_review_id"],
                set_=values | {"revision": _link.c.revision + 1},
            )
        )
        row = session.execute(select(_link).where(_one(target, review.source, review.account, review.source_id)))
        mine = _as_link(row.mappings().one())
        if identity is None:
            return mine.target_key
        same = session.execute(
            select(_link).where(_link.c.target == target, _link.c.identity == identity).order_by(_link.c.id)
        ).mappings()
        candidates = [_as_link(row) for row in same]
        key = next((c.target_key for c in candidates if _may_join(session, target, c, mine)), mine.target_key)
        if key != mine.target_key and _alone(session, target, mine):
            session.execute(update(_link).where(_link.c.id == mine.id).values(target_key=key))
            return key
    return mine.target_key


def _take_turns(engine: Engine, session, target: str, identity: str) -> None:
    """Workers linking reviews with one identity take turns until they commit. On PostgreSQL a row's id
    comes from a sequence before its transaction commits: without turns, the worker whose row got the
    lower id could commit last, after the other had looked for the earliest row, seen only its own and
    kept its own key; then each kept its own. SQLite already lets one writer in at a time."""
    if engine.dialect.name != "postgresql":
        return
    lock = int.from_bytes(hashlib.sha256(f"{target}\0{identity}".encode()).digest()[:8], "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": lock})


def first_other(engine: Engine, target: str, review: Review, identity: str) -> str | None:
    """The target review another source's review with this identity shows as, that `review` would
    join if it were linked now (a dry run asks); None when there is none."""
    with transaction(engine) as session:
        rows = session.execute(
            select(_link).where(_link.c.target == target, _link.c.identity == identity).order_by(_link.c.id)
        ).mappings()
        for candidate in [_as_link(row) for row in rows]:
            if (candidate.source, candidate.account) == (review.source, review.account):
                continue
            members = session.execute(
                select(_link.c.source, _link.c.account).where(
                    _link.c.target == target, _link.c.target_key == candidate.target_key
                )
            ).all()
            if not any((m.source, m.account) == (review.source, review.account) for m in members):
                return candidate.target_key
    return None


def _may_join(session, target: str, candidate: Link, mine: Link) -> bool:
    """May `mine` show as the candidate's target review? Not when that review already has another
    review of mine's own source account: one source's two reviews stay two."""
    if candidate.id == mine.id:
        return True
    members = session.execute(
        select(_link.c.id, _link.c.source, _link.c.account).where(
            _link.c.target == target, _link.c.target_key == candidate.target_key
        )
    ).all()
    return not any(m.source == mine.source and m.account == mine.account and m.id != mine.id for m in members)


def _alone(session, target: str, mine: Link) -> bool:
    """Is `mine` the only review its target review shows? A review others already joined stays put."""
    others = session.execute(
        select(_link.c.id).where(_link.c.target == target, _link.c.target_key == mine.target_key, _link.c.id != mine.id)
    ).first()
    return others is None


def tell(engine: Engine, link_id: int, review: Review | None, now: datetime) -> None:
    """Keep the review as its source tells it now (None: deleted there)."""
    with transaction(engine) as session:
        session.execute(
            update(_link)
            .where(_link.c.id == link_id)
            .values(review=dump(review) if review is not None else None, revision=_link.c.revision + 1, updated_at=now)
        )


def group(engine: Engine, target: str, key: str) -> tuple[list[Member], tuple]:
    """The reviews a target review shows, earliest link first, and a stamp that changes with any of them."""
    with transaction(engine) as session:
        rows = session.execute(
            select(_link).where(_link.c.target == target, _link.c.target_key == key).order_by(_link.c.id)
        ).mappings()
        links = [(_as_link(row), row["revision"]) for row in rows]
    members = [Member(link.source, link.account, link.source_review_id, link.review) for link, _ in links]
    return members, tuple((link.id, revision) for link, revision in links)


def stamp(engine: Engine, target: str, key: str) -> tuple:
    """The group's stamp alone, as `group` gives it, without reading and parsing its reviews again."""
    with transaction(engine) as session:
        rows = session.execute(
            select(_link.c.id, _link.c.revision)
            .where(_link.c.target == target, _link.c.target_key == key)
            .order_by(_link.c.id)
        ).all()
    return tuple((row.id, row.revision) for row in rows)


def dump(review: Review) -> str:
    """The review as the link keeps it: everything a target shows, not the author's e-mail."""
    fields = dataclasses.asdict(dataclasses.replace(review, author_email=None, extra={}, notes=()))
    return json.dumps(fields, default=_iso, separators=(",", ":"))


def _load_review(text: str | None) -> Review | None:
    if text is None:
        return None
    fields = json.loads(text)
    for name in ("created_at", "updated_at"):
        fields[name] = datetime.fromisoformat(fields[name]) if fields[name] else None
    reply = fields["reply"]
    if reply is not None:
        replied = reply["replied_at"]
        fields["reply"] = Reply(text=reply["text"], replied_at=datetime.fromisoformat(replied) if replied else None)
    fields["media"] = tuple(Media(**media) for media in fields["media"])
    fields["notes"] = tuple(fields["notes"])
    return Review(**fields)


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _as_link(row) -> Link:
    return Link(
        id=row["id"],
        source=row["source"],
        account=row["account"],
        source_review_id=row["source_review_id"],
        target_key=row["target_key"],
        mode=row["mode"],
        identity=row["identity"],
        review=_load_review(row["review"]),
    )


def _one(target: str, source: str, account: str, review_id: str):
    return and_(
        _link.c.target == target,
        _link.c.source == source,
        _link.c.account == account,
        _link.c.source_review_id == review_id,
    )
