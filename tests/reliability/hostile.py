"""R5's hostile identifiers and numbers: values no column or parser takes as they are, placed in
every id field of a signed delivery of either platform (tests/reliability/test_r5_hostile_input.py).

A value is raw JSON text, so that it can be a number Python will not write (5,000 digits) or a lone
surrogate escape; it replaces a placeholder string in a document serialised around it.
"""

from __future__ import annotations

import json
import time

from hypothesis import strategies as st

from tests.builders import trustoo_review

__all__ = ["hostile_headers", "hostile_trustoo_body", "hostile_wix_claims"]

#: Identifiers no column or parser takes as they are: over-long, or holding control characters.
hostile_texts = st.integers(300, 5000).map(lambda n: "x" * n) | st.tuples(
    st.sampled_from(("\x00", "\r", "\n", "\x1b", "\x1b[2J", "\x9b", "\u2028")), st.text(max_size=5)
).map(lambda parts: f"r{parts[0]}{parts[1]}")
#: Numbers as JSON text that Python cannot read (over 4,300 digits) or reads only as infinity.
huge_numbers = st.integers(4301, 6000).map(lambda n: "9" * n) | st.sampled_from(
    ("1e400", "-1e400", "1" + "0" * 5000 + ".5")
)
#: A hostile value as raw JSON: a string (a lone surrogate escape among them) or a huge number.
hostile_json = hostile_texts.map(json.dumps) | huge_numbers | st.just('"r-\\ud800"')
#: Header values as hostile as HTTP lets them be (no line break).
hostile_headers = st.integers(300, 5000).map(lambda n: "x" * n) | st.sampled_from(("shop\x00", "shop\x1b[2J", "\x9b"))


def with_hostile(document: dict, draw, slots: list[str]) -> str:
    """`document` as JSON text with each placeholder `"<slot>"` replaced by a hostile raw value."""
    text = json.dumps(document)
    for slot in slots:
        text = text.replace(json.dumps(slot), draw(hostile_json))
    return text


def _slot(name: str) -> str:
    return f"__hostile_{name}__"


@st.composite
def hostile_trustoo_body(draw) -> bytes:
    """A Trustoo batch whose review has hostile id fields, and perhaps a huge number beside the list."""
    fields = draw(
        st.lists(
            st.sampled_from(("id", "product_id", "my_shopify_domain", "shopify_shop_id", "rating", "commented_at")),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    text = with_hostile({"list": [trustoo_review(**{f: _slot(f) for f in fields})]}, draw, [_slot(f) for f in fields])
    return (f'{{"n":{draw(huge_numbers)},' + text[1:] if draw(st.booleans()) else text).encode()


@st.composite
def hostile_wix_claims(draw, instance: str) -> str:
    """Signed claims whose every id field may be hostile (hostile_json), at any of the three layers."""
    event_type = draw(
        st.sampled_from(
            (
                "wix.reviews.v1.review_created",
                "wix.reviews.v1.review_deleted",
                "wix.ecom.v1.order_fulfilled",
                "AppInstalled",
                "nope",
            )
        )
    )
    slots = draw(
        st.lists(
            st.sampled_from(("instanceId", "eventType", "id", "entityId", "review", "order", "eventTime", "sequence")),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )

    def value(name: str, default):
        return _slot(name) if name in slots else default

    review = {"id": value("review", "r-1"), "entityId": value("entityId", "p-1"), "content": {"rating": 5}}
    domain = {
        "id": value("id", "e-1"),
        "entityFqdn": "wix.reviews.v1.review",
        "entityId": value("entityId", "r-1"),
        "eventTime": value("eventTime", "2026-11-20T09:15:00Z"),
        "entityEventSequence": value("sequence", "1"),
        "createdEvent": {"entity": review},
        "deletedEvent": {"deletedEntity": {"id": value("review", "r-1")}},
        "actionEvent": {"body": {"order": {"id": value("order", "o-1")}, "newFulfillmentStatus": "FULFILLED"}},
    }
    envelope = {
        "eventType": value("eventType", event_type),
        "instanceId": value("instanceId", instance),
        "data": with_hostile(domain, draw, [_slot(n) for n in slots]),
    }
    now = int(time.time())
    claims = json.dumps({"data": with_hostile(envelope, draw, [_slot(n) for n in slots]), "iat": now, "exp": now + 300})
    return claims[:-1] + f',"n":{draw(huge_numbers)}}}' if draw(st.booleans()) else claims
