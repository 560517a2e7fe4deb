"""When a Trustoo review and a Wix review are one review (app/core/identity.py), as tables: the forms
of one text that the content rule takes as equal, the near-misses it keeps apart, the customer rule,
and whose version the merged review shows (`visible`)."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import NamedTuple

import pytest

from app.core.identity import Member, identity_of, visible
from connectors.base import Review

MUG = "0b8f6a52-6c1e-4a8e-9a3d-2f1c7e5d9b40"  # the commercetools product both shops sell
TEAPOT = "5d2e9c18-3f4b-4d7a-8c61-9e0a1b2c3d4e"
SHOP = "GfKu22TCaj4gULtrA3/OgA=="
INSTANCE = "6f3c2a1e-8b7d-4e5f-9a0b-1c2d3e4f5a6b"
AT = datetime(2026, 11, 20, 9, 15, 2, tzinfo=UTC)


def trustoo(**fields) -> Review:
    """Dana's review as Trustoo has it: its own ids, the Shopify product id."""
    review = Review(
        source="trustoo",
        account=SHOP,
        source_id="880000001",
        product_id="7982301249581",
        rating=5,
        title="Lovely mug",
        body="Great mug, keeps coffee hot!",
        author_name="Dana Smith",
        author_email="dana@example.com",
        created_at=AT,
    )
    return dataclasses.replace(review, **fields)


def wix(**fields) -> Review:
    """The same review as Wix has it: other ids, the Wix product id, no title."""
    review = Review(
        source="wix",
        account=INSTANCE,
        source_id="c7e4b1a0-2d3f-4e5a-8b9c-0d1e2f3a4b5c",
        product_id="a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        rating=5,
        body="Great mug, keeps coffee hot!",
        author_name="Dana Smith",
        created_at=AT,
    )
    return dataclasses.replace(review, **fields)


class Side(NamedTuple):
    """One source's review, the commercetools product it targets and its author's e-mail."""

    review: Review
    product: str = MUG
    email: str | None = None


def _identity(mode: str, side: Side) -> str | None:
    return identity_of(mode, side.review, product=side.product, email=side.email)


# --- content: one review typed a little differently -----------------------------------------


@pytest.mark.parametrize(
    "at_trustoo, at_wix",
    [
        pytest.param(
            trustoo(body="Great Mug, keeps coffee hot"), wix(body="great mug, keeps coffee hot"), id="text-case"
        ),
        pytest.param(
            trustoo(body="Great mug,  keeps coffee hot.\n\nWould buy again"),
            wix(body="Great mug, keeps coffee hot.\tWould buy again"),
            id="runs-of-spaces-tabs-and-newlines",
        ),
        pytest.param(
            trustoo(body="  Great mug, keeps coffee hot \n"),
            wix(body="Great mug, keeps coffee hot"),
            id="leading-and-trailing-white-space",
        ),
        pytest.param(
            # "Great" in full-width letters, as a Japanese input method types it
            trustoo(body="\uff27\uff52\uff45\uff41\uff54 mug, keeps coffee hot"),
            wix(body="Great mug, keeps coffee hot"),
            id="nfkc-full-width-letters",
        ),
        pytest.param(
            trustoo(body="A perfect ﬁt for my shelf"), wix(body="A perfect fit for my shelf"), id="nfkc-fi-ligature"
        ),
        pytest.param(
            trustoo(body="Like the mugs at my favourite caf\u00e9"),  # é: one code point
            wix(body="Like the mugs at my favourite cafe\u0301"),  # e + combining acute: NFKC composes it
            id="nfkc-composed-and-decomposed-e-acute",
        ),
        pytest.param(
            trustoo(body="Gift for my friend Jürgen, he uses it every day"),
            wix(body="GIFT FOR MY FRIEND JÜRGEN, HE USES IT EVERY DAY"),
            id="text-case-beyond-ascii",
        ),
        pytest.param(trustoo(body="Love it!!!"), wix(body="Love it"), id="trailing-exclamation-marks"),
        pytest.param(trustoo(body="Love it…"), wix(body="Love it"), id="trailing-ellipsis-character"),
        pytest.param(trustoo(body="Great mug."), wix(body="Great mug"), id="trailing-full-stop"),
        pytest.param(trustoo(body="Love it?!"), wix(body="Love it."), id="different-trailing-punctuation"),
        pytest.param(trustoo(body="Love it! !"), wix(body="Love it"), id="trailing-punctuation-between-spaces"),
        pytest.param(trustoo(body="Great mug :)"), wix(body="Great mug!"), id="trailing-punctuation-emoticon"),
        pytest.param(
            trustoo(body="C'est une tasse parfaite !"),
            wix(body="C'est une tasse parfaite"),
            id="french-space-before-trailing-punctuation",
        ),
        pytest.param(trustoo(author_name="Dana Smith"), wix(author_name="dana smith"), id="author-case"),
        pytest.param(trustoo(author_name="Dana  Smith "), wix(author_name="Dana Smith"), id="author-spacing"),
        pytest.param(trustoo(author_name="Jürgen Strauß"), wix(author_name="JÜRGEN STRAUSS"), id="author-case-fold-sz"),
        pytest.param(
            trustoo(title="Lovely mug", product_id="7982301249581"),
            wix(title=None, product_id="a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
            id="title-and-source-product-id-are-no-part-of-it",
        ),
    ],
)
def test_content_rule_takes_one_review_typed_differently_in_trustoo_and_wix_as_the_same(at_trustoo, at_wix):
    assert _identity("content", Side(at_trustoo)) == _identity("content", Side(at_wix)) is not None


@pytest.mark.parametrize(
    "at_trustoo, at_wix",
    [
        pytest.param(Side(trustoo(rating=5)), Side(wix(rating=4)), id="different-rating"),
        pytest.param(Side(trustoo(), MUG), Side(wix(), TEAPOT), id="different-commercetools-product"),
        pytest.param(
            Side(trustoo(body="Great mug, keeps coffee hot")),
            Side(wix(body="Great mug, keeps tea hot")),
            id="one-word-different",
        ),
        pytest.param(
            # Only punctuation at the end is dropped: inside the text a comma can change the meaning.
            Side(trustoo(body="Let's eat, Grandma")),
            Side(wix(body="Let's eat Grandma")),
            id="punctuation-inside-the-text",
        ),
        pytest.param(
            Side(trustoo(body="Great mug. Keeps coffee hot")),
            Side(wix(body="Great mug keeps coffee hot")),
            id="full-stop-between-sentences",
        ),
        pytest.param(
            # An emoji is a symbol (Unicode category So), not punctuation (P*): the rule drops only
            # punctuation, so "😍" is part of the text and the two stay apart. That is the cautious
            # side: a missed merge leaves a duplicate to see, a wrong one hides a customer's review.
            Side(trustoo(body="Love it 😍")),
            Side(wix(body="Love it")),
            id="emoji-at-the-end",
        ),
        pytest.param(
            # Accents are letters: NFKC composes "é" but never strips it to "e".
            Side(trustoo(body="Like the mugs at my favourite café")),
            Side(wix(body="Like the mugs at my favourite cafe")),
            id="accent-against-none",
        ),
        pytest.param(
            Side(trustoo(author_name="Dana Smith")), Side(wix(author_name="Dan Smith")), id="different-author"
        ),
        pytest.param(
            Side(trustoo(author_name="Zoé Martin")),
            Side(wix(author_name="Zoe Martin")),
            id="author-accent-against-none",
        ),
    ],
)
def test_content_rule_keeps_near_misses_in_trustoo_and_wix_apart(at_trustoo, at_wix):
    ours, theirs = _identity("content", at_trustoo), _identity("content", at_wix)
    assert ours is not None and theirs is not None
    assert ours != theirs


@pytest.mark.parametrize(
    "review",
    [
        pytest.param(wix(author_name=None), id="author-missing"),
        pytest.param(wix(author_name=""), id="author-empty"),
        pytest.param(wix(author_name=" \t"), id="author-only-white-space"),
        pytest.param(wix(body=None), id="text-missing"),
        pytest.param(wix(body=""), id="text-empty"),
        pytest.param(wix(body="\n  "), id="text-only-white-space"),
        pytest.param(wix(body="!!!"), id="text-only-punctuation"),
    ],
)
def test_content_rule_gives_a_review_without_author_name_or_text_no_identity(review):
    # Two bare "5 stars" on one product are no evidence of one customer: such a review never merges,
    # even with its otherwise identical twin at the other source.
    assert _identity("content", Side(review)) is None
    assert _identity("content", Side(trustoo())) is not None


def test_content_rule_ignores_the_customer_email():
    assert _identity("content", Side(trustoo(), email="dana@example.com")) == _identity(
        "content", Side(wix(), email="someone.else@example.com")
    )


# --- customer: the same e-mail on the same product --------------------------------------------


@pytest.mark.parametrize(
    "at_trustoo, at_wix",
    [
        pytest.param(Side(trustoo(), email="dana@example.com"), Side(wix(), email="dana@example.com"), id="same-email"),
        pytest.param(
            Side(trustoo(), email="Dana.Smith@Example.COM"),
            Side(wix(), email="dana.smith@example.com"),
            id="email-case",
        ),
        pytest.param(
            Side(trustoo(), email="  dana@example.com\n"), Side(wix(), email="dana@example.com"), id="email-spaces"
        ),
        pytest.param(
            # The customer rule looks at nothing else: an edit at one source is still the same review.
            Side(trustoo(rating=5, body="Great mug!", author_name="Dana Smith"), email="dana@example.com"),
            Side(wix(rating=3, body="Chipped after a month", author_name="D. S."), email="dana@example.com"),
            id="different-rating-text-and-author",
        ),
    ],
)
def test_customer_rule_takes_reviews_with_one_email_on_one_product_as_the_same(at_trustoo, at_wix):
    assert _identity("customer", at_trustoo) == _identity("customer", at_wix) is not None


@pytest.mark.parametrize(
    "at_trustoo, at_wix",
    [
        pytest.param(
            Side(trustoo(), email="dana@example.com"), Side(wix(), email="dana.smith@example.com"), id="different-email"
        ),
        pytest.param(
            Side(trustoo(), MUG, "dana@example.com"),
            Side(wix(), TEAPOT, "dana@example.com"),
            id="same-email-different-commercetools-product",
        ),
    ],
)
def test_customer_rule_keeps_reviews_of_different_emails_or_products_apart(at_trustoo, at_wix):
    ours, theirs = _identity("customer", at_trustoo), _identity("customer", at_wix)
    assert ours is not None and theirs is not None
    assert ours != theirs


@pytest.mark.parametrize("email", [None, "", "   "], ids=["none", "empty", "only-spaces"])
def test_customer_rule_gives_a_review_without_email_no_identity(email):
    assert _identity("customer", Side(wix(author_email=None), email=email)) is None


def test_customer_rule_reads_the_email_it_is_given_not_the_reviews_own():
    # merging.py passes the address the source resolves (Wix keeps it on the contact, not the review).
    assert _identity("customer", Side(trustoo(author_email="dana@example.com"), email=None)) is None


# --- off, and what an identity is -------------------------------------------------------------


@pytest.mark.parametrize("side", [Side(trustoo(), email="dana@example.com"), Side(wix())], ids=["trustoo", "wix"])
def test_off_gives_no_review_an_identity(side):
    assert _identity("off", side) is None


@pytest.mark.parametrize("mode", ["content", "customer"])
def test_identity_is_a_sha256_hex_digest_holding_no_text_or_email(mode):
    identity = _identity(mode, Side(trustoo(), email="dana@example.com"))
    assert identity is not None and re.fullmatch(r"[0-9a-f]{64}", identity)
    for part in ("dana", "example.com", "great mug", "coffee", MUG):
        assert part not in identity


def test_content_and_customer_identities_of_one_review_differ():
    side = Side(trustoo(), email="dana@example.com")
    assert _identity("content", side) != _identity("customer", side)


# --- visible: whose version the merged review shows ------------------------------------------


def member(source: str, state: str, n: int = 1) -> Member:
    """A linked review in one of three states: published, hidden (published=False) or deleted."""
    build = {"trustoo": trustoo, "wix": wix}.get(source, trustoo)
    review = None if state == "deleted" else build(source=source, body=f"{source} {n}", published=state == "published")
    return Member(source, SHOP if source == "trustoo" else INSTANCE, f"{source}-{n}", review)


@pytest.mark.parametrize(
    "members, precedence, shown",
    [
        pytest.param(
            [member("wix", "published"), member("trustoo", "published")],
            ("trustoo", "wix"),
            1,
            id="trustoo-first-shows-trustoo-though-wix-linked-first",
        ),
        pytest.param(
            [member("trustoo", "published"), member("wix", "published")],
            ("wix", "trustoo"),
            1,
            id="wix-first-shows-wix",
        ),
        pytest.param(
            [member("trustoo", "hidden"), member("wix", "published")],
            ("trustoo", "wix"),
            1,
            id="hidden-at-the-first-source-yields-to-published-at-the-next",
        ),
        pytest.param(
            [member("trustoo", "deleted"), member("wix", "hidden")],
            ("trustoo", "wix"),
            1,
            id="deleted-at-the-first-source-yields-to-hidden-at-the-next",
        ),
        pytest.param(
            [member("wix", "hidden"), member("trustoo", "hidden")],
            ("trustoo", "wix"),
            1,
            id="all-hidden-shows-the-first-source-hidden",
        ),
        pytest.param(
            [member("trustoo", "deleted"), member("wix", "deleted")],
            ("trustoo", "wix"),
            None,
            id="all-deleted-shows-nothing",
        ),
        pytest.param(
            [member("wix", "published", 1), member("wix", "published", 2), member("trustoo", "hidden")],
            ("wix", "trustoo"),
            0,
            id="two-of-one-source-shows-the-earliest-link",
        ),
        pytest.param(
            [member("wix", "hidden", 1), member("wix", "published", 2)],
            ("wix", "trustoo"),
            1,
            id="two-of-one-source-shows-the-published-one",
        ),
        pytest.param(
            [member("judgeme", "published"), member("wix", "published")],
            ("trustoo", "wix"),
            1,
            id="a-source-missing-from-the-precedence-comes-last",
        ),
    ],
)
def test_visible_shows_the_first_source_in_precedence_that_still_publishes_the_review(members, precedence, shown):
    assert visible(members, precedence) == (members[shown] if shown is not None else None)
