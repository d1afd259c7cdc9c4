"""The house's own accounts, opened on first use (get-or-create by code)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from kassa.ledger.accounts import open_account
from kassa.ledger.model import Account, AccountKind, NormalSide
from kassa.money import USD, Asset


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


def wallet(
    conn: Connection, name: str, asset_: Asset, now: datetime, *, allow_negative: bool = False
) -> Account:
    """Crypto the house holds on chain, in native units (debit-normal asset), e.g. the
    deposit addresses of one chain (``wallet:btc-deposits:BTC``)."""
    return open_account(
        conn,
        code=f"wallet:{name}:{asset_.code}",
        asset_=asset_,
        normal_side=NormalSide.DEBIT,
        kind=AccountKind.WALLET,
        allow_negative=allow_negative,
        now=now,
    )


def fx(conn: Connection, crypto: Asset, leg: Asset, now: datetime) -> Account:
    """The conversion account of one crypto asset (docs/domain.md §3): ``fx:BTC:BTC`` carries the
    native leg and ``fx:BTC:USD`` the USD leg of every cross-asset movement of BTC.

    Deposits credit the native leg and debit the USD leg; payouts do the opposite. Their
    balances are the house's FX position, so both may go either way."""
    return open_account(
        conn,
        code=f"fx:{crypto.code}:{leg.code}",
        asset_=leg,
        normal_side=NormalSide.DEBIT,
        kind=AccountKind.FX,
        allow_negative=True,
        now=now,
    )


def hot_wallet(conn: Connection, chain: str, asset_: Asset, now: datetime) -> Account:
    """Coins the payout worker sends from (``wallet:eth-hot:ETH``), native units, debit-normal.

    Payouts and their chain fees credit it. Funding the hot wallet is not booked here yet (it
    happens outside Kassa), so its balance may go negative: it then reads as "paid out of the
    hot wallet beyond what the ledger saw arrive", which reconciliation compares with the chain.
    """
    return wallet(conn, f"{chain}-hot", asset_, now, allow_negative=True)


def payout_clearing(conn: Connection, now: datetime) -> Account:
    """``clearing:payouts:USD``: a refund's or withdrawal's hold is captured into it when the
    coins left, and the payout's journal transaction clears it (credit-normal, a liability
    until paid, never negative)."""
    return open_account(
        conn,
        code="clearing:payouts:USD",
        asset_=USD,
        normal_side=NormalSide.CREDIT,
        kind=AccountKind.CLEARING,
        allow_negative=False,
        now=now,
    )


def network_fees(conn: Connection, asset_: Asset, now: datetime) -> Account:
    """Chain fees: debited with what the chain charged, credited with what customers were
    charged for them; its balance is the house's net cost of network fees (debit-normal)."""
    return open_account(
        conn,
        code=f"house:network-fees:{asset_.code}",
        asset_=asset_,
        normal_side=NormalSide.DEBIT,
        kind=AccountKind.FEE,
        allow_negative=True,
        now=now,
    )
