"""What ``/readyz`` answers, ready (200) or not (503)."""

from __future__ import annotations

from marshmallow import Schema, fields


class ReadinessSchema(Schema):
    status = fields.String(
        metadata={"description": "ready | degraded (Redis down; decisions still work) | unavailable (database down)"}
    )
    environment = fields.String(metadata={"description": "REMS_ENV: development, sandbox, test or production"})
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "database and redis: ok, unavailable, or not configured (jobs run inline)"},
    )
