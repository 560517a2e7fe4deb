"""`make bench`: every benchmark in turn, its own figures as it goes, then one table of the goals.

    python -m bench [--quick] [--only sync,resync,ingest,queue,many_shops,openapi_libs]

Each benchmark runs as its own process (`python -m bench.<name>`) and prints `goal:` lines (see
bench._common.goal); this gathers them into one table: measured figure, goal, met or missed, and
for a missed goal what the benchmark measured about the cause. Exit status 1 when a goal is missed
or a benchmark failed to report.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench._common import GOAL_PREFIX

BENCHMARKS = ("sync", "resync", "ingest", "queue", "many_shops", "openapi_libs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to the benchmarks that have it")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated benchmarks to run")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    goals: list[list[str]] = []
    failed: list[str] = []
    for name in chosen:
        print(f"\n===== bench.{name}", flush=True)
        command = [sys.executable, "-m", f"bench.{name}"] + (["--quick"] if args.quick and name != "sync" else [])
        found = _run(command, goals)
        if not found:
            failed.append(f"bench.{name} reported no goal (see its output above)")
    _table(goals)
    for reason in failed:
        print(f"failed: {reason}")
    return 1 if failed or any(row[3] != "met" for row in goals) else 0


def _run(command: list[str], goals: list[list[str]]) -> int:
    """Run one benchmark, echoing its output; return how many goal lines it printed."""
    found = 0
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1) as process:
        for line in process.stdout:
            print(line, end="", flush=True)
            if line.startswith(GOAL_PREFIX):
                goals.append([field.strip() for field in line[len(GOAL_PREFIX) :].split("|")])
                found += 1
    return found


def _table(goals: list[list[str]]) -> None:
    headers = ["goal", "measured", "target", "result"]
    widths = [max([len(headers[i])] + [len(row[i]) for row in goals]) for i in range(4)]
    print("\n===== all benchmarks")
    print("  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True)))
    print("  ".join("-" * width for width in widths))
    for row in goals:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)))
        if row[3] != "met" and len(row) > 4 and row[4]:
            print(f"    why: {row[4]}")


if __name__ == "__main__":
    sys.exit(main())
