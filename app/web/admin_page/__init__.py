"""The operator's admin page at /admin: server-rendered, behind ADMIN_TOKEN, a session and CSRF.

    auth.py          the blueprint, sign-in and sign-out, the gate every route passes, error pages
    home_views.py    dashboard and connection checks
    event_views.py   events (filter, detail, replay, discard), dead letters and waiting events
    bulk_views.py    every event the filter matches: replay or discard them after a count, export them
    run_views.py     resyncs and reconciles: start one, watch it, read its summary
    chart.py         the dashboard's last 24 hours as SVG bar geometry
    static/admin.css the page's one stylesheet (its Content-Security-Policy allows no inline style)

Views read their input, call one service function (app.core: dashboard, events, bulk, export,
products, runs, doctor) and render a template from templates/admin/; chart.py draws the dashboard's
SVG. The ids, classes and data-attributes that browser tests find elements by are fixed in
tests/browser/CONTRACT.md.
"""

from app.web.admin_page import bulk_views, event_views, home_views, run_views  # noqa: F401  (their routes join bp)
from app.web.admin_page.auth import bp

__all__ = ["bp"]
