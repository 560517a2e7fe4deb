"""load_settings with explicit environ dicts: typed defaults, one named variable per bad value,
and no secret in any message, repr or start-up description."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from app.config import Settings, SettingsError, load_settings

ADMIN_TOKEN = "admin-token-d41d8cd98f00b204e9800998"
SECRET_KEY = "secret-key-e9800998ecf8427e"
PRIVATE_TOKEN = "trustoo-private-7f3c9b1d2e4a"
OLD_PRIVATE_TOKEN = "trustoo-private-old-5a6b7c8d"
DB_PASSWORD = "pg-pass-Zq81xLw0"
CTP_CLIENT_SECRET = "ctp-secret-0a1b2c3d4e5f"
OLD_SECRET_KEY = "secret-key-before-rotation-31c4"
ALERT_TOKEN = "slackhooktoken9f8e7d6c5b4a"
SECRETS = (
    ADMIN_TOKEN,
    SECRET_KEY,
    OLD_SECRET_KEY,
    PRIVATE_TOKEN,
    OLD_PRIVATE_TOKEN,
    DB_PASSWORD,
    CTP_CLIENT_SECRET,
    ALERT_TOKEN,
)


#: Each is refused as ADMIN_TOKEN, for a different reason.
WEAK_ADMIN_TOKENS = (
    "Kq3vN8xZ-p2LmR7tYw4sB9dF1gH6jC0e"[:31],
    "abab-1212-abab-1212-abab-1212-abab-1212",
    "Tr0ub4dor&3-" * 3,
    "abcdefghijklmnopqrstuvwxyz0123456789",
    "qwert-yuiop-asdfg-hjklz-xcvbn-mqwer",
)


def _full_environ(**overrides: str) -> dict[str, str]:
    environ = {
        "DATABASE_URL": f"postgres://reviewbridge:{DB_PASSWORD}@db.internal:5432/reviewbridge",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "SECRET_KEY": SECRET_KEY,
        "SECRET_KEY_FALLBACKS": OLD_SECRET_KEY,
        "TRUSTOO_PUBLIC_TOKEN": "GfKu22TCaj4gULtrA3/OgA==",
        "TRUSTOO_PRIVATE_TOKEN": f"{PRIVATE_TOKEN},{OLD_PRIVATE_TOKEN}",
        "CTP_PROJECT_KEY": "example-shop",
        "CTP_CLIENT_ID": "reviewbridge-client",
        "CTP_CLIENT_SECRET": CTP_CLIENT_SECRET,
        "ALERT_WEBHOOK_URL": f"https://hooks.slack.com/services/T0A1B2C3D/B0A1B2C3D/{ALERT_TOKEN}",
    }
    environ.update(overrides)
    return environ


# --- defaults ------------------------------------------------------------------------------


@pytest.fixture
def defaults() -> Settings:
    return load_settings({})


def test_settings_default_port_is_8000(defaults):
    assert defaults.port == 8000


def test_settings_default_log_format_is_text(defaults):
    assert defaults.log_format == "text"


def test_settings_log_format_json_is_accepted():
    assert load_settings({"LOG_FORMAT": "json"}).log_format == "json"


def test_settings_default_webhook_limit_is_one_mebibyte(defaults):
    assert defaults.webhook_max_bytes == 1024 * 1024


def test_settings_default_max_attempts_is_12(defaults):
    assert defaults.max_attempts == 12


def test_settings_default_rate_limits_are_the_platforms_own_and_none_for_commercetools(defaults):
    assert (defaults.trustoo_rate_limit, defaults.wix_rate_limit, defaults.ctp_rate_limit) == (2.0, 200, 0.0)


def test_settings_rate_limits_are_read_per_platform():
    settings = load_settings({"TRUSTOO_RATE_LIMIT": "0.5", "WIX_RATE_LIMIT": "150", "CTP_RATE_LIMIT": "40"})
    assert (settings.trustoo_rate_limit, settings.wix_rate_limit, settings.ctp_rate_limit) == (0.5, 150, 40.0)


def test_settings_default_database_is_sqlite_under_instance(defaults):
    assert defaults.is_sqlite
    assert defaults.database_url.endswith("instance/reviewbridge.db")


def test_settings_default_sqlite_path_is_absolute(defaults):
    assert Path(defaults.database_url.removeprefix("sqlite:///")).is_absolute()


def test_settings_default_has_trustoo_webhooks_off(defaults):
    assert (defaults.trustoo_public_token, defaults.trustoo_private_tokens) == (None, ())


def test_settings_empty_value_counts_as_unset():
    assert load_settings({"PORT": "", "LOG_FORMAT": "  "}).port == 8000


# --- database URL --------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgres://", "postgresql://"])
def test_settings_postgres_url_uses_psycopg_driver(scheme):
    settings = load_settings({"DATABASE_URL": f"{scheme}rb:pw@db:5432/reviewbridge"})

    assert settings.database_url == "postgresql+psycopg://rb:pw@db:5432/reviewbridge"


def test_settings_sqlite_url_is_kept():
    assert load_settings({"DATABASE_URL": "sqlite:////tmp/rb.db"}).database_url == "sqlite:////tmp/rb.db"


# --- lists and tokens ----------------------------------------------------------------------


def test_settings_private_tokens_split_on_commas_into_tuple():
    settings = load_settings({"TRUSTOO_PUBLIC_TOKEN": "pub", "TRUSTOO_PRIVATE_TOKEN": "a,b"})

    assert settings.trustoo_private_tokens == ("a", "b")


def test_settings_private_tokens_are_stripped():
    settings = load_settings({"TRUSTOO_PUBLIC_TOKEN": "pub", "TRUSTOO_PRIVATE_TOKEN": " a , b "})

    assert settings.trustoo_private_tokens == ("a", "b")


def test_settings_log_level_is_case_insensitive():
    assert load_settings({"LOG_LEVEL": "debug"}).log_level == "DEBUG"


def test_settings_api_url_trailing_slash_is_dropped():
    assert load_settings({"TRUSTOO_API_URL": "https://rapi.trustoo.io/"}).trustoo_api_url == "https://rapi.trustoo.io"


# --- alerts and metrics ----------------------------------------------------------------------


def test_settings_default_alerts_are_off_with_sane_thresholds(defaults):
    assert defaults.alert_webhook_url is None
    assert (defaults.alert_pending_age_s, defaults.alert_signature_failures, defaults.alert_signature_window_s) == (
        1800,
        20,
        300,
    )
    assert defaults.alert_min_interval_s == 900


def test_settings_alert_durations_take_units():
    settings = load_settings({"ALERT_PENDING_AGE": "2h", "ALERT_SIGNATURE_WINDOW": "90", "ALERT_MIN_INTERVAL": "1d"})

    assert (settings.alert_pending_age_s, settings.alert_signature_window_s, settings.alert_min_interval_s) == (
        7200,
        90,
        86400,
    )


def test_settings_alert_webhook_url_is_kept_exactly():
    url = f"https://hooks.slack.com/services/T0/B0/{ALERT_TOKEN}/"

    assert load_settings({"ALERT_WEBHOOK_URL": url}).alert_webhook_url == url


def test_settings_default_trusts_forwarded_headers_from_this_machine_only_and_leaves_secure_to_https(defaults):
    assert defaults.forwarded_allow_ips == ("127.0.0.1", "::1") and defaults.session_cookie_secure is False


def test_settings_forwarded_allow_ips_takes_addresses_networks_or_anyone():
    settings = load_settings({"FORWARDED_ALLOW_IPS": " 10.0.0.0/8, fd00::1 ,", "SESSION_COOKIE_SECURE": "yes"})
    assert settings.forwarded_allow_ips == ("10.0.0.0/8", "fd00::1") and settings.session_cookie_secure is True
    assert load_settings({"FORWARDED_ALLOW_IPS": "*"}).forwarded_allow_ips == ("*",)


def test_settings_default_worker_metrics_and_multiprocess_dir_are_unset(defaults):
    assert (defaults.worker_metrics_port, defaults.prometheus_multiproc_dir) == (None, None)


def test_settings_worker_metrics_port_and_multiprocess_dir_are_read(tmp_path):
    settings = load_settings({"WORKER_METRICS_PORT": "9100", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})

    assert (settings.worker_metrics_port, settings.prometheus_multiproc_dir) == (9100, str(tmp_path))


# --- bad values ----------------------------------------------------------------------------


BAD_VALUES = [
    ("PORT", {"PORT": "abc"}),
    ("PORT", {"PORT": "0"}),
    ("PORT", {"PORT": "65536"}),
    ("LOG_FORMAT", {"LOG_FORMAT": "xml"}),
    ("LOG_LEVEL", {"LOG_LEVEL": "loud"}),
    ("WORKER_CONCURRENCY", {"WORKER_CONCURRENCY": "0"}),
    ("MAX_ATTEMPTS", {"MAX_ATTEMPTS": "-1"}),
    ("RETENTION_DAYS", {"RETENTION_DAYS": "0"}),
    ("RETENTION_DAYS", {"RETENTION_DAYS": "a month"}),
    ("SECRET_KEY_FALLBACKS", {"SECRET_KEY_FALLBACKS": "short-old-key"}),
    ("SECRET_KEY", {"SECRET_KEY": "", "SECRET_KEY_FALLBACKS": "an-old-secret-key-0123456789"}),
    ("WEBHOOK_MAX_BYTES", {"WEBHOOK_MAX_BYTES": "big"}),
    ("WIX_RATE_LIMIT", {"WIX_RATE_LIMIT": "0"}),
    ("WIX_RATE_LIMIT", {"WIX_RATE_LIMIT": "3.5"}),
    ("CTP_RATE_LIMIT", {"CTP_RATE_LIMIT": "-1"}),
    ("RETRY_BASE_S", {"RETRY_BASE_S": "nan"}),
    ("DATABASE_URL", {"DATABASE_URL": "mysql://x"}),
    ("DATABASE_URL", {"DATABASE_URL": f"mysql://rb:{DB_PASSWORD}@db/reviewbridge"}),
    ("DATABASE_URL", {"DATABASE_URL": f"postgres://rb:{DB_PASSWORD}@db:notaport/reviewbridge"}),
    ("DATABASE_URL", {"DATABASE_URL": "not a url"}),
    ("TRUSTOO_API_URL", {"TRUSTOO_API_URL": "ftp://x"}),
    ("TRUSTOO_PRIVATE_TOKEN", {"TRUSTOO_PRIVATE_TOKEN": f"{PRIVATE_TOKEN},,{OLD_PRIVATE_TOKEN}"}),
    ("TRUSTOO_PRIVATE_TOKEN", {"TRUSTOO_PRIVATE_TOKEN": f"{PRIVATE_TOKEN},"}),
    ("ADMIN_TOKEN", {"ADMIN_TOKEN": "short-admin"}),
    *(("ADMIN_TOKEN", {"ADMIN_TOKEN": token}) for token in WEAK_ADMIN_TOKENS),
    ("SECRET_KEY", {"SECRET_KEY": "short-key"}),
    ("TRUSTOO_PRIVATE_TOKEN", {"TRUSTOO_PRIVATE_TOKEN": ""}),
    ("TRUSTOO_PUBLIC_TOKEN", {"TRUSTOO_PUBLIC_TOKEN": ""}),
    ("CTP_CLIENT_SECRET", {"CTP_CLIENT_SECRET": ""}),
    ("ALERT_WEBHOOK_URL", {"ALERT_WEBHOOK_URL": f"hooks.slack.com/services/T0/B0/{ALERT_TOKEN}"}),
    ("ALERT_WEBHOOK_URL", {"ALERT_WEBHOOK_URL": f"ftp://hooks.slack.com/{ALERT_TOKEN}"}),
    ("ALERT_WEBHOOK_URL", {"ALERT_WEBHOOK_URL": f"https://[{ALERT_TOKEN}/x"}),
    ("PUBLIC_URL", {"PUBLIC_URL": "reviews.example.com"}),
    ("ALERT_PENDING_AGE", {"ALERT_PENDING_AGE": "soon"}),
    ("ALERT_SIGNATURE_FAILURES", {"ALERT_SIGNATURE_FAILURES": "-1"}),
    ("ALERT_SIGNATURE_WINDOW", {"ALERT_SIGNATURE_WINDOW": "0"}),
    ("WORKER_METRICS_PORT", {"WORKER_METRICS_PORT": "0"}),
    ("PROMETHEUS_MULTIPROC_DIR", {"PROMETHEUS_MULTIPROC_DIR": "/nonexistent/reviewbridge-metrics"}),
    ("FORWARDED_ALLOW_IPS", {"FORWARDED_ALLOW_IPS": "127.0.0.1,router.internal"}),
    ("FORWARDED_ALLOW_IPS", {"FORWARDED_ALLOW_IPS": "10.0.0.5/8"}),
    ("SESSION_COOKIE_SECURE", {"SESSION_COOKIE_SECURE": "maybe"}),
]
BAD_IDS = [
    "port-abc",
    "port-0",
    "port-65536",
    "log-format-xml",
    "log-level-loud",
    "concurrency-0",
    "attempts-minus-1",
    "retention-0",
    "retention-words",
    "fallback-key-short",
    "fallbacks-without-secret-key",
    "max-bytes-big",
    "wix-rate-0",
    "wix-rate-fraction",
    "ctp-rate-negative",
    "retry-base-nan",
    "mysql",
    "mysql-with-password",
    "bad-port-with-password",
    "not-a-url",
    "api-ftp",
    "private-token-empty-entry",
    "private-token-trailing-comma",
    "admin-token-short",
    "admin-token-31-characters",
    "admin-token-few-characters",
    "admin-token-repeated-pattern",
    "admin-token-alphabet-run",
    "admin-token-keyboard-run-with-dashes",
    "secret-key-short",
    "only-public-token",
    "only-private-token",
    "ctp-without-secret",
    "alert-url-without-scheme",
    "alert-url-ftp",
    "alert-url-broken-host",
    "public-url-without-scheme",
    "alert-pending-age-words",
    "alert-signature-failures-negative",
    "alert-signature-window-0",
    "worker-metrics-port-0",
    "multiproc-dir-missing",
    "forwarded-allow-ips-host-name",
    "forwarded-allow-ips-network-with-host-bits",
    "session-cookie-secure-maybe",
]


@pytest.mark.parametrize("variable, overrides", BAD_VALUES, ids=BAD_IDS)
def test_settings_bad_value_names_the_variable(variable, overrides):
    with pytest.raises(SettingsError) as caught:
        load_settings(_full_environ(**overrides))

    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


@pytest.mark.parametrize("variable, overrides", BAD_VALUES, ids=BAD_IDS)
def test_settings_bad_value_message_holds_no_secret(variable, overrides):
    with pytest.raises(SettingsError) as caught:
        load_settings(_full_environ(**overrides))

    given_secrets = (*SECRETS, "short-admin", "short-key", *WEAK_ADMIN_TOKENS)
    assert not [secret for secret in given_secrets if secret in str(caught.value)]


@pytest.mark.parametrize("token", WEAK_ADMIN_TOKENS)
def test_settings_weak_admin_token_stops_start_up_saying_how_to_generate_one(token):
    with pytest.raises(SettingsError) as caught:
        load_settings({"ADMIN_TOKEN": token})

    assert str(caught.value).startswith("ADMIN_TOKEN: ") and token not in str(caught.value)
    assert "python -c 'import secrets; print(secrets.token_urlsafe(32))'" in str(caught.value)


def test_settings_admin_token_as_the_message_says_to_generate_it_is_accepted():
    for _ in range(200):
        token = secrets.token_urlsafe(32)
        assert load_settings({"ADMIN_TOKEN": token}).admin_token == token
    assert load_settings({"ADMIN_TOKEN": secrets.token_hex(32)}).admin_token  # app.json's generator: 64 hex


# --- secrets stay out of repr and describe ---------------------------------------------------


@pytest.fixture
def full() -> Settings:
    return load_settings(_full_environ())


def test_settings_full_environ_loads_every_secret(full):
    # The guard for the two tests below: the secrets really are in the settings.
    assert (full.admin_token, full.secret_key, full.trustoo_private_tokens, full.ctp_client_secret) == (
        ADMIN_TOKEN,
        SECRET_KEY,
        (PRIVATE_TOKEN, OLD_PRIVATE_TOKEN),
        CTP_CLIENT_SECRET,
    )
    assert DB_PASSWORD in full.database_url


@pytest.mark.parametrize("secret", SECRETS)
def test_settings_repr_holds_no_secret(full, secret):
    assert secret not in repr(full)


@pytest.mark.parametrize("secret", SECRETS)
def test_settings_describe_holds_no_secret(full, secret):
    assert secret not in "\n".join(full.describe())


def test_settings_describe_reports_what_is_configured(full):
    description = "\n".join(full.describe())

    assert "trustoo webhooks: on (1 shop, 2 private token(s)" in description
    assert "db.internal" in description
    assert "alerts: on" in description
