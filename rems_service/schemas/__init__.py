"""Marshmallow request and response schemas (web layer only).

Request schemas are closed: marshmallow's default ``unknown = RAISE`` makes
an unknown or server-owned field (``status``, ``id``, ``certified_at``) a 422.
"""
