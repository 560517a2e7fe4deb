"""Resyncs, reconciles and rollbacks: queue one for the worker, watch its progress, read its summary,
drifts and put-back reviews."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for

from app.bootstrap import current_services
from app.core import resync as resyncing
from app.core import rollback as rolling
from app.core import runs
from app.web import params
from app.web.admin_page.auth import bp, render

__all__ = ["run", "runs_page", "start_reconcile", "start_resync", "start_rollback"]


@bp.get("/runs")
def runs_page():
    services = current_services()
    recent = runs.recent(services.engine, now=services.clock())
    checkpoints = runs.describe_resyncs(
        services.engine, resyncing.checkpoints(services.engine), source=None, account=None, now=services.clock()
    )
    sources = list(services.review_sources())
    return render(
        "runs.html",
        runs=recent,
        checkpoints=checkpoints,
        sources=sources,
        running=any(r.running for r in recent),
        accounts=services.account_labels(),
    )


@bp.get("/runs/<int:run_id>")
def run(run_id: int):
    services = current_services()
    found = runs.get(services.engine, run_id, now=services.clock()) if run_id < 2**63 else None
    if found is None:
        abort(404, description=f"There is no run {run_id}.")
    return render("run.html", run=found, drift_rows=runs.DRIFT_ROWS, accounts=services.account_labels())


@bp.post("/runs/resync")
def start_resync():
    services, form = current_services(), request.form
    source, account = params.text(form, "source"), params.text(form, "account")
    options = {
        "since": params.when(form, "since"),
        "until": params.when(form, "until"),
        "dry_run": _checked("dry_run"),
        "restart": _checked("restart"),
    }
    try:
        _, accounts = runs.resync_plan(services, source, account)
        runs.request(services.engine, runs.RESYNC, source, accounts, options, now=services.clock())
    except runs.Refused as exc:
        abort(400, description=str(exc))
    except runs.Busy as exc:
        abort(409, description=f"A resync of {source} {', '.join(exc.accounts)} is queued or running already.")
    flash(
        f"Resync of {source} queued for {', '.join(accounts)}{' (dry run)' if options['dry_run'] else ''}; "
        f"a worker starts it within seconds.",
        "success",
    )
    return redirect(url_for(".runs_page"))


@bp.post("/runs/reconcile")
def start_reconcile():
    services, form = current_services(), request.form
    source, account, fix = params.text(form, "source"), params.text(form, "account"), _checked("fix")
    try:
        _, accounts, _ = runs.reconcile_plan(services, source, account)
        runs.request(services.engine, runs.RECONCILE, source, accounts, {"fix": fix}, now=services.clock())
    except runs.Refused as exc:
        abort(400, description=str(exc))
    except runs.Busy as exc:
        abort(409, description=f"A reconcile of {source} {', '.join(exc.accounts)} is queued or running already.")
    flash(
        f"Reconcile of {source} queued for {', '.join(accounts)}{' (fixing drift)' if fix else ''}; "
        f"a worker starts it within seconds.",
        "success",
    )
    return redirect(url_for(".runs_page"))


@bp.post("/runs/<int:run_id>/rollback")
def start_rollback(run_id: int):
    services = current_services()
    options = {"of": run_id, "dry_run": _checked("dry_run"), "force": _checked("force")}
    try:
        resynced = rolling.plan(services, run_id) if run_id < 2**63 else None
        if resynced is None:
            abort(404, description=f"There is no run {run_id}.")
        runs.request(services.engine, runs.ROLLBACK, resynced.source, [resynced.account], options, now=services.clock())
    except runs.Refused as exc:
        abort(400, description=str(exc))
    except runs.Busy:
        abort(409, description=f"A rollback of {resynced.source} {resynced.account} is queued or running already.")
    flash(
        f"Rollback of run {run_id} queued{' (dry run)' if options['dry_run'] else ''}; "
        "a worker starts it within seconds.",
        "success",
    )
    return redirect(url_for(".runs_page"))


def _checked(name: str) -> bool:
    """A checkbox: sent (as "on") when ticked, absent when not."""
    return bool(params.text(request.form, name))
