"""Dashboard and connection checks."""

from __future__ import annotations

from app import dashboard as dashboards
from app.admin_page.auth import bp, render
from app.runtime import runtime

__all__ = ["dashboard"]


@bp.get("")
def dashboard():
    rt = runtime()
    board = dashboards.read_dashboard(rt.engine, [target.name for target in rt.targets], now=rt.clock())
    return render("dashboard.html", board=board, chart=dashboards.chart(board.hours), statuses=list(board.totals))
