"""Where a delivery's CPU goes: the app and the lean receiver called directly, without a server.

    python -m bench.ingest_profile [--database sqlite|postgresql] [--deliveries 3000] [--lean]
                                   [--sort cumulative|tottime] [--top 40] [--database-url postgresql://…]

Each app gets the same signed Trustoo deliveries as WSGI calls from this one thread (no gunicorn, no
HTTP client, no Flask test client), so the figures are what the app itself spends: CPU per delivery
of both, then a cProfile of one of them (the app unless --lean), its top frames with their share of
the whole. A fresh SQLite file, or scratch PostgreSQL databases dropped afterwards. This is the
profile behind `bench.ingest`'s ratio; it has no goal of its own and prints no ratio line.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterable

from app import create_app
from app.bootstrap import services_of
from bench import _lean
from bench._common import DEFAULT_POSTGRES_URL, scratch_postgres
from bench._load import Delivery
from bench.ingest import _app_env, _DeliveryFactory, _upgrade

Wsgi = Callable[[dict, Callable], Iterable[bytes]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES_URL, help="PostgreSQL server for the scratch DBs")
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--lean", action="store_true", help="profile the lean receiver instead of the app")
    parser.add_argument("--sort", choices=("cumulative", "tottime"), default="cumulative")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    if args.deliveries < 10:
        parser.error("--deliveries must be at least 10")
    factory = _DeliveryFactory(wix_share=0.0)
    with contextlib.ExitStack() as stack:
        if args.database == "sqlite":
            scratch = stack.enter_context(tempfile.TemporaryDirectory())
            app_url, lean_url = f"sqlite:///{scratch}/app.db", f"sqlite:///{scratch}/lean.db"
        else:
            app_url = stack.enter_context(scratch_postgres(args.database_url, prefix="bench_profile"))
            lean_url = stack.enter_context(scratch_postgres(args.database_url, prefix="bench_profile_lean"))
        env = _app_env(app_url, factory.wix_public_key) | {"LOG_LEVEL": "WARNING"}
        _upgrade(env)
        _lean.prepare(lean_url)
        app = create_app(env, role="web")
        stack.callback(services_of(app).engine.dispose)
        lean = _lean.create_app(env | {"DATABASE_URL": lean_url})
        warm, measured, profiled = (factory.make(n) for n in (300, args.deliveries, args.deliveries))
        for wsgi in (app, lean):
            _cpu_ms(wsgi, warm)
        app_ms, lean_ms = _cpu_ms(app, measured[::2]), _cpu_ms(lean, measured[1::2])
        print(f"{args.database}: CPU per delivery, called directly: app {app_ms:.3f} ms, lean {lean_ms:.3f} ms")
        profile = cProfile.Profile()
        profile.enable()
        _cpu_ms(lean if args.lean else app, profiled)
        profile.disable()
    _print_top(profile, args.sort, args.top, "lean receiver" if args.lean else "app")
    return 0


def _cpu_ms(wsgi: Wsgi, deliveries: list[Delivery]) -> float:
    environs = [_environ(delivery) for delivery in deliveries]
    began = time.process_time()
    for environ in environs:
        b"".join(wsgi(environ, _answered))
    return 1000 * (time.process_time() - began) / len(deliveries)


def _answered(status: str, headers: list, exc_info=None) -> None:
    if not status.startswith("200"):
        raise SystemExit(f"bench.ingest_profile: a delivery was answered {status}")


def _environ(delivery: Delivery) -> dict:
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": delivery.path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(delivery.body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(delivery.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in delivery.headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return environ


def _print_top(profile: cProfile.Profile, sort: str, top: int, who: str) -> None:
    stats = pstats.Stats(profile).stats  # (file, line, function) → (calls, primitive, own s, cumulative s, callers)
    whole = max(timing[3] for timing in stats.values())
    column = 3 if sort == "cumulative" else 2
    rows = sorted(stats.items(), key=lambda item: item[1][column], reverse=True)[:top]
    print(f"\ncProfile of the {who} ({sort}; share of the whole call, {whole:.2f} s under the profiler):")
    for (filename, line, function), timing in rows:
        where = filename.rsplit("site-packages/", 1)[-1].replace(str(sys.path[0]) + "/", "")
        print(f"  {100 * timing[column] / whole:5.1f}%  {timing[1]:>7} calls  {function} ({where}:{line})")


if __name__ == "__main__":
    sys.exit(main())
