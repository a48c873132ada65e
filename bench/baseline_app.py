"""The baseline: a minimal Flask app doing one indexed SELECT and one INSERT per
request on the same PostgreSQL database, served by gunicorn with the service's
settings. The service's decision path is measured against it in the same run."""

from __future__ import annotations

import os
import uuid

from flask import Flask, Response, jsonify, request
from sqlalchemy import create_engine, text

app = Flask(__name__)
# Nothing but the SELECT and the INSERT per request: no pre-ping round trip on checkout.
engine = create_engine(os.environ["DATABASE_URL"])


@app.post("/baseline")
def baseline() -> tuple[Response, int]:
    body = request.get_json(force=True)
    with engine.begin() as conn:
        row = conn.execute(
            text("SELECT id, status FROM authorizations WHERE number = :n"), {"n": body.get("authorization_number", "")}
        ).first()
        conn.execute(
            text("INSERT INTO bench_baseline (id, found, payload) VALUES (:id, :found, :payload)"),
            {"id": str(uuid.uuid4()), "found": row is not None, "payload": str(body)[:200]},
        )
    return jsonify({"found": row is not None}), 201


@app.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})
