"""Background resyncs and reconciles of this process: start one, watch its progress, read its summary.

The admin JSON API (resyncs) and the admin page (both kinds) share one registry per app. A run
is a thread of this process, never of another: at most one run of a kind at a time per
(source, account). Runs live in memory (the newest few dozen are kept); a resync of another
process is still seen through its checkpoint, which `describe_resyncs` merges in.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import Engine

from app.pipeline import Collaborators
from app.reconcile import DriftReport, reconcile
from app.resync import ResyncReport, resync
from connectors.base import ReviewBridgeError, ReviewSource, ReviewTarget

__all__ = ["RECONCILE", "RESYNC", "Busy", "Refused", "Run", "Runs", "reconcile_plan", "registry", "resync_plan"]

log = logging.getLogger(__name__)

RESYNC, RECONCILE = "resync", "reconcile"
DRIFT_ROWS = 200  # drift rows a reconcile run keeps for the page; the counts cover all of them
_KEEP = 50  # finished runs remembered
_EXTENSION = "reviewbridge.runs"


class Busy(Exception):
    """A run of this kind is going on already for these accounts."""

    def __init__(self, kind: str, accounts: list[str]):
        super().__init__(", ".join(accounts))
        self.kind = kind
        self.accounts = accounts


class Refused(ValueError):
    """A run that cannot start; the message starts with the field to change."""


@dataclass
class Run:
    id: int
    kind: str  # resync | reconcile
    source: str
    account: str
    started_at: datetime
    updated_at: datetime
    dry_run: bool = False  # resync: report what would be written, write nothing
    fix: bool = False  # reconcile: queue a correction per drift
    finished_at: datetime | None = None
    #: A snapshot the run's own thread takes as it goes. Resync: {"counts", "parked"} (the checkpoint's
    #: shape); reconcile: {"compared", "counts", "fixed"}.
    counts: dict | None = None
    failures: list[str] = field(default_factory=list)  # resync: the first few failed reviews
    drifts: list[dict] = field(default_factory=list)  # reconcile: the first DRIFT_ROWS drifts
    error: str | None = None  # why the run stopped early

    @property
    def running(self) -> bool:
        return self.finished_at is None


class Runs:
    """This process's runs, by id and by (kind, source, account)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._runs: dict[int, Run] = {}
        self._latest: dict[tuple[str, str, str], Run] = {}

    def start_resyncs(self, deps: Collaborators, connector: ReviewSource, accounts: Sequence[str],
                      **options: Any) -> list[Run]:
        """One thread per account, or none when any of them runs already (Busy)."""
        runs = self._reserve(RESYNC, connector.name, accounts, deps.clock(), dry_run=options["dry_run"])
        for run in runs:
            def work(run: Run = run) -> None:
                def progress(report: ResyncReport) -> None:
                    run.counts, run.updated_at = _resync_counts(report), deps.clock()

                report = resync(deps, connector, run.account, progress=progress, **options)
                progress(report)
                run.failures = list(report.failures)

            self._launch(run, work, deps.clock)
        return runs

    def start_reconciles(self, engine: Engine, connector: ReviewSource, accounts: Sequence[str],
                         target: ReviewTarget, *, fix: bool, clock: Callable[[], datetime]) -> list[Run]:
        """One thread per account comparing it with `target`, or none when any of them runs already (Busy)."""
        runs = self._reserve(RECONCILE, connector.name, accounts, clock(), fix=fix)
        for run in runs:
            def work(run: Run = run) -> None:
                def progress(report: DriftReport) -> None:
                    run.counts, run.updated_at = _drift_counts(report), clock()

                report = reconcile(engine, connector, run.account, target, fix=fix, now=clock(), progress=progress)
                progress(report)
                run.drifts = [drift.__dict__ for drift in report.drifts[:DRIFT_ROWS]]

            self._launch(run, work, clock)
        return runs

    def get(self, run_id: int) -> Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def recent(self, kind: str | None = None) -> list[Run]:
        """Newest first."""
        with self._lock:
            runs = list(self._runs.values())
        return sorted((run for run in runs if kind is None or run.kind == kind), key=lambda run: -run.id)

    def describe_resyncs(self, rows: list[dict], *, source: str | None, account: str | None) -> list[dict]:
        """The resync checkpoints and this process's resyncs, one entry per (source, account). A run here is
        the newest word on its pair: its counts and times replace the row's (a dry run writes no row)."""
        with self._lock:
            runs = {(s, a): run for (kind, s, a), run in self._latest.items()
                    if kind == RESYNC and (source is None or s == source) and (account is None or a == account)}
        saved = {(row["source"], row["account"]): row for row in rows}
        described = []
        for key in sorted(saved.keys() | runs.keys()):
            entry = saved.get(key) or {"source": key[0], "account": key[1], "position": None}
            run = runs.get(key)
            if run is not None:
                entry = entry | {"counts": run.counts, "started_at": run.started_at, "updated_at": run.updated_at,
                                 "finished_at": run.finished_at}
                entry["position"] = None if run.dry_run else entry["position"]
            described.append(entry | {
                "started_at": _iso(entry["started_at"]), "updated_at": _iso(entry["updated_at"]),
                "finished_at": _iso(entry["finished_at"]), "running": bool(run and run.running),
                "dry_run": bool(run and run.dry_run), "error": run.error if run else None})
        return described

    def _reserve(self, kind: str, source: str, accounts: Sequence[str], now: datetime, **flags: bool) -> list[Run]:
        with self._lock:
            busy = [a for a in accounts if (run := self._latest.get((kind, source, a))) and run.running]
            if busy:
                raise Busy(kind, busy)
            runs = [Run(next(self._ids), kind, source, account, now, now, **flags) for account in accounts]
            for run in runs:
                self._runs[run.id] = self._latest[(kind, source, run.account)] = run
            finished = sorted(run_id for run_id, run in self._runs.items() if not run.running)
            for run_id in finished[:max(0, len(finished) - _KEEP)]:
                del self._runs[run_id]
        return runs

    @staticmethod
    def _launch(run: Run, work: Callable[[], None], clock: Callable[[], datetime]) -> None:
        def main() -> None:
            try:
                work()
            except ReviewBridgeError as exc:  # ours carry no secret: show the reason
                log.warning("%s of %s %s failed: %s", run.kind, run.source, run.account, exc)
                run.error = str(exc)
            except Exception as exc:  # this thread's outer loop: keep the reason for whoever asks
                log.exception("%s of %s %s failed", run.kind, run.source, run.account)
                run.error = f"{type(exc).__name__} (details in the service log)"
            finally:
                run.finished_at = clock()

        threading.Thread(target=main, daemon=True, name=f"{run.kind}-{run.source}").start()


def registry() -> Runs:
    """The current app's runs."""
    return current_app.extensions.setdefault(_EXTENSION, Runs())


def resync_plan(sources: Mapping[str, ReviewSource], accounts_of: Callable[[str], list[str]],
                source: str | None, account: str | None) -> tuple[ReviewSource, list[str]]:
    """The connector and accounts a resync of `source` (and `account`, or all of them) reads."""
    if source is None:
        raise Refused("source: name the platform to read reviews from, e.g. trustoo")
    connector = sources.get(source)
    if connector is None or not hasattr(connector, "iter_pages"):
        raise Refused(f"source: cannot read reviews from {source!r}; sources: {', '.join(sorted(sources))}")
    accounts = [account] if account else accounts_of(source)
    if not accounts:
        raise Refused(f"account: no {source} account is configured")
    return connector, accounts


def reconcile_plan(sources: Mapping[str, ReviewSource], accounts_of: Callable[[str], list[str]],
                   targets: Sequence[ReviewTarget], source: str | None,
                   account: str | None) -> tuple[ReviewSource, list[str], ReviewTarget]:
    """As resync_plan, and the commercetools target to compare with."""
    target = next((t for t in targets if t.name == "commercetools"), None)
    if target is None:
        raise Refused("target: commercetools is not configured: set CTP_PROJECT_KEY, CTP_CLIENT_ID and "
                      "CTP_CLIENT_SECRET")
    return *resync_plan(sources, accounts_of, source, account), target


def _resync_counts(report: ResyncReport) -> dict:
    return {"counts": dict(report.counts), "parked": dict(report.parked)}  # the checkpoint's shape


def _drift_counts(report: DriftReport) -> dict:
    return {"compared": report.compared, "counts": dict(report.counts), "fixed": report.fixed}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
