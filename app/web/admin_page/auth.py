"""The admin page's blueprint and its gate: sign-in with ADMIN_TOKEN, a session, CSRF, errors.

Without ADMIN_TOKEN the page answers 404; with it but without SECRET_KEY (which signs the session)
it answers 503 and says so, rather than run with a weak key. Every other route needs a session
(a GET without it goes to the sign-in form, anything else is refused the same way) and every POST
a CSRF token. CSRFProtect guards this blueprint only: webhooks, the JSON API and OAuth never see it.
Its https Referer check is off because the page sends no Referer at all (`Referrer-Policy: no-referrer`);
in its place a form a browser marks as sent from another site (`Sec-Fetch-Site`) is refused, token or
not, and the session cookie is SameSite=Lax.

A session is a row of the database (app/core/admin_sessions.py) named by a random id, which Flask's
signed session cookie carries. The cookie stays Flask's because CSRF tokens and flash messages live
in it too; the signature adds nothing the random id lacks, but costs nothing. Sign-out, `reviewbridge
admin sessions clear` and a new ADMIN_TOKEN end sessions by their row, so a copied cookie dies with
it; a session ends ADMIN_SESSION_HOURS after sign-in however much it is used. Wrong tokens count
towards the sign-in limit (app/web/sign_in_limit.py).
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from app.bootstrap import current_services, services_of
from app.core import admin_sessions
from app.core.services import Services
from app.web import sign_in_limit

__all__ = ["bp", "render"]

# The stylesheet is the blueprint's own static file: the page's CSP allows no inline style.
bp = Blueprint("admin_page", __name__, url_prefix="/admin", template_folder="templates", static_folder="static")
log = logging.getLogger(__name__)

_SESSION_KEY = "admin"  # the session's random id
_ENDS_KEY = "admin_ends"  # when it ends (epoch seconds), so that the cookie ends with it
_OPEN_ENDPOINTS = ("admin_page.login",)
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_OWN_SITE = ("same-origin", "none")  # Sec-Fetch-Site values of this page's own forms and of a typed URL


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, marked Secure whenever the request came over https, and ending
    when the admin session it carries ends, whenever the cookie is written again (a flash message)."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)

    def get_expiration_time(self, app, session) -> datetime | None:
        ends = session.get(_ENDS_KEY)
        return datetime.fromtimestamp(ends, UTC) if isinstance(ends, int) else super().get_expiration_time(app, session)


@bp.record_once
def _configure(state) -> None:
    """Session and CSRF settings for the app; only this page uses the session."""
    app = state.app
    for name, value in (
        ("SESSION_COOKIE_HTTPONLY", True),
        ("SESSION_COOKIE_SAMESITE", "Lax"),
        ("SESSION_COOKIE_PATH", "/admin"),
        ("PERMANENT_SESSION_LIFETIME", timedelta(hours=services_of(app).settings.admin_session_hours)),
        ("SESSION_REFRESH_EACH_REQUEST", False),  # using a session does not extend it
        ("WTF_CSRF_CHECK_DEFAULT", False),  # only this blueprint calls protect()
        ("WTF_CSRF_TIME_LIMIT", None),  # the token lives as long as the session it is in
        ("WTF_CSRF_SSL_STRICT", False),  # no Referer to check: see the module's docstring
    ):
        app.config[name] = value
    app.session_interface = _SessionInterface()
    CSRFProtect(app)  # registers itself as app.extensions["csrf"] and csrf_token() in the templates


@bp.before_request
def _gate():
    if request.endpoint == "admin_page.static":
        return None  # the stylesheet: public, and the sign-in and error pages need it too
    settings = current_services().settings
    if not settings.admin_token:
        return _refuse(404, "The admin page is off: set ADMIN_TOKEN (32+ characters) to turn it on.")
    if not settings.secret_key:
        return _refuse(
            503, "The admin page needs SECRET_KEY (16+ characters), which signs its session cookie: set it and restart."
        )
    if request.endpoint not in _OPEN_ENDPOINTS and not _signed_in():
        where = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("admin_page.login", next=where))
    if request.method not in _SAFE_METHODS and request.headers.get("Sec-Fetch-Site", "same-origin") not in _OWN_SITE:
        raise CSRFError("The form was sent from another site.")
    current_app.extensions["csrf"].protect()  # POST, PUT, PATCH, DELETE; a failure is a CSRFError (400)
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    services = current_services()
    target = _safe_next(request.values.get("next"))
    if request.method != "POST":  # GET, and HEAD (which Flask routes here too): the form, never a sign-in
        if _signed_in():
            return redirect(target)
        return render("login.html", next=target)
    try:
        standing = sign_in_limit.admit(services)
    except sign_in_limit.TooManyAttempts as exc:
        return render("login.html", next=target, error=str(exc)), 429, {"Retry-After": exc.retry_after}
    given, token = request.form.get("token", ""), services.settings.admin_token or ""
    # compare_digest on bytes: constant time, and no TypeError on non-ASCII input.
    if not hmac.compare_digest(given.encode(), token.encode()):
        wait_s = sign_in_limit.failed(services)
        log.warning("admin page: refused a sign-in from %s (wrong token)", request.remote_addr)
        error = "That is not the admin token (ADMIN_TOKEN)."
        if wait_s:
            error += f" Too many wrong tries: wait {wait_s:.0f} s before the next one."
        return render("login.html", next=target, error=error), 401
    sign_in_limit.succeeded(services, standing)
    _start_session(services)
    return redirect(target)


@bp.post("/logout")
def logout():
    _end_session()
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
    signed_in = bool(settings.admin_token and settings.secret_key) and _signed_in()
    return {"when": _when, "ago": _ago, "signed_in": signed_in, "session_hours": settings.admin_session_hours}


def render(template: str, **context):
    """A page of this blueprint (templates live in admin/)."""
    return render_template(f"admin/{template}", **context)


def _refuse(code: int, message: str):
    return render("error.html", code=code, message=message), code


def _signed_in() -> bool:
    """Whether the cookie names a session that counts (asked once per request: the gate and the page)."""
    if "admin_signed_in" not in g:
        services, held = current_services(), session.get(_SESSION_KEY)
        g.admin_signed_in = isinstance(held, str) and admin_sessions.is_valid(
            services.engine, held, services.settings.admin_token or "", now=services.clock()
        )
    return g.admin_signed_in


def _start_session(services: Services) -> None:
    _end_session()  # a fresh session: nothing from before the sign-in carries over
    opened = admin_sessions.start(
        services.engine,
        services.settings.admin_token or "",
        now=services.clock(),
        lifetime=timedelta(hours=services.settings.admin_session_hours),
        client_address=request.remote_addr,
        user_agent=request.user_agent.string,
    )
    session.permanent = True
    session[_SESSION_KEY], session[_ENDS_KEY] = opened.id, int(opened.expires_at.timestamp())


def _end_session() -> None:
    held = session.get(_SESSION_KEY)
    if isinstance(held, str):
        admin_sessions.end(current_services().engine, held)
    session.clear()
    g.admin_signed_in = False


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
