"""The hot address's Ethereum nonces: allocated without gaps, and what the unmined ones commit.

* Nonces are allocated in the ``payout_nonce`` row of the hot address, locked in the worker's
  signing transaction, so two workers never sign the same nonce and a rolled-back signing
  allocates nothing. The row is created on first use (insert-if-absent, then lock), which two
  PostgreSQL workers may race on safely. The nonce is the larger of the row and the chain's
  ``latest`` transaction count, so a transaction sent with the key outside Kassa cannot make
  Kassa reuse its nonce; it only makes the allocation skip past it.
* Pending commitments: the hot address's payout transactions still ``signed`` or ``broadcast``
  whose nonce the chain has not used yet (nonce ≥ the ``latest`` count). The ones below it are
  in a block and already out of the balance; versions of one nonce (fee bumps) count once, at
  their largest. ``check_funds`` subtracts them, so payouts in flight never overspend.
Addresses are the hot address in lower case, as the row and the spend keys hold it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, update

from kassa.chains.network import Chain
from kassa.money import ETH, USDT_ERC20, Money
from kassa.payouts.rails.base import in_flight, lock_hot_address
from kassa.payouts.tables import payout_nonce

__all__ = ["commitments", "lock_nonce_row", "take_nonce"]


def lock_nonce_row(conn: Connection, address: str, now: datetime) -> int:
    """Lock the hot address's nonce row (creating it if absent) and return its next nonce.
    The lock serializes the signers of this address until their transactions end."""
    return lock_hot_address(conn, Chain.ETH, address, now)


def take_nonce(
    conn: Connection, address: str, *, row_nonce: int, chain_count: int, now: datetime
) -> int:
    """The nonce to sign with: the larger of the locked row's ``row_nonce`` and the chain's
    ``chain_count``; the row moves past it. Call it holding the lock (`lock_nonce_row`)."""
    nonce = max(row_nonce, chain_count)
    where = (payout_nonce.c.chain == Chain.ETH.value) & (payout_nonce.c.address == address)
    conn.execute(update(payout_nonce).where(where).values(next_nonce=nonce + 1, updated_at=now))
    return nonce


def commitments(conn: Connection, address: str, count: int) -> tuple[Money, Money, int]:
    """(ETH, USDT, how many) that the hot address's unmined payout transactions will still
    spend, given its ``latest`` transaction ``count``: versions of one nonce count once, at
    their largest."""
    flying = in_flight(conn, Chain.ETH, spend_key_prefix=f"eth:{address}:")
    unmined = [tx for tx in flying if int(tx.spend_key.rsplit(":", 1)[1]) >= count]
    eth_by_nonce: dict[str, int] = {}
    token_by_nonce: dict[str, int] = {}
    for tx in unmined:
        value = tx.paid_native
        eth = tx.fee_native + (value if tx.asset == ETH.code.value else 0)
        token = value if tx.asset == USDT_ERC20.code.value else 0
        eth_by_nonce[tx.spend_key] = max(eth_by_nonce.get(tx.spend_key, 0), eth)
        token_by_nonce[tx.spend_key] = max(token_by_nonce.get(tx.spend_key, 0), token)
    return (
        Money(sum(eth_by_nonce.values()), ETH),
        Money(sum(token_by_nonce.values()), USDT_ERC20),
        len(eth_by_nonce),
    )
