"""commercetools as a review target (docs/platforms/commercetools.md §4, §5); the HTTP API, its token and its
error bodies are in connectors/commercetools_api.py.

Upsert, by the recipe of §5: GET by key → 404: create (a DuplicateField means a racer won: read
again) → 200: send only the actions that change something (none: no POST) → 409: read again and
rebuild, a bounded number of times. The key is also the uniquenessValue, so however many workers
race, one source review is one commercetools review.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from connectors.base import ConfigError, ProductNotFound, RatingStatistics, RetryableTargetError, Review, TargetRef
from connectors.commercetools_api import (
    CommercetoolsApi,
    CommercetoolsConfig,
    duplicate_fields,
    error_codes,
    error_text,
    references_product,
)
from connectors.commercetools_mapping import (
    CUSTOM_FIELDS,
    CUSTOM_TYPE_KEY,
    HIDDEN_STATE_KEY,
    PUBLISHED_STATE_KEY,
    Desired,
    desired_review,
    desired_snapshot,
    draft_for,
    rating_statistics,
    recreate_draft,
    restore_actions,
    review_key,
    snapshot,
    update_actions,
)
from connectors.http import RateLimiter, RetryPolicy, error_for

__all__ = ["CommercetoolsTarget", "Witness"]

_CONFLICT_RETRIES = 5
_PAGE = 500
#: Lookups of a missing product or channel key: asked again after this long, in case it was created.
_MISSING_TTL_S = 60.0

#: Told just before each write: (key, the review before it or None, the snapshot after it or None).
#: A run's journal (app/core/journal.py) keeps what a rollback needs; a write that fails after it
#: was told leaves the review as it was, which a rollback finds in line.
Witness = Callable[[str, Mapping[str, Any] | None, Mapping[str, Any] | None], None]

ProductMap = Callable[[str, str, str], tuple[str, str] | None]  # (source, account, product) → ("id"|"key", value)


class CommercetoolsTarget:
    name = "commercetools"
    idempotent = True  # key + uniquenessValue: a repeated create is a DuplicateField, not a copy

    def __init__(
        self,
        config: CommercetoolsConfig,
        *,
        product_map: ProductMap | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy = RetryPolicy(),
        pool_size: int = 20,
        limiter: RateLimiter | None = None,
    ):
        self.config = config
        self._product_map = product_map
        self._clock = clock
        self._api = CommercetoolsApi(
            config, transport=transport, clock=clock, sleep=sleep, retry=retry, pool_size=pool_size, limiter=limiter
        )
        self._lock = threading.Lock()
        self._setup_ids: dict[str, str] | None = None
        self._ids: dict[tuple[str, str], str] = {}  # (kind, key) → id of products and channels
        self._missing: dict[tuple[str, str], float] = {}

    def close(self) -> None:
        self._api.close()

    # --- ReviewTarget -------------------------------------------------------------------------

    def key_for(self, review: Review) -> str:
        return review_key(review.source, review.account, review.source_id)

    def desired(self, review: Review, *, key: str | None = None, linked: Sequence[Mapping[str, str]] = ()) -> Desired:
        """The commercetools review this source review should be (ProductNotFound when it has no target);
        a merged review's `key` and `linked` sources as in desired_review."""
        ids = self.setup_ids()
        target_type, target_id = self._target(review)
        return desired_review(
            review,
            target_type=target_type,
            target_id=target_id,
            type_id=ids["type"],
            rating_scale=self.config.rating_scale,
            state_id=ids["published"] if review.published else ids["hidden"],
            key=key,
            linked=linked,
        )

    def upsert(
        self,
        review: Review,
        known: TargetRef | None = None,
        *,
        in_doubt: bool = False,
        witness: Witness | None = None,
        key: str | None = None,
        linked: Sequence[Mapping[str, str]] = (),
    ) -> TargetRef:
        desired = self.desired(review, key=key, linked=linked)
        told = witness or _untold
        for _ in range(_CONFLICT_RETRIES):
            current = self.get(desired.key)
            if current is None:
                told(desired.key, None, desired_snapshot(desired))
                created, duplicates = self._create(draft_for(desired))
                if created is not None:
                    return _ref(created)
                if "key" in duplicates:
                    continue  # another worker created it first: update theirs
                current = self._adopt_by_uniqueness_value(desired.key)
                if current is None:
                    continue  # a deleted review's value not yet freed: try again, then back off
            actions = update_actions(current, desired)
            if not actions:
                return _ref(current)
            told(current["key"], current, desired_snapshot(desired))
            updated = self._update(current, actions)
            if updated is not None:
                return _ref(updated)
        raise RetryableTargetError(
            f"review {desired.key} kept changing under us ({_CONFLICT_RETRIES} conflicts)", status=409
        )

    def delete(self, ref: TargetRef, *, witness: Witness | None = None) -> None:
        """Delete (or, with CTP_ON_SOURCE_DELETE=hide, hide) the review; gone already is fine."""
        told = witness or _untold
        for _ in range(_CONFLICT_RETRIES):
            current = self.get(ref.key)
            if current is None:
                return
            if self.config.on_source_delete == "hide":
                hidden = self.setup_ids()["hidden"]
                if (current.get("state") or {}).get("id") == hidden:
                    return
                action = {"action": "transitionState", "state": {"typeId": "state", "id": hidden}, "force": True}
                told(ref.key, current, snapshot(current) | {"state": hidden})
                if self._update(current, [action]) is not None:
                    return
                continue
            told(ref.key, current, None)
            if self.remove(current):
                return
        raise RetryableTargetError(
            f"review {ref.key} kept changing under us ({_CONFLICT_RETRIES} conflicts)", status=409
        )

    def discard(self, key: str, *, witness: Witness | None = None) -> None:
        """Delete the review for good, whatever CTP_ON_SOURCE_DELETE says: a merge's extra copy,
        whose sources the review it merged into now lists. Gone already is fine."""
        told = witness or _untold
        for _ in range(_CONFLICT_RETRIES):
            current = self.get(key)
            if current is None:
                return
            told(key, current, None)
            if self.remove(current):
                return
        raise RetryableTargetError(f"review {key} kept changing under us ({_CONFLICT_RETRIES} conflicts)", status=409)

    # --- putting a review back as it was (rollback) ----------------------------------------------

    def remove(self, current: Mapping[str, Any]) -> bool:
        """Delete the review at the version read; False on a version conflict (read again)."""
        response = self._api.request(
            "DELETE", f"/reviews/key={quote(current['key'], safe='')}", params={"version": current["version"]}
        )
        if response.status_code in (200, 404):
            return True
        if response.status_code != 409:
            raise error_for(response, "commercetools", error_text(response))
        return False

    def restore(self, current: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any] | None:
        """Make the review look as `before` did; None on a version conflict (read again)."""
        actions = restore_actions(current, before)
        if not actions:
            return dict(current)
        return self._update(current, actions)

    def recreate(self, before: Mapping[str, Any]) -> dict[str, Any] | None:
        """Create a deleted review again with its key; None when the key is taken meanwhile (read again)."""
        created, _ = self._create(recreate_draft(before))
        return created

    def check(self) -> None:
        self.setup_ids()

    # --- reading ------------------------------------------------------------------------------

    def get(self, key: str) -> dict[str, Any] | None:
        return self._api.get_by_key("reviews", key)

    def iter_reviews(self, where: str | None = None, *, page_size: int = _PAGE) -> Iterator[dict[str, Any]]:
        """Every review, lazily, by keyset paging on id (no offset cap, flat memory)."""
        last_id: str | None = None
        while True:
            predicates = [p for p in (where, f'id > "{last_id}"' if last_id else None) if p]
            params = [("sort", "id asc"), ("limit", str(page_size)), ("withTotal", "false")]
            params += [("where", predicate) for predicate in predicates]
            response = self._api.request("GET", "/reviews", params=params)
            if response.status_code != 200:
                raise error_for(response, "commercetools", error_text(response))
            results = response.json()["results"]
            yield from results
            if len(results) < page_size:
                return
            last_id = results[-1]["id"]

    def product_statistics(self, product_id: str) -> tuple[str | None, RatingStatistics] | None:
        """The product's key and its reviewRatingStatistics, read afresh (never cached: they change
        with every review); None when there is no such product."""
        response = self._api.request("GET", f"/products/{quote(product_id, safe='')}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise error_for(response, "commercetools", error_text(response))
        product = response.json()
        return product.get("key"), rating_statistics(product)

    # --- set-up: the Custom Type and the two States -------------------------------------------

    def setup(self) -> list[tuple[str, str, str]]:
        """Create what is missing; return (kind, key, "created" | "found") for each. Safe to repeat."""
        report = []
        for kind, key, draft in _setup_drafts():
            found = self._api.get_by_key(kind, key)
            if found is not None:
                added = self._add_fields(found, draft) if kind == "types" else []
                report.append((kind, key, "found" + (f", field {', '.join(added)} added" if added else "")))
                continue
            response = self._api.request("POST", f"/{kind}", json=draft)
            if response.status_code in (200, 201):
                report.append((kind, key, "created"))
            elif error_codes(response) & {"DuplicateField"}:
                report.append((kind, key, "found"))  # created meanwhile by another process
            else:
                raise error_for(response, "commercetools", error_text(response))
        with self._lock:
            self._setup_ids = None
        return report

    def _add_fields(self, found: Mapping[str, Any], draft: Mapping[str, Any]) -> list[str]:
        """Add the field definitions a newer ReviewBridge needs to the Custom Type an older one made;
        return their names. A field added meanwhile by another process is no error."""
        have = {definition["name"] for definition in found.get("fieldDefinitions") or []}
        missing = [d for d in draft["fieldDefinitions"] if d["name"] not in have]
        if not missing:
            return []
        actions = [{"action": "addFieldDefinition", "fieldDefinition": definition} for definition in missing]
        response = self._api.request(
            "POST", f"/types/{found['id']}", json={"version": found["version"], "actions": actions}
        )
        if response.status_code != 200 and not error_codes(response) & {"DuplicateFieldDefinition"}:
            raise error_for(response, "commercetools", error_text(response))
        return [definition["name"] for definition in missing]

    def setup_ids(self) -> dict[str, str]:
        """Ids of the Custom Type and States; a ConfigError says how to create them if missing."""
        with self._lock:
            if self._setup_ids is not None:
                return self._setup_ids
        found = {
            name: self._api.get_by_key(kind, key)
            for name, kind, key in (
                ("type", "types", CUSTOM_TYPE_KEY),
                ("published", "states", PUBLISHED_STATE_KEY),
                ("hidden", "states", HIDDEN_STATE_KEY),
            )
        }
        missing = [name for name, resource in found.items() if resource is None]
        if missing:
            raise ConfigError(
                f"commercetools project {self.config.project_key} lacks ReviewBridge's "
                f"{', '.join(missing)} set-up: run `reviewbridge setup commercetools`"
            )
        ids = {name: resource["id"] for name, resource in found.items() if resource is not None}
        with self._lock:
            self._setup_ids = ids
        return ids

    # --- products -------------------------------------------------------------------------------

    def _target(self, review: Review) -> tuple[str, str]:
        """What the review is about: its product, or for a store review the configured channel."""
        product = review.product_id
        if product and not review.is_store_review:
            return "product", self._product_id(review, product)
        channel = self.config.store_review_channel
        channel_id = self._cached_id("channels", channel) if channel else None
        if channel_id is None:
            reason = (
                f"no commercetools channel with key {channel!r}"
                if channel
                else "set CTP_STORE_REVIEW_CHANNEL to the key of a channel to attach them to"
            )
            raise ProductNotFound(review.product_id or "0", f"store review (product 0): {reason}")
        return "channel", channel_id

    def _product_id(self, review: Review, product: str) -> str:
        mapped = self._product_map(review.source, review.account, product) if self._product_map else None
        if mapped is not None and mapped[0] == "id":
            return mapped[1]
        key = (
            mapped[1]
            if mapped is not None
            else self.config.product_key_template.format(
                source=review.source,
                account=review.account,
                source_product_id=product,
                sku=review.product_sku or "",
                handle=review.product_handle or "",
            )
        )
        product_id = self._cached_id("products", key)
        if product_id is None:
            raise ProductNotFound(
                product, f"no commercetools product with key {key!r} for {review.source} product {product}"
            )
        return product_id

    def _cached_id(self, kind: str, key: str) -> str | None:
        """A product's or channel's id by key, asked once and cached; a miss is asked again after a minute."""
        with self._lock:
            if (kind, key) in self._ids:
                return self._ids[kind, key]
            if self._clock() < self._missing.get((kind, key), 0):
                return None
        resource = self._api.get_by_key(kind, key)
        with self._lock:
            if resource is None:
                self._missing[kind, key] = self._clock() + _MISSING_TTL_S
                return None
            self._ids[kind, key] = resource["id"]
            self._missing.pop((kind, key), None)
            return resource["id"]

    # --- writes -----------------------------------------------------------------------------------

    def _create(self, draft: Mapping[str, Any]) -> tuple[dict[str, Any] | None, set[str]]:
        """The created review, or None and the fields that are already taken (a racer created it)."""
        response = self._api.request("POST", "/reviews", json=draft)
        if response.status_code == 201:
            return response.json(), set()
        duplicates = duplicate_fields(response)
        if duplicates:
            return None, duplicates
        if error_codes(response) & {"ReferencedResourceNotFound"} and references_product(response):
            raise ProductNotFound(
                (draft.get("custom") or {}).get("fields", {}).get("sourceProductId", "?"),
                "the product was deleted from commercetools",
            )
        raise error_for(response, "commercetools", error_text(response))

    def _update(self, current: Mapping[str, Any], actions: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The updated review, or None on a version conflict (the caller reads again)."""
        response = self._api.request(
            "POST", f"/reviews/{current['id']}", json={"version": current["version"], "actions": actions}
        )
        if response.status_code == 200:
            return response.json()
        if response.status_code == 409:
            return None
        raise error_for(response, "commercetools", error_text(response))

    def _adopt_by_uniqueness_value(self, key: str) -> dict[str, Any] | None:
        """A review that holds our uniquenessValue under another key (someone changed it): ours again."""
        response = self._api.request(
            "GET", "/reviews", params={"where": f'uniquenessValue = "{key}"', "limit": "1", "withTotal": "false"}
        )
        if response.status_code != 200:
            raise error_for(response, "commercetools", error_text(response))
        results = response.json().get("results") or []
        return results[0] if results else None


def _setup_drafts() -> list[tuple[str, str, dict[str, Any]]]:
    fields = [
        {"name": name, "label": {"en": name}, "required": False, "type": {"name": kind}, "inputHint": "SingleLine"}
        for name, kind in CUSTOM_FIELDS.items()
    ]
    return [
        (
            "types",
            CUSTOM_TYPE_KEY,
            {
                "key": CUSTOM_TYPE_KEY,
                "name": {"en": "ReviewBridge review"},
                "resourceTypeIds": ["review"],
                "fieldDefinitions": fields,
            },
        ),
        # Both initial, so a ReviewDraft may carry either; published counts in the rating statistics.
        (
            "states",
            PUBLISHED_STATE_KEY,
            {
                "key": PUBLISHED_STATE_KEY,
                "type": "ReviewState",
                "initial": True,
                "name": {"en": "Published (ReviewBridge)"},
                "roles": ["ReviewIncludedInStatistics"],
            },
        ),
        (
            "states",
            HIDDEN_STATE_KEY,
            {
                "key": HIDDEN_STATE_KEY,
                "type": "ReviewState",
                "initial": True,
                "name": {"en": "Hidden (ReviewBridge)"},
                "roles": [],
            },
        ),
    ]


def _untold(key: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> None:
    pass


def _ref(review: Mapping[str, Any]) -> TargetRef:
    return TargetRef(key=review["key"], id=review["id"], version=review["version"])
