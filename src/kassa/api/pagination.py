"""Opaque ledger cursors: the last posting id seen, versioned and base64url-encoded so
clients treat it as a token, not a number to do arithmetic on."""

from __future__ import annotations

import base64
import binascii

from kassa.api.errors import InvalidCursor

_VERSION = "p1:"


def encode_cursor(posting_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_VERSION}{posting_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    invalid = InvalidCursor("cursor is not one this API returned; start again without it")
    if len(cursor) > 64:
        raise invalid
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    number = text.removeprefix(_VERSION)
    if not text.startswith(_VERSION) or not number.isdigit() or not number.isascii():
        raise invalid
    return int(number)
