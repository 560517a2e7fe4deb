"""Trustoo inside the app: which credentials sign for which shop, and the connectors built on them.

A shop signs with its private token (the environment's shop, or one added with `reviewbridge
accounts add trustoo`); in OAuth platform mode (TRUSTOO_CLIENT_ID/SECRET) a shop that authorized us
is called with its Bearer token, refreshed when it expires or Trustoo answers code 16.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Engine

from app.config import Settings
from app.core import accounts, products
from app.core.rate_limits import Rate, SharedRateLimiter
from app.core.vault import Vault, VaultError
from connectors.base import ConfigError
from connectors.trustoo import TrustooSource, TrustooWebhookVerifier
from connectors.trustoo_api import OAuthTokens, ShopCredentials, TrustooApi
from connectors.trustoo_target import TrustooTarget

__all__ = [
    "TOPIC_ROUTES",
    "OAuthStateError",
    "TrustooCredentials",
    "authorization_url",
    "build_api",
    "build_source",
    "build_target",
    "complete_authorization",
    "store_oauth_tokens",
]

SOURCE = "trustoo"
#: Trustoo topic → the route slug it is delivered to (one URL per topic).
TOPIC_ROUTES = {
    "review/created": "review-created",
    "review/updated": "review-updated",
    "review/deleted": "review-deleted",
}
_STATE_MAX_AGE_S = 3600


class OAuthStateError(ValueError):
    """The callback's `state` is missing, forged or too old."""


class TrustooCredentials:
    """The `Credentials` TrustooApi asks for each call; refreshes are single-flight per process,
    since Trustoo rotates refresh tokens and two refreshes at once would lose one."""

    def __init__(self, settings: Settings, engine: Engine, vault: Vault | None, clock: Callable[[], datetime]):
        self._settings = settings
        self._engine = engine
        self._vault = vault
        self._clock = clock
        self._refresh_lock = threading.Lock()
        self.api: TrustooApi | None = None  # set once the client exists (it needs us first)

    def for_shop(self, shop: str) -> ShopCredentials:
        settings = self._settings
        if settings.trustoo_client_id:
            with _opening(shop):
                tokens = accounts.tokens(self._engine, self._vault, SOURCE, shop)
            if tokens is not None:
                return ShopCredentials(shop, access_token=tokens.access_token)
        if shop == settings.trustoo_public_token and settings.trustoo_private_tokens:
            return ShopCredentials(shop, private_token=settings.trustoo_private_tokens[0])
        with _opening(shop):
            secret = accounts.secret(self._engine, self._vault, SOURCE, shop)
        if secret is not None:
            return ShopCredentials(shop, private_token=secret)
        raise ConfigError(
            f"no credentials for Trustoo shop {shop}: set TRUSTOO_PUBLIC_TOKEN and "
            f"TRUSTOO_PRIVATE_TOKEN, or run `reviewbridge accounts add trustoo`"
        )

    def refresh(self, shop: str) -> ShopCredentials | None:
        client_id, client_secret = self._settings.trustoo_client_id, self._settings.trustoo_client_secret
        if not (client_id and client_secret) or self.api is None:
            return None
        with self._refresh_lock, _opening(shop):
            tokens = accounts.tokens(self._engine, self._vault, SOURCE, shop)
            if tokens is None or tokens.refresh_token is None:
                return None
            fresh = self.api.refresh_tokens(client_id, client_secret, tokens.refresh_token)
            store_oauth_tokens(self._engine, self._vault, shop, fresh, now=self._clock())
            return ShopCredentials(shop, access_token=fresh.access_token)


@contextlib.contextmanager
def _opening(shop: str) -> Iterator[None]:
    """Stored credentials no key opens stop the shop's calls with the fix, as a configuration error."""
    try:
        yield
    except VaultError:
        raise ConfigError(
            f"stored credentials of Trustoo shop {shop} cannot be opened: {accounts.UNREADABLE_HINT}"
        ) from None


def store_oauth_tokens(engine: Engine, vault: Vault | None, shop: str, tokens: OAuthTokens, *, now: datetime) -> None:
    if vault is None:
        raise ConfigError("SECRET_KEY is not set: OAuth tokens cannot be stored encrypted without it")
    expires_at = datetime.fromtimestamp(tokens.expires_at, tz=UTC) if tokens.expires_at else None
    accounts.save_tokens(
        engine,
        vault,
        source=SOURCE,
        account=shop,
        now=now,
        tokens=accounts.Tokens(
            access_token=tokens.access_token, refresh_token=tokens.refresh_token, expires_at=expires_at
        ),
    )


def build_api(
    settings: Settings, engine: Engine, vault: Vault | None, clock: Callable[[], datetime], **options
) -> TrustooApi:
    credentials = TrustooCredentials(settings, engine, vault, clock)
    api = TrustooApi(
        settings.trustoo_api_url,
        credentials,
        # No limit is published (docs/platforms/trustoo.md §2 item 7): TRUSTOO_RATE_LIMIT a second per shop, no burst.
        limiter=SharedRateLimiter(engine, SOURCE, Rate(settings.trustoo_rate_limit)),
        scheme=settings.trustoo_sign_scheme,
        source_name=settings.trustoo_create_source,
        **options,
    )
    credentials.api = api
    return api


def build_source(settings: Settings, engine: Engine, vault: Vault | None, api: TrustooApi) -> TrustooSource:
    # Shops come from the environment and from `reviewbridge accounts add`, looked up as deliveries arrive.
    token, client_secret = settings.trustoo_public_token, settings.trustoo_client_secret
    environment: dict[str, Sequence[str]] = (
        {token: settings.trustoo_private_tokens} if token and settings.trustoo_webhooks_enabled else {}
    )
    keys: accounts.SecretLookup | _AuthorizedShops = accounts.SecretLookup(
        engine, vault, SOURCE, environment=environment
    )
    if settings.trustoo_webhook_key_source == "client_secret" and client_secret:  # load_settings requires it
        keys = _AuthorizedShops(engine, client_secret)
    verifier = TrustooWebhookVerifier(keys, tolerance_s=settings.trustoo_webhook_tolerance_s)
    # One key signs for every shop, so the signature does not say which shop: the source re-fetches.
    return TrustooSource(verifier, api=api, shared_key=isinstance(keys, _AuthorizedShops))


class _AuthorizedShops:
    """Webhook keys in OAuth platform mode when Trustoo signs with our client secret: valid for
    every shop that authorized ReviewBridge, and for no other."""

    def __init__(self, engine: Engine, client_secret: str):
        self._engine = engine
        self._client_secret = client_secret

    def get(self, shop: str) -> tuple[str, ...] | None:
        return (self._client_secret,) if accounts.is_authorized(self._engine, SOURCE, shop) else None


def build_target(settings: Settings, engine: Engine, api: TrustooApi) -> TrustooTarget | None:
    """The Trustoo target, when ROUTES sends reviews there."""
    if not any(target == SOURCE for _, target in settings.routes):
        return None
    shop = settings.trustoo_target_shop or settings.trustoo_public_token
    assert shop, "load_settings requires TRUSTOO_TARGET_SHOP or TRUSTOO_PUBLIC_TOKEN with a trustoo route"
    return TrustooTarget(
        api,
        shop=shop,
        source_label=settings.trustoo_create_source,
        product_map=functools.partial(products.lookup, engine, SOURCE),
    )


# --- OAuth2 platform mode (docs/platforms/trustoo.md §1.8) ----------------------------------------


def _state_serializer(secret_key: str, fallbacks: Sequence[str]) -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and verifies with any: an approval begun before a key
    # rotation still completes after it.
    keys = [*reversed(fallbacks), secret_key]
    return URLSafeTimedSerializer(keys, salt="reviewbridge-trustoo-oauth")


def authorization_url(settings: Settings, api: TrustooApi, *, shop: str, redirect_uri: str) -> str:
    """Where the merchant approves ReviewBridge; `state` is signed and names the shop and the return URL."""
    if not (settings.trustoo_client_id and settings.secret_key):
        raise ConfigError("OAuth platform mode needs TRUSTOO_CLIENT_ID, TRUSTOO_CLIENT_SECRET and SECRET_KEY")
    state = _state_serializer(settings.secret_key, settings.secret_key_fallbacks).dumps(
        {"shop": shop, "redirect_uri": redirect_uri, "nonce": secrets.token_urlsafe(8)}
    )
    return api.authorize_url(settings.trustoo_client_id, redirect_uri, state)


def complete_authorization(
    settings: Settings, engine: Engine, vault: Vault | None, api: TrustooApi, *, code: str, state: str, now: datetime
) -> str:
    """Check `state`, exchange the code, store the tokens encrypted; return the shop."""
    client_id, client_secret = settings.trustoo_client_id, settings.trustoo_client_secret
    if not (client_id and client_secret and settings.secret_key):
        raise ConfigError("OAuth platform mode needs TRUSTOO_CLIENT_ID, TRUSTOO_CLIENT_SECRET and SECRET_KEY")
    try:
        claims = _state_serializer(settings.secret_key, settings.secret_key_fallbacks).loads(
            state, max_age=_STATE_MAX_AGE_S
        )
    except SignatureExpired:
        raise OAuthStateError(
            "the authorization took too long: start again with `reviewbridge trustoo authorize-url`"
        ) from None
    except BadSignature:
        raise OAuthStateError("state does not match one ReviewBridge issued") from None
    tokens = api.exchange_code(client_id, client_secret, code, claims["redirect_uri"])
    store_oauth_tokens(engine, vault, claims["shop"], tokens, now=now)
    return claims["shop"]
