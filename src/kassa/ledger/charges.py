"""A charge posted under a transaction id its caller allocated up front.

A use case that writes rows naming its journal entry (a usage batch names the entry charging
it) and wants that entry to be the LAST write of its unit of work — because the entry locks a
house account every such unit credits, and a lock taken last is held only until COMMIT —
allocates the id with `new_transaction_id`, writes its rows (their foreign key to the entry is
checked at COMMIT), then posts the entry with `post_charge`. The entry is an ordinary journal
entry: same checks, same lock order, same refusals as `transfers.transfer`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from kassa.ledger.errors import LedgerInvariantBroken, UnbalancedTransaction
from kassa.ledger.journal import Entry, Line, Posted, journal_for
from kassa.ledger.model import TransactionKind
from kassa.money import Money


def new_transaction_id() -> uuid.UUID:
    return uuid.uuid4()


def post_charge(
    conn: Connection,
    *,
    transaction_id: uuid.UUID,
    debit_account_id: int,
    credit_account_id: int,
    amount: Money,
    kind: TransactionKind,
    now: datetime,
    memo: str | None = None,
    actor: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Debit one account and credit the other with `amount` in the journal entry
    `transaction_id`, in the caller's transaction. Raises InsufficientFunds / AccountFrozen
    (nothing stored: the caller keeps the refusal under its own key)."""
    if not amount.is_positive:
        raise UnbalancedTransaction("a charge moves a positive amount")
    if debit_account_id == credit_account_id:
        raise UnbalancedTransaction("a charge moves money between two different accounts")
    code = str(amount.asset.code)
    entry = Entry(
        lines=[
            Line(debit_account_id, posted=amount.amount, asset=code),
            Line(credit_account_id, posted=-amount.amount, asset=code),
        ],
        kind=kind,
        memo=memo,
        actor=actor,
        metadata=metadata,
        transaction_id=transaction_id,
    )
    result = journal_for(conn).post(conn, entry, now, None)
    if not isinstance(result, Posted) or result.transaction_id != transaction_id:
        raise LedgerInvariantBroken("a charge is posted under the id it was given")
