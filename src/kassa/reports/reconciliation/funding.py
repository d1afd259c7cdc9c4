"""Booking coins the operator moves into a hot wallet, so the ledger knows what it holds.

The payout worker books what leaves a hot wallet; funding arrives from outside Kassa. Until it
is booked, reconciliation sees the hot wallet hold more than the ledger says (a
`hot_wallet_mismatch`). ``book_hot_funding`` posts it once per funding transaction:

    Dr wallet:<chain>-hot:<asset>     Cr house:treasury:<asset>

``house:treasury:<asset>`` is the house's own coins put to work (credit-normal); a withdrawal
back to the treasury is the same entry with a negative amount.

Whoever funds a hot wallet by program can leave a record of it in ``funding.jsonl`` next to the
hot wallets' key files (one JSON object a line: ``asset``, ``amount`` as a decimal string,
``txid``); `book_funding_file` books every line once. The devnet writes it when it funds new
hot wallets from the faucet, and `kassa up` books it after migrating.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from kassa.assets import chain_of
from kassa.ledger import house
from kassa.ledger.accounts import open_account
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.model import AccountKind, NormalSide, TransactionKind
from kassa.ledger.transfers import Leg, post
from kassa.money import Money, asset


def book_hot_funding(
    conn: Connection, amount: Money, *, reference: str, actor: str, now: datetime
) -> uuid.UUID:
    """Book `amount` (positive: into the hot wallet) under `reference` (the funding
    transaction's id), once."""
    chain = chain_of(amount.asset).value
    hot = house.hot_wallet(conn, chain, amount.asset, now)
    treasury = open_account(
        conn,
        code=f"house:treasury:{amount.asset.code}",
        asset_=amount.asset,
        normal_side=NormalSide.CREDIT,
        kind=AccountKind.ADJUSTMENT,
        allow_negative=True,
        now=now,
    )
    return post(
        conn,
        [Leg(hot.id, amount), Leg(treasury.id, -amount)],
        kind=TransactionKind.ADJUSTMENT,
        now=now,
        request=Request.of(
            IdempotencyKey("system", f"hot-funding:{chain}:{reference}"),
            "reconciliation.hot_funding",
            {"amount": amount.amount, "asset": amount.asset.code},
        ),
        memo=f"hot wallet funding {amount.format()} {amount.asset.code} ({reference})",
        actor=actor,
        reason="coins moved into the hot wallet from outside Kassa",
    )


FUNDING_FILE = "funding.jsonl"


def book_funding_file(conn: Connection, path: Path, *, actor: str, now: datetime) -> int:
    """Book every funding recorded in `path` (once per txid); how many lines it holds."""
    if not path.exists():
        return 0
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for line in lines:
        record = json.loads(line)
        amount = Money.parse(str(record["amount"]), asset(str(record["asset"])))
        book_hot_funding(conn, amount, reference=str(record["txid"]), actor=actor, now=now)
    return len(lines)
