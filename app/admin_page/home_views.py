"""Dashboard and connection checks."""

from __future__ import annotations

from flask import abort

from app import dashboard as dashboards
from app import doctor
from app.admin_page.auth import bp, render
from app.runtime import runtime

__all__ = ["check_connection", "connections", "dashboard"]


@bp.get("/")
def dashboard():
    rt = runtime()
    board = dashboards.read_dashboard(rt.engine, [target.name for target in rt.targets], now=rt.clock())
    return render("dashboard.html", board=board, chart=dashboards.chart(board.hours), statuses=list(board.totals))


@bp.get("/connections")
def connections():
    return render("connections.html", platforms=list(doctor.PLATFORMS), results={})


@bp.post("/connections/<platform>/check")
def check_connection(platform: str):
    if platform not in doctor.PLATFORMS:
        abort(404, description=f"No platform {platform!r}; platforms: {', '.join(doctor.PLATFORMS)}.")
    checks = doctor.check_platform(runtime(), platform)
    return render("connections.html", platforms=list(doctor.PLATFORMS), results={platform: checks})
