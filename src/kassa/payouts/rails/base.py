"""What the payout worker needs from one chain: a *rail*.

The worker (`kassa.payouts.worker`) owns the payout's life: claim, price, sign-and-store,
broadcast, watch, settle. A rail owns everything chain-specific: how much the hot wallet can
spend, what a transaction will cost now, how a transaction is built and signed (allocating its
spend identity: ETH nonce, BTC inputs, TRON expiration), how it is broadcast, and what the chain
says about it later.

Rules every rail follows:

* ``sign`` runs inside the worker's database transaction (``conn``) and allocates the spend
  identity there (nonce row, UTXO reservation). The worker stores the returned bytes in the same
  transaction, so an identity is never allocated without its signed bytes being kept, and
  nothing is broadcast before that transaction commits.
* ``broadcast`` sends exactly the stored bytes; it is safe to call again with the same bytes
  ("already known" is success).
* ``status`` never guesses: ``DEAD`` only when the chain proves the transaction can never be
  included (a TRON transaction past its expiration and absent from the chain; an ETH nonce used
  by a different transaction that is final; a BTC input spent by a different transaction).
* Token payouts (USDT) are judged by the receipt status *and* the token's Transfer event from the
  hot address to the destination for the exact amount, never by a return value.
* Amounts are integer minor units (`Money`) everywhere; fee rates are integers too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kassa.chains.network import Chain
from kassa.errors import Conflict, KassaError
from kassa.money import Asset, Money
from kassa.payouts.tables import payout_nonce, payout_tx, payout_tx_line

IN_FLIGHT = ("signed", "broadcast")
"""``payout_tx`` statuses of transactions that may still be included: their lines and fees are
still to leave the hot wallet."""


@dataclass(frozen=True, slots=True)
class PayoutLine:
    """One payout inside a transaction (several only for batched BTC payouts)."""

    request_id: uuid.UUID
    destination: str
    """Canonical address on the rail's chain and network."""
    amount: Money
    """What the destination receives, in the payout asset (BTC, ETH, USDT-ERC20, TRX or
    USDT-TRC20)."""


@dataclass(frozen=True, slots=True)
class FeeEstimate:
    """What one transaction paying ``lines`` costs on chain now, in the chain's fee asset.

    ``total`` is what the customer is charged for (the expected fee, not a worst case); the fee
    actually paid is measured at confirmation and the difference is booked to the network-fee
    account. ``params`` are the chain's fee parameters the estimate came from (sat/kvB; gas,
    base fee, priority fee, fee cap; energy, bandwidth, prices) and are handed back to ``sign``,
    so the transaction is built with exactly what was priced.
    """

    total: Money
    params: Mapping[str, int] = field(default_factory=dict)
    source: str = ""
    """Where the figures came from, e.g. ``estimatesmartfee`` or ``fallback``, for the record."""

    def share(self, index: int, count: int) -> Money:
        """Line ``index``'s part of ``total`` when ``count`` payouts share the transaction:
        an equal split, the remainder on the first lines, so the shares add up exactly."""
        if not 0 <= index < count:
            raise ValueError(f"line {index} of {count}")
        base, remainder = divmod(self.total.amount, count)
        return Money(base + (1 if index < remainder else 0), self.total.asset)


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A signed transaction with the identity of what it spends, ready to be stored."""

    txid: str
    """As the chain prints it (``0x…`` on ETH, bare hex on BTC and TRON)."""
    raw: str
    """What ``broadcast`` sends: hex bytes (BTC, ETH) or the broadcast JSON text (TRON)."""
    spend_key: str
    """The spend identity; transactions replacing each other share it. ``eth:<from>:<nonce>``,
    ``btc:<txid>:<vout>+…`` (sorted inputs of the first version), ``tron:<txid>``."""
    spend: Mapping[str, Any]
    """The identity in detail (from, nonce; inputs with values; expiration ms), JSON-able."""
    fee: Money
    """The most this transaction can cost (BTC: exact; ETH: gas limit × fee cap; TRON: the
    estimate it was signed for), in the fee asset."""
    outputs: Mapping[uuid.UUID, int] = field(default_factory=dict)
    """Per payout request, its output index in the transaction, where the chain has them."""
    expires_at: datetime | None = None
    """After this the chain will never include it (TRON); None where there is no such time."""

    def spend_json(self) -> str:
        return json.dumps(dict(self.spend), sort_keys=True, default=str)


@dataclass(frozen=True, slots=True)
class StoredTx:
    """A transaction as the worker stored it (the ``payout_tx`` row); what rails are asked about."""

    id: uuid.UUID
    chain: Chain
    txid: str
    raw: str
    spend_key: str
    spend: Mapping[str, Any]
    fee: Money
    lines: tuple[PayoutLine, ...]
    created_at: datetime
    broadcast_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class InFlightTx:
    """A stored payout transaction still in flight, with what it pays out in total."""

    id: uuid.UUID
    asset: str
    spend_key: str
    fee_native: int
    paid_native: int
    """The sum of its lines, in its payout asset's minor units."""


def in_flight(conn: Connection, chain: Chain, *, spend_key_prefix: str = "") -> list[InFlightTx]:
    """Kassa's signed or broadcast transactions on ``chain`` (whose spend key starts with
    ``spend_key_prefix``): what the hot wallet has promised but not yet paid."""
    query = select(
        payout_tx.c.id, payout_tx.c.asset, payout_tx.c.spend_key, payout_tx.c.fee_native
    ).where(payout_tx.c.chain == chain.value, payout_tx.c.status.in_(IN_FLIGHT))
    if spend_key_prefix:
        query = query.where(payout_tx.c.spend_key.startswith(spend_key_prefix, autoescape=True))
    rows = conn.execute(query).all()
    paid: dict[uuid.UUID, int] = {}
    if rows:
        for line in conn.execute(
            select(payout_tx_line.c.tx_id, payout_tx_line.c.amount_native).where(
                payout_tx_line.c.tx_id.in_([row.id for row in rows])
            )
        ):
            paid[line.tx_id] = paid.get(line.tx_id, 0) + int(line.amount_native)
    return [
        InFlightTx(row.id, row.asset, row.spend_key, int(row.fee_native), paid.get(row.id, 0))
        for row in rows
    ]


class BroadcastOutcome(StrEnum):
    ACCEPTED = "accepted"
    """The node took it (or already had it, or it is already in a block)."""
    REJECTED = "rejected"
    """The node refused it for good (e.g. inputs already spent, nonce too low, expired):
    ask ``status`` whether it is dead before doing anything else."""
    UNAVAILABLE = "unavailable"
    """The node could not be asked (down, timeout): try again later."""
    DEFERRED = "deferred"
    """Not sent yet, on purpose: an earlier transaction of the same sender must reach the node
    first (ETH sends in nonce order). The next round sends it."""


@dataclass(frozen=True, slots=True)
class Broadcast:
    outcome: BroadcastOutcome
    detail: str = ""


class TxState(StrEnum):
    UNKNOWN = "unknown"
    """The node does not know it (not in the mempool, not in a block) and nothing proves it
    dead: rebroadcast the same bytes."""
    PENDING = "pending"
    """In the mempool, not yet in a block."""
    MINED = "mined"
    """In a block, not yet final (confirmations below the chain's setting)."""
    FINAL = "final"
    """Final and successful: the destinations received their amounts."""
    FAILED = "failed"
    """Final, but it did not pay (a reverted token transfer, a missing Transfer event). The fee
    was spent."""
    DEAD = "dead"
    """Proven never to be included; what it spent is free again."""


@dataclass(frozen=True, slots=True)
class TxStatus:
    state: TxState
    detail: str = ""
    block_number: int | None = None
    block_hash: str | None = None
    confirmations: int = 0
    fee_paid: Money | None = None
    """The fee the chain actually charged, in the fee asset: set for FINAL and FAILED."""


class HotWalletShort(Conflict):
    """The hot wallet cannot pay this now (balance, spendable coins, fee asset). The payout
    waits with this reason and is retried; it does not fail."""

    code = "hot_wallet_short"
    title = "Hot wallet cannot pay yet"


class PayoutNotSendable(Conflict):
    """This payout can never be sent as asked (below the chain's dust limit, a destination
    the chain refuses). The payout fails and its funds return."""

    code = "payout_not_sendable"
    title = "Payout cannot be sent"


class RailUnavailable(KassaError):
    """The chain could not be asked (node down, timeout, bad answer): try again later."""

    code = "rail_unavailable"
    title = "Chain not reachable"


class Rail(Protocol):
    """One chain's payout machinery. See the module docstring for the rules."""

    @property
    def chain(self) -> Chain: ...

    @property
    def assets(self) -> tuple[Asset, ...]:
        """Payout assets this rail sends (e.g. ETH and USDT-ERC20)."""
        ...

    @property
    def fee_asset(self) -> Asset: ...

    def hot_address(self) -> str:
        """The address payouts are sent from."""
        ...

    def dust_limit(self, coin: Asset, destination: str) -> Money:
        """The smallest amount of ``coin`` worth sending to ``destination``: below it the
        payout fails cleanly (BTC: the relay dust threshold of the destination's script)."""
        ...

    def estimate(self, coin: Asset, lines: Sequence[PayoutLine]) -> FeeEstimate:
        """The fee of one transaction paying ``lines`` in ``coin``, from the chain now.
        Line amounts may be provisional (the fee barely depends on them). Raises
        ``RailUnavailable`` when the chain cannot be asked."""
        ...

    def check_funds(self, conn: Connection, coin: Asset, lines: Sequence[PayoutLine]) -> None:
        """Raise ``HotWalletShort`` (with a reason a person can act on) unless the hot wallet
        can pay ``lines`` and the fee now, counting what Kassa's own unconfirmed payouts will
        still spend."""
        ...

    def sign(
        self,
        conn: Connection,
        coin: Asset,
        lines: Sequence[PayoutLine],
        estimate: FeeEstimate,
        *,
        now: datetime,
    ) -> SignedTx:
        """Allocate the spend identity in ``conn`` and sign. Raises ``HotWalletShort`` or
        ``PayoutNotSendable``; then nothing was allocated (the caller rolls back)."""
        ...

    def broadcast(self, tx: StoredTx) -> Broadcast: ...

    def status(self, tx: StoredTx) -> TxStatus:
        """What the chain says about ``tx`` now. Raises ``RailUnavailable``."""
        ...

    def replacement(
        self, conn: Connection, tx: StoredTx, *, bump_percent: int, now: datetime
    ) -> SignedTx | None:
        """A new version of stuck ``tx`` with a fee at least ``bump_percent`` higher that
        spends the same identity (ETH: same nonce; BTC: same inputs, RBF). None where the
        chain cannot replace (TRON: wait for expiry, then it is dead) or the fee cap allows no
        bump."""
        ...

    def settle(self, conn: Connection, tx: StoredTx, state: TxState) -> None:
        """Book the rail's own records once ``tx`` is FINAL, FAILED or DEAD (BTC: mark inputs
        spent and record the change output, or free the reserved inputs of a dead one)."""
        ...


def lock_hot_address(conn: Connection, chain: Chain, address: str, now: datetime) -> int:
    """Lock the ``payout_nonce`` row of a hot address (created if absent) until ``conn``'s
    transaction ends, and return its ``next_nonce`` (ETH's next nonce; unused on TRON, which
    has no nonce). Signers of one address then check its funds and store their transactions
    one at a time. On SQLite the writer's lock (BEGIN IMMEDIATE) already does that."""
    where = (payout_nonce.c.chain == chain.value) & (payout_nonce.c.address == address)
    locked = select(payout_nonce.c.next_nonce).where(where).with_for_update()
    row = conn.execute(locked).first()
    if row is None:
        # Two workers may both find no row: the second insert waits for the first to commit
        # and then does nothing, and its lock below waits on the first one's row.
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(
            insert(payout_nonce)
            .values(chain=chain.value, address=address, next_nonce=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["chain", "address"])
        )
        row = conn.execute(locked).one()
    return int(row.next_nonce)
