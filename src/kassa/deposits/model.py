"""The deposit vocabulary: what a chain adapter reports, and the deposit lifecycle.

A `ChainTransfer` is one value movement to some address in one block, as a chain adapter reads
it: a BTC output (``position`` = vout), a native ETH/TRX transfer (``position`` = -1, one per
transaction), or a token Transfer log (``position`` = the log index). The watcher matches
transfers against the watched addresses and records each match once, keyed by
``(chain, txid, position)``.

Lifecycle, with every allowed move in `TRANSITIONS` (an illegal move raises):
``seen → confirming → credited``; a credited deposit whose block leaves the chain is
``reversed``; a seen or confirming one goes back to ``seen``; a reversed one that is mined again
is ``seen`` again and is credited again, exactly once more. ``ignored`` is final: dust, a failed
transaction, or a token contract that is not the canonical one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kassa.chains.network import Chain
from kassa.errors import KassaError

NATIVE_POSITION = -1
"""``position`` of a chain's native transfer within its transaction (ETH value, TRX transfer)."""


class DepositStatus(StrEnum):
    SEEN = "seen"
    CONFIRMING = "confirming"
    CREDITED = "credited"
    REVERSED = "reversed"
    IGNORED = "ignored"


TRANSITIONS: dict[DepositStatus, frozenset[DepositStatus]] = {
    DepositStatus.SEEN: frozenset(
        {
            DepositStatus.SEEN,
            DepositStatus.CONFIRMING,
            DepositStatus.CREDITED,
            DepositStatus.IGNORED,
        }
    ),
    DepositStatus.CONFIRMING: frozenset(
        {
            DepositStatus.CONFIRMING,
            DepositStatus.CREDITED,
            DepositStatus.SEEN,
            DepositStatus.IGNORED,
        }
    ),
    DepositStatus.CREDITED: frozenset({DepositStatus.REVERSED}),
    DepositStatus.REVERSED: frozenset({DepositStatus.SEEN, DepositStatus.REVERSED}),
    DepositStatus.IGNORED: frozenset({DepositStatus.IGNORED}),
}


class IllegalTransition(KassaError):
    code = "illegal_deposit_transition"
    title = "Illegal deposit state change"


def check_transition(old: DepositStatus, new: DepositStatus) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"a deposit cannot go from {old} to {new}")


class SenderKind(StrEnum):
    KNOWN = "known"
    """One sending address: ETH/TRON ``from``; BTC when every input spends from one address."""
    AMBIGUOUS = "ambiguous"
    """BTC inputs from several addresses (or scripts without an address): no single origin."""


@dataclass(frozen=True, slots=True)
class ChainTransfer:
    """One transfer to an address, as read from a block. ``amount`` is minor units of `asset`."""

    chain: Chain
    asset: str
    """Asset code (``BTC``, ``ETH``, ``USDT-ERC20``, ``TRX``, ``USDT-TRC20``)."""
    txid: str
    position: int
    to_address: str
    amount: int
    sender: str | None
    sender_kind: SenderKind
    success: bool
    """False for a reverted/failed transaction: recorded as ignored, never credited."""
    token_contract: str | None = None
    """The emitting contract for token transfers (canonical or not)."""
    canonical: bool = True
    """False for a Transfer log of a contract that is not Kassa's configured token."""


@dataclass(frozen=True, slots=True)
class ChainBlock:
    height: int
    hash: str
    parent_hash: str
    time: datetime
    transfers: tuple[ChainTransfer, ...]


@dataclass(frozen=True, slots=True)
class ChainHead:
    height: int
    hash: str
    final_height: int
    """The highest block the chain's finality rule treats as final (N confirmations, the
    ``finalized`` tag, or TRON's solidified block)."""
