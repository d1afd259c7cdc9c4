"""The account statement of one customer: the opening balance, every movement of the period with
its memo, and the closing balance — what support sends a customer who asks.

It reads the customer's balance account (``user:<id>:USD``, credit-normal: a credit raises the
balance). The opening balance is the account's running sums minus its postings from the
period's start on; the movements are streamed from the database in time order and the running
balance is added as they go, so a long history is never held in memory.

Columns:

| column | meaning |
|---|---|
| ``time`` | when the journal transaction was made (ISO 8601, UTC); empty on the opening line |
| ``transaction_id`` | the journal transaction; empty on the opening and closing lines |
| ``kind`` | the kind (``deposit``, ``usage``, …); ``opening_balance``, ``closing_balance`` |
| ``memo`` | the transaction's memo (what it was for) |
| ``credit`` | USD added to the balance |
| ``debit`` | USD taken from the balance |
| ``balance`` | the balance after the line, USD |

Holds (activations, refunds and withdrawals in flight) are not movements: a hold's money moves
when it is captured, and shows then.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Connection, select

from kassa.accounts.errors import CustomerAccountNotFound
from kassa.accounts.tables import customer_account
from kassa.ledger.tables import ledger_account, ledger_posting, ledger_transaction
from kassa.reports._sql import exact_sum, prepare
from kassa.reports.model import Report, usd_text
from kassa.reports.period import Period, iso

__all__ = ["COLUMNS", "statement"]

COLUMNS = ("time", "transaction_id", "kind", "memo", "credit", "debit", "balance")

_STREAM_ROWS = 2_000


def statement(conn: Connection, external_id: str, period: Period) -> Report:
    """The statement of the customer ``external_id`` (``account_not_found`` if unknown)."""
    prepare(conn)
    row = conn.execute(
        select(customer_account.c.id, customer_account.c.ledger_account_id).where(
            customer_account.c.external_id == external_id
        )
    ).first()
    if row is None:
        raise CustomerAccountNotFound(f"no account with external id {external_id!r}")
    ledger_id = int(row.ledger_account_id)
    opening = _balance_before(conn, ledger_id, period)
    meta = {
        **period.describe(),
        "external_id": external_id,
        "account": str(row.id),
        "opening_balance_usd": usd_text(opening),
    }
    return Report("statement", COLUMNS, _lines(conn, ledger_id, period, opening), meta)


def _balance_before(conn: Connection, ledger_id: int, period: Period) -> int:
    """The credit-normal balance at the period's start."""
    stored = conn.execute(
        select(ledger_account.c.debits_posted, ledger_account.c.credits_posted).where(
            ledger_account.c.id == ledger_id
        )
    ).one()
    after = conn.execute(
        select(exact_sum(conn, ledger_posting.c.amount))
        .join(ledger_transaction, ledger_transaction.c.id == ledger_posting.c.transaction_id)
        .where(
            ledger_posting.c.account_id == ledger_id,
            ledger_transaction.c.created_at >= period.start,
        )
    ).scalar()
    signed_now = int(stored.debits_posted) - int(stored.credits_posted)
    return -(signed_now - int(after or 0))


def _lines(
    conn: Connection, ledger_id: int, period: Period, opening: int
) -> Iterator[tuple[str, ...]]:
    yield ("", "", "opening_balance", f"balance at {iso(period.start)}", "", "", usd_text(opening))
    balance = opening
    query = (
        select(
            ledger_transaction.c.created_at,
            ledger_transaction.c.id,
            ledger_transaction.c.kind,
            ledger_transaction.c.memo,
            ledger_posting.c.amount,
        )
        .join(ledger_transaction, ledger_transaction.c.id == ledger_posting.c.transaction_id)
        .where(
            ledger_posting.c.account_id == ledger_id,
            ledger_transaction.c.created_at >= period.start,
            ledger_transaction.c.created_at < period.end,
        )
        .order_by(ledger_transaction.c.created_at, ledger_posting.c.id)
    )
    result = conn.execution_options(yield_per=_STREAM_ROWS).execute(query)
    for row in result:
        amount = int(row.amount)  # debit positive: a debit lowers a credit-normal balance
        balance -= amount
        yield (
            iso(row.created_at),
            str(row.id),
            str(row.kind),
            row.memo or "",
            usd_text(-amount) if amount < 0 else "",
            usd_text(amount) if amount > 0 else "",
            usd_text(balance),
        )
    yield ("", "", "closing_balance", f"balance at {iso(period.end)}", "", "", usd_text(balance))
