"""When reviews from different sources are one review (CROSS_SOURCE_IDENTITY), and whose version shows.

Pure rules; app/core/merging.py applies them with the link table and the target.

- `content`: the same commercetools product, the same author name, the same rating and the same
  text, each compared after `normalised` (Unicode NFKC, case folded, white space collapsed, trailing
  punctuation and the spaces among it dropped). A review without an author name or without text has no content identity:
  two bare "5 stars" on one product are not evidence of one customer.
- `customer`: the same commercetools product and the same customer e-mail (case folded) — the
  convention commercetools' own `uniquenessValue` exists for: one review per customer and product.

Either way, the identity is a digest of those parts, so the link table holds no text or e-mail.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from connectors.base import Review

__all__ = ["MODES", "Member", "identity_of", "normalised", "visible"]

MODES = ("off", "content", "customer")

_SPACE = re.compile(r"\s+")


def normalised(text: str | None) -> str:
    """Text as the content rule compares it: "Great  Mug!!" and "great mug" are equal."""
    if not text:
        return ""
    folded = _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
    end = len(folded)
    while end and (folded[end - 1] == " " or unicodedata.category(folded[end - 1]).startswith("P")):
        end -= 1  # "Love it! !" and "Great mug :)" end as "love it" and "great mug"
    return folded[:end]


def identity_of(mode: str, review: Review, *, product: str, email: str | None = None) -> str | None:
    """The review's identity under `mode` on the commercetools `product` (its id), or None when the
    review has none (mode off, or the parts the rule needs are missing)."""
    if mode == "content":
        author, text = normalised(review.author_name), normalised(review.body)
        if not author or not text:
            return None
        parts = ["content", product, author, str(review.rating), text]
    elif mode == "customer":
        address = (email or "").strip().casefold()
        if not address:
            return None
        parts = ["customer", product, address]
    else:
        return None
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Member:
    """One source review linked to a target review, as the merge sees it."""

    source: str
    account: str
    source_review_id: str
    review: Review | None  # as the source last told; None once deleted there

    @property
    def provenance(self) -> dict[str, str]:
        return {"source": self.source, "account": self.account, "sourceReviewId": self.source_review_id}


def visible(members: Sequence[Member], precedence: Sequence[str]) -> Member | None:
    """The member whose version the target review shows: the first source in `precedence` that
    still has the review published; when none has it published, the first that still has it at all
    (shown hidden); None when every source deleted it. Ties within a source go to the earliest link."""
    rank = {source: index for index, source in enumerate(precedence)}
    alive = [member for member in members if member.review is not None]
    ordered = sorted(alive, key=lambda member: rank.get(member.source, len(rank)))
    published = [member for member in ordered if member.review is not None and member.review.published]
    return next(iter(published or ordered), None)
