"""The journal (docs/domain.md §2–§3): transfers and multi-leg transactions move money exactly,
balances are posted − pending = available, entries that do not balance or cannot be afforded are
refused before anything is written, history pages newest first, and the journal is append-only
in the database itself."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from kassa.clock import ManualClock
from kassa.db import Database
from kassa.errors import KassaError
from kassa.ledger import accounts, transfers
from kassa.ledger.accounts import open_account
from kassa.ledger.errors import (
    AccountNotFound,
    InsufficientFunds,
    UnbalancedTransaction,
)
from kassa.ledger.journal import (
    PORTABLE_JOURNAL,
    POSTGRES_JOURNAL,
    Entry,
    Journal,
    Line,
    Replayed,
)
from kassa.ledger.model import AccountKind, NormalSide, TransactionKind
from kassa.ledger.transfers import Leg
from kassa.money import BTC, USD, Money

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory
    from tests.ledger.conftest import Books


def usd(dollars: str) -> Money:
    return Money.parse(dollars, USD, allow_negative=True)


def open_btc_accounts(books: Books) -> tuple[int, int, int]:
    """The accounts of a BTC deposit: the hot wallet (BTC held, debit-normal) and the two
    sides of the conversion account fx:BTC (native and USD)."""
    with books.db.transaction() as conn:
        now = books.now
        wallet = open_account(
            conn,
            code="wallet:btc-hot:BTC",
            asset_=BTC,
            normal_side=NormalSide.DEBIT,
            kind=AccountKind.WALLET,
            allow_negative=False,
            now=now,
        )
        fx_native = open_account(
            conn,
            code="fx:BTC:BTC",
            asset_=BTC,
            normal_side=NormalSide.DEBIT,
            kind=AccountKind.FX,
            allow_negative=True,
            now=now,
        )
        fx_usd = open_account(
            conn,
            code="fx:BTC:USD",
            asset_=USD,
            normal_side=NormalSide.DEBIT,
            kind=AccountKind.FX,
            allow_negative=True,
            now=now,
        )
    return wallet.id, fx_native.id, fx_usd.id


# -- moving money ---------------------------------------------------------------------------


def test_transfer_moves_money_from_the_customer_to_revenue(books: Books) -> None:
    alice = books.customer("100.00")

    books.spend(alice, "30.00")

    assert books.posted(alice) == usd("70.00")
    assert books.available(alice) == usd("70.00")
    assert books.posted(books.revenue) == usd("30.00")
    books.assert_books_balance()


def test_balances_report_posted_pending_and_available_exactly(books: Books) -> None:
    alice = books.customer("100.00")
    books.spend(alice, "0.000001")
    books.hold(alice, "25.50")

    balance = books.balance(alice)
    assert balance.posted == usd("99.999999")
    assert balance.pending_outgoing == usd("25.50")
    assert balance.available == usd("74.499999")
    assert not balance.frozen
    revenue = books.balance(books.revenue)
    assert revenue.posted == usd("0.000001")
    assert revenue.pending_incoming == usd("25.50")


def test_a_transfer_is_one_transaction_of_two_postings_that_sum_to_zero(
    books: Books, db: Database
) -> None:
    alice = books.customer("10.00")

    transaction_id = books.spend(alice, "4.20")

    with db.transaction() as conn:
        transaction = transfers.get_transaction(conn, transaction_id)
    assert transaction.kind is TransactionKind.USAGE
    assert [(p.account_id, p.amount) for p in transaction.postings] == [
        (alice, usd("4.20")),
        (books.revenue, usd("-4.20")),
    ]


def test_btc_deposit_posts_native_and_usd_legs_in_one_transaction(
    books: Books, db: Database
) -> None:
    # docs/domain.md §3's example: 100 000 sat valued at $97.12 at payment time.
    alice = books.customer()
    wallet, fx_native, fx_usd = open_btc_accounts(books)

    with db.transaction() as conn:
        transaction_id = transfers.post(
            conn,
            [
                Leg(wallet, Money(100_000, BTC)),
                Leg(fx_native, Money(-100_000, BTC)),
                Leg(fx_usd, usd("97.12")),
                Leg(alice, usd("-97.12")),
            ],
            kind=TransactionKind.DEPOSIT,
            now=books.now,
            request=None,
        )
        transaction = transfers.get_transaction(conn, transaction_id)

    assert len(transaction.postings) == 4
    assert books.posted(wallet) == Money(100_000, BTC)
    assert books.posted(alice) == usd("97.12")
    assert books.available(alice) == usd("97.12")
    books.assert_books_balance()


def test_spending_the_whole_balance_leaves_exactly_zero(books: Books) -> None:
    alice = books.customer("12.345678")

    books.spend(alice, "12.345678")

    assert books.available(alice) == usd("0")
    books.assert_books_balance()


# -- refusals: nothing is written ------------------------------------------------------------


def test_spending_more_than_available_is_refused_and_nothing_is_written(books: Books) -> None:
    alice = books.customer("100.00")
    before = books.snapshot()

    for dollars in ("100.000001", "250.00"):
        with pytest.raises(InsufficientFunds, match=r"has 100\.00 USD available; this needs"):
            books.spend(alice, dollars)

    assert books.snapshot() == before


def test_money_reserved_by_a_hold_cannot_be_spent(books: Books) -> None:
    alice = books.customer("100.00")
    books.hold(alice, "80.00")
    before = books.snapshot()

    with pytest.raises(InsufficientFunds):
        books.spend(alice, "20.000001")

    assert books.snapshot() == before
    books.spend(alice, "20.00")
    assert books.available(alice) == usd("0")


def test_legs_that_do_not_sum_to_zero_are_refused_and_nothing_is_written(
    books: Books, db: Database
) -> None:
    alice = books.customer("50.00")
    bob = books.customer("50.00")
    before = books.snapshot()
    unbalanced = {
        "three legs off by one dollar": [
            (alice, "-10.00"),
            (bob, "10.00"),
            (books.revenue, "1.00"),
        ],
        "two legs off by one micro-dollar": [(alice, "10.00"), (bob, "-9.999999")],
        "two debits": [(alice, "10.00"), (bob, "10.00")],
    }

    for case, legs in unbalanced.items():
        with pytest.raises(UnbalancedTransaction), db.transaction() as conn:
            transfers.post(
                conn,
                [Leg(account, usd(amount)) for account, amount in legs],
                kind=TransactionKind.TRANSFER,
                now=books.now,
                request=None,
            )
        assert books.snapshot() == before, case


def test_legs_balanced_in_total_but_not_per_asset_are_refused_as_unbalanced(
    books: Books, db: Database
) -> None:
    # +100 000 sat against −100 000 micro-USD "sums to zero" only if assets are ignored.
    alice = books.customer()
    wallet, _, _ = open_btc_accounts(books)
    before = books.snapshot()

    with pytest.raises(UnbalancedTransaction), db.transaction() as conn:
        transfers.post(
            conn,
            [Leg(wallet, Money(100_000, BTC)), Leg(alice, Money(-100_000, USD))],
            kind=TransactionKind.DEPOSIT,
            now=books.now,
            request=None,
        )

    assert books.snapshot() == before


def test_a_leg_whose_amount_is_not_in_its_accounts_asset_is_refused(
    books: Books, db: Database
) -> None:
    # Both legs are "BTC", so they balance as written, but they name USD accounts: posting
    # them would move 100 000 micro-USD ($0.10) while the caller asked for 100 000 satoshi.
    alice = books.customer()
    before = books.snapshot()

    with pytest.raises(UnbalancedTransaction), db.transaction() as conn:
        transfers.post(
            conn,
            [Leg(books.deposits, Money(100_000, BTC)), Leg(alice, Money(-100_000, BTC))],
            kind=TransactionKind.DEPOSIT,
            now=books.now,
            request=None,
        )

    assert books.snapshot() == before


def test_a_transfer_in_another_asset_than_the_accounts_is_refused(
    books: Books, db: Database
) -> None:
    alice = books.customer("100.00")
    before = books.snapshot()

    with pytest.raises(UnbalancedTransaction), db.transaction() as conn:
        transfers.transfer(
            conn,
            debit_account_id=alice,
            credit_account_id=books.revenue,
            amount=Money(5_000_000, BTC),
            now=books.now,
            request=None,
        )

    assert books.snapshot() == before


def test_a_single_leg_is_refused_and_nothing_is_written(books: Books, db: Database) -> None:
    alice = books.customer()
    before = books.snapshot()

    with pytest.raises(UnbalancedTransaction), db.transaction() as conn:
        transfers.post(
            conn,
            [Leg(alice, usd("-5.00"))],
            kind=TransactionKind.DEPOSIT,
            now=books.now,
            request=None,
        )

    assert books.snapshot() == before


def test_a_zero_leg_is_refused_even_when_the_rest_balances(books: Books, db: Database) -> None:
    alice = books.customer("10.00")
    before = books.snapshot()

    with pytest.raises(UnbalancedTransaction), db.transaction() as conn:
        transfers.post(
            conn,
            [
                Leg(alice, usd("1.00")),
                Leg(books.revenue, usd("-1.00")),
                Leg(books.deposits, usd("0")),
            ],
            kind=TransactionKind.TRANSFER,
            now=books.now,
            request=None,
        )

    assert books.snapshot() == before


def test_a_transfer_of_zero_or_a_negative_amount_is_refused(books: Books) -> None:
    alice = books.customer("10.00")
    before = books.snapshot()

    for dollars in ("0", "-1.00"):
        with pytest.raises(UnbalancedTransaction):
            books.spend(alice, dollars)

    assert books.snapshot() == before


def test_a_journal_entry_that_does_not_balance_is_refused_by_every_journal(
    books: Books, db: Database
) -> None:
    # Below the transfer helpers: each journal checks the sums per asset itself, and refuses
    # with the same domain error (PostgreSQL runs both journals, SQLite only the portable one).
    alice = books.customer("10.00")
    before = books.snapshot()
    entry = Entry(
        lines=[Line(alice, posted=1_000_000), Line(books.revenue, posted=-999_999)],
        kind=TransactionKind.TRANSFER,
    )
    journals: list[Journal] = [PORTABLE_JOURNAL]
    if db.dialect == "postgresql":
        journals.append(POSTGRES_JOURNAL)

    for journal in journals:
        with pytest.raises(UnbalancedTransaction), db.transaction() as conn:
            journal.post(conn, entry, books.now, None)
        assert books.snapshot() == before, journal


def test_a_transfer_to_an_unknown_account_is_refused_as_not_found(books: Books) -> None:
    alice = books.customer("10.00")
    before = books.snapshot()

    with pytest.raises(AccountNotFound), books.db.transaction() as conn:
        transfers.transfer(
            conn,
            debit_account_id=alice,
            credit_account_id=987_654,
            amount=usd("1.00"),
            now=books.now,
            request=None,
        )

    assert books.snapshot() == before


# -- history -----------------------------------------------------------------------------------


def test_history_lists_postings_newest_first_and_pages_without_gaps(
    books: Books, db: Database
) -> None:
    alice = books.customer()
    expected = []
    for cents in range(1, 12):
        expected.append(books.deposit(alice, f"{cents}.00"))
        if cents % 3 == 0:
            expected.append(books.spend(alice, "0.50"))
    expected.reverse()

    pages = []
    with db.transaction() as conn:
        cursor: int | None = None
        while page := accounts.history(conn, alice, limit=4, before_posting_id=cursor):
            assert len(page) <= 4
            pages.append(page)
            cursor = page[-1].posting_id
        everything = accounts.history(conn, alice, limit=100)

    walked = [entry for page in pages for entry in page]
    assert walked == list(everything)
    assert [entry.transaction_id for entry in walked] == expected
    ids = [entry.posting_id for entry in walked]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids)
    # Signed on the customer's side: top-ups add, spending subtracts.
    assert walked[0].amount == usd("11.00")
    assert walked[1].amount == usd("10.00")
    assert walked[2].amount == usd("-0.50")
    assert walked[2].kind is TransactionKind.USAGE
    assert sum(e.amount.amount for e in walked) == books.posted(alice).amount


# -- append-only, enforced by the database -----------------------------------------------------

TAMPERING = [
    "UPDATE ledger_posting SET account_id = account_id",
    "DELETE FROM ledger_posting",
    "UPDATE ledger_transaction SET memo = 'edited after the fact'",
    "DELETE FROM ledger_transaction",
]


def test_posted_history_cannot_be_updated_or_deleted_in_the_database(
    books: Books, db: Database
) -> None:
    alice = books.customer("10.00")
    books.spend(alice, "3.00")
    before = books.snapshot()

    for statement in TAMPERING:
        with pytest.raises(DBAPIError, match="append-only"), db.transaction() as conn:
            conn.exec_driver_sql(statement)
        assert books.snapshot() == before, statement

    books.assert_books_balance()


def test_postgres_refuses_to_truncate_the_journal(pg_books: Books) -> None:
    pg_books.customer("10.00")
    before = pg_books.snapshot()

    for table in ("ledger_posting", "ledger_transaction"):
        with pytest.raises(DBAPIError, match="append-only"), pg_books.db.transaction() as conn:
            conn.exec_driver_sql(f"TRUNCATE {table} CASCADE")

    assert pg_books.snapshot() == before


# -- PostgreSQL: a deferred constraint refuses unbalanced transactions at COMMIT ---------------


@pytest.fixture
def pg_books(pg_databases: DatabaseFactory, books_class: type[Books], clock: ManualClock) -> Books:
    return books_class(pg_databases.new(), clock)


def insert_transaction(conn: Connection, transaction_id: uuid.UUID) -> None:
    conn.execute(
        text(
            "INSERT INTO ledger_transaction (id, kind, created_at) VALUES (:id, 'transfer', now())"
        ),
        {"id": transaction_id},
    )


def insert_posting(
    conn: Connection, transaction_id: uuid.UUID, account_id: int, amount: int
) -> None:
    conn.execute(
        text(
            "INSERT INTO ledger_posting (transaction_id, account_id, asset, amount) "
            "VALUES (:transaction_id, :account_id, 'USD', :amount)"
        ),
        {"transaction_id": transaction_id, "account_id": account_id, "amount": amount},
    )


def test_postgres_refuses_a_transaction_with_one_posting_at_commit(pg_books: Books) -> None:
    alice = pg_books.customer()
    before = pg_books.snapshot()
    transaction_id = uuid.uuid4()

    refused = pytest.raises(DBAPIError, match="fewer than two postings")
    with refused, pg_books.db.transaction() as conn:
        insert_transaction(conn, transaction_id)
        insert_posting(conn, transaction_id, alice, -5_000_000)
        # The statements themselves succeed: the check is deferred to COMMIT.
        assert conn.exec_driver_sql("SELECT count(*) FROM ledger_posting").scalar_one() == 1

    assert pg_books.snapshot() == before


def test_postgres_refuses_postings_that_do_not_sum_to_zero_at_commit(pg_books: Books) -> None:
    alice = pg_books.customer()
    before = pg_books.snapshot()
    transaction_id = uuid.uuid4()

    with pytest.raises(DBAPIError, match="does not balance"), pg_books.db.transaction() as conn:
        insert_transaction(conn, transaction_id)
        insert_posting(conn, transaction_id, pg_books.deposits, 5_000_000)
        insert_posting(conn, transaction_id, alice, -5_000_001)

    assert pg_books.snapshot() == before


def test_postgres_accepts_a_balanced_raw_transaction_at_commit(pg_books: Books) -> None:
    # The control for the two refusals above: the constraint trigger is not refusing blindly.
    alice = pg_books.customer()
    transaction_id = uuid.uuid4()

    with pg_books.db.transaction() as conn:
        insert_transaction(conn, transaction_id)
        insert_posting(conn, transaction_id, pg_books.deposits, 5_000_000)
        insert_posting(conn, transaction_id, alice, -5_000_000)

    assert pg_books.snapshot().transactions == 1


def test_postgres_refuses_a_posting_added_later_to_a_committed_transaction(
    pg_books: Books,
) -> None:
    # "A journal transaction is never updated": appending a third posting to a balanced,
    # committed transaction unbalances it just as surely as an UPDATE would.
    alice = pg_books.customer("10.00")
    spend = pg_books.spend(alice, "3.00")
    before = pg_books.snapshot()

    with pytest.raises(DBAPIError), pg_books.db.transaction() as conn:
        insert_posting(conn, spend, alice, 3_000_000)

    assert pg_books.snapshot() == before
    pg_books.assert_books_balance()


# -- the two journals on PostgreSQL ------------------------------------------------------------


def run_script(journal: Journal, books: Books) -> list[str]:
    """The same entries, in the same order, through one journal; what each one did."""
    alice = books.customer()
    outcomes: list[str] = []

    def post(entry: Entry, key: str | None = None, **params: object) -> None:
        request = books.key(key, "entry", **params) if key else None
        try:
            with books.db.transaction() as conn:
                result = journal.post(conn, entry, books.now, request)
                if isinstance(result, Replayed):
                    outcomes.append(f"replayed {result.stored.resource_uuid}")
                else:
                    outcomes.append(f"posted {result.transaction_id}")
        except KassaError as refused:
            # Customer account codes carry a random id; the rest of the message must match.
            detail = re.sub(r"user:[0-9a-f-]+:USD", "user:…:USD", refused.detail)
            outcomes.append(f"{refused.code}: {detail}")

    def ids(n: int) -> uuid.UUID:
        return uuid.UUID(int=n)

    def pay(account: int, micro: int, n: int, **extra: object) -> Entry:
        return Entry(
            [Line(account, posted=micro), Line(books.revenue, posted=-micro)],
            TransactionKind.USAGE,
            transaction_id=ids(n),
            **extra,  # type: ignore[arg-type]
        )

    top_up = Entry(
        [Line(books.deposits, posted=100_000_000), Line(alice, posted=-100_000_000)],
        TransactionKind.DEPOSIT,
        transaction_id=ids(1),
    )
    post(top_up)
    post(pay(alice, 30_000_000, 2), "spend-1", amount=30)
    post(pay(alice, 30_000_000, 3), "spend-1", amount=30)  # replay
    post(pay(alice, 40_000_000, 4), "spend-1", amount=40)  # same key, other request
    post(pay(alice, 70_000_001, 5), "spend-2", amount=70)  # one micro-dollar short
    post(
        Entry(
            [
                Line(alice, pending_debits=50_000_000),
                Line(books.revenue, pending_credits=50_000_000),
            ],
            TransactionKind.CAPTURE,
        )
    )
    post(pay(alice, 20_000_001, 6), "spend-3", amount=20)  # the hold reserves the rest
    post(pay(alice, 20_000_000, 7))
    post(
        Entry(
            [Line(books.deposits, posted=-100_000_000), Line(alice, posted=100_000_000)],
            TransactionKind.REVERSAL,
            reverses_id=ids(1),
            force=True,
            transaction_id=ids(8),
        )
    )
    post(pay(alice, 1, 9), "spend-4", amount=0)  # frozen
    post(
        Entry(
            [Line(books.deposits, posted=1), Line(alice, posted=-1)],
            TransactionKind.DEPOSIT,
            transaction_id=ids(10),
        )
    )
    post(pay(alice, 70_000_001, 5), "spend-2", amount=70)  # the stored refusal, replayed
    balances = books.snapshot().balances
    outcomes.extend(f"{account}: {balance}" for account, balance in sorted(balances.items()))
    return outcomes


def test_the_portable_and_the_stored_function_journal_agree_on_postgres(
    pg_databases: DatabaseFactory, books_class: type[Books], clock: ManualClock
) -> None:
    portable = run_script(PORTABLE_JOURNAL, books_class(pg_databases.new(), clock))
    stored_function = run_script(POSTGRES_JOURNAL, books_class(pg_databases.new(), clock))

    assert portable == stored_function
    assert "insufficient_funds" in " ".join(portable)
    assert "account_frozen" in " ".join(portable)
