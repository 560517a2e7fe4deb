"""Resyncs and reconciles: start one in the background, watch its progress, read its summary and drifts."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for

from app import params, runs
from app import resync as resyncing
from app.admin_page.auth import bp, render
from app.cli import build_worker
from app.runtime import runtime

__all__ = ["run", "runs_page", "start_reconcile", "start_resync"]


@bp.get("/runs")
def runs_page():
    rt, registry = runtime(), runs.registry()
    recent = registry.recent()
    checkpoints = registry.describe_resyncs(resyncing.checkpoints(rt.engine), source=None, account=None)
    sources = [name for name, source in rt.sources.items() if hasattr(source, "iter_pages")]
    return render("runs.html", runs=recent, checkpoints=checkpoints, sources=sources,
                  running=any(r.running for r in recent))


@bp.get("/runs/<int:run_id>")
def run(run_id: int):
    found = runs.registry().get(run_id)
    if found is None:
        abort(404, description=f"There is no run {run_id} in this process (runs are kept in memory; a restart "
                               f"forgets them).")
    return render("run.html", run=found, drift_rows=runs.DRIFT_ROWS)


@bp.post("/runs/resync")
def start_resync():
    rt, form = runtime(), request.form
    source, account = params.text(form, "source"), params.text(form, "account")
    options = {"since": params.when(form, "since"), "until": params.when(form, "until"),
               "dry_run": _checked("dry_run"), "restart": _checked("restart")}
    try:
        connector, accounts = runs.resync_plan(rt.sources, rt.accounts_of, source, account)
        started = runs.registry().start_resyncs(build_worker(rt).deps, connector, accounts, **options)
    except runs.Refused as exc:
        abort(400, description=str(exc))
    except runs.Busy as exc:
        abort(409, description=f"A resync of {source} {', '.join(exc.accounts)} is running already.")
    flash(f"Resync of {source} started for {_accounts(started)}{' (dry run)' if options['dry_run'] else ''}.",
          "success")
    return redirect(url_for(".runs_page"))


@bp.post("/runs/reconcile")
def start_reconcile():
    rt, form = runtime(), request.form
    source, account, fix = params.text(form, "source"), params.text(form, "account"), _checked("fix")
    try:
        connector, accounts, target = runs.reconcile_plan(rt.sources, rt.accounts_of, rt.targets, source, account)
        started = runs.registry().start_reconciles(rt.engine, connector, accounts, target, fix=fix, clock=rt.clock)
    except runs.Refused as exc:
        abort(400, description=str(exc))
    except runs.Busy as exc:
        abort(409, description=f"A reconcile of {source} {', '.join(exc.accounts)} is running already.")
    flash(f"Reconcile of {source} started for {_accounts(started)}{' (fixing drift)' if fix else ''}.", "success")
    return redirect(url_for(".runs_page"))


def _checked(name: str) -> bool:
    """A checkbox: sent (as "on") when ticked, absent when not."""
    return bool(params.text(request.form, name))


def _accounts(started: list[runs.Run]) -> str:
    return ", ".join(run.account for run in started)
