"""Fees: what the house charged for refunds and withdrawals — the service fees (flat fee,
handling costs, provider fees) — and the network fees it charged against what the chains took,
per chain and kind, for the payouts settled in the period.

A payout counts on the day it was settled (``settled_at``): confirmed payouts with everything
they were charged, and failed ones whose transaction was mined without paying (the chain still
took its fee: a cost with nothing charged). The fee the chain took is valued as the books value
it: the fee in the fee asset at the payout-time rate lock, rounded up to the micro-dollar
(`kassa.pricing.locks.RateLock.usd_charge_for`), which is what `house:network-fees:USD` was
debited with. The database hands over one row per settled payout (streamed, never all at once)
because each is valued at its own rate.

Columns (one row per chain and kind, then a ``total`` row):

| column | meaning |
|---|---|
| ``chain`` | ``btc``, ``eth``, ``tron``, or ``total`` |
| ``kind`` | ``refund`` or ``withdrawal`` (``all`` on the total) |
| ``payouts`` | settled payouts counted |
| ``service_fees_usd`` | every fee charged besides the network fee (``fees_usd``) |
| ``flat_fees_usd`` | of which the policy's flat fee ($5 by default) |
| ``handling_fees_usd`` | of which handling costs (an account state's) |
| ``provider_fees_usd`` | of which payment-provider fees |
| ``network_fee_charged_usd`` | network fees the customers were charged |
| ``network_fee_paid_usd`` | what the chains took, valued at the payout-time rate |
| ``network_fee_variance_usd`` | charged − paid: positive when customers paid more |
| ``fee_asset`` | the asset the chain's fee was paid in |
| ``network_fee_paid`` | what the chains took, in ``fee_asset`` |
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from kassa.assets import chain_of, fee_asset_of
from kassa.money import USD, Money, asset, convert_up
from kassa.payouts.tables import payout_request
from kassa.pricing.tables import rate_lock
from kassa.reports.model import Report, amount_text, usd_text
from kassa.reports.period import Period

__all__ = ["COLUMNS", "FeeLine", "fee_lines", "fees"]

COLUMNS = (
    "chain",
    "kind",
    "payouts",
    "service_fees_usd",
    "flat_fees_usd",
    "handling_fees_usd",
    "provider_fees_usd",
    "network_fee_charged_usd",
    "network_fee_paid_usd",
    "network_fee_variance_usd",
    "fee_asset",
    "network_fee_paid",
)

_STREAM_ROWS = 2_000


@dataclass(slots=True)
class FeeLine:
    chain: str
    kind: str
    fee_asset: str
    payouts: int = 0
    service: int = 0
    flat: int = 0
    handling: int = 0
    provider: int = 0
    charged: int = 0
    paid_usd: int = 0
    paid_native: dict[str, int] = field(default_factory=dict)

    @property
    def variance(self) -> int:
        return self.charged - self.paid_usd

    def add(self, other: FeeLine) -> None:
        self.payouts += other.payouts
        self.service += other.service
        self.flat += other.flat
        self.handling += other.handling
        self.provider += other.provider
        self.charged += other.charged
        self.paid_usd += other.paid_usd
        for code, amount in other.paid_native.items():
            self.paid_native[code] = self.paid_native.get(code, 0) + amount

    def text(self) -> tuple[str, ...]:
        paid = "; ".join(
            f"{amount_text(amount, code)} {code}"
            if len(self.paid_native) > 1
            else amount_text(amount, code)
            for code, amount in sorted(self.paid_native.items())
        )
        return (
            self.chain,
            self.kind,
            str(self.payouts),
            usd_text(self.service),
            usd_text(self.flat),
            usd_text(self.handling),
            usd_text(self.provider),
            usd_text(self.charged),
            usd_text(self.paid_usd),
            usd_text(self.variance),
            self.fee_asset,
            paid or "0",
        )


def fee_lines(conn: Connection, period: Period) -> list[FeeLine]:
    """One line per (chain, kind) with settled payouts, then the total line."""
    lines: dict[tuple[str, str], FeeLine] = {}
    query = (
        select(
            payout_request.c.kind,
            payout_request.c.status,
            payout_request.c.asset,
            payout_request.c.fees_usd,
            payout_request.c.network_fee_usd,
            payout_request.c.network_fee_paid_native,
            payout_request.c.decision,
            rate_lock.c.rate,
        )
        .select_from(
            payout_request.outerjoin(
                rate_lock, rate_lock.c.id == payout_request.c.execution_rate_lock_id
            )
        )
        .where(
            payout_request.c.settled_at >= period.start,
            payout_request.c.settled_at < period.end,
            (payout_request.c.status == "confirmed")
            | (
                (payout_request.c.status == "failed")
                & payout_request.c.network_fee_paid_native.is_not(None)
            ),
        )
    )
    for row in conn.execution_options(yield_per=_STREAM_ROWS).execute(query):
        chain = chain_of(row.asset).value
        fee_code = fee_asset_of(row.asset).code.value
        line = lines.setdefault((chain, row.kind), FeeLine(chain, row.kind, fee_code))
        line.payouts += 1
        paid_native = int(row.network_fee_paid_native or 0)
        if paid_native:
            line.paid_native[fee_code] = line.paid_native.get(fee_code, 0) + paid_native
            line.paid_usd += _usd_up(paid_native, fee_code, row.rate)
        if row.status != "confirmed":
            continue  # a failed payout charged nothing: its money went back
        line.service += int(row.fees_usd)
        line.charged += int(row.network_fee_usd)
        flat, handling, provider = _fee_parts(row.decision)
        line.flat += flat
        line.handling += handling
        line.provider += provider
    out = [lines[key] for key in sorted(lines)]
    total = FeeLine("total", "all", "")
    for line in out:
        total.add(line)
    total.fee_asset = ", ".join(sorted(total.paid_native)) if total.paid_native else ""
    return [*out, total]


def fees(conn: Connection, period: Period) -> Report:
    return Report(
        "fees", COLUMNS, [line.text() for line in fee_lines(conn, period)], period.describe()
    )


def _usd_up(amount: int, code: str, rate: Decimal | None) -> int:
    """``amount`` of ``code`` in micro-USD at ``rate``, rounded up (as the books value a fee)."""
    if rate is None:
        return 0
    num, den = rate.as_integer_ratio()
    return convert_up(Money(amount, asset(code)), num, den, USD).amount


def _fee_parts(decision: str) -> tuple[int, int, int]:
    """The flat, handling and provider fees of the stored decision record (micro-USD)."""
    try:
        breakdown: dict[str, Any] = json.loads(decision).get("breakdown") or {}
    except (ValueError, AttributeError):
        return 0, 0, 0

    def part(name: str) -> int:
        record = breakdown.get(name)
        if not isinstance(record, dict) or "amount" not in record:
            return 0
        return Money.parse(str(record["amount"]), USD, allow_negative=True).amount

    return part("flat_fee_usd"), part("handling_fee_usd"), part("provider_fee_usd")
