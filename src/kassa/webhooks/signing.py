"""Standard Webhooks signatures: ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``.

The signature is ``v1,`` and the base64 HMAC-SHA256, keyed with the secret's bytes, of
``<webhook-id>.<webhook-timestamp>.<body>``. A secret reads ``whsec_`` and the base64 of 32
random bytes. During a rotation's overlap the header carries one signature per live secret,
separated by a space; a receiver accepts the delivery when any of them matches its secret.
The tests check every delivery with the `standardwebhooks` package.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - the public marker of every secret
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def key_of(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(msg_id: str, timestamp: int, body: bytes, keys: Sequence[str]) -> dict[str, str]:
    """The three headers of one attempt, signed with every secret in `keys` (newest first)."""
    if not keys:
        raise ValueError("a delivery is signed with at least one secret")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(k, msg_id, timestamp, body) for k in keys),
        "content-type": "application/json",
    }
