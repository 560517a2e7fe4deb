"""A Trustoo client's credential store for tests: one private token per shop, nothing to refresh."""

from __future__ import annotations

from connectors.trustoo_api import ShopCredentials


class Tokens:
    def __init__(self, private_tokens: dict[str, str]):
        self.private_tokens = private_tokens

    def for_shop(self, shop: str) -> ShopCredentials:
        return ShopCredentials(shop, private_token=self.private_tokens[shop])

    def refresh(self, shop: str) -> ShopCredentials | None:
        return None
