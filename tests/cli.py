"""The `reviewbridge` command run in-process against an app under test."""

from __future__ import annotations

from typing import Any

from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from app.cli import cli


class ReviewbridgeRunner(FlaskCliRunner):
    """Flask's CLI runner, invoking the `reviewbridge` group with the test's app (not `app.cli`)."""

    def invoke(self, command: Any = None, args: Any = None, **kwargs: Any) -> Result:
        return super().invoke(command or cli, args, **kwargs)


def cli_runner(app: Flask) -> ReviewbridgeRunner:
    return ReviewbridgeRunner(app)
