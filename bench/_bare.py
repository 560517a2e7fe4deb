"""The ingest benchmark's baseline: a Flask app that reads the request body and answers 200, nothing more.

gunicorn 'bench._bare:create_app()' …   (bench.ingest starts it with the Procfile's web settings)
"""

from __future__ import annotations

from flask import Flask, Response, request


def create_app() -> Flask:
    app = Flask(__name__)
    # The app's default WEBHOOK_MAX_BYTES: the web worker reads a body up to it before the app runs.
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024

    @app.post("/", defaults={"path": ""})
    @app.post("/<path:path>")
    def receive(path: str):
        request.get_data(cache=False)
        return Response(b"", status=200)

    @app.get("/-/health")
    def health():
        return Response(b"ok", status=200)

    return app
