"""On SQLite, processes sharing the database file take turns to write on a lock that hands over at
once: a writer that waited for another process starts as soon as that one commits, where SQLite's
own busy handler would sleep on (1, 2, 5 … 100 ms at a time) before trying again."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from sqlalchemy import text

from app.core.db import make_engine, transaction, upgrade

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from sqlalchemy import text
    from app.core.db import make_engine, transaction
    engine = make_engine(sys.argv[1])
    with transaction(engine) as session:
        session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: SQLite's write lock is held from here
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
        released = time.time()
    print(released, flush=True)
    """
)


def test_a_writer_waiting_for_another_process_starts_as_soon_as_that_one_commits(tmp_path):
    url = f"sqlite:///{tmp_path / 'reviewbridge.db'}"
    engine = make_engine(url)
    upgrade(engine)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url, "0.55"], stdout=subprocess.PIPE, text=True, cwd=sys.path[0] or None
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with transaction(engine) as session:
            session.execute(text("SELECT 1"))
            started = time.time()
        released = float(holder.stdout.readline())
    finally:
        holder.wait(10)
        engine.dispose()
    assert started >= released, "one writer at a time"
    assert started - released < 0.02, f"started {1000 * (started - released):.0f} ms after the other committed"
