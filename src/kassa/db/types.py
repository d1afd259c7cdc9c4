"""Column types that keep money exact, and ids and times the same, on both databases.

`Amount` holds any integer in -(2**256-1) … 2**256-1 (wei included). PostgreSQL stores it as
NUMERIC(78,0). SQLite has only 64-bit integers and would silently turn anything larger into a
REAL, so there it is stored as canonical decimal TEXT and all arithmetic happens in Python.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

AMOUNT_LIMIT = 2**256 - 1

BigId = BigInteger().with_variant(Integer(), "sqlite")
"""A surrogate key: SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a real
BIGINT."""


class Amount(TypeDecorator[int]):
    """An exact integer amount of minor units (satoshi, wei, sun, micro-USD)."""

    impl = Numeric(78, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(80))
        return dialect.type_descriptor(Numeric(78, 0, asdecimal=True))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if type(value) is not int:
            raise TypeError(f"amounts are ints of minor units, got {type(value).__name__}")
        if abs(value) > AMOUNT_LIMIT:
            raise ValueError("amount outside ±(2**256-1)")
        if dialect.name == "sqlite":
            return str(value)
        return Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, Decimal):
            if value != value.to_integral_value():
                raise ValueError(f"non-integral amount {value} in the database")
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            return int(value)
        raise TypeError(f"unexpected stored amount {value!r}")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes. SQLite stores naive UTC text in one fixed format, so
    lexical order is time order and range queries work."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass timezone-aware UTC datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


PRICE_SCALE = 12
"""Decimal places kept for prices (USD per whole coin); sources round to this before storing."""


class Price(TypeDecorator[Decimal]):
    """An exact positive decimal price, USD per whole coin, at most 12 decimal places.

    PostgreSQL stores NUMERIC(40,12). SQLite would turn NUMERIC into a lossy REAL, so there the
    price is canonical decimal TEXT; prices are never compared or summed inside SQL.
    """

    impl = Numeric(40, PRICE_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(40, PRICE_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise TypeError(f"prices are finite Decimals, got {value!r}")
        if value != value.quantize(Decimal(1).scaleb(-PRICE_SCALE)):
            raise ValueError(f"price {value} has more than {PRICE_SCALE} decimal places")
        if dialect.name == "sqlite":
            return format(value.normalize(), "f")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        number = Decimal(value) if isinstance(value, str) else value
        if not isinstance(number, Decimal):
            raise TypeError(f"unexpected stored price {value!r}")
        # PostgreSQL pads to 12 places; read back the same plain value SQLite gives
        # ("50000", not "50000.000000000000" or "5E+4").
        plain = number.normalize()
        exponent = plain.as_tuple().exponent
        return plain.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else plain
