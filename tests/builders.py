"""Builders for realistic platform input: each test changes one thing from a good default."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from connectors.trustoo import TrustooWebhookVerifier

TRUSTOO_PUBLIC_TOKEN = "GfKu22TCaj4gULtrA3/OgA=="
TRUSTOO_PRIVATE_TOKEN = "trustoo-private-current-0123456789"
TRUSTOO_OLD_PRIVATE_TOKEN = "trustoo-private-previous-987654321"

_ids = itertools.count(880_000_001)


def next_review_id() -> int:
    return next(_ids)


def trustoo_review(**overrides: Any) -> dict[str, Any]:
    """A review item as Trustoo puts it in a webhook's `list` (docs/platforms/trustoo.md §1.5, §1.7)."""
    item = {
        "id": next_review_id(),
        "my_shopify_domain": "example-store.myshopify.com",
        "shopify_shop_id": 60123456789,
        "product_id": "7982301249581",
        "rating": 5,
        "author": "Ada Lovelace",
        "author_email": "ada@example.com",
        "author_country": "GB",
        "title": "Lovely mug",
        "content": "Keeps the tea hot and looks great on the desk.",
        "commented_at": "2026-11-20 09:15:02",
        "is_verified": 1,
        "is_published": 1,
        "media": [
            {"url": "https://img.trustoo.io/r/1.jpg", "thumbnail_url": "https://img.trustoo.io/r/1_s.jpg", "type": 1}
        ],
        "reply": None,
    }
    item.update(overrides)
    return item


def trustoo_body(*items: dict[str, Any]) -> bytes:
    return json.dumps({"list": list(items)}, separators=(",", ":")).encode()


def trustoo_headers(
    body: bytes,
    *,
    private_token: str = TRUSTOO_PRIVATE_TOKEN,
    public_token: str = TRUSTOO_PUBLIC_TOKEN,
    timestamp: int | None = None,
    request_id: str = "5f0c6a1e9b2d4c7a8e3f1a2b3c4d5e6f",
) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "Open-Trustoo-Webhook-Public-token": public_token,
        "Open-Trustoo-Webhook-Timestamp": str(ts),
        "Open-Trustoo-Webhook-Sign": TrustooWebhookVerifier.sign(private_token, ts, body),
        "Open-Trustoo-Webhook-RequestId": request_id,
    }
