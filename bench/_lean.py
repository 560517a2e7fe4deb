"""The ingest benchmark's second baseline: the leanest receiver that does what the specs ask of ours.

gunicorn 'bench._lean:create_app()' …   (bench.ingest starts it with the Procfile's web settings)

For each delivery: verify it as the platform's documentation says (Trustoo: HMAC-SHA256 of
"timestamp=T|body" with the shop's private token, the timestamp within 300 s; Wix: an RS256 JWT,
the public key loaded once), parse the JSON, and store one row per review with INSERT … ON CONFLICT
DO NOTHING, committed before the answer. The database is driven directly (`sqlite3`, `psycopg`),
one connection per thread; nothing else: no ORM, no group commit, no metrics, no logging. It
reads DATABASE_URL, TRUSTOO_PUBLIC_TOKEN, TRUSTOO_PRIVATE_TOKEN and WIX_PUBLIC_KEY, and writes into
the `lean_inbox` table that `prepare` creates. Bad input may fail loudly: it is only ever sent good.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping

import jwt
import psycopg
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from flask import Flask, Response, request

__all__ = ["TABLE", "create_app", "prepare"]

TABLE = "lean_inbox"
_COLUMNS = "source, account, event_id, payload, received_at"
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (source VARCHAR(32) NOT NULL, account VARCHAR(255) NOT NULL, "
    "event_id VARCHAR(255) NOT NULL, payload TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL, "
    "PRIMARY KEY (source, account, event_id))"
)
_TRUSTOO_SUCCESS = b'{"code":0,"message":"success"}'


def prepare(database_url: str) -> None:
    """Create the receiver's table (before its server starts: its workers must not race to do it)."""
    connection = _connect(database_url)
    try:
        connection.execute(_SCHEMA)
        connection.commit()
    finally:
        connection.close()


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    env = os.environ if environ is None else environ
    database_url = env["DATABASE_URL"]
    shops = {env["TRUSTOO_PUBLIC_TOKEN"]: env["TRUSTOO_PRIVATE_TOKEN"].encode()}
    wix_key = load_pem_public_key(env["WIX_PUBLIC_KEY"].encode()) if env.get("WIX_PUBLIC_KEY") else None
    sqlite = database_url.startswith("sqlite")
    placeholders = ", ".join(["?" if sqlite else "%s"] * 5)
    insert = f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"
    local = threading.local()

    def store(rows: list[tuple]) -> None:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = _connect(database_url)
        if sqlite:
            connection.execute("BEGIN IMMEDIATE")
        connection.cursor().executemany(insert, rows)
        connection.commit()

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024

    @app.post("/webhooks/trustoo/<topic>")
    def trustoo(topic: str):
        body = request.get_data(cache=False)
        account = request.headers.get("Open-Trustoo-Webhook-Public-Token", "")
        timestamp = request.headers.get("Open-Trustoo-Webhook-Timestamp", "")
        private = shops.get(account)
        if private is None or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return Response(b"refused", status=401)
        expected = hmac.new(private, f"timestamp={timestamp}|".encode() + body, hashlib.sha256).hexdigest()
        given = request.headers.get("Open-Trustoo-Webhook-Sign", "").lower().encode()
        if not hmac.compare_digest(expected.encode(), given):
            return Response(b"refused", status=401)
        now, rows = time.time(), []
        for item in json.loads(body)["list"]:
            # A redelivery of the same content must come out as the same row: its id holds a digest.
            content = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            digest = hashlib.sha256(content.encode()).hexdigest()[:32]
            rows.append(("trustoo", account, f"{topic}:{item['id']}:{digest}", content, now))
        store(rows)
        return Response(_TRUSTOO_SUCCESS, status=200, mimetype="application/json")

    @app.post("/webhooks/wix")
    def wix():
        body = request.get_data(cache=False)
        try:
            claims = jwt.decode(body, wix_key, algorithms=["RS256"])
        except jwt.PyJWTError:
            return Response(b"refused", status=401)
        envelope = json.loads(claims["data"])
        event_id = hashlib.sha256(claims["data"].encode()).hexdigest()
        store([("wix", envelope["instanceId"], event_id, claims["data"], time.time())])
        return Response(b"", status=200)

    @app.get("/healthz")
    def health():
        return Response(b"ok", status=200)

    return app


def _connect(database_url: str):
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(database_url.split("///", 1)[1], isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=30000")
        return connection
    return psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://", 1))
