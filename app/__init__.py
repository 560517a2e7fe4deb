"""ReviewBridge: product reviews kept in step between Trustoo, Wix Reviews and commercetools.

    app/config.py     the only reader of the environment
    app/bootstrap.py  the composition root: settings -> services and the worker
    app/core/         the service itself: no Flask, no click
    app/web/          the web app (create_app)
    app/cli/          the `reviewbridge` command

`app:create_app(role="web")` (the Procfile's web command) is app.web.create_app, imported on first
use so that `import app.core...` and `reviewbridge --help` load no web code.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        return importlib.import_module("app.web").create_app
    raise AttributeError(f"module 'app' has no attribute {name!r}")
