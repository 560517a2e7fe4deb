"""The link table (app/core/links.py) on SQLite and PostgreSQL: a Trustoo review and a Wix review with
one identity show as one commercetools review, the first linked one's; two reviews of one shop never
do; two workers linking such a pair at the same moment agree; and the table keeps each review as its
source told it, without the author's e-mail."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from app.core import links
from app.core.db import transaction
from app.core.identity import identity_of
from app.core.models import ReviewLink
from connectors.base import Media, Reply, Review
from connectors.commercetools_mapping import review_key

TARGET = "commercetools"
MUG = "0b8f6a52-6c1e-4a8e-9a3d-2f1c7e5d9b40"  # the commercetools product both shops sell
SHOP = "GfKu22TCaj4gULtrA3/OgA=="
INSTANCE = "6f3c2a1e-8b7d-4e5f-9a0b-1c2d3e4f5a6b"
AT = datetime(2026, 11, 20, 9, 15, 2, tzinfo=UTC)


def trustoo(source_id: str = "880000001", **fields) -> Review:
    review = Review(
        source="trustoo",
        account=SHOP,
        source_id=source_id,
        product_id="7982301249581",
        rating=5,
        title="Lovely mug",
        body="Great mug, keeps coffee hot!",
        author_name="Dana Smith",
        author_email="dana@example.com",
        created_at=AT,
    )
    return dataclasses.replace(review, **fields)


def wix(source_id: str = "c7e4b1a0-2d3f-4e5a-8b9c-0d1e2f3a4b5c", **fields) -> Review:
    review = Review(
        source="wix",
        account=INSTANCE,
        source_id=source_id,
        product_id="a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        rating=5,
        body="Great mug, keeps coffee hot",
        author_name="dana  smith",
        created_at=AT,
    )
    return dataclasses.replace(review, **fields)


def own_key(review: Review) -> str:
    return review_key(review.source, review.account, review.source_id)


def content_identity(review: Review) -> str:
    identity = identity_of("content", review, product=MUG)
    assert identity is not None
    return identity


def attach(engine, clock, review: Review, identity: str | None = None) -> str:
    return links.attach(
        engine,
        target=TARGET,
        review=review,
        mode="content",
        identity=identity if identity is not None else content_identity(review),
        own_key=own_key(review),
        now=clock(),
    )


def link_of(engine, review: Review) -> links.Link:
    link = links.load(engine, TARGET, review.source, review.account, review.source_id)
    assert link is not None
    return link


# --- what a link keeps -----------------------------------------------------------------------


def test_a_linked_trustoo_review_reads_back_as_told_without_the_authors_email(engine, clock):
    paris = timezone(timedelta(hours=1))
    told = trustoo(
        title="Tasse géniale ☕",
        body="Garde le café chaud des heures — parfait pour l'hiver.\nZoë recommande 😍",
        author_name="Zoë Ørsted",
        author_email="zoe.orsted@example.com",
        author_country="FR",
        locale="fr-FR",
        product_sku="MUG-350-BLUE",
        product_handle="mug-350-bleu",
        verified=True,
        media=(
            Media(url="https://img.trustoo.io/r/1.jpg", thumbnail_url="https://img.trustoo.io/r/1_s.jpg"),
            Media(url="https://video.trustoo.io/r/2.mp4", kind="video", hidden=True),
        ),
        reply=Reply(text="Merci Zoë !", replied_at=datetime(2026, 11, 21, 8, 0, tzinfo=paris)),
        created_at=datetime(2026, 11, 20, 10, 15, 2, 123456, tzinfo=paris),
        updated_at=datetime(2026, 11, 22, 18, 30, tzinfo=UTC),
    )
    attach(engine, clock, told)

    kept = link_of(engine, told).review
    assert kept == dataclasses.replace(told, author_email=None)
    assert kept is not None and kept.created_at is not None and kept.created_at.utcoffset() == timedelta(hours=1)
    with transaction(engine) as session:
        [stored] = session.execute(select(ReviewLink.review)).scalars().all()
    assert stored is not None and "zoe.orsted@example.com" not in stored
    assert "zoe.orsted@example.com" not in links.dump(told)


# --- who joins whom --------------------------------------------------------------------------


def test_a_wix_review_with_a_linked_trustoo_reviews_identity_shows_as_the_trustoo_one(engine, clock):
    at_trustoo, at_wix = trustoo(), wix()
    assert content_identity(at_trustoo) == content_identity(at_wix)

    assert attach(engine, clock, at_trustoo) == own_key(at_trustoo)
    assert attach(engine, clock, at_wix) == own_key(at_trustoo)
    assert link_of(engine, at_wix).target_key == own_key(at_trustoo)


def test_a_second_review_of_the_same_trustoo_shop_with_that_identity_stays_on_its_own_key(engine, clock):
    first, at_wix, second = trustoo("880000001"), wix(), trustoo("880000002")
    attach(engine, clock, first)
    attach(engine, clock, at_wix)

    assert attach(engine, clock, second) == own_key(second)
    members, _ = links.group(engine, TARGET, own_key(first))
    assert [m.source_review_id for m in members] == ["880000001", at_wix.source_id]


def test_a_wix_review_without_identity_stays_on_its_own_key_beside_its_linked_trustoo_twin(engine, clock):
    at_trustoo, at_wix = trustoo(), wix(author_name=None)
    attach(engine, clock, at_trustoo)
    key = links.attach(
        engine, target=TARGET, review=at_wix, mode="content", identity=None, own_key=own_key(at_wix), now=clock()
    )
    assert key == own_key(at_wix)


def attach_at_once(engine, clock, reviews: tuple[Review, ...], identity: str) -> dict[str, str]:
    """Each review attached on a thread of its own, all released together: the key each was told."""
    start = threading.Barrier(len(reviews))
    keys: dict[str, str] = {}
    failures: list[BaseException] = []

    def link(review: Review) -> None:
        try:
            start.wait(timeout=10)
            keys[review.source] = attach(engine, clock, review, identity)
        except BaseException as exc:  # re-raised below, on the test's own thread
            failures.append(exc)

    threads = [threading.Thread(target=link, args=(review,)) for review in reviews]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return keys


def test_trustoo_and_wix_linked_at_the_same_moment_both_show_as_the_earlier_rows_review(engine, clock):
    # On PostgreSQL a row's id is drawn before its insert commits, so the row with the lower id can be
    # the one committed last. The race goes either way, so it is run again with fresh identities.
    for n in range(20):
        text = f"Mug no. {n} keeps coffee hot"  # a fresh identity each round
        pair = (trustoo(f"88000{n:04d}", body=text), wix(f"wix-{n}", body=text))
        keys = attach_at_once(engine, clock, pair, content_identity(pair[0]))

        earlier = min((link_of(engine, review) for review in pair), key=lambda row: row.id)
        expected = own_key(pair[0] if earlier.source == "trustoo" else pair[1])
        assert keys == {"trustoo": expected, "wix": expected}, f"round {n}"
        assert {link_of(engine, review).target_key for review in pair} == {expected}, f"round {n}"


# --- what the merge reads --------------------------------------------------------------------


def test_group_lists_the_reviews_a_commercetools_review_shows_earliest_link_first(engine, clock):
    at_wix, at_trustoo = wix(), trustoo()
    attach(engine, clock, at_wix)
    clock.advance(1)
    attach(engine, clock, at_trustoo)

    members, _ = links.group(engine, TARGET, own_key(at_wix))
    assert [(m.source, m.account, m.source_review_id) for m in members] == [
        ("wix", INSTANCE, at_wix.source_id),
        ("trustoo", SHOP, at_trustoo.source_id),
    ]
    assert [m.review for m in members] == [at_wix, dataclasses.replace(at_trustoo, author_email=None)]


def test_tell_of_an_edit_at_wix_changes_the_groups_stamp(engine, clock):
    at_trustoo, at_wix = trustoo(), wix()
    attach(engine, clock, at_trustoo)
    attach(engine, clock, at_wix)
    key = own_key(at_trustoo)
    before = links.stamp(engine, TARGET, key)

    clock.advance(60)
    edited = dataclasses.replace(at_wix, rating=4, body="Great mug, but the handle chipped")
    links.tell(engine, link_of(engine, at_wix).id, edited, clock())

    members, after = links.group(engine, TARGET, key)
    assert after != before
    assert members[1].review == edited


def test_tell_of_a_delete_at_wix_changes_the_groups_stamp_and_keeps_the_member_without_review(engine, clock):
    at_trustoo, at_wix = trustoo(), wix()
    attach(engine, clock, at_trustoo)
    attach(engine, clock, at_wix)
    key = own_key(at_trustoo)
    before = links.stamp(engine, TARGET, key)

    links.tell(engine, link_of(engine, at_wix).id, None, clock())

    members, after = links.group(engine, TARGET, key)
    assert after != before
    assert [(m.source, m.review is None) for m in members] == [("trustoo", False), ("wix", True)]
