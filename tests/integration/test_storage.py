"""Money and time columns keep their values exactly on both databases (docs/domain.md §2): an
`Amount` round-trips every integer up to ±(2**256-1) (wei included) and never becomes a float —
on SQLite it is stored as TEXT — and a `UtcDateTime` comes back timezone-aware in UTC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, update
from sqlalchemy.exc import StatementError

from kassa.db import Amount, Database, UtcDateTime
from kassa.ledger.accounts import get_balance, open_account
from kassa.ledger.model import AccountKind, NormalSide
from kassa.ledger.tables import ledger_account
from kassa.money import ETH, Money

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory

MAX = 2**256 - 1

scratch_metadata = MetaData()
scratch = Table(
    "scratch_amount",
    scratch_metadata,
    Column("id", Integer, primary_key=True),
    Column("amount", Amount, nullable=True),
    Column("at", UtcDateTime, nullable=True),
)

AMOUNTS = [0, 1, -1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64 + 1, 10**77, MAX, -MAX]


@pytest.fixture
def storage(db: Database) -> Iterator[Database]:
    """The migrated database plus a scratch table using the same column types."""
    scratch_metadata.create_all(db.engine)
    yield db
    scratch_metadata.drop_all(db.engine)


def test_amounts_round_trip_exactly(storage: Database) -> None:
    with storage.transaction() as conn:
        conn.execute(insert(scratch), [{"id": i, "amount": v} for i, v in enumerate(AMOUNTS)])
    with storage.transaction() as conn:
        stored = conn.execute(select(scratch.c.amount).order_by(scratch.c.id)).scalars().all()

    assert stored == AMOUNTS
    assert {type(value) for value in stored} == {int}


def test_an_amount_can_be_looked_up_by_equality(storage: Database) -> None:
    with storage.transaction() as conn:
        conn.execute(insert(scratch), [{"id": i, "amount": v} for i, v in enumerate(AMOUNTS)])
        for i, value in enumerate(AMOUNTS):
            found = conn.execute(select(scratch.c.id).where(scratch.c.amount == value))
            assert found.scalars().all() == [i], value


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_sqlite_stores_amounts_as_text_never_as_real(db: Database) -> None:
    scratch_metadata.create_all(db.engine)
    with db.transaction() as conn:
        conn.execute(insert(scratch), [{"id": i, "amount": v} for i, v in enumerate(AMOUNTS)])
        rows = conn.exec_driver_sql(
            "SELECT typeof(amount), amount FROM scratch_amount ORDER BY id"
        ).all()

    assert [kind for kind, _ in rows] == ["text"] * len(AMOUNTS)
    assert [text for _, text in rows] == [str(v) for v in AMOUNTS]


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_sqlite_ledger_account_sums_are_text(db: Database) -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with db.transaction() as conn:
        open_account(
            conn,
            code="wallet:eth-hot:ETH",
            asset_=ETH,
            normal_side=NormalSide.DEBIT,
            kind=AccountKind.WALLET,
            allow_negative=False,
            now=now,
        )
        kinds = conn.exec_driver_sql(
            "SELECT typeof(debits_posted), typeof(credits_posted), typeof(debits_pending), "
            "typeof(credits_pending) FROM ledger_account"
        ).one()

    assert tuple(kinds) == ("text",) * 4


def test_postgres_stores_amounts_as_numeric_78_0(pg_databases: DatabaseFactory) -> None:
    with pg_databases.new().transaction() as conn:
        columns = conn.exec_driver_sql(
            "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale "
            "FROM information_schema.columns WHERE table_name LIKE 'ledger_%%' "
            "AND column_name IN ('amount', 'captured_amount', 'debits_posted', "
            "'credits_posted', 'debits_pending', 'credits_pending') ORDER BY 1, 2"
        ).all()

    assert len(columns) == 7
    assert {(c.data_type, c.numeric_precision, c.numeric_scale) for c in columns} == {
        ("numeric", 78, 0)
    }


def test_a_ledger_account_holds_wei_sums_up_to_2_pow_256_minus_1(db: Database) -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with db.transaction() as conn:
        account = open_account(
            conn,
            code="fx:ETH:ETH",
            asset_=ETH,
            normal_side=NormalSide.DEBIT,
            kind=AccountKind.FX,
            allow_negative=True,
            now=now,
        )
        conn.execute(
            update(ledger_account)
            .where(ledger_account.c.id == account.id)
            .values(debits_posted=MAX, credits_posted=2**64 + 1, credits_pending=MAX)
        )
    with db.transaction() as conn:
        balance = get_balance(conn, account.id)

    assert balance.debits_posted == MAX
    assert balance.credits_posted == 2**64 + 1
    assert balance.credits_pending == MAX
    assert balance.posted == Money(MAX - 2**64 - 1, ETH)


def test_an_amount_out_of_range_is_refused_before_it_reaches_the_database(
    storage: Database,
) -> None:
    for value in (MAX + 1, -MAX - 1, 2**300):
        with pytest.raises(StatementError) as refused, storage.transaction() as conn:
            conn.execute(insert(scratch).values(id=1, amount=value))
        assert isinstance(refused.value.orig, ValueError), value

    with storage.transaction() as conn:
        assert conn.execute(select(scratch.c.id)).all() == []


def test_an_amount_that_is_not_an_int_is_refused(storage: Database) -> None:
    for value in (1.0, Decimal("1"), Decimal("0.5"), "1", True, Money(1, ETH)):
        with pytest.raises(StatementError) as refused, storage.transaction() as conn:
            conn.execute(insert(scratch).values(id=1, amount=value))
        assert isinstance(refused.value.orig, TypeError), value

    with storage.transaction() as conn:
        assert conn.execute(select(scratch.c.id)).all() == []


def test_a_missing_amount_stays_null(storage: Database) -> None:
    with storage.transaction() as conn:
        conn.execute(insert(scratch).values(id=1, amount=None))
        assert conn.execute(select(scratch.c.amount)).scalar_one() is None


# -- UtcDateTime ---------------------------------------------------------------------------------


MOMENTS = [
    datetime(2026, 11, 20, 14, 3, 11, 123456, tzinfo=UTC),
    datetime(2026, 11, 20, 16, 3, 11, 5, tzinfo=timezone(timedelta(hours=2))),
    datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
]


def test_datetimes_round_trip_as_the_same_instant_in_utc(storage: Database) -> None:
    with storage.transaction() as conn:
        conn.execute(insert(scratch), [{"id": i, "at": m} for i, m in enumerate(MOMENTS)])
    with storage.transaction() as conn:
        stored = conn.execute(select(scratch.c.at).order_by(scratch.c.id)).scalars().all()

    assert stored == [moment.astimezone(UTC) for moment in MOMENTS]
    for value, moment in zip(stored, MOMENTS, strict=True):
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
        assert value.microsecond == moment.microsecond


def test_a_naive_datetime_is_refused(storage: Database) -> None:
    with pytest.raises(StatementError) as refused, storage.transaction() as conn:
        conn.execute(insert(scratch).values(id=1, at=datetime(2026, 11, 20, 14, 3)))

    assert isinstance(refused.value.orig, ValueError)


def test_datetimes_compare_in_time_order_in_the_database(storage: Database) -> None:
    # SQLite compares the stored text: the fixed format must sort like time, across offsets.
    base = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    moments = {
        1: base,
        2: base + timedelta(microseconds=1),
        3: (base + timedelta(seconds=9)).astimezone(timezone(timedelta(hours=9))),
        4: base + timedelta(seconds=10),
        5: (base - timedelta(microseconds=1)).astimezone(timezone(timedelta(hours=-8))),
    }
    with storage.transaction() as conn:
        conn.execute(insert(scratch), [{"id": i, "at": m} for i, m in moments.items()])
        ordered = conn.execute(select(scratch.c.id).order_by(scratch.c.at)).scalars().all()
        later = (
            conn.execute(select(scratch.c.id).where(scratch.c.at >= base).order_by(scratch.c.id))
            .scalars()
            .all()
        )

    assert ordered == [5, 1, 2, 3, 4]
    assert later == [1, 2, 3, 4]
