"""The progress bar long commands (resync, reconcile) draw on stderr, so --json output stays clean."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import click

__all__ = ["progress_bar"]


@contextlib.contextmanager
def progress_bar(label: str, *, quiet: bool = False) -> Iterator[Callable[[int, int | None], None]]:
    """Yield `update(done, total)`; `total` is None while the source has not said how many there are."""
    if quiet:
        yield lambda done, total: None
        return
    with click.progressbar(length=1, label=label, show_pos=True, file=sys.stderr) as bar:

        def update(done: int, total: int | None) -> None:
            bar.length = max(total or done, done, 1)
            bar.update(done - bar.pos)

        yield update
