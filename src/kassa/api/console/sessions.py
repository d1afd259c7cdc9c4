"""Console sessions: an operator's API key exchanged for a cookie, stored hashed, with expiry.

Signing in checks the key exactly as the API does (`kassa.apikeys.service.authenticate`) and
that it may use the console (`console:read`, `payouts:approve` or `admin`). The browser then
holds only a fresh 256-bit random token; the database keeps its SHA-256, so a copy of the table
signs no one in. Each session has its own CSRF token, which every form sends back and every POST
is checked against (`check_csrf`), and the time zone its pages show times in.

A session ends at sign-out (the row is deleted), at ``expires_at`` (`SESSION_LIFETIME` after
sign-in, not extended by use: an unattended browser does not stay signed in for ever), or as soon
as its key is revoked — every request reads the key with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import Connection, delete, insert, select, update

from kassa.apikeys import service as apikeys
from kassa.apikeys.errors import Forbidden
from kassa.apikeys.service import ApiKey, Scope
from kassa.apikeys.tables import api_key, console_session

SESSION_LIFETIME = timedelta(hours=8)
"""A working day; then the operator signs in again."""

DEFAULT_TIME_ZONE = "UTC"


@dataclass(frozen=True, slots=True)
class Session:
    id: uuid.UUID
    key: ApiKey
    csrf_token: str
    time_zone: str
    created_at: datetime
    expires_at: datetime

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def can_decide(self) -> bool:
        """Approve and reject payouts and take the other operator actions of the console."""
        return self.key.allows(Scope.PAYOUTS_APPROVE)

    @property
    def operator(self) -> str:
        """The actor recorded for this operator's actions: the key's, as in the API."""
        return self.key.actor


def may_use_console(key: ApiKey) -> bool:
    """An operator's key: a console scope, and not bound to one customer (the console shows
    every account)."""
    return key.customer_account_id is None and (
        key.allows(Scope.CONSOLE_READ) or key.allows(Scope.PAYOUTS_APPROVE)
    )


def valid_time_zone(name: str) -> str:
    """`name` when it is an IANA time zone this system knows, else UTC."""
    name = name.strip()
    if not name or len(name) > 64 or name not in _zones():
        return DEFAULT_TIME_ZONE
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return DEFAULT_TIME_ZONE
    return name


def time_zones() -> list[str]:
    return sorted(_zones())


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones() | {DEFAULT_TIME_ZONE})
    return _ZONES


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(conn: Connection, api_token: str, time_zone: str, now: datetime) -> tuple[str, Session]:
    """A new session for the live key `api_token` (else `Unauthenticated`; a key without a
    console scope: `Forbidden`); returns the cookie's token (never stored) and the session."""
    key = apikeys.authenticate(conn, api_token.strip())
    if not may_use_console(key):
        raise Forbidden(
            "this API key cannot use the console: it needs the console:read or payouts:approve "
            "scope and must not be bound to a customer account"
        )
    token = secrets.token_urlsafe(32)
    session_id = uuid.uuid4()
    conn.execute(
        insert(console_session).values(
            id=session_id,
            token_sha256=_digest(token),
            api_key_id=key.id,
            csrf_token=secrets.token_urlsafe(32),
            time_zone=valid_time_zone(time_zone),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    found = current(conn, token, now)
    if found is None:
        raise RuntimeError("a session just made for a live key must be found")
    return token, found


def current(conn: Connection, token: str | None, now: datetime) -> Session | None:
    """The live session of a cookie's token: not expired, its key not revoked."""
    if not token or len(token) > 128:
        return None
    row = conn.execute(
        select(
            console_session,
            api_key.c.prefix,
            api_key.c.name,
            api_key.c.scopes,
            api_key.c.customer_account_id,
            api_key.c.created_at.label("key_created_at"),
            api_key.c.revoked_at,
        )
        .join(api_key, api_key.c.id == console_session.c.api_key_id)
        .where(console_session.c.token_sha256 == _digest(token))
    ).first()
    if row is None or row.expires_at <= now or row.revoked_at is not None:
        return None
    key = ApiKey(
        id=row.api_key_id,
        prefix=row.prefix,
        name=row.name,
        scopes=frozenset(Scope(s) for s in row.scopes.split()),
        customer_account_id=row.customer_account_id,
        created_at=row.key_created_at,
        revoked_at=None,
    )
    return Session(
        id=row.id,
        key=key,
        csrf_token=row.csrf_token,
        time_zone=row.time_zone,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def sign_out(conn: Connection, session_id: uuid.UUID) -> None:
    conn.execute(delete(console_session).where(console_session.c.id == session_id))


def set_time_zone(conn: Connection, session_id: uuid.UUID, time_zone: str) -> str:
    zone = valid_time_zone(time_zone)
    conn.execute(
        update(console_session).where(console_session.c.id == session_id).values(time_zone=zone)
    )
    return zone


def delete_expired(conn: Connection, now: datetime) -> int:
    """Forget sessions past their expiry (done at each sign-in, so the table stays small)."""
    return conn.execute(delete(console_session).where(console_session.c.expires_at <= now)).rowcount


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
