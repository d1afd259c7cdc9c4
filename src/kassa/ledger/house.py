"""The house's own accounts, opened on first use (get-or-create by code)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from kassa.ledger.accounts import open_account
from kassa.ledger.model import Account, AccountKind, NormalSide
from kassa.money import Asset


def revenue(conn: Connection, asset_: Asset, now: datetime) -> Account:
    """Income from usage and activations (credit-normal)."""
    return open_account(
        conn,
        code=f"house:revenue:{asset_.code}",
        asset_=asset_,
        normal_side=NormalSide.CREDIT,
        kind=AccountKind.REVENUE,
        allow_negative=True,
        now=now,
    )


def adjustments(conn: Connection, asset_: Asset, now: datetime) -> Account:
    """Operator credits (outage or billing-error refunds to the balance) are an expense of
    the house; operator debits reduce it (debit-normal)."""
    return open_account(
        conn,
        code=f"house:adjustments:{asset_.code}",
        asset_=asset_,
        normal_side=NormalSide.DEBIT,
        kind=AccountKind.ADJUSTMENT,
        allow_negative=True,
        now=now,
    )
