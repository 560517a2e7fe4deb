"""The admin page's blueprint and its gate: sign-in with ADMIN_TOKEN, a signed session, CSRF, errors.

Without ADMIN_TOKEN the page answers 404; with it but without SECRET_KEY (which signs the session)
it answers 503 and says so, rather than run with a weak key. Every other route needs the session
cookie (a GET without it goes to the sign-in form, anything else is refused the same way) and every
POST a CSRF token. CSRFProtect guards this blueprint only: webhooks, the JSON API and OAuth never
see it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from app.bootstrap import current_services
from app.config import Settings

__all__ = ["bp", "render"]

bp = Blueprint("admin_page", __name__, url_prefix="/admin", template_folder="templates")
log = logging.getLogger(__name__)

SESSION_LIFETIME = timedelta(hours=12)
_SESSION_KEY = "admin"
_OPEN_ENDPOINTS = ("admin_page.login",)


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, marked Secure whenever the request came over https."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


@bp.record_once
def _configure(state) -> None:
    """Session and CSRF settings for the app; only this page uses the session."""
    app = state.app
    for name, value in (
        ("SESSION_COOKIE_HTTPONLY", True),
        ("SESSION_COOKIE_SAMESITE", "Lax"),
        ("SESSION_COOKIE_PATH", "/admin"),
        ("PERMANENT_SESSION_LIFETIME", SESSION_LIFETIME),
        ("WTF_CSRF_CHECK_DEFAULT", False),  # only this blueprint calls protect()
        ("WTF_CSRF_TIME_LIMIT", None),
    ):  # the token lives as long as the session it is in
        app.config[name] = value
    app.session_interface = _SessionInterface()
    CSRFProtect(app)  # registers itself as app.extensions["csrf"] and csrf_token() in the templates


@bp.before_request
def _gate():
    settings = current_services().settings
    if not settings.admin_token:
        return _refuse(404, "The admin page is off: set ADMIN_TOKEN (16+ characters) to turn it on.")
    if not settings.secret_key:
        return _refuse(
            503, "The admin page needs SECRET_KEY (16+ characters), which signs its session cookie: set it and restart."
        )
    if request.endpoint not in _OPEN_ENDPOINTS and not _signed_in(settings):
        where = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("admin_page.login", next=where))
    current_app.extensions["csrf"].protect()  # POST, PUT, PATCH, DELETE; a failure is a CSRFError (400)
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    settings = current_services().settings
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if _signed_in(settings):
            return redirect(target)
        return render("login.html", next=target)
    given = request.form.get("token", "")
    # compare_digest on bytes: constant time, and no TypeError on non-ASCII input.
    if not hmac.compare_digest(given.encode(), settings.admin_token.encode()):
        log.warning("admin page: refused a sign-in from %s (wrong token)", request.remote_addr)
        return render("login.html", next=target, error="That is not the admin token (ADMIN_TOKEN)."), 401
    session.clear()  # a fresh session: nothing from before the sign-in carries over
    session.permanent = True
    session[_SESSION_KEY] = _mark(settings)
    return redirect(target)


@bp.post("/logout")
def logout():
    session.clear()
    flash("Signed out.")
    return redirect(url_for("admin_page.login"))


@bp.errorhandler(HTTPException)
def _error(exc: HTTPException):
    if isinstance(exc, CSRFError):
        description = (
            f"This form could not be accepted ({exc.description.rstrip('.').lower()}): reload the page "
            f"and send it again."
        )
    else:
        description = exc.description
    return _refuse(exc.code or 500, description)


@bp.context_processor
def _helpers() -> dict:
    settings = current_services().settings
    signed_in = bool(settings.admin_token and settings.secret_key) and _signed_in(settings)
    return {"when": _when, "ago": _ago, "signed_in": signed_in}


def render(template: str, **context):
    """A page of this blueprint (templates live in admin/)."""
    return render_template(f"admin/{template}", **context)


def _refuse(code: int, message: str):
    return render("error.html", code=code, message=message), code


def _mark(settings: Settings) -> str:
    """What the session holds: bound to both ADMIN_TOKEN and SECRET_KEY, so changing either signs everyone out."""
    return hmac.new(
        settings.secret_key.encode(), b"admin-page\0" + settings.admin_token.encode(), hashlib.sha256
    ).hexdigest()


def _signed_in(settings: Settings) -> bool:
    held = session.get(_SESSION_KEY)
    return isinstance(held, str) and hmac.compare_digest(held.encode(), _mark(settings).encode())


def _safe_next(raw: str | None) -> str:
    """Back to the page asked for, but only to a page of this blueprint (never another site). A control
    character is refused outright: urlsplit drops CR, LF and tab before it looks, but a redirect's
    Location header cannot hold them."""
    if raw and any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raw = None
    parts = urlsplit(raw or "")
    if (
        raw
        and not parts.scheme
        and not parts.netloc
        and parts.path.startswith("/admin")
        and not parts.path.startswith("/admin/api")
        and "\\" not in raw
    ):
        return raw
    return url_for("admin_page.dashboard")


def _when(value) -> str:
    """A time as the page shows it: UTC, to the second."""
    moment = _moment(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def _ago(value, now: datetime | None = None) -> str:
    moment = _moment(value)
    if moment is None:
        return "—"
    seconds = int(((now or current_services().clock()) - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _moment(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
