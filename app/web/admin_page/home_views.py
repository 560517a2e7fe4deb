"""Dashboard and connection checks."""

from __future__ import annotations

from flask import abort, request

from app.bootstrap import current_services
from app.core import dashboard as dashboards
from app.core import doctor
from app.web import params
from app.web.admin_page.auth import bp, render
from app.web.admin_page.chart import chart

__all__ = ["check_connection", "connections", "dashboard"]


@bp.get("/")
def dashboard():
    services = current_services()
    account = params.text(request.args, "account")
    board = dashboards.read_dashboard(
        services.engine, [target.name for target in services.targets], now=services.clock(), account=account
    )
    return render(
        "dashboard.html",
        board=board,
        chart=chart(board.hours),
        statuses=list(board.totals),
        accounts=services.account_labels(),
        account=account,
    )


@bp.get("/connections")
def connections():
    return render("connections.html", platforms=list(doctor.PLATFORMS), results={})


@bp.post("/connections/<platform>/check")
def check_connection(platform: str):
    if platform not in doctor.PLATFORMS:
        abort(404, description=f"No platform {platform!r}; platforms: {', '.join(doctor.PLATFORMS)}.")
    checks = doctor.check_platform(current_services(), platform)
    return render("connections.html", platforms=list(doctor.PLATFORMS), results={platform: checks})
