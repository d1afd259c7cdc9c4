"""Refusals that only the HTTP edge can make (headers, cursors)."""

from kassa.errors import InvalidRequest


class IdempotencyKeyRequired(InvalidRequest):
    code = "idempotency_key_required"
    title = "Idempotency-Key header required"


class InvalidCursor(InvalidRequest):
    code = "invalid_cursor"
    title = "Invalid cursor"
