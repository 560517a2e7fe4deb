"""Resyncs and reconciles: queue one for the worker, watch its progress, read its summary and drifts."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for

from app import params, runs
from app import resync as resyncing
from app.admin_page.auth import bp, render
from app.runtime import runtime

__all__ = ["run", "runs_page", "start_reconcile", "start_resync"]


@bp.get("/runs")
def runs_page():
    rt = runtime()
    recent = runs.recent(rt.engine, now=rt.clock())
    checkpoints = runs.describe_resyncs(
        rt.engine, resyncing.checkpoints(rt.engine), source=None, account=None, now=rt.clock()
    )
    sources = [name for name, source in rt.sources.items() if hasattr(source, "iter_pages")]
    return render(
        "runs.html", runs=recent, checkpoints=checkpoints, sources=sources, running=any(r.running for r in recent)
    )


@bp.get("/runs/<int:run_id>")
def run(run_id: int):
    rt = runtime()
    found = runs.get(rt.engine, run_id, now=rt.clock()) if run_id < 2**63 else None
    if found is None:
        abort(404, description=f"There is no run {run_id}.")
    return render("run.html", run=found, drift_rows=runs.DRIFT_ROWS)


@bp.post("/runs/resync")
def start_resync():
    rt, form = runtime(), request.form
    source, account = params.text(form, "source"), params.text(form, "account")
    options = {
        "since": params.when(form, "since"),
        "until": params.when(form, "until"),
        "dry_run": _checked("dry_run"),
        "restart": _checked("restart"),
    }
    try:
        _, accounts = runs.resync_plan(rt.sources, rt.accounts_of, source, account)
        runs.request(rt.engine, runs.RESYNC, source, accounts, options, now=rt.clock())
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
    rt, form = runtime(), request.form
    source, account, fix = params.text(form, "source"), params.text(form, "account"), _checked("fix")
    try:
        _, accounts, _ = runs.reconcile_plan(rt.sources, rt.accounts_of, rt.targets, source, account)
        runs.request(rt.engine, runs.RECONCILE, source, accounts, {"fix": fix}, now=rt.clock())
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


def _checked(name: str) -> bool:
    """A checkbox: sent (as "on") when ticked, absent when not."""
    return bool(params.text(request.form, name))
