"""Headers on every answer under /admin (the page and its JSON API, errors and redirects included).

The page is server-rendered HTML with one stylesheet of its own and no script, so its policy allows
nothing else: no inline style or script (an injected one would not run), no framing (clickjacking),
forms only to this site, and no <base> that would move relative links. Answers are never cached
(they show queue contents and carry CSRF tokens), and their URLs (which carry filters and event ids)
are never sent as a Referer, not even to this site (the CSRF check does without one: see
admin_page/auth.py).
"""

from __future__ import annotations

from flask import Flask, Response, request

__all__ = ["ADMIN_HEADERS", "init_app"]

#: `default-src 'none'` refuses every kind of resource the policy does not name below.
_POLICY = "; ".join(
    (
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
ADMIN_HEADERS = {
    "Content-Security-Policy": _POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def init_app(app: Flask) -> None:
    # On the app, not the blueprints: a 404 for an unknown /admin path belongs to no blueprint.
    app.after_request(_admin_headers)


def _admin_headers(response: Response) -> Response:
    if request.path == "/admin" or request.path.startswith("/admin/"):
        response.headers.update(ADMIN_HEADERS)
    return response
