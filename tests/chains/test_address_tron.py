"""TRON addresses: Base58Check with the 0x41 prefix, hex input normalised, cross-checked with
tronpy (the reference client)."""

from __future__ import annotations

import coincurve
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tronpy import keys as tron_keys

from kassa.chains._base58 import b58check_encode
from kassa.chains.address import parse_address
from kassa.chains.errors import AddressProblem, InvalidAddress
from kassa.chains.network import TronNetwork
from kassa.chains.tron.address import TronAddress, parse_tron_address, tron_address_for_public_key

# m/44'/195'/0'/0/0 of "abandon ×11 about" (docs/devnet.md §2, from tronpy's HD wallet).
ABANDON_TRON = "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"


def test_base58_form_is_canonical() -> None:
    address = parse_tron_address(ABANDON_TRON)
    assert address.text == ABANDON_TRON
    assert address.hex == tron_keys.to_hex_address(ABANDON_TRON)
    assert address.raw[0] == 0x41
    assert address.evm_bytes == tron_keys.to_tvm_address(ABANDON_TRON)


@pytest.mark.parametrize("upper", [False, True])
def test_hex_form_is_normalised_to_base58(upper: bool) -> None:
    digits = tron_keys.to_hex_address(ABANDON_TRON)[2:]
    given_text = "41" + (digits.upper() if upper else digits.lower())
    assert parse_tron_address(given_text).text == ABANDON_TRON


@given(st.binary(min_size=20, max_size=20))
def test_agrees_with_tronpy(evm: bytes) -> None:
    expected = tron_keys.to_base58check_address(b"\x41" + evm)
    address = parse_tron_address(expected)
    assert address == TronAddress.from_bytes(evm)
    assert parse_tron_address("41" + evm.hex()) == address


@given(st.integers(min_value=1, max_value=coincurve.utils.GROUP_ORDER_INT - 1))
def test_address_of_a_public_key_matches_tronpy(secret: int) -> None:
    key = coincurve.PrivateKey.from_int(secret)
    expected = tron_keys.PrivateKey(key.secret).public_key.to_base58check_address()
    assert tron_address_for_public_key(key.public_key.format(compressed=False)).text == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", AddressProblem.EMPTY),
        ("\t" + ABANDON_TRON, AddressProblem.WHITESPACE),
        ("T" * 91, AddressProblem.TOO_LONG),
        (ABANDON_TRON[:-1] + "J", AddressProblem.BAD_CHECKSUM),
        (ABANDON_TRON[:-2], AddressProblem.BAD_CHECKSUM),
        ("TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYd0", AddressProblem.BAD_CHARACTER),
        ("0x" + "41" * 21, AddressProblem.BAD_FORMAT),
        ("0xc8599111f29c1e1e061265b4af93ea1f274ad78a", AddressProblem.WRONG_CHAIN),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", AddressProblem.WRONG_CHAIN),
        ("1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo", AddressProblem.WRONG_CHAIN),
        (b58check_encode(b"\x42" + bytes(20)), AddressProblem.UNKNOWN_PREFIX),
        (b58check_encode(b"\x41" + bytes(19)), AddressProblem.BAD_LENGTH),
        ("abc", AddressProblem.BAD_LENGTH),
    ],
)
def test_refusals_name_the_problem(text: str, problem: AddressProblem) -> None:
    with pytest.raises(InvalidAddress) as refused:
        parse_tron_address(text)
    assert refused.value.problem is problem
    assert "TRON address" in refused.value.detail


def test_an_ethereum_address_is_named_as_such() -> None:
    with pytest.raises(InvalidAddress, match="it is an Ethereum address"):
        parse_tron_address("0xc8599111f29c1e1e061265b4af93ea1f274ad78a")


@pytest.mark.parametrize("network", list(TronNetwork))
def test_dispatch_by_network(network: TronNetwork) -> None:
    assert parse_address(ABANDON_TRON, network) == parse_tron_address(ABANDON_TRON)
