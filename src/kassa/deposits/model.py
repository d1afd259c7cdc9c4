"""The deposit lifecycle (the chain-side vocabulary lives in `kassa.chains.scanning`).

The watcher matches chain transfers against the watched addresses and records each match once,
keyed by ``(chain, txid, position)``.

Lifecycle, with every allowed move in `TRANSITIONS` (an illegal move raises):
``seen → confirming → credited``; a credited deposit whose block leaves the chain is
``reversed``; a seen or confirming one goes back to ``seen``; a reversed one that is mined again
is ``seen`` again and is credited again, exactly once more. ``ignored`` is final: dust, a failed
transaction, or a token contract that is not the canonical one. A deposit first seen in a
mempool (no block yet) that leaves it unmined is ``dropped`` (replaced, double-spent, evicted);
should the transaction be mined after all, it is ``seen`` again and goes on as usual.
"""

from __future__ import annotations

from enum import StrEnum

from kassa.chains.scanning import (
    NATIVE_POSITION,
    ChainBlock,
    ChainHead,
    ChainScanner,
    ChainTransfer,
    SenderKind,
)
from kassa.errors import KassaError

__all__ = [
    "NATIVE_POSITION",
    "TRANSITIONS",
    "ChainBlock",
    "ChainHead",
    "ChainScanner",
    "ChainTransfer",
    "DepositStatus",
    "IllegalTransition",
    "SenderKind",
    "check_transition",
]


class DepositStatus(StrEnum):
    SEEN = "seen"
    CONFIRMING = "confirming"
    CREDITED = "credited"
    REVERSED = "reversed"
    IGNORED = "ignored"
    DROPPED = "dropped"


TRANSITIONS: dict[DepositStatus, frozenset[DepositStatus]] = {
    DepositStatus.SEEN: frozenset(
        {
            DepositStatus.SEEN,
            DepositStatus.CONFIRMING,
            DepositStatus.CREDITED,
            DepositStatus.IGNORED,
            DepositStatus.DROPPED,
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
    DepositStatus.DROPPED: frozenset({DepositStatus.SEEN, DepositStatus.DROPPED}),
}


class IllegalTransition(KassaError):
    code = "illegal_deposit_transition"
    title = "Illegal deposit state change"


def check_transition(old: DepositStatus, new: DepositStatus) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"a deposit cannot go from {old} to {new}")
