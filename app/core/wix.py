"""Wix inside the app: the webhook source, the REST client, and review requests built on them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine

from app.config import Settings
from app.core.rate_limits import Rate, SharedRateLimiter
from connectors.wix import WixSource
from connectors.wix_api import WixApi
from connectors.wix_mapping import review_request_body
from connectors.wix_webhooks import WixWebhookVerifier

__all__ = ["WixReviewRequests", "build_api", "build_source"]


def build_api(settings: Settings, engine: Engine, **options) -> WixApi | None:
    if not (settings.wix_app_id and settings.wix_app_secret):
        return None
    return WixApi(
        settings.wix_api_url,
        settings.wix_app_id,
        settings.wix_app_secret,
        limiter=SharedRateLimiter(engine, "wix", Rate.per_minute(settings.wix_rate_limit)),
        **options,
    )


def build_source(settings: Settings, api: WixApi | None) -> WixSource | None:
    if not settings.wix_enabled:
        return None
    return WixSource(
        WixWebhookVerifier(settings.wix_public_keys),
        api=api,
        review_request_trigger=settings.wix_review_request_trigger,
    )


class WixReviewRequests:
    """The pipeline's review-request port over the Wix client: Review Requests v2 and its body rules."""

    def __init__(self, api: WixApi):
        self._api = api

    def create_review_request(self, instance: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._api.create_review_request(instance, body)

    def query_review_requests(self, instance: str, *, order_id: str) -> Sequence[Mapping[str, Any]]:
        return self._api.query_review_requests(instance, order_id=order_id)

    def body_for(self, order: Mapping[str, Any]) -> dict:
        return review_request_body(order)
