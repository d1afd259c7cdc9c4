"""Issuing, checking and revoking API keys.

A token reads `kassa_<prefix>_<secret>`. The prefix (12 letters and digits) is public: it finds
the row and names the key in listings. Only the SHA-256 of the secret is stored — the secret is
256 bits of randomness, so a slow password hash would add latency and no safety. The plaintext
token exists once, in `create_key`'s return value.

Scopes: `accounts:read`, `accounts:write`, `reports:read` (finance: reconciliation and
reports), `webhooks:manage`, `console:read` (the web console, read-only), `payouts:approve`
(the console's decisions: approve and reject payouts, change account states, disputes,
redeliveries), `admin` (admin implies every scope). A key may be bound to one
customer account; it then sees nothing else. Admin keys cannot be bound: an operator key that is
confined to one customer would be a contradiction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from kassa.apikeys import cache
from kassa.apikeys.errors import (
    ApiKeyNotFound,
    InvalidKeyName,
    InvalidScope,
    Unauthenticated,
)
from kassa.apikeys.tables import api_key

TOKEN_PREFIX = "kassa_"  # noqa: S105 - the public marker of every token, not a secret
PREFIX_LENGTH = 12
_PREFIX_ALPHABET = string.ascii_letters + string.digits
BOOTSTRAP_KEY_NAME = "bootstrap-admin"


class Scope(StrEnum):
    ACCOUNTS_READ = "accounts:read"
    ACCOUNTS_WRITE = "accounts:write"
    REPORTS_READ = "reports:read"
    WEBHOOKS_MANAGE = "webhooks:manage"
    CONSOLE_READ = "console:read"
    PAYOUTS_APPROVE = "payouts:approve"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: uuid.UUID
    prefix: str
    name: str
    scopes: frozenset[Scope]
    customer_account_id: uuid.UUID | None
    """When set, the key may only touch this customer account."""
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes

    @property
    def actor(self) -> str:
        """How journal entries name this key as their author."""
        return f"api-key:{self.name}"


def parse_scopes(scopes: Iterable[str]) -> frozenset[Scope]:
    parsed: set[Scope] = set()
    for raw in scopes:
        try:
            parsed.add(Scope(raw))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise InvalidScope(f"unknown scope {raw!r}; known scopes: {known}") from None
    if not parsed:
        raise InvalidScope("a key needs at least one scope")
    return frozenset(parsed)


def _key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        prefix=row.prefix,
        name=row.name,
        scopes=frozenset(Scope(s) for s in row.scopes.split()),
        customer_account_id=row.customer_account_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    conn: Connection,
    *,
    name: str,
    scopes: Iterable[str],
    customer_account_id: uuid.UUID | None,
    now: datetime,
) -> tuple[ApiKey, str]:
    """Store a new key; return it with its plaintext token (shown once, never stored)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidKeyName("a key name has 1 to 200 characters")
    parsed = parse_scopes(scopes)
    if Scope.ADMIN in parsed and customer_account_id is not None:
        raise InvalidScope("an admin key cannot be bound to a customer account")
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = secrets.token_urlsafe(32)
    key_id = uuid.uuid4()
    conn.execute(
        insert(api_key).values(
            id=key_id,
            prefix=prefix,
            secret_sha256=_digest(secret),
            name=name,
            scopes=" ".join(sorted(parsed)),
            customer_account_id=customer_account_id,
            created_at=now,
            revoked_at=None,
        )
    )
    return _get(conn, key_id), f"{TOKEN_PREFIX}{prefix}_{secret}"


def _get(conn: Connection, key_id: uuid.UUID) -> ApiKey:
    return _key(conn.execute(select(api_key).where(api_key.c.id == key_id)).one())


def authenticate(conn: Connection, token: str) -> ApiKey:
    """The live key `token` belongs to, or `Unauthenticated` (the same for unknown, wrong and
    revoked keys)."""
    # Split by position, not by '_': the secret itself may contain '_' and '-'.
    body = token[len(TOKEN_PREFIX) :]
    prefix, separator, secret = (
        body[:PREFIX_LENGTH],
        body[PREFIX_LENGTH : PREFIX_LENGTH + 1],
        body[PREFIX_LENGTH + 1 :],
    )
    if (
        not token.startswith(TOKEN_PREFIX)
        or len(prefix) != PREFIX_LENGTH
        or separator != "_"
        or not secret
    ):
        raise Unauthenticated("malformed API key: expected 'kassa_<prefix>_<secret>'")
    row = conn.execute(select(api_key).where(api_key.c.prefix == prefix)).first()
    # A revoked key is answered exactly as an unknown one: the caller learns nothing about
    # which keys exist or existed.
    if (
        row is None
        or not hmac.compare_digest(_digest(secret), row.secret_sha256)
        or row.revoked_at is not None
    ):
        raise Unauthenticated("invalid API key")
    return _key(row)


def list_keys(conn: Connection) -> list[ApiKey]:
    return [_key(row) for row in conn.execute(select(api_key).order_by(api_key.c.created_at))]


def count_keys(conn: Connection) -> int:
    """All keys ever issued, revoked ones included."""
    return int(conn.execute(select(func.count()).select_from(api_key)).scalar_one())


def revoke_key(conn: Connection, prefix: str, now: datetime) -> ApiKey:
    """Revoke the key; revoking a revoked key keeps its original revocation time."""
    row = conn.execute(select(api_key).where(api_key.c.prefix == prefix)).first()
    if row is None:
        raise ApiKeyNotFound(f"no API key with prefix {prefix!r}")
    conn.execute(
        update(api_key)
        .where(api_key.c.id == row.id, api_key.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    # Refused at once by this process; other processes' caches let it go within their TTL.
    cache.forget(conn.engine, prefix)
    return _get(conn, row.id)


def ensure_bootstrap_admin(conn: Connection, now: datetime) -> tuple[ApiKey, str] | None:
    """On a brand-new installation (no key was ever issued) create the first admin key.

    Counting revoked keys too means a deliberately revoked bootstrap key never comes back on
    restart; operators then issue keys with `kassa keys create`.
    """
    if count_keys(conn):
        return None
    return create_key(
        conn, name=BOOTSTRAP_KEY_NAME, scopes=[Scope.ADMIN], customer_account_id=None, now=now
    )
