"""Binding quotes: what a customer is shown is what the request commits (issue 14).

A quote is a policy decision priced at *locked* rates and a fixed network fee, stored with an
id and an expiry (``[payouts.quotes] ttl_seconds``, 10 minutes by default). A request made
with its id, in time, by the same account, for the same thing (amount, asset and address of a
withdrawal; the top-up of a refund) is decided again at exactly those rates and that fee, and
commits exactly the quoted figures — rate, fee charged, net USD and net coins — or is refused
(``quote_expired``, ``quote_already_used``, ``quote_not_found``, ``quote_mismatch``). Deciding
again matters: the policy's facts may have changed since (the balance was spent, the account
frozen); a decision that would now differ is refused, never silently committed.

A request without a quote id gets a fresh quote, made and used in its own transaction, so every
request names the quote it committed (``payout_request.quote_id``). A quote is used once.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from kassa.money import USD, Money, asset
from kassa.payouts.errors import QuoteAlreadyUsed, QuoteExpired, QuoteMismatch, QuoteNotFound
from kassa.payouts.tables import payout_quote
from kassa.policy import Decision, NetworkFee

FIGURES = (
    "gross_usd",
    "handling_fee_usd",
    "flat_fee_usd",
    "provider_fee_usd",
    "network_fee_native",
    "network_fee_charged_usd",
    "net_usd",
    "net_native",
    "rate",
    "rate_lock_id",
)
"""The breakdown fields a request commits from its quote."""


@dataclass(frozen=True, slots=True)
class Quote:
    """One stored quote (a `payout_quote` row)."""

    id: uuid.UUID
    kind: str
    customer_account_id: uuid.UUID
    deposit_id: uuid.UUID | None
    asset: str
    destination: str | None
    amount_usd: Money | None
    rate_lock_id: uuid.UUID
    fee_rate_lock_id: uuid.UUID | None
    network_fee: Money
    decision: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    request_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a request asks for, to compare with its quote."""

    kind: str
    customer_account_id: uuid.UUID
    asset: str
    deposit_id: uuid.UUID | None = None
    destination: str | None = None
    amount_usd: Money | None = None


def insert_quote(
    conn: Connection,
    wanted: Wanted,
    *,
    quote_id: uuid.UUID,
    rate_lock_id: uuid.UUID,
    fee_rate_lock_id: uuid.UUID | None,
    fee: NetworkFee,
    decision: Decision,
    now: datetime,
    ttl: timedelta,
    request_id: uuid.UUID | None = None,
) -> Quote:
    """Store a quote; with ``request_id`` it is used at once (a request made without one)."""
    conn.execute(
        insert(payout_quote).values(
            id=quote_id,
            kind=wanted.kind,
            customer_account_id=wanted.customer_account_id,
            deposit_id=wanted.deposit_id,
            asset=wanted.asset,
            destination=wanted.destination,
            amount_usd=None if wanted.amount_usd is None else wanted.amount_usd.amount,
            rate_lock_id=rate_lock_id,
            fee_rate_lock_id=fee_rate_lock_id,
            network_fee_native=fee.amount.amount,
            network_fee_asset=fee.amount.asset.code.value,
            decision=json.dumps(decision.as_record(), default=str),
            created_at=now,
            expires_at=now + ttl,
            request_id=request_id,
            used_at=None if request_id is None else now,
        )
    )
    found = get(conn, quote_id)
    if found is None:  # pragma: no cover - just inserted
        raise RuntimeError(f"quote {quote_id} vanished")
    return found


def get(conn: Connection, quote_id: uuid.UUID, *, for_update: bool = False) -> Quote | None:
    query = select(payout_quote).where(payout_quote.c.id == quote_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        return None
    amount = None if row.amount_usd is None else Money(row.amount_usd, USD)
    return Quote(
        id=row.id,
        kind=row.kind,
        customer_account_id=row.customer_account_id,
        deposit_id=row.deposit_id,
        asset=row.asset,
        destination=row.destination,
        amount_usd=amount,
        rate_lock_id=row.rate_lock_id,
        fee_rate_lock_id=row.fee_rate_lock_id,
        network_fee=Money(row.network_fee_native, asset(row.network_fee_asset)),
        decision=json.loads(row.decision),
        created_at=row.created_at,
        expires_at=row.expires_at,
        request_id=row.request_id,
    )


def usable(conn: Connection, quote_id: uuid.UUID, wanted: Wanted, now: datetime) -> Quote:
    """The quote ``wanted`` may commit, row-locked (two requests racing for one quote are
    decided one after the other); refused with the reason otherwise."""
    quote = get(conn, quote_id, for_update=True)
    if quote is None or quote.customer_account_id != wanted.customer_account_id:
        raise QuoteNotFound(f"this account has no quote {quote_id}")
    if quote.kind != wanted.kind:
        raise QuoteNotFound(f"quote {quote_id} is for a {quote.kind}, not a {wanted.kind}")
    if quote.request_id is not None:
        raise QuoteAlreadyUsed(
            f"quote {quote_id} was used by request {quote.request_id}; ask for a new quote"
        )
    if now > quote.expires_at:
        raise QuoteExpired(
            f"quote {quote_id} expired at {quote.expires_at.isoformat()}; ask for a new quote"
        )
    differs = _differences(quote, wanted)
    if differs:
        raise QuoteMismatch(f"the request differs from quote {quote_id}: " + "; ".join(differs))
    return quote


def _differences(quote: Quote, wanted: Wanted) -> list[str]:
    pairs: list[tuple[str, object, object]] = [
        ("asset", quote.asset, wanted.asset),
        ("top-up", quote.deposit_id, wanted.deposit_id),
        ("address", quote.destination, wanted.destination),
        (
            "amount",
            None if quote.amount_usd is None else quote.amount_usd.format(),
            None if wanted.amount_usd is None else wanted.amount_usd.format(),
        ),
    ]
    if wanted.kind == "refund":
        pairs = pairs[:2]  # a refund's address is the top-up's sender, not the caller's
    return [
        f"{name} {asked} was asked, {quoted} was quoted"
        for name, quoted, asked in pairs
        if quoted != asked
    ]


def check_figures(quote: Quote, decision: Decision) -> None:
    """Refuse a decision whose figures are no longer exactly the quoted ones."""
    now_figures = json.loads(json.dumps(decision.as_record(), default=str))["breakdown"]
    quoted = quote.decision["breakdown"]
    changed = [
        f"{name} {quoted.get(name)} → {now_figures.get(name)}"
        for name in FIGURES
        if quoted.get(name) != now_figures.get(name)
    ]
    if changed:
        raise QuoteMismatch(
            f"the figures of quote {quote.id} no longer hold ({', '.join(changed)}); "
            "ask for a new quote"
        )


def mark_used(conn: Connection, quote_id: uuid.UUID, request_id: uuid.UUID, now: datetime) -> None:
    conn.execute(
        update(payout_quote)
        .where(payout_quote.c.id == quote_id, payout_quote.c.request_id.is_(None))
        .values(request_id=request_id, used_at=now)
    )
