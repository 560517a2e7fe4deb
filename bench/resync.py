"""Resync benchmark: a Trustoo shop's reviews resynced into commercetools, twice, at two shop sizes.

    python -m bench.resync [--quick] [--reviews 100000] [--small 10000] [--database-url URL] [--profile DIR]

For each shop size (--small, then --reviews) both emulators run as their own processes on loopback
(Trustoo seeded with the reviews, all on one product that commercetools has by key), the schema is
migrated and `setup commercetools` run, then `resync` runs twice, each time in a child process of
its own so that its peak RSS is the resync's alone:

  first run   reviews created per second;
  second run  target writes (goal 0: the summary's created + updated + deleted, the POST/DELETE
              requests in the commercetools emulator's request log, its review count before/after)
              and reviews compared per second (goal >= 1,000/s);
  peak RSS    of the resync process at both sizes (goal <= 150 MB and flat: the large shop's peak at
              most --flat-mb above the small one's).

The time spent waiting on the Trustoo listing (HTTP, the client's rate limit, the emulator's own
work) is shown apart, so what the app does per review can be told from what the emulator costs.
With --profile DIR py-spy records each resync child there (raw collapsed stacks, idle time included)
and a summary of where the time went is printed. Exit status 1 when a goal is missed. Nothing leaves
loopback.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlmodel import SQLModel

from app.bootstrap import services_of
from bench._common import free_port, goal, scratch_postgres, wait_for_http
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = "7982301249581"  # the product id the Trustoo emulator gives seeded reviews
PROJECT, CLIENT_ID, CLIENT_SECRET = "bench", "bench", "bench-secret-0123456789"
GOAL_COMPARED_PER_S = 1000
GOAL_PEAK_MB = 150
# werkzeug's request log, colour codes and all: "\x1b[32mPOST /bench/reviews HTTP/1.1\x1b[0m" 201 -
_WRITE = re.compile(rf'"(?:\x1b\[[0-9;]*m)*(?:POST|DELETE) /{PROJECT}/')


@dataclass
class Run:
    counts: dict
    parked: dict
    failures: list
    elapsed_s: float
    source_s: float
    pages: int
    ready_mb: float
    peak_mb: float
    writes_logged: int
    reviews_before: int
    reviews_after: int

    @property
    def seen(self) -> int:
        return self.counts.get("seen", 0)

    @property
    def written(self) -> int:
        return sum(self.counts.get(word, 0) for word in ("created", "updated", "deleted"))

    @property
    def rate(self) -> float:
        return self.seen / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def app_rate(self) -> float:
        """Reviews per second of everything but waiting for the Trustoo listing."""
        own = self.elapsed_s - self.source_s
        return self.seen / own if own > 0 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000, help="the smaller shop, for the peak RSS comparison")
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server: a scratch database per shop is made there and dropped after "
        "(default: a temporary SQLite file per shop)",
    )
    parser.add_argument(
        "--flat-mb",
        type=float,
        default=20.0,
        help="how much more the large shop's peak RSS may be than the small one's (MB)",
    )
    parser.add_argument("--profile", default=None, metavar="DIR", help="py-spy each resync into DIR")
    parser.add_argument("--quick", action="store_true", help="a short run: 20,000 reviews, small shop 2,000")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child()
    if args.quick:
        args.reviews, args.small = min(args.reviews, 20_000), min(args.small, 2_000)
    if args.reviews < 1 or args.small < 0:
        parser.error("--reviews must be positive and --small not negative")

    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    sizes = [("small", args.small), ("large", args.reviews)] if args.small else [("large", args.reviews)]
    results: dict[str, tuple[Run, Run]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for label, count in sizes:
            with (
                _database(args.database_url, Path(scratch) / f"{label}.db") as database_url,
                _emulators(count, Path(scratch) / label) as (trustoo_url, ctp_url, ctp_log),
            ):
                environ = {
                    "DATABASE_URL": database_url,
                    "LOG_LEVEL": "WARNING",
                    "ROUTES": "trustoo:commercetools",
                    "TRUSTOO_PUBLIC_TOKEN": TRUSTOO_PUBLIC_TOKEN,
                    "TRUSTOO_PRIVATE_TOKEN": TRUSTOO_PRIVATE_TOKEN,
                    "TRUSTOO_API_URL": trustoo_url,
                    "TRUSTOO_RATE_LIMIT": "100",  # the setting's ceiling
                    "CTP_PROJECT_KEY": PROJECT,
                    "CTP_CLIENT_ID": CLIENT_ID,
                    "CTP_CLIENT_SECRET": CLIENT_SECRET,
                    "CTP_API_URL": ctp_url,
                    "CTP_AUTH_URL": ctp_url,
                }
                _prepare(environ)
                runs = []
                for number in (1, 2):
                    profile = Path(args.profile) / f"resync-{count}-run{number}.txt" if args.profile else None
                    run = _run(environ, ctp_url, ctp_log, profile)
                    runs.append(run)
                    print(
                        f"  {label} shop, {count} reviews, run {number}: {run.seen} in {run.elapsed_s:.1f} s "
                        f"({run.rate:.0f}/s), peak {run.peak_mb:.0f} MB",
                        file=sys.stderr,
                        flush=True,
                    )
                results[label] = (runs[0], runs[1])
    return _print(results, dict(sizes), args, time.perf_counter() - started)


def _print(results: dict[str, tuple[Run, Run]], sizes: dict[str, int], args, total_s: float) -> int:
    missed = []
    first, second = results["large"]
    n = sizes["large"]
    print(f"shop                          {n} reviews on product {PRODUCT} (small shop: {args.small or '-'})")
    for label in results:
        one, two = results[label]
        print(f"-- {label} shop ({sizes[label]} reviews)")
        print(
            f"first run                     {one.seen:8d} seen, {one.counts.get('created', 0)} created, "
            f"{one.counts.get('failed', 0)} failed in {one.elapsed_s:.1f} s = {one.rate:8.1f} reviews/s"
        )
        print(
            f"  of which Trustoo listing    {one.source_s:8.1f} s ({one.pages} pages); "
            f"rest {one.app_rate:8.1f} reviews/s; logged POST/DELETE {one.writes_logged}"
        )
        print(
            f"second run                    {two.seen:8d} seen, {two.counts.get('unchanged', 0)} unchanged in "
            f"{two.elapsed_s:.1f} s = {two.rate:8.1f} compared/s (goal >= {GOAL_COMPARED_PER_S})"
        )
        print(
            f"  of which Trustoo listing    {two.source_s:8.1f} s ({two.pages} pages); "
            f"rest {two.app_rate:8.1f} compared/s"
        )
        print(
            f"  target writes               summary {two.written}, logged POST/DELETE {two.writes_logged}, "
            f"commercetools reviews {two.reviews_before} -> {two.reviews_after} (goal 0)"
        )
        print(
            f"peak RSS                      run 1 {one.peak_mb:6.1f} MB, run 2 {two.peak_mb:6.1f} MB "
            f"(process ready: {one.ready_mb:.1f} MB)"
        )
        if one.failures or two.failures or one.parked:
            print(f"  failures: {(one.failures or two.failures)[:3]}; parked: {one.parked}")
        if one.counts.get("created", 0) != sizes[label] or one.counts.get("failed", 0) or one.parked:
            missed.append(f"{label}: the first run did not create every review")
        if two.written or two.writes_logged or two.reviews_after != two.reviews_before:
            missed.append(f"{label}: the second run wrote to the target")
        if two.counts.get("unchanged", 0) != two.seen or two.seen != sizes[label]:
            missed.append(f"{label}: the second run did not compare every review as unchanged")
    peak_large = max(first.peak_mb, second.peak_mb)
    print("-- summary")
    if "small" in results:
        peak_small = max(run.peak_mb for run in results["small"])
        growth = peak_large - peak_small
        print(
            f"peak RSS                      {sizes['small']}: {peak_small:.1f} MB, {n}: {peak_large:.1f} MB, "
            f"+{growth:.1f} MB (goal: <= {GOAL_PEAK_MB} MB, flat: <= +{args.flat_mb:.0f} MB)"
        )
        if growth > args.flat_mb:
            missed.append(f"peak RSS grows by {growth:.1f} MB from {sizes['small']} to {n} reviews")
    else:
        print(f"peak RSS                      {n}: {peak_large:.1f} MB (goal <= {GOAL_PEAK_MB} MB)")
    if peak_large > GOAL_PEAK_MB:
        missed.append(f"peak RSS {peak_large:.1f} MB > {GOAL_PEAK_MB} MB")
    print(f"first run rate                {first.rate:8.1f} reviews/s")
    print(f"second run target writes      {second.written + second.writes_logged}")
    print(f"second run compared           {second.rate:8.1f} reviews/s")
    print(f"benchmark wall time           {total_s:.0f} s")
    for reason in missed:
        print(f"missed: {reason}")
    ratio = second.rate / GOAL_COMPARED_PER_S
    goal(
        f"resync: second run of {n:,} reviews",
        f"{second.rate:,.0f} compared/s, {second.written + second.writes_logged} writes",
        f">= {GOAL_COMPARED_PER_S:,} compared/s, 0 writes",
        ratio >= 1 and not (second.written or second.writes_logged),
        "; ".join(missed),
    )
    goal(
        "resync: peak memory",
        f"{peak_large:.1f} MB",
        f"<= {GOAL_PEAK_MB} MB, flat",
        not any("RSS" in reason for reason in missed),
        "; ".join(r for r in missed if "RSS" in r),
    )
    print(f"ratio: {second.rate:.0f} / {GOAL_COMPARED_PER_S} = {ratio:.2f} (goal >= 1)")
    return 0 if ratio >= 1 and not missed else 1


# --- the parent: emulators, setup, one child per resync ---------------------------------------


@contextlib.contextmanager
def _database(server_url: str | None, sqlite_file: Path) -> Iterator[str]:
    if server_url is None or server_url.startswith("sqlite"):
        yield server_url or f"sqlite:///{sqlite_file}"
        return
    with scratch_postgres(server_url, prefix="bench_resync") as url:
        yield url


@contextlib.contextmanager
def _emulators(reviews: int, scratch: Path) -> Iterator[tuple[str, str, Path]]:
    scratch.mkdir(parents=True, exist_ok=True)
    trustoo_port, ctp_port = free_port(), free_port()
    trustoo_log, ctp_log = scratch / "trustoo.log", scratch / "commercetools.log"
    with open(trustoo_log, "wb") as trustoo_out, open(ctp_log, "wb") as ctp_out:
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.fakes.trustoo",
                    "--port",
                    str(trustoo_port),
                    "--reviews",
                    str(reviews),
                    "--public-token",
                    TRUSTOO_PUBLIC_TOKEN,
                    "--private-token",
                    TRUSTOO_PRIVATE_TOKEN,
                ],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=trustoo_out,
            ),
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.fakes.commercetools",
                    "--port",
                    str(ctp_port),
                    "--project-key",
                    PROJECT,
                    "--client-id",
                    CLIENT_ID,
                    "--client-secret",
                    CLIENT_SECRET,
                    "--product",
                    PRODUCT,
                ],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=ctp_out,
            ),
        ]
        urls = (f"http://127.0.0.1:{trustoo_port}", f"http://127.0.0.1:{ctp_port}")
        try:
            seeding = time.perf_counter()
            for url, process in zip(urls, processes, strict=True):
                wait_for_http(f"{url}/-/health", timeout_s=300, process=process)
            print(
                f"  emulators up with {reviews} Trustoo reviews in {time.perf_counter() - seeding:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            yield urls[0], urls[1], ctp_log
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(10)


def _prepare(environ: dict[str, str]) -> None:
    """Empty, migrated database; `reviewbridge setup commercetools`."""
    from app import create_app
    from app.core.db import upgrade

    app = create_app(environ)
    services = services_of(app)
    upgrade(services.engine)
    with services.engine.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(table.delete())
    for target in services.targets:
        target.setup()
    services.engine.dispose()


def _run(environ: dict[str, str], ctp_url: str, ctp_log: Path, profile: Path | None) -> Run:
    before_writes, before_reviews = _count(_WRITE, ctp_log), _ctp_reviews(ctp_url)
    command = [sys.executable, "-m", "bench.resync", "--child"]
    if profile is not None:
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if py_spy is None:
            raise SystemExit("bench.resync: --profile needs py-spy (pip install py-spy)")
        command = [
            py_spy,
            "record",
            "--format",
            "raw",
            "--rate",
            "200",
            "--idle",
            "--nonblocking",
            "-o",
            str(profile),
            "--",
            *command,
        ]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **environ}, stdout=subprocess.PIPE)
    out, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"bench.resync: the resync child exited with {process.returncode}")
    child = json.loads([line for line in out.decode().splitlines() if line.startswith("{")][-1])
    if profile is not None:
        _summarise(profile)
    time.sleep(0.3)  # werkzeug logs a request just after answering it
    return Run(
        counts=child["counts"],
        parked=child["parked"],
        failures=child["failures"],
        elapsed_s=child["elapsed_s"],
        source_s=child["source_s"],
        pages=child["pages"],
        ready_mb=child["ready_kb"] / 1024,
        peak_mb=child["peak_kb"] / 1024,
        writes_logged=_count(_WRITE, ctp_log) - before_writes,
        reviews_before=before_reviews,
        reviews_after=_ctp_reviews(ctp_url),
    )


def _count(pattern: re.Pattern, log: Path) -> int:
    with open(log, encoding="utf-8", errors="replace") as lines:
        return sum(1 for line in lines if pattern.search(line))


def _ctp_reviews(url: str) -> int:
    """The commercetools emulator's review count, through its API as any client would ask."""
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    with httpx.Client(base_url=url, timeout=60, trust_env=False) as client:
        token = (
            client.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
            )
            .raise_for_status()
            .json()["access_token"]
        )
        page = (
            client.get(
                f"/{PROJECT}/reviews",
                params={"limit": 1, "withTotal": "true"},
                headers={"Authorization": f"Bearer {token}"},
            )
            .raise_for_status()
            .json()
        )
    return page["total"]


def _summarise(profile: Path, top: int = 12) -> None:
    """Where the resync's time went, from py-spy's raw stacks (only those under `app.core.resync.resync`,
    so start-up is left out): the share under each of our own functions (app/, connectors/), and
    the frames most often on top of the stack."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    with open(profile, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            frames = [_short(frame) for frame in stack.split(";")]
            if not count.isdigit() or "resync (app/core/resync.py)" not in frames:
                continue
            total += int(count)
            own[frames[-1]] += int(count)
            for frame in {frame for frame in frames if "(app/" in frame or "(connectors/" in frame}:
                inclusive[frame] += int(count)
    if not total:
        return
    print(f"  profile {profile} ({total} samples under resync, idle included):", file=sys.stderr)
    for frame, count in inclusive.most_common(top):
        print(f"    {100 * count / total:5.1f}% under {frame}", file=sys.stderr)
    for frame, count in own.most_common(top // 2):
        print(f"    {100 * count / total:5.1f}% in    {frame}", file=sys.stderr)


def _short(frame: str) -> str:
    """`_one (app/core/resync.py:120)` → `_one (app/core/resync.py)`: samples of a function add up across its lines."""
    return re.sub(r":\d+\)$", ")", frame)


# --- the child: one resync, measured from the inside -------------------------------------------


class _TimedSource:
    """The Trustoo source as resync sees it, timing how long each page takes to arrive."""

    def __init__(self, source):
        self._source, self.seconds, self.pages = source, 0.0, 0

    def __getattr__(self, name):
        return getattr(self._source, name)

    def iter_pages(self, *args, **kwargs):
        pages = self._source.iter_pages(*args, **kwargs)
        while True:
            started = time.perf_counter()
            try:
                page = next(pages)
            except StopIteration:
                self.seconds += time.perf_counter() - started
                return
            self.seconds += time.perf_counter() - started
            self.pages += 1
            yield page


def _child() -> int:
    import resource

    from app import create_app
    from app.core.resync import resync

    app = create_app()  # the environment the parent passed
    services = services_of(app)
    source = _TimedSource(services.sources["trustoo"])
    account = services.accounts_of("trustoo")[0]
    ready_kb = _vm("VmRSS")
    started = time.perf_counter()
    report = resync(services, source, account)
    elapsed = time.perf_counter() - started
    peak_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, _vm("VmHWM"))
    print(
        json.dumps(
            {
                "counts": dict(report.counts),
                "parked": dict(report.parked),
                "failures": report.failures,
                "elapsed_s": elapsed,
                "source_s": source.seconds,
                "pages": source.pages,
                "ready_kb": ready_kb,
                "peak_kb": peak_kb,
            }
        ),
        flush=True,
    )
    return 0


def _vm(field: str) -> int:
    """A /proc/self/status figure in kB (0 where there is no /proc)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
