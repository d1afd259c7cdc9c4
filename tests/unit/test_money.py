"""Unit tests for kassa.money: exact integer minor-unit amounts."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kassa import money
from kassa.money import (
    ASSETS,
    BTC,
    ETH,
    MAX_AMOUNT,
    TRX,
    USD,
    USDT_ERC20,
    USDT_TRC20,
    AmountOutOfRange,
    Asset,
    AssetCode,
    AssetMismatch,
    InvalidAmount,
    Money,
    MoneyError,
    UnknownAsset,
    asset,
    convert_down,
    convert_up,
    sum_money,
)

ALL_ASSETS = [BTC, ETH, TRX, USDT_ERC20, USDT_TRC20, USD]

# --------------------------------------------------------------------------- assets


@pytest.mark.parametrize(
    ("a", "code", "decimals", "unit_name"),
    [
        (BTC, "BTC", 8, "satoshi"),
        (ETH, "ETH", 18, "wei"),
        (TRX, "TRX", 6, "sun"),
        (USDT_ERC20, "USDT-ERC20", 6, "micro-USDT"),
        (USDT_TRC20, "USDT-TRC20", 6, "micro-USDT"),
        (USD, "USD", 6, "micro-USD"),
    ],
)
def test_asset_constants_have_expected_precision(
    a: Asset, code: str, decimals: int, unit_name: str
) -> None:
    assert a.code == AssetCode(code)
    assert a.decimals == decimals
    assert a.unit_name == unit_name
    assert ASSETS[code] is a
    assert asset(code) is a


def test_assets_registry_has_exactly_the_known_codes() -> None:
    assert set(ASSETS) == {c.value for c in AssetCode}


def test_assets_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        ASSETS["DOGE"] = BTC  # type: ignore[index]


@pytest.mark.parametrize("code", ["usd", "Btc", "DOGE", "", " USD", "USDT", "USDT_ERC20"])
def test_asset_lookup_refuses_unknown_codes(code: str) -> None:
    with pytest.raises(UnknownAsset):
        asset(code)


def test_error_codes_are_stable() -> None:
    assert InvalidAmount.code == "invalid_amount"
    assert AmountOutOfRange.code == "amount_out_of_range"
    assert AssetMismatch.code == "asset_mismatch"
    assert UnknownAsset.code == "unknown_asset"
    for cls in (InvalidAmount, AmountOutOfRange, AssetMismatch, UnknownAsset):
        assert issubclass(cls, MoneyError)
        assert issubclass(cls, ValueError)


# --------------------------------------------------------------------------- construction


def test_money_rejects_bool_amount() -> None:
    with pytest.raises(TypeError):
        Money(True, USD)


@pytest.mark.parametrize("bad", [1.5, 1.0, "1", None])
def test_money_rejects_non_int_amount(bad: object) -> None:
    with pytest.raises(TypeError):
        Money(bad, USD)  # type: ignore[arg-type]


def test_money_rejects_non_asset() -> None:
    with pytest.raises(TypeError):
        Money(1, "USD")  # type: ignore[arg-type]


def test_money_accepts_max_magnitude_both_signs() -> None:
    assert Money(MAX_AMOUNT, ETH).amount == 2**256 - 1
    assert Money(-MAX_AMOUNT, ETH).amount == -(2**256 - 1)


@pytest.mark.parametrize("amount", [MAX_AMOUNT + 1, -MAX_AMOUNT - 1, 2**300])
def test_money_refuses_amount_beyond_max(amount: int) -> None:
    with pytest.raises(AmountOutOfRange):
        Money(amount, BTC)


def test_money_is_immutable() -> None:
    m = Money(1, USD)
    with pytest.raises(AttributeError):
        m.amount = 2  # type: ignore[misc]


def test_zero_and_from_minor() -> None:
    assert Money.zero(BTC) == Money(0, BTC)
    assert Money.from_minor(150, BTC) == Money(150, BTC)


def test_predicates() -> None:
    assert Money(0, USD).is_zero
    assert not Money(0, USD).is_positive
    assert not Money(0, USD).is_negative
    assert Money(1, USD).is_positive
    assert Money(-1, USD).is_negative


def test_equality_includes_asset() -> None:
    assert Money(1, USD) == Money(1, USD)
    assert Money(1, USD) != Money(1, USDT_TRC20)
    assert Money(0, USD) != Money(0, BTC)
    assert hash(Money(5, BTC)) == hash(Money(5, BTC))


# --------------------------------------------------------------------------- arithmetic


def test_add_and_subtract_same_asset() -> None:
    assert Money(5, BTC) + Money(7, BTC) == Money(12, BTC)
    assert Money(5, BTC) - Money(7, BTC) == Money(-2, BTC)


def test_unary_minus_and_abs() -> None:
    assert -Money(5, BTC) == Money(-5, BTC)
    assert abs(Money(-5, BTC)) == Money(5, BTC)


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
    ids=["add", "sub", "lt", "le", "gt", "ge"],
)
def test_mixing_assets_raises_asset_mismatch(op: Callable[[Money, Money], object]) -> None:
    with pytest.raises(AssetMismatch):
        op(Money(1, USDT_ERC20), Money(1, USDT_TRC20))


def test_adding_non_money_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Money(1, USD) + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        1 + Money(1, USD)  # type: ignore[operator]


def test_comparisons_within_one_asset() -> None:
    one, two = Money(1, ETH), Money(2, ETH)
    assert one < two
    assert one <= two
    assert one <= Money(1, ETH)
    assert two > one
    assert two >= one
    assert not (two < one)
    assert sorted([two, one]) == [one, two]


def test_comparing_with_int_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = Money(1, USD) < 2  # type: ignore[operator]


def test_multiplication_by_int_both_sides() -> None:
    assert Money(3, TRX) * 4 == Money(12, TRX)
    assert 4 * Money(3, TRX) == Money(12, TRX)
    assert Money(3, TRX) * -1 == Money(-3, TRX)


@pytest.mark.parametrize("factor", [True, 1.5, 2.0, Fraction(1, 2), "2", Money(2, TRX)])
def test_multiplication_by_non_int_is_a_type_error(factor: object) -> None:
    with pytest.raises(TypeError):
        Money(3, TRX) * factor  # type: ignore[operator]
    with pytest.raises(TypeError):
        factor * Money(3, TRX)  # type: ignore[operator]


def test_there_is_no_division() -> None:
    with pytest.raises(TypeError):
        Money(4, USD) / 2  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money(4, USD) // 2  # type: ignore[operator]


def test_arithmetic_overflow_is_refused() -> None:
    with pytest.raises(AmountOutOfRange):
        Money(MAX_AMOUNT, BTC) + Money(1, BTC)
    with pytest.raises(AmountOutOfRange):
        Money(MAX_AMOUNT, BTC) * 2


def test_sum_money() -> None:
    assert sum_money([], USD) == Money(0, USD)
    assert sum_money([Money(1, USD), Money(2, USD), Money(-4, USD)], USD) == Money(-1, USD)
    assert sum_money((Money(i, BTC) for i in range(5)), BTC) == Money(10, BTC)


def test_sum_money_refuses_other_assets() -> None:
    with pytest.raises(AssetMismatch):
        sum_money([Money(1, USD), Money(1, USDT_ERC20)], USD)
    with pytest.raises(AssetMismatch):
        sum_money([Money(1, BTC)], USD)


def test_sum_money_only_range_checks_the_total() -> None:
    items = [Money(MAX_AMOUNT, ETH), Money(1, ETH), Money(-1, ETH)]
    assert sum_money(items, ETH) == Money(MAX_AMOUNT, ETH)
    with pytest.raises(AmountOutOfRange):
        sum_money([Money(MAX_AMOUNT, ETH), Money(1, ETH)], ETH)


# --------------------------------------------------------------------------- parse


@pytest.mark.parametrize(
    ("text", "a", "minor"),
    [
        ("0", USD, 0),
        ("0.0", USD, 0),
        ("0.5", USD, 500_000),
        ("1", USD, 1_000_000),
        ("1.50", USD, 1_500_000),
        ("12.5", USD, 12_500_000),
        ("0.000001", USD, 1),
        ("10", TRX, 10_000_000),
        ("0.00000001", BTC, 1),
        ("0.001", BTC, 100_000),
        ("21000000", BTC, 21_000_000 * 10**8),
        ("0.000000000000000001", ETH, 1),
        ("1.000000000000000000", ETH, 10**18),
        ("100.123456", USDT_ERC20, 100_123_456),
        ("100.123456", USDT_TRC20, 100_123_456),
    ],
)
def test_parse_accepts_plain_decimals(text: str, a: Asset, minor: int) -> None:
    assert Money.parse(text, a) == Money(minor, a)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("+1", id="leading-plus"),
        pytest.param("01", id="leading-zero"),
        pytest.param("00", id="double-zero"),
        pytest.param("00.5", id="leading-zero-fraction"),
        pytest.param("-01", id="negative-leading-zero"),
        pytest.param(".5", id="no-integer-part"),
        pytest.param("-.5", id="negative-no-integer-part"),
        pytest.param("5.", id="no-fraction-digits"),
        pytest.param(".", id="bare-dot"),
        pytest.param("-", id="bare-minus"),
        pytest.param("--1", id="double-minus"),
        pytest.param("1e3", id="exponent"),
        pytest.param("1E3", id="exponent-upper"),
        pytest.param("1.5e-2", id="fraction-exponent"),
        pytest.param("\u0661\u0662", id="arabic-indic-digits"),
        pytest.param("\uff11", id="fullwidth-digit"),
        pytest.param("1\u00a0000", id="nbsp"),
        pytest.param(" 1", id="leading-space"),
        pytest.param("1 ", id="trailing-space"),
        pytest.param("1\n", id="trailing-newline"),
        pytest.param("\t1", id="leading-tab"),
        pytest.param("1 000", id="inner-space"),
        pytest.param("1_000", id="underscore"),
        pytest.param("1,000", id="comma-grouping"),
        pytest.param("1,5", id="comma-decimal"),
        pytest.param("NaN", id="nan"),
        pytest.param("nan", id="nan-lower"),
        pytest.param("Infinity", id="infinity"),
        pytest.param("-Infinity", id="neg-infinity"),
        pytest.param("inf", id="inf"),
        pytest.param("0x10", id="hex"),
        pytest.param("1.2.3", id="two-dots"),
        pytest.param("$1", id="currency-sign"),
        pytest.param("1 USD", id="with-code"),
    ],
)
def test_parse_refuses_malformed_text(text: str) -> None:
    with pytest.raises(InvalidAmount) as exc_info:
        Money.parse(text, USD, allow_negative=True)
    assert "USD" in str(exc_info.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1e3", "exponent"),
        ("+1", r"leading '\+'"),
        ("01", "leading zeros"),
        (" 1", "whitespace"),
        ("1_000", "underscore"),
        ("1,000", "comma"),
        ("\uff11", "ASCII"),
        ("", "empty"),
        (".5", "before the decimal point"),
        ("5.", "after the decimal point"),
    ],
)
def test_parse_error_message_says_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(InvalidAmount, match=fragment):
        Money.parse(text, USD)


def test_parse_refuses_exponent_notation() -> None:
    with pytest.raises(InvalidAmount, match="exponent"):
        Money.parse("1e3", BTC)


@pytest.mark.parametrize(
    ("a", "ok", "too_precise"),
    [
        (BTC, "0.00000001", "0.000000001"),
        (ETH, "0.000000000000000001", "0.0000000000000000001"),
        (TRX, "0.000001", "0.0000001"),
        (USDT_ERC20, "0.000001", "0.0000001"),
        (USDT_TRC20, "0.000001", "0.0000001"),
        (USD, "0.000001", "0.0000001"),
    ],
)
def test_parse_precision_per_asset(a: Asset, ok: str, too_precise: str) -> None:
    assert Money.parse(ok, a) == Money(1, a)
    with pytest.raises(InvalidAmount, match="decimal places"):
        Money.parse(too_precise, a)


def test_parse_never_rounds_and_explains_precision() -> None:
    with pytest.raises(InvalidAmount) as exc_info:
        Money.parse("1.0000001", USD)
    assert str(exc_info.value) == "USD allows at most 6 decimal places, got 7 in '1.0000001'"


def test_parse_refuses_excess_zero_decimals() -> None:
    # Excess digits are refused by count, even when they are zeros.
    with pytest.raises(InvalidAmount, match="decimal places"):
        Money.parse("1.0000000", USD)


def test_parse_negative_only_when_allowed() -> None:
    with pytest.raises(InvalidAmount, match="negative"):
        Money.parse("-1.5", USD)
    assert Money.parse("-1.5", USD, allow_negative=True) == Money(-1_500_000, USD)


@pytest.mark.parametrize("text", ["-0", "-0.0", "-0.000000"])
def test_parse_negative_zero(text: str) -> None:
    with pytest.raises(InvalidAmount, match="negative"):
        Money.parse(text, USD)
    assert Money.parse(text, USD, allow_negative=True) == Money(0, USD)


def test_parse_refuses_out_of_range() -> None:
    max_eth = Money(MAX_AMOUNT, ETH).format()
    assert max_eth.endswith("5")  # 2**256 - 1 ends in ...935
    assert Money.parse(max_eth, ETH) == Money(MAX_AMOUNT, ETH)
    with pytest.raises(AmountOutOfRange):
        Money.parse(max_eth[:-1] + "6", ETH)  # one wei over the maximum
    with pytest.raises(AmountOutOfRange):
        Money.parse(str(2**256), BTC)
    with pytest.raises(AmountOutOfRange):
        Money.parse("-" + str(2**256), BTC, allow_negative=True)


def test_parse_refuses_long_input_before_parsing() -> None:
    with pytest.raises(InvalidAmount, match="too long"):
        Money.parse("1" * 101, USD)
    with pytest.raises(InvalidAmount, match="too long"):
        Money.parse("x" * 10_000_000, USD)


def test_longest_valid_amount_fits_in_parse_limit() -> None:
    longest = Money(-MAX_AMOUNT, ETH).format()
    assert len(longest) <= money.MAX_PARSE_LENGTH
    assert Money.parse(longest, ETH, allow_negative=True) == Money(-MAX_AMOUNT, ETH)


@pytest.mark.parametrize("bad", [1, 1.5, b"1", None])
def test_parse_refuses_non_str(bad: object) -> None:
    with pytest.raises(TypeError):
        Money.parse(bad, USD)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- format


@pytest.mark.parametrize(
    ("m", "text"),
    [
        (Money(12_500_000, USD), "12.50"),
        (Money(1, USD), "0.000001"),
        (Money(1_000_000, USD), "1.00"),
        (Money(0, USD), "0.00"),
        (Money(100_000, BTC), "0.001"),
        (Money(0, BTC), "0.00"),
        (Money(10**8, BTC), "1.00"),
        (Money(123_456_789, BTC), "1.23456789"),
        (Money(1, ETH), "0.000000000000000001"),
        (Money(-12_500_000, USD), "-12.50"),
        (Money(-1, BTC), "-0.00000001"),
        (Money(1_234_500, TRX), "1.2345"),
    ],
)
def test_format(m: Money, text: str) -> None:
    assert m.format() == text


def test_format_with_fewer_than_two_decimals() -> None:
    assert Money(5, Asset(AssetCode.USD, 0, "dollar")).format() == "5"
    assert Money(-15, Asset(AssetCode.USD, 1, "dime")).format() == "-1.5"


def test_str_and_json() -> None:
    m = Money(12_500_000, USD)
    assert str(m) == "12.50 USD"
    assert str(Money(1, USDT_TRC20)) == "0.000001 USDT-TRC20"
    assert m.to_json() == {"amount": "12.50", "asset": "USD"}
    assert type(m.to_json()["asset"]) is str


@pytest.mark.parametrize("a", ALL_ASSETS, ids=lambda a: a.code.value)
@pytest.mark.parametrize("amount", [0, 1, MAX_AMOUNT, -MAX_AMOUNT], ids=["0", "1", "max", "-max"])
def test_round_trip_edges(a: Asset, amount: int) -> None:
    m = Money(amount, a)
    assert Money.parse(m.format(), a, allow_negative=True) == m


@given(a=st.sampled_from(ALL_ASSETS), amount=st.integers(-MAX_AMOUNT, MAX_AMOUNT))
def test_parse_format_round_trip(a: Asset, amount: int) -> None:
    m = Money(amount, a)
    assert Money.parse(m.format(), a, allow_negative=True) == m


@given(a=st.sampled_from(ALL_ASSETS), amount=st.integers(0, 10**30))
def test_format_of_non_negative_parses_without_allow_negative(a: Asset, amount: int) -> None:
    m = Money(amount, a)
    assert Money.parse(m.format(), a) == m


# --------------------------------------------------------------------------- conversion


def test_design_example_btc_to_usd() -> None:
    assert convert_down(Money.parse("0.00100000", BTC), 60_000, 1, USD) == Money(60_000_000, USD)
    assert convert_up(Money.parse("0.00100000", BTC), 60_000, 1, USD) == Money(60_000_000, USD)


def test_design_example_usd_back_to_btc() -> None:
    usd = Money.parse("60.00", USD)
    assert convert_down(usd, 1, 50_000, BTC) == Money(120_000, BTC)
    assert convert_up(usd, 1, 50_000, BTC) == Money(120_000, BTC)
    assert convert_down(usd, 1, 50_000, BTC).format() == "0.0012"


def test_credit_conversion_rounds_down() -> None:
    # 1 satoshi at 60000 USD/BTC is 600 micro-USD exactly; at 60000.5 it is 600.005.
    assert convert_down(Money(1, BTC), 120_001, 2, USD) == Money(600, USD)
    # 1 micro-USD at 60000 USD/BTC is 1/600 satoshi.
    assert convert_down(Money(1, USD), 1, 60_000, BTC) == Money(0, BTC)


def test_fee_conversion_rounds_up() -> None:
    assert convert_up(Money(1, BTC), 120_001, 2, USD) == Money(601, USD)
    assert convert_up(Money(1, USD), 1, 60_000, BTC) == Money(1, BTC)


def test_negative_conversion_rounds_toward_and_away_from_zero() -> None:
    assert convert_down(Money(-1, BTC), 120_001, 2, USD) == Money(-600, USD)
    assert convert_up(Money(-1, BTC), 120_001, 2, USD) == Money(-601, USD)


def test_conversion_between_precisions() -> None:
    # 1 ETH at 3000.123456 USD/ETH.
    assert convert_down(Money(10**18, ETH), 3_000_123_456, 10**6, USD) == Money(3_000_123_456, USD)
    # 1 wei is far below a micro-USD.
    assert convert_down(Money(1, ETH), 3000, 1, USD) == Money(0, USD)
    assert convert_up(Money(1, ETH), 3000, 1, USD) == Money(1, USD)


@pytest.mark.parametrize(
    ("rate_num", "rate_den", "error"),
    [
        (0, 1, ValueError),
        (-1, 1, ValueError),
        (1, 0, ValueError),
        (1, -1, ValueError),
        (1.5, 1, TypeError),
        (1, True, TypeError),
    ],
)
def test_conversion_refuses_bad_rates(
    rate_num: object, rate_den: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        convert_down(Money(1, BTC), rate_num, rate_den, USD)  # type: ignore[arg-type]
    with pytest.raises(error):
        convert_up(Money(1, BTC), rate_num, rate_den, USD)  # type: ignore[arg-type]


def test_conversion_result_out_of_range_is_refused() -> None:
    with pytest.raises(AmountOutOfRange):
        convert_down(Money(MAX_AMOUNT, BTC), 10**20, 1, ETH)


@given(
    src=st.sampled_from(ALL_ASSETS),
    dst=st.sampled_from(ALL_ASSETS),
    amount=st.integers(-(10**40), 10**40),
    rate_num=st.integers(1, 10**12),
    rate_den=st.integers(1, 10**12),
)
def test_conversion_brackets_exact_value(
    src: Asset, dst: Asset, amount: int, rate_num: int, rate_den: int
) -> None:
    exact = Fraction(amount * rate_num * 10**dst.decimals, rate_den * 10**src.decimals)
    down = convert_down(Money(amount, src), rate_num, rate_den, dst).amount
    up = convert_up(Money(amount, src), rate_num, rate_den, dst).amount
    assert abs(down) <= abs(exact) <= abs(up)
    assert up - down in (0, 1 if amount > 0 else -1)
    assert (up == down) == (exact.denominator == 1)


# --------------------------------------------------------------------------- hygiene


def test_module_uses_no_float() -> None:
    tree = ast.parse(inspect.getsource(money))
    for node in ast.walk(tree):
        assert not (isinstance(node, ast.Constant) and isinstance(node.value, float))
        assert not (isinstance(node, ast.Name) and node.id == "float")
