"""Settings: the only place that reads the environment (12-factor).

`load_settings(environ)` turns variables into one typed, frozen `Settings`; a bad value raises
`SettingsError` naming the variable, and start-up stops with that one line. Secrets are kept out of
`repr` so they cannot reach a log by accident.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.config_env import Env, SettingsError
from app.config_instance import KeptSecrets, keep_secrets

__all__ = [
    "DEFAULT_FORWARDED_ALLOW_IPS",
    "DEFAULT_SQLITE_PATH",
    "DEFAULT_WEB_THREADS",
    "SOURCES",
    "KeptSecrets",
    "Settings",
    "SettingsError",
    "forwarded_allow_ips",
    "kept_secrets",
    "load_settings",
    "log_format",
]

DEFAULT_SQLITE_PATH = Path("instance") / "reviewbridge.db"
#: Threads that run the app in each gunicorn worker of the Procfile's web process (gunicorn.conf.py).
DEFAULT_WEB_THREADS = 4
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
_LOG_FORMATS = ("text", "json")
#: gunicorn's own default for the variable of the same name: a proxy on this machine only.
DEFAULT_FORWARDED_ALLOW_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Settings:
    database_url: str = field(repr=False)  # may hold a password; describe() shows it masked
    port: int = 8000
    log_level: str = "INFO"
    log_format: str = "text"
    admin_token: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    #: Older SECRET_KEYs: what they sealed or signed still opens (stored credentials, sessions, OAuth state).
    secret_key_fallbacks: tuple[str, ...] = field(default=(), repr=False)
    #: The proxies whose X-Forwarded-For and X-Forwarded-Proto count: addresses, networks, or "*" (any).
    forwarded_allow_ips: tuple[str, ...] = DEFAULT_FORWARDED_ALLOW_IPS
    session_cookie_secure: bool = False  # True: the admin session cookie is Secure even over plain http
    admin_session_hours: int = 12  # an admin page session ends this long after sign-in, used or not
    webhook_max_bytes: int = 1024 * 1024
    web_threads: int = DEFAULT_WEB_THREADS  # per gunicorn worker of the Procfile's web process
    worker_concurrency: int = 4
    max_attempts: int = 12
    lease_s: int = 60
    retry_base_s: float = 2.0
    retry_cap_s: float = 3600.0
    drain_interval_s: float = 0.5
    trustoo_public_token: str | None = None
    trustoo_private_tokens: tuple[str, ...] = field(default=(), repr=False)
    trustoo_webhook_tolerance_s: int = 900
    trustoo_api_url: str = "https://rapi.trustoo.io"
    ctp_project_key: str | None = None
    ctp_client_id: str | None = None
    ctp_client_secret: str | None = field(default=None, repr=False)
    ctp_scopes: tuple[str, ...] = ()
    ctp_api_url: str = "https://api.europe-west1.gcp.commercetools.com"
    ctp_auth_url: str = "https://auth.europe-west1.gcp.commercetools.com"
    ctp_rating_scale: int = 5
    ctp_on_source_delete: str = "delete"
    ctp_product_key_template: str = "{source_product_id}"
    product_recheck_s: int = 900
    poll_interval_s: int = 900
    retention_days: int = 30
    ctp_store_review_channel: str | None = None
    routes: tuple[tuple[str, str], ...] = (("trustoo", "commercetools"), ("wix", "commercetools"))
    #: When reviews from different sources are one commercetools review: off, content or customer.
    cross_source_identity: str = "off"
    #: Whose version a merged review shows, first first (every source is in it).
    source_precedence: tuple[str, ...] = ("trustoo", "wix")
    trustoo_rate_limit: float = 2.0  # requests a second per shop
    wix_rate_limit: int = 200  # requests a minute per site (app instance)
    ctp_rate_limit: float = 0.0  # requests a second per project; 0: none
    trustoo_sign_scheme: str = "hmac_sorted_pipe_body"
    trustoo_client_id: str | None = None
    trustoo_client_secret: str | None = field(default=None, repr=False)
    trustoo_target_shop: str | None = None
    trustoo_create_source: str = "ChatWILL"
    trustoo_webhook_key_source: str = "private_token"
    wix_app_id: str | None = None
    wix_app_secret: str | None = field(default=None, repr=False)
    wix_api_url: str = "https://www.wixapis.com"
    wix_public_keys: tuple[str, ...] = ()
    wix_review_request_trigger: str = "fulfilled"
    wix_review_request_delay_s: int = 0
    public_url: str | None = None  # the service's base URL, for links in alerts
    #: Where alerts are posted (Slack-compatible); a Slack URL carries its token, so it is a secret.
    alert_webhook_url: str | None = field(default=None, repr=False)
    alert_pending_age_s: int = 1800  # 0: no alert on a late queue
    alert_signature_failures: int = 20  # 0: no alert on rejected webhooks
    alert_signature_window_s: int = 300
    alert_min_interval_s: int = 900
    #: The `worker` process serves its own /metrics here (it has no web server); None: it serves none.
    worker_metrics_port: int | None = None
    #: Set for the Procfile's web process by gunicorn.conf.py: its workers' counters are summed there.
    prometheus_multiproc_dir: str | None = None

    @property
    def wix_enabled(self) -> bool:
        return bool(self.wix_public_keys)

    def routes_by_source(self) -> dict[str, tuple[str, ...]]:
        table: dict[str, tuple[str, ...]] = {}
        for source, target in self.routes:
            table[source] = (*table.get(source, ()), target)
        return table

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def commercetools_enabled(self) -> bool:
        return bool(self.ctp_project_key and self.ctp_client_id and self.ctp_client_secret)

    @property
    def trustoo_webhooks_enabled(self) -> bool:
        return bool(self.trustoo_public_token and self.trustoo_private_tokens)

    def describe(self) -> list[str]:
        """What is configured and what is missing, for the start-up log; never a secret."""
        url = make_url(self.database_url).render_as_string(hide_password=True)
        lines = [f"database: {url}"]
        if self.trustoo_webhooks_enabled:
            lines.append(
                f"trustoo webhooks: on (1 shop, {len(self.trustoo_private_tokens)} private token(s), "
                f"window {self.trustoo_webhook_tolerance_s} s)"
            )
        else:
            lines.append("trustoo webhooks: off (set TRUSTOO_PUBLIC_TOKEN and TRUSTOO_PRIVATE_TOKEN)")
        if self.commercetools_enabled:
            lines.append(
                f"commercetools: project {self.ctp_project_key} at {self.ctp_api_url}, rating scale "
                f"{self.ctp_rating_scale}, on source delete: {self.ctp_on_source_delete}"
            )
        else:
            lines.append("commercetools: off (set CTP_PROJECT_KEY, CTP_CLIENT_ID and CTP_CLIENT_SECRET)")
        if self.wix_enabled:
            lines.append(
                f"wix webhooks: on ({len(self.wix_public_keys)} key(s)); review requests: "
                f"{self.wix_review_request_trigger}"
                + (f" after {self.wix_review_request_delay_s} s" if self.wix_review_request_delay_s else "")
            )
        else:
            lines.append("wix webhooks: off (set WIX_PUBLIC_KEY)")
        lines.append("routes: " + ", ".join(f"{source} → {target}" for source, target in self.routes))
        lines.append(
            f"cross-source identity: {self.cross_source_identity}"
            + (f" (precedence {', '.join(self.source_precedence)})" if self.cross_source_identity != "off" else "")
        )
        lines.append(
            f"rate limits (shared by every process): trustoo {self.trustoo_rate_limit:g}/s per shop, "
            f"wix {self.wix_rate_limit}/min per site, commercetools "
            + (f"{self.ctp_rate_limit:g}/s per project" if self.ctp_rate_limit else "none (CTP_RATE_LIMIT unset)")
        )
        lines.append("admin api: " + ("on" if self.admin_token else "off (ADMIN_TOKEN unset)"))
        lines.append("secret key: " + ("set" if self.secret_key else "missing (SECRET_KEY unset)"))
        lines.append("trusted proxies (X-Forwarded-For/-Proto): " + ", ".join(self.forwarded_allow_ips))
        lines.append(
            f"worker: {self.worker_concurrency} thread(s), {self.max_attempts} attempts, lease {self.lease_s} s"
            + (f", metrics on port {self.worker_metrics_port}" if self.worker_metrics_port else "")
        )
        lines.append("alerts: " + ("on (`reviewbridge doctor` shows what)" if self.alert_webhook_url else "off"))
        return lines


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = Env(os.environ if environ is None else environ)
    settings = Settings(
        database_url=_database_url(env.text("DATABASE_URL")),
        port=env.integer("PORT", 8000, low=1, high=65535),
        log_level=env.choice("LOG_LEVEL", "INFO", _LOG_LEVELS, upper=True),
        log_format=env.choice("LOG_FORMAT", "text", _LOG_FORMATS),
        # It opens the admin page and API to anyone who guesses it: long, and not guessable.
        admin_token=env.strong_secret("ADMIN_TOKEN", min_length=32),
        secret_key=env.secret("SECRET_KEY", min_length=16),
        secret_key_fallbacks=env.secret_list("SECRET_KEY_FALLBACKS", min_length=16),
        forwarded_allow_ips=forwarded_allow_ips(env.text("FORWARDED_ALLOW_IPS")),
        session_cookie_secure=env.flag("SESSION_COOKIE_SECURE", False),
        admin_session_hours=env.integer("ADMIN_SESSION_HOURS", 12, low=1, high=720),
        webhook_max_bytes=env.integer("WEBHOOK_MAX_BYTES", 1024 * 1024, low=1024, high=64 * 1024 * 1024),
        web_threads=env.integer("WEB_THREADS", DEFAULT_WEB_THREADS, low=1, high=256),
        worker_concurrency=env.integer("WORKER_CONCURRENCY", 4, low=1, high=64),
        max_attempts=env.integer("MAX_ATTEMPTS", 12, low=1, high=100),
        lease_s=env.integer("LEASE_S", 60, low=5, high=3600),
        retry_base_s=env.number("RETRY_BASE_S", 2.0, low=0.01, high=3600),
        retry_cap_s=env.number("RETRY_CAP_S", 3600.0, low=1, high=7 * 86400),
        drain_interval_s=env.number("DRAIN_INTERVAL_S", 0.5, low=0.05, high=60),
        trustoo_public_token=env.text("TRUSTOO_PUBLIC_TOKEN"),
        trustoo_private_tokens=env.secret_list("TRUSTOO_PRIVATE_TOKEN"),
        trustoo_webhook_tolerance_s=env.integer("TRUSTOO_WEBHOOK_TOLERANCE_S", 900, low=30, high=7 * 86400),
        trustoo_api_url=env.url("TRUSTOO_API_URL", "https://rapi.trustoo.io"),
        ctp_project_key=env.text("CTP_PROJECT_KEY"),
        ctp_client_id=env.text("CTP_CLIENT_ID"),
        ctp_client_secret=env.text("CTP_CLIENT_SECRET"),
        # The SDKs split CTP_SCOPES on commas, many projects on spaces: both are accepted.
        ctp_scopes=tuple((env.text("CTP_SCOPES") or "").replace(",", " ").split()),
        ctp_api_url=env.url("CTP_API_URL", "https://api.europe-west1.gcp.commercetools.com"),
        ctp_auth_url=env.url("CTP_AUTH_URL", "https://auth.europe-west1.gcp.commercetools.com"),
        ctp_rating_scale=int(env.choice("CTP_RATING_SCALE", "5", ("5", "100"))),
        ctp_on_source_delete=env.choice("CTP_ON_SOURCE_DELETE", "delete", ("delete", "hide")),
        ctp_product_key_template=_product_key_template(env.text("CTP_PRODUCT_KEY_TEMPLATE")),
        product_recheck_s=env.integer("PRODUCT_RECHECK_S", 900, low=10, high=86400),
        poll_interval_s=_duration("POLL_INTERVAL", env.text("POLL_INTERVAL") or "15m"),
        retention_days=env.integer("RETENTION_DAYS", 30, low=1, high=36500),
        ctp_store_review_channel=env.text("CTP_STORE_REVIEW_CHANNEL"),
        routes=_routes(env.text("ROUTES")),
        cross_source_identity=env.choice("CROSS_SOURCE_IDENTITY", "off", ("off", "content", "customer")),
        source_precedence=_source_precedence(env.text("SOURCE_PRECEDENCE")),
        trustoo_rate_limit=env.number("TRUSTOO_RATE_LIMIT", 2.0, low=0.1, high=100),
        wix_rate_limit=env.integer("WIX_RATE_LIMIT", 200, low=1, high=100_000),
        # commercetools publishes no limit (docs/platforms/commercetools.md §1.10): none unless asked for.
        ctp_rate_limit=env.number("CTP_RATE_LIMIT", 0.0, low=0, high=10_000),
        trustoo_sign_scheme=env.choice(
            "TRUSTOO_SIGN_SCHEME", "hmac_sorted_pipe_body", ("hmac_sorted_pipe_body", "legacy_sha256_salt")
        ),
        trustoo_client_id=env.text("TRUSTOO_CLIENT_ID"),
        trustoo_client_secret=env.secret("TRUSTOO_CLIENT_SECRET", min_length=8),
        trustoo_target_shop=env.text("TRUSTOO_TARGET_SHOP"),
        trustoo_create_source=env.text("TRUSTOO_CREATE_SOURCE") or "ChatWILL",
        # Which secret signs webhooks in OAuth platform mode is not documented (docs/platforms/trustoo.md §2 item 4).
        trustoo_webhook_key_source=env.choice(
            "TRUSTOO_WEBHOOK_KEY_SOURCE", "private_token", ("private_token", "client_secret")
        ),
        wix_app_id=env.text("WIX_APP_ID"),
        wix_app_secret=env.secret("WIX_APP_SECRET", min_length=8),
        wix_api_url=env.url("WIX_API_URL", "https://www.wixapis.com"),
        wix_public_keys=_public_keys(env.text("WIX_PUBLIC_KEY")),
        wix_review_request_trigger=env.choice(
            "WIX_REVIEW_REQUEST_TRIGGER", "fulfilled", ("fulfilled", "approved", "off")
        ),
        wix_review_request_delay_s=_duration("WIX_REVIEW_REQUEST_DELAY", env.text("WIX_REVIEW_REQUEST_DELAY")),
        public_url=env.optional_url("PUBLIC_URL"),
        alert_webhook_url=env.optional_url("ALERT_WEBHOOK_URL"),
        alert_pending_age_s=_duration("ALERT_PENDING_AGE", env.text("ALERT_PENDING_AGE") or "30m"),
        alert_signature_failures=env.integer("ALERT_SIGNATURE_FAILURES", 20, low=0, high=1_000_000),
        alert_signature_window_s=_duration("ALERT_SIGNATURE_WINDOW", env.text("ALERT_SIGNATURE_WINDOW") or "5m"),
        alert_min_interval_s=_duration("ALERT_MIN_INTERVAL", env.text("ALERT_MIN_INTERVAL") or "15m"),
        worker_metrics_port=env.optional_integer("WORKER_METRICS_PORT", low=1, high=65535),
        prometheus_multiproc_dir=_directory("PROMETHEUS_MULTIPROC_DIR", env.text("PROMETHEUS_MULTIPROC_DIR")),
    )
    ctp = {
        "CTP_PROJECT_KEY": settings.ctp_project_key,
        "CTP_CLIENT_ID": settings.ctp_client_id,
        "CTP_CLIENT_SECRET": settings.ctp_client_secret,
    }
    if any(ctp.values()) and not all(ctp.values()):
        missing = next(name for name, value in ctp.items() if not value)
        raise SettingsError(missing, "is required when the other CTP_* credentials are set")
    if any(target == "trustoo" for _, target in settings.routes) and not (
        settings.trustoo_target_shop or settings.trustoo_public_token
    ):
        raise SettingsError(
            "TRUSTOO_TARGET_SHOP",
            "is required when ROUTES sends reviews to Trustoo "
            "(the shop to write them into; TRUSTOO_PUBLIC_TOKEN's shop by default)",
        )
    if bool(settings.wix_app_id) != bool(settings.wix_app_secret):
        missing = "WIX_APP_SECRET" if settings.wix_app_id else "WIX_APP_ID"
        raise SettingsError(missing, "is required when the other Wix app variable is set")
    if settings.trustoo_webhook_key_source == "client_secret" and not settings.trustoo_client_secret:
        raise SettingsError(
            "TRUSTOO_WEBHOOK_KEY_SOURCE", "client_secret needs TRUSTOO_CLIENT_ID and TRUSTOO_CLIENT_SECRET"
        )
    if bool(settings.trustoo_client_id) != bool(settings.trustoo_client_secret):
        missing = "TRUSTOO_CLIENT_SECRET" if settings.trustoo_client_id else "TRUSTOO_CLIENT_ID"
        raise SettingsError(missing, "is required when the other Trustoo OAuth variable is set")
    if settings.secret_key_fallbacks and not settings.secret_key:
        raise SettingsError("SECRET_KEY", "is required when SECRET_KEY_FALLBACKS is set (the key that replaces them)")
    if settings.alert_signature_failures and not settings.alert_signature_window_s:
        raise SettingsError("ALERT_SIGNATURE_WINDOW", "must be longer than 0 while ALERT_SIGNATURE_FAILURES is set")
    if bool(settings.trustoo_public_token) != bool(settings.trustoo_private_tokens):
        missing = "TRUSTOO_PRIVATE_TOKEN" if settings.trustoo_public_token else "TRUSTOO_PUBLIC_TOKEN"
        raise SettingsError(missing, "is required when the other Trustoo token is set")
    return settings


_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.S)
_DURATION = re.compile(r"(\d+)\s*([smhd]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _public_keys(value: str | None) -> tuple[str, ...]:
    """WIX_PUBLIC_KEY: one PEM or several (a rotation overlap), with real or literal \\n line breaks."""
    if value is None:
        return ()
    text = value.replace("\\n", "\n")
    keys = tuple(match.group(0) for match in _PEM.finditer(text))
    if not keys:
        raise SettingsError("WIX_PUBLIC_KEY", "holds no -----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY----- block")
    return keys


def _duration(name: str, value: str | None) -> int:
    """Seconds, or a number with s, m, h or d: 90, 15m, 72h, 3d."""
    if value is None:
        return 0
    match = _DURATION.fullmatch(value.strip().lower())
    if match is None:
        raise SettingsError(name, f"{value!r} is not a duration like 90, 15m, 72h or 3d")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def forwarded_allow_ips(value: str | None) -> tuple[str, ...]:
    """FORWARDED_ALLOW_IPS as gunicorn reads it: comma-separated addresses or networks, or "*".
    Public for gunicorn.conf.py, which needs this one setting before the rest can be read."""
    if value is None:
        return DEFAULT_FORWARDED_ALLOW_IPS
    entries = tuple(part.strip() for part in value.split(",") if part.strip())
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry)
        except ValueError:
            raise SettingsError(
                "FORWARDED_ALLOW_IPS", f"{entry!r} is not an IP address, a network like 10.0.0.0/8, or *"
            ) from None
    return entries or DEFAULT_FORWARDED_ALLOW_IPS


def log_format(value: str | None) -> str:
    """LOG_FORMAT, for gunicorn.conf.py: its own lines follow the app's format (app/web/gunicorn_logs.py)."""
    return Env({"LOG_FORMAT": value or ""}).choice("LOG_FORMAT", "text", _LOG_FORMATS)


def kept_secrets(environ: Mapping[str, str] | None = None, *, create: bool = False) -> KeptSecrets:
    """The embedded mode's ADMIN_TOKEN and SECRET_KEY, kept beside its SQLite database for what
    `environ` (default: os.environ) leaves unset; `create` makes the missing ones (app/config_instance.py)."""
    environ = os.environ if environ is None else environ
    try:
        database_url = _database_url(Env(environ).text("DATABASE_URL"))
    except SettingsError:
        return KeptSecrets(environ)  # load_settings names the bad variable
    return keep_secrets(database_url, environ, create=create)


def _directory(name: str, value: str | None) -> str | None:
    # prometheus_client would fail at the first counter, far from the cause, on a folder that is not there.
    if value is not None and not Path(value).is_dir():
        raise SettingsError(name, f"{value!r} is not a directory")
    return value


#: The platforms reviews (and webhooks) come from.
SOURCES = ("trustoo", "wix")
_TARGETS = ("commercetools", "trustoo")


def _routes(value: str | None) -> tuple[tuple[str, str], ...]:
    """ROUTES: comma-separated source:target pairs, e.g. trustoo:commercetools,wix:trustoo."""
    if value is None:
        return (("trustoo", "commercetools"), ("wix", "commercetools"))
    routes = []
    for part in value.split(","):
        source, _, target = part.strip().partition(":")
        if source not in SOURCES or target not in _TARGETS or source == target:
            raise SettingsError(
                "ROUTES",
                f"{part.strip()!r} is not source:target with a source in "
                f"{', '.join(SOURCES)} and another platform of {', '.join(_TARGETS)} as target",
            )
        routes.append((source, target))
    return tuple(dict.fromkeys(routes))


def _source_precedence(value: str | None) -> tuple[str, ...]:
    """SOURCE_PRECEDENCE: comma-separated sources, first first; a source left out comes after those named."""
    named = [part.strip() for part in (value or "").split(",") if part.strip()]
    unknown = [name for name in named if name not in SOURCES]
    if unknown:
        raise SettingsError(
            "SOURCE_PRECEDENCE", f"{', '.join(map(repr, unknown))}: not a source; the sources are {', '.join(SOURCES)}"
        )
    return tuple(dict.fromkeys([*named, *SOURCES]))


_TEMPLATE_FIELDS = {"source": "trustoo", "account": "shop", "source_product_id": "1", "sku": "s", "handle": "h"}


def _product_key_template(value: str | None) -> str:
    template = value or "{source_product_id}"
    try:
        template.format(**_TEMPLATE_FIELDS)
    except (KeyError, IndexError, ValueError) as exc:
        raise SettingsError(
            "CTP_PRODUCT_KEY_TEMPLATE", f"{template!r} is not a template over {', '.join(_TEMPLATE_FIELDS)} ({exc})"
        ) from None
    return template


def _database_url(value: str | None) -> str:
    if not value:
        return f"sqlite:///{(Path.cwd() / DEFAULT_SQLITE_PATH).as_posix()}"
    # A PaaS hands out postgres://; SQLAlchemy knows only postgresql, and we drive it with psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            value = "postgresql+psycopg://" + value[len(prefix) :]
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise SettingsError("DATABASE_URL", "is not a database URL") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise SettingsError("DATABASE_URL", "must be a sqlite:// or postgres:// URL")
    return value
