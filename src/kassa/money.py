"""Money: exact amounts of a single asset, held as integer minor units.

Design notes
------------
* An amount is an ``int`` count of the asset's smallest unit (satoshi, wei, sun,
  micro-USDT, micro-USD). Inexact binary fractions (IEEE 754 doubles) never appear here.
* Text enters and leaves only through :meth:`Money.parse` and :meth:`Money.format`.
  Parsing is exact and strict: one plain decimal syntax, no rounding; input with more
  decimal places than the asset allows is refused. (Those edges are the only place a
  decimal representation may exist; this module does them with plain string and
  integer arithmetic.)
* Every amount's magnitude is bounded by :data:`MAX_AMOUNT` (``2**256 - 1``, the
  largest EVM ``uint256``).
* Arithmetic and ordering only combine amounts of the same asset; mixing assets
  raises :class:`AssetMismatch`. Changing asset goes through :func:`convert_down` or
  :func:`convert_up`, whose rounding always favours the house: credits to a customer
  round down (toward zero), fees charged to a customer round up (away from zero).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar

__all__ = [
    "ASSETS",
    "BTC",
    "ETH",
    "MAX_AMOUNT",
    "MAX_PARSE_LENGTH",
    "TRX",
    "USD",
    "USDT_ERC20",
    "USDT_TRC20",
    "AmountOutOfRange",
    "Asset",
    "AssetCode",
    "AssetMismatch",
    "InvalidAmount",
    "Money",
    "MoneyError",
    "UnknownAsset",
    "asset",
    "convert_down",
    "convert_up",
    "sum_money",
]


# --------------------------------------------------------------------------- errors


class MoneyError(ValueError):
    """Base class for money errors; ``code`` is a stable machine-readable identifier."""

    code: ClassVar[str] = "money_error"


class InvalidAmount(MoneyError):
    """Text could not be parsed as an exact amount of the asset."""

    code: ClassVar[str] = "invalid_amount"


class AmountOutOfRange(MoneyError):
    """The amount's magnitude exceeds :data:`MAX_AMOUNT`."""

    code: ClassVar[str] = "amount_out_of_range"


class AssetMismatch(MoneyError):
    """An operation combined amounts of different assets."""

    code: ClassVar[str] = "asset_mismatch"


class UnknownAsset(MoneyError):
    """No asset is registered under the given code."""

    code: ClassVar[str] = "unknown_asset"


# --------------------------------------------------------------------------- assets


class AssetCode(StrEnum):
    BTC = "BTC"
    ETH = "ETH"
    TRX = "TRX"
    USDT_ERC20 = "USDT-ERC20"
    USDT_TRC20 = "USDT-TRC20"
    USD = "USD"


@dataclass(frozen=True, slots=True)
class Asset:
    """An asset and the size of its minor unit: one whole unit is ``10**decimals`` minor units."""

    code: AssetCode
    decimals: int
    unit_name: str

    def __post_init__(self) -> None:
        if type(self.decimals) is not int or self.decimals < 0:
            raise ValueError(f"decimals must be a non-negative int, got {self.decimals!r}")

    def __str__(self) -> str:
        return self.code.value


BTC = Asset(AssetCode.BTC, 8, "satoshi")
ETH = Asset(AssetCode.ETH, 18, "wei")
TRX = Asset(AssetCode.TRX, 6, "sun")
USDT_ERC20 = Asset(AssetCode.USDT_ERC20, 6, "micro-USDT")
USDT_TRC20 = Asset(AssetCode.USDT_TRC20, 6, "micro-USDT")
USD = Asset(AssetCode.USD, 6, "micro-USD")

ASSETS: Mapping[str, Asset] = MappingProxyType(
    {a.code.value: a for a in (BTC, ETH, TRX, USDT_ERC20, USDT_TRC20, USD)}
)


def asset(code: str) -> Asset:
    """Return the asset registered under ``code`` (exact, case-sensitive match)."""
    found = ASSETS.get(code) if isinstance(code, str) else None
    if found is None:
        raise UnknownAsset(f"unknown asset {code!r}")
    return found


# --------------------------------------------------------------------------- money

MAX_AMOUNT = 2**256 - 1
"""Largest allowed magnitude of any amount, in minor units."""

MAX_PARSE_LENGTH = 100
"""Longest text :meth:`Money.parse` will look at; longer input is refused unread."""

_DECIMAL_RE = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?", re.ASCII)


def _check_int(name: str, value: object) -> None:
    # ``type(...) is int`` rejects bool (and every other int subclass) and all non-ints.
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")


def _syntax_problem(text: str) -> str:
    """Explain why ``text`` is not a plain decimal number (best effort, for messages)."""
    if text == "":
        return "it is empty"
    if any(ch.isspace() for ch in text):
        return "whitespace is not allowed"
    if not text.isascii():
        return "only ASCII digits 0-9 are allowed"
    if text.startswith("+"):
        return "a leading '+' is not allowed"
    if "_" in text:
        return "underscores are not allowed"
    if "," in text:
        return "commas are not allowed; use '.' as the decimal point and no grouping"
    if "e" in text.lower() and any(ch.isdigit() for ch in text):
        return "exponent notation is not allowed"
    unsigned = text.removeprefix("-")
    if unsigned.startswith("."):
        return "a digit is required before the decimal point"
    if unsigned.endswith("."):
        return "a digit is required after the decimal point"
    if len(unsigned) > 1 and unsigned[0] == "0" and unsigned[1].isdigit():
        return "leading zeros are not allowed"
    return "expected a plain decimal number such as '12.50'"


def _divide(numerator: int, denominator: int, *, away_from_zero: bool) -> int:
    """Exact integer division rounding toward zero, or away from zero."""
    quotient, remainder = divmod(abs(numerator), denominator)
    if away_from_zero and remainder:
        quotient += 1
    return -quotient if numerator < 0 else quotient


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount of one asset.

    ``amount`` is an ``int`` number of the asset's *minor units* (e.g. satoshi for BTC,
    micro-USD for USD), never whole units and never an inexact number. ``Money(150, BTC)`` is
    0.0000015 BTC.
    """

    amount: int
    asset: Asset

    def __post_init__(self) -> None:
        _check_int("Money.amount", self.amount)
        if not isinstance(self.asset, Asset):
            raise TypeError(f"Money.asset must be an Asset, got {type(self.asset).__name__}")
        if abs(self.amount) > MAX_AMOUNT:
            raise AmountOutOfRange(
                f"{self.asset.code} amount of {self.amount} {self.asset.unit_name} "
                f"exceeds the maximum magnitude 2**256-1"
            )

    # -- construction ------------------------------------------------------------------

    @classmethod
    def zero(cls, asset: Asset) -> Money:
        return cls(0, asset)

    @classmethod
    def from_minor(cls, amount: int, asset: Asset) -> Money:
        """Build from an int count of minor units (same as the constructor)."""
        return cls(amount, asset)

    @classmethod
    def parse(cls, text: str, asset: Asset, *, allow_negative: bool = False) -> Money:
        """Parse a decimal string in whole units exactly, e.g. ``"12.50"`` USD.

        Accepted syntax is exactly ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?`` over ASCII digits:
        no sign other than a leading ``-``, no leading zeros, no exponent, no whitespace,
        no separators. More fraction digits than ``asset.decimals`` is an error (even
        if they are zeros): nothing is ever rounded. A leading ``-`` (including ``"-0"``)
        is refused unless ``allow_negative``.

        Raises ``TypeError`` for non-str input, :class:`InvalidAmount` for bad text and
        :class:`AmountOutOfRange` if the magnitude exceeds :data:`MAX_AMOUNT`.
        """
        if not isinstance(text, str):
            raise TypeError(f"amount text must be a str, got {type(text).__name__}")
        if not isinstance(asset, Asset):
            raise TypeError(f"asset must be an Asset, got {type(asset).__name__}")
        code = asset.code.value
        if len(text) > MAX_PARSE_LENGTH:
            raise InvalidAmount(
                f"invalid {code} amount: text is too long "
                f"({len(text)} characters, at most {MAX_PARSE_LENGTH})"
            )
        match = _DECIMAL_RE.fullmatch(text)
        if match is None:
            raise InvalidAmount(f"invalid {code} amount {text!r}: {_syntax_problem(text)}")
        sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
        if sign and not allow_negative:
            raise InvalidAmount(f"invalid {code} amount {text!r}: negative amounts not allowed")
        if len(fraction) > asset.decimals:
            raise InvalidAmount(
                f"{code} allows at most {asset.decimals} decimal places, "
                f"got {len(fraction)} in {text!r}"
            )
        magnitude = int(whole + fraction.ljust(asset.decimals, "0"))
        if magnitude > MAX_AMOUNT:
            raise AmountOutOfRange(
                f"{code} amount {text!r} exceeds the maximum of {cls(MAX_AMOUNT, asset).format()}"
            )
        return cls(-magnitude if sign else magnitude, asset)

    # -- output ------------------------------------------------------------------------

    def format(self) -> str:
        """Lossless decimal string in whole units.

        All ``asset.decimals`` fraction digits, with trailing zeros trimmed but at least
        ``min(2, asset.decimals)`` kept: USD ``12_500_000`` -> ``"12.50"``, BTC
        ``100_000`` -> ``"0.001"``, BTC ``0`` -> ``"0.00"``.
        """
        decimals = self.asset.decimals
        whole, fraction = divmod(abs(self.amount), 10**decimals)
        digits = str(fraction).rjust(decimals, "0").rstrip("0") if decimals else ""
        digits = digits.ljust(min(2, decimals), "0")
        sign = "-" if self.amount < 0 else ""
        return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"

    def __str__(self) -> str:
        return f"{self.format()} {self.asset.code.value}"

    def to_json(self) -> dict[str, str]:
        return {"amount": self.format(), "asset": self.asset.code.value}

    # -- predicates --------------------------------------------------------------------

    @property
    def is_zero(self) -> bool:
        return self.amount == 0

    @property
    def is_positive(self) -> bool:
        return self.amount > 0

    @property
    def is_negative(self) -> bool:
        return self.amount < 0

    # -- arithmetic --------------------------------------------------------------------

    def _same_asset(self, other: Money, op: str) -> None:
        if self.asset != other.asset:
            raise AssetMismatch(
                f"cannot {op} {self.asset.code.value} and {other.asset.code.value} amounts"
            )

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_asset(other, "add")
        return Money(self.amount + other.amount, self.asset)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_asset(other, "subtract")
        return Money(self.amount - other.amount, self.asset)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.asset)

    def __abs__(self) -> Money:
        return Money(abs(self.amount), self.asset)

    def __mul__(self, factor: int) -> Money:
        # Raise rather than return NotImplemented so no other type can take over.
        _check_int("Money can only be multiplied by an int; the factor", factor)
        return Money(self.amount * factor, self.asset)

    def __rmul__(self, factor: int) -> Money:
        return self.__mul__(factor)

    # -- ordering (within one asset only) ----------------------------------------------

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_asset(other, "compare")
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_asset(other, "compare")
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_asset(other, "compare")
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_asset(other, "compare")
        return self.amount >= other.amount


def sum_money(items: Iterable[Money], asset: Asset) -> Money:
    """Sum amounts of ``asset``; an empty iterable gives zero.

    Every item must be of ``asset`` (else :class:`AssetMismatch`). Only the final total is
    range-checked, so the result does not depend on the order of the items.
    """
    total = 0
    for item in items:
        if not isinstance(item, Money):
            raise TypeError(f"sum_money items must be Money, got {type(item).__name__}")
        if item.asset != asset:
            raise AssetMismatch(
                f"cannot sum a {item.asset.code.value} amount into a {asset.code.value} total"
            )
        total += item.amount
    return Money(total, asset)


# --------------------------------------------------------------------------- conversion


def _convert(
    amount: Money, rate_num: int, rate_den: int, to: Asset, *, away_from_zero: bool
) -> Money:
    if not isinstance(amount, Money):
        raise TypeError(f"amount must be Money, got {type(amount).__name__}")
    if not isinstance(to, Asset):
        raise TypeError(f"to must be an Asset, got {type(to).__name__}")
    _check_int("rate_num", rate_num)
    _check_int("rate_den", rate_den)
    if rate_num <= 0 or rate_den <= 0:
        raise ValueError(f"rate must be positive, got {rate_num}/{rate_den}")
    numerator = amount.amount * rate_num * 10**to.decimals
    denominator = rate_den * 10**amount.asset.decimals
    return Money(_divide(numerator, denominator, away_from_zero=away_from_zero), to)


def convert_down(amount: Money, rate_num: int, rate_den: int, to: Asset) -> Money:
    """Convert ``amount`` into ``to``, rounding toward zero. Use for credits to customers.

    ``rate_num / rate_den`` is the price of one whole unit of ``amount.asset`` in whole
    units of ``to`` (BTC -> USD at 60000: ``rate_num=60000, rate_den=1``). Exact integer
    arithmetic: ``amount * rate_num * 10**to.decimals / (rate_den * 10**from.decimals)``,
    truncated (floor for positive amounts). Both rate parts must be positive ints.
    """
    return _convert(amount, rate_num, rate_den, to, away_from_zero=False)


def convert_up(amount: Money, rate_num: int, rate_den: int, to: Asset) -> Money:
    """Convert ``amount`` into ``to``, rounding away from zero. Use for fees.

    Same rate convention and arithmetic as :func:`convert_down`, but any remainder
    rounds the magnitude up (ceiling for positive amounts).
    """
    return _convert(amount, rate_num, rate_den, to, away_from_zero=True)
