"""The Trustoo emulator's state and rules: shops, reviews, shop webhooks, OAuth2 grants, and a
per-shop request limit when a test asks for one.

Pure Python, no HTTP: `tests/fakes/trustoo.py` is the web layer around it. Rules follow
docs/platforms/trustoo.md §1; where that lists an unknown, the assumption of §2 (or the stricter,
documented reading) is taken. Errors are raised as `ApiError(code, message)`; the web layer wraps
them in the envelope of §1.3. Nothing here is thread-safe by itself: the emulator holds one lock
around every call.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TOPICS = ("review/created", "review/updated", "review/deleted", "customer_event/created")
SCOPES = ("read_reviews", "write_reviews", "read_customer_events")
SORTS = ("created-ascending", "created-descending")
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 20, 100
ACCESS_TOKEN_TTL_S, AUTH_CODE_TTL_S = 7200, 600
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
ITEM_FIELDS = (
    "id",
    "product_id",
    "rating",
    "author",
    "author_email",
    "author_country",
    "title",
    "content",
    "commented_at",
    "updated_at",
    "is_verified",
    "is_published",
    "media",
    "reply",
    "source",
)
# Kept on a review (old create schema, §1.6) but not shown in items.
EXTRA_FIELDS = ("order_id", "author_phone", "tag", "item_type", "is_featured", "is_top", "product_handle")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_COUNTRY = re.compile(r"[A-Z]{2}")
_DIGITS = re.compile(r"\d+")


class ApiError(Exception):
    """An Open API failure: envelope `code` (gRPC numbering, §1.3) and message, at HTTP `status`."""

    def __init__(self, code: int, message: str, status: int = 200):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def invalid(message: str) -> ApiError:
    return ApiError(3, f"invalid argument: {message}")


def fmt_time(t: float) -> str:
    return time.strftime(DATE_FORMAT, time.gmtime(t))  # UTC; the spec does not name a zone


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _flag(body: Mapping[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if not _is_int(value) or value not in (0, 1):
        raise invalid(f"{name} must be 0 or 1")
    return value


def _text(body: Mapping[str, Any], name: str, limit: int, *, required: bool = False, default: str = "") -> str:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(f"{name} is required")
        return default
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string")
    if required and not value.strip():
        raise invalid(f"{name} must not be empty")
    if len(value) > limit:
        raise invalid(f"{name} must be at most {limit} characters")
    return value


def _date(body: Mapping[str, Any], name: str, default: str) -> str:
    value = body.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string 'YYYY-MM-DD HH:MM:SS'")
    try:
        datetime.strptime(value, DATE_FORMAT)
    except ValueError:
        raise invalid(f"{name} must be 'YYYY-MM-DD HH:MM:SS', got {value!r}") from None
    return value


def _url(value: Any, name: str) -> str:
    if not isinstance(value, str) or not re.match(r"https?://[^/\s]+", value):
        raise invalid(f"{name} must be an absolute http(s) URL")
    return value


def validate_draft(body: Any, now: float) -> dict[str, Any]:
    """A create_review body (§1.6, 2026 example + the old schema's limits) → stored review fields."""
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    rating = body.get("rating")
    if rating is None:
        raise invalid("rating is required")
    if not _is_int(rating) or not 1 <= rating <= 5:
        raise invalid("rating must be an integer from 1 to 5")
    product_id = body.get("product_id", "0")
    if product_id is None:
        product_id = "0"
    if not isinstance(product_id, str) or not _DIGITS.fullmatch(product_id):
        raise invalid('product_id must be a string of digits ("0" for a store review)')
    country = _text(body, "author_country", 2)
    if country and not _COUNTRY.fullmatch(country):
        raise invalid("author_country must be an ISO 3166-1 alpha-2 code such as 'US'")
    email = _text(body, "author_email", 255)
    if email and not _EMAIL.fullmatch(email):
        raise invalid("author_email is not an email address")
    now_s = fmt_time(now)
    fields: dict[str, Any] = {
        "product_id": product_id,
        "rating": rating,
        "author": _text(body, "author", 120, required=True),
        "author_email": email,
        "author_country": country,
        "title": _text(body, "title", 300),
        "content": _text(body, "content", 10000),
        "commented_at": _date(body, "commented_at", now_s),
        "is_verified": _flag(body, "is_verified", 0),
        "is_published": _flag(body, "is_published", 1),
        "is_featured": _flag(body, "is_featured", 0),
        "is_top": _flag(body, "is_top", 0),
        "source": _text(body, "source", 64, default="Open API") or "Open API",
        "media": _media(body.get("media")),
        "reply": _reply(body.get("reply"), now_s),
    }
    for name in ("order_id", "author_phone", "tag", "item_type"):
        fields[name] = _text(body, name, 300)
    return fields


def _media(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid("media must be an array of {url, thumbnail_url, type, is_published}")
    if len(value) > 10:
        raise invalid("media holds at most 10 items")
    media = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid(f"media[{i}] must be an object")
        url = _url(item.get("url"), f"media[{i}].url")
        thumb = item.get("thumbnail_url") or url
        _url(thumb, f"media[{i}].thumbnail_url")
        kind = item.get("type", 1)
        if not _is_int(kind) or kind not in (1, 2):
            raise invalid(f"media[{i}].type must be 1 (image) or 2 (video)")
        media.append({"url": url, "thumbnail_url": thumb, "type": kind, "is_published": _flag(item, "is_published", 1)})
    return media


def _reply(value: Any, now_s: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid("reply must be an object {content, reply_at} or null")
    return {"content": _text(value, "content", 10000, required=True), "reply_at": _date(value, "reply_at", now_s)}


def render(review: Mapping[str, Any]) -> dict[str, Any]:
    """A stored review → the item Open API answers and webhooks carry (§1.5)."""
    item = {name: copy.deepcopy(review[name]) for name in ITEM_FIELDS}
    item["media"] = [{"url": m["url"], "thumbnail_url": m["thumbnail_url"], "type": m["type"]} for m in item["media"]]
    return item


@dataclass
class Shop:
    public_token: str
    private_token: str
    domain: str
    shopify_shop_id: int
    reviews: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Webhook:
    id: str
    owner: tuple[str, str]  # ("shop", public token) or ("platform", client id), §1.7
    topic: str
    url: str
    created_at: str
    updated_at: str

    def json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "topic": self.topic,
            "url": self.url,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class Grant:
    """An authorization code or an access/refresh token pair: a platform acting for a shop."""

    client_id: str
    shop: str
    scopes: tuple[str, ...]
    expires_at: float
    redirect_uri: str = ""


class ShopRateLimit:
    """A request limit per shop. Trustoo publishes none (docs/platforms/trustoo.md §2 item 7), so this
    is the emulator's own: a token bucket per shop of `burst` requests refilled at `per_s` a second.
    A burst above 1 absorbs the jitter between a client's turn and the request's arrival."""

    def __init__(self, per_s: float, burst: float = 2.0):
        if per_s <= 0 or burst < 1:
            raise ValueError("a shop rate limit needs per_s > 0 and burst >= 1")
        self.per_s, self.burst = per_s, burst
        self._interval = 1.0 / per_s
        self._free_at: dict[str, float] = {}  # shop → when its next request may come

    def take(self, shop: str, now: float) -> float | None:
        """Spend one of the shop's tokens and return None; or, with none left, the seconds until
        there is one (and nothing spent)."""
        free_at = max(self._free_at.get(shop, -math.inf), now - (self.burst - 1) * self._interval)
        if free_at > now:
            return free_at - now
        self._free_at[shop] = free_at + self._interval
        return None


class TrustooState:
    def __init__(self, shops: Mapping[str, str], oauth_clients: Mapping[str, str], clock: Callable[[], float]):
        self.clock = clock
        self.shops: dict[str, Shop] = {}
        for n, (public, private) in enumerate(shops.items(), start=1):
            self.shops[public] = Shop(public, private, f"trustoo-shop-{n}.myshopify.com", 60_000_000_000 + n)
        self.oauth_clients = dict(oauth_clients)
        self.webhooks: dict[str, Webhook] = {}
        self.codes: dict[str, Grant] = {}
        self.access: dict[str, Grant] = {}
        self.refresh: dict[str, Grant] = {}
        self.authorized: set[tuple[str, str]] = set()  # (shop, client id)
        self._review_ids = itertools.count(1_000_000_001)
        self._webhook_ids = itertools.count(3001)

    # --- shops and reviews ----------------------------------------------------------------------

    def shop(self, public_token: str) -> Shop:
        try:
            return self.shops[public_token]
        except KeyError:
            raise KeyError(f"unknown Trustoo shop (public token) {public_token!r}") from None

    def review(self, shop: Shop, review_id: Any) -> dict[str, Any]:
        rid = parse_id(review_id)
        if rid is None or rid not in shop.reviews:
            raise ApiError(5, f"review {review_id} not found")
        return shop.reviews[rid]

    def add(self, shop: Shop, fields: dict[str, Any]) -> dict[str, Any]:
        rid = fields.pop("id", None)
        rid = next(self._review_ids) if rid is None else int(rid)
        if rid in shop.reviews:
            raise ValueError(f"review {rid} already exists")
        extras = {name: "" for name in EXTRA_FIELDS} | {"is_featured": 0, "is_top": 0}
        review = {"id": rid, **extras, **fields, "updated_at": fmt_time(self.clock())}
        shop.reviews[rid] = review
        return review

    def seed_fields(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """add_review() keyword arguments → stored fields: lenient defaults, like a review written in Trustoo."""
        now_s = fmt_time(self.clock())
        review: dict[str, Any] = {
            "product_id": "7982301249581",
            "rating": 5,
            "author": "Ada Lovelace",
            "author_email": "",
            "author_country": "",
            "title": "",
            "content": "Great product.",
            "commented_at": now_s,
            "is_verified": 0,
            "is_published": 1,
            "media": [],
            "reply": None,
            "source": "Store front",
            **{name: "" for name in EXTRA_FIELDS},
            "is_featured": 0,
            "is_top": 0,
        }
        review.update(self.normalize(fields, now_s))
        return review

    @staticmethod
    def normalize(fields: Mapping[str, Any], now_s: str) -> dict[str, Any]:
        unknown = set(fields) - set(ITEM_FIELDS) - set(EXTRA_FIELDS)
        if unknown:
            raise TypeError(f"unknown review field(s): {', '.join(sorted(unknown))}")
        out = dict(copy.deepcopy(fields))
        if "product_id" in out:
            out["product_id"] = str(out["product_id"])
        if "media" in out:
            out["media"] = [
                {"thumbnail_url": m.get("url"), "type": 1, "is_published": 1, **m} for m in out["media"] or []
            ]
        if isinstance(out.get("reply"), dict):
            out["reply"] = {"reply_at": now_s, **out["reply"]}
        return out

    # --- queries --------------------------------------------------------------------------------

    def list_reviews(self, shop: Shop, params: Mapping[str, list[str]]) -> dict[str, Any]:
        page = _int_param(params, "page", 1, low=1)
        page_size = _int_param(params, "page_size", PAGE_SIZE_DEFAULT, low=1, high=PAGE_SIZE_MAX)
        sort_by = _scalar(params, "sort_by") or "created-descending"
        if sort_by not in SORTS:
            raise invalid(f"sort_by must be one of {', '.join(SORTS)}")
        found: Iterable[dict[str, Any]] = shop.reviews.values()
        product_ids = _multi(params, "product_ids")
        if product_ids:
            found = [r for r in found if r["product_id"] in product_ids]
        store = _scalar(params, "is_store_review")
        if store:
            if store not in ("0", "1"):
                raise invalid("is_store_review must be 0 or 1")
            found = [r for r in found if (r["product_id"] == "0") == (store == "1")]
        ratings = _multi(params, "ratings")
        if ratings:
            if not ratings <= {"1", "2", "3", "4", "5"}:
                raise invalid("ratings must be integers from 1 to 5")
            found = [r for r in found if str(r["rating"]) in ratings]
        sources = _multi(params, "sources")
        if sources:
            found = [r for r in found if r["source"] in sources]
        keyword = (_scalar(params, "keyword") or "").casefold()
        if keyword:
            found = [
                r for r in found if any(keyword in (r[f] or "").casefold() for f in ("title", "content", "author"))
            ]
        ordered = sorted(found, key=lambda r: (r["commented_at"], r["id"]), reverse=sort_by == "created-descending")
        start = (page - 1) * page_size
        return {
            "list": [render(r) for r in ordered[start : start + page_size]],
            "page": {
                "page": page,
                "page_size": page_size,
                "total_page": math.ceil(len(ordered) / page_size),
                "count": len(ordered),
            },
        }

    def rating(self, shop: Shop, params: Mapping[str, list[str]]) -> dict[str, Any]:
        published = [r for r in shop.reviews.values() if r["is_published"] == 1]
        if _scalar(params, "product_id"):
            chosen = [r for r in published if r["product_id"] == _scalar(params, "product_id")]
        elif _scalar(params, "product_handle"):
            chosen = [r for r in published if r["product_handle"] == _scalar(params, "product_handle")]
        elif _scalar(params, "is_store_rating") == "1":
            chosen = [r for r in published if r["product_id"] == "0"]
        elif _scalar(params, "is_all_products_rating") == "1":
            chosen = [r for r in published if r["product_id"] != "0"]
        elif _scalar(params, "is_all_rating") == "1":
            chosen = published
        else:
            raise invalid(
                "one of product_id, product_handle, is_store_rating, is_all_products_rating, is_all_rating is required"
            )
        stars = [sum(1 for r in chosen if r["rating"] == n) for n in range(1, 6)]
        average = sum(r["rating"] for r in chosen) / len(chosen) if chosen else 0.0
        return {
            "rating_value": f"{average:.1f}",
            "review_count": len(chosen),
            **{f"star{n}_count": stars[n - 1] for n in range(1, 6)},
        }

    # --- shop webhooks --------------------------------------------------------------------------

    def webhook_fields(
        self, body: Any, owner: tuple[str, str], scopes: tuple[str, ...] | None, exclude: str | None = None
    ) -> tuple[str, str]:
        if not isinstance(body, dict):
            raise invalid("the request body must be a JSON object")
        topic, url = body.get("topic"), body.get("url")
        if topic not in TOPICS:
            raise invalid(f"topic must be one of {', '.join(TOPICS)}")
        _url(url, "url")
        needed = "read_customer_events" if topic == "customer_event/created" else "write_reviews"
        if scopes is not None and needed not in scopes:
            raise ApiError(7, f"permission denied: topic {topic} needs scope {needed}")
        if any(
            w.owner == owner and (w.topic, w.url) == (topic, url) and w.id != exclude for w in self.webhooks.values()
        ):
            raise ApiError(6, f"already exists: a webhook for {topic} at {url}")
        return topic, url

    def create_webhook(self, owner: tuple[str, str], topic: str, url: str) -> Webhook:
        now_s = fmt_time(self.clock())
        hook = Webhook(str(next(self._webhook_ids)), owner, topic, url, now_s, now_s)
        self.webhooks[hook.id] = hook
        return hook

    def owned_webhook(self, owner: tuple[str, str], body: Any) -> Webhook:
        wid = body.get("id") if isinstance(body, dict) else None
        if wid is None or wid == "":
            raise invalid("id is required")
        hook = self.webhooks.get(str(wid))
        if hook is None or hook.owner != owner:
            raise ApiError(5, f"webhook {wid} not found")
        return hook

    def subscribers(self, shop: Shop, topic: str) -> list[Webhook]:
        owners = {("shop", shop.public_token)} | {("platform", c) for s, c in self.authorized if s == shop.public_token}
        return [w for w in self.webhooks.values() if w.topic == topic and w.owner in owners]

    # --- OAuth2 ---------------------------------------------------------------------------------

    def check_client(self, client_id: Any, client_secret: Any = None, *, secret: bool = True) -> None:
        known = self.oauth_clients.get(client_id) if isinstance(client_id, str) else None
        if known is None or (
            secret
            and (
                not isinstance(client_secret, str) or not secrets.compare_digest(known.encode(), client_secret.encode())
            )
        ):
            raise ApiError(16, "unauthenticated: invalid client_id or client_secret")

    def issue_code(self, client_id: str, shop: str, scopes: tuple[str, ...], redirect_uri: str) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = Grant(client_id, shop, scopes, self.clock() + AUTH_CODE_TTL_S, redirect_uri)
        self.authorized.add((shop, client_id))
        return code

    def issue_tokens(self, grant: Grant) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.access[access] = Grant(grant.client_id, grant.shop, grant.scopes, self.clock() + ACCESS_TOKEN_TTL_S)
        self.refresh[refresh] = Grant(grant.client_id, grant.shop, grant.scopes, math.inf)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL_S,
            "scope": " ".join(grant.scopes),
        }

    def bearer(self, token: str) -> Grant:
        grant = self.access.get(token)
        if grant is None or self.clock() >= grant.expires_at or (grant.shop, grant.client_id) not in self.authorized:
            raise ApiError(16, "unauthenticated: invalid or expired access token")
        return grant


def parse_scopes(value: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(s for s in re.split(r"[\s,]+", value or "") if s))
    if not scopes:
        raise invalid("scope is required")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise invalid(f"unknown scope(s): {', '.join(unknown)}")
    return scopes


def parse_id(value: Any) -> int | None:
    if _is_int(value):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    return None


def _scalar(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _multi(params: Mapping[str, list[str]], name: str) -> set[str]:
    """`name=a,b`, repeated `name=`, and PHP-style `name[0]=` / `name[]=` (§1.5 says either may be used)."""
    pattern = re.compile(rf"{re.escape(name)}(\[\d*\])?")
    return {
        part.strip()
        for key, values in params.items()
        if pattern.fullmatch(key)
        for value in values
        for part in value.split(",")
        if part.strip()
    }


def _int_param(params: Mapping[str, list[str]], name: str, default: int, *, low: int, high: int | None = None) -> int:
    raw = _scalar(params, name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"-?\d+", raw):
        raise invalid(f"{name} must be an integer")
    value = int(raw)
    if value < low or (high is not None and value > high):
        raise invalid(f"{name} must be from {low} to {high}" if high else f"{name} must be at least {low}")
    return value
