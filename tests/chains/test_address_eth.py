"""Ethereum addresses against the EIP-55 test cases (ethereum/ERCs, ERCS/erc-55.md)."""

from __future__ import annotations

import coincurve
import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from kassa.chains.address import parse_address
from kassa.chains.errors import AddressProblem, InvalidAddress
from kassa.chains.eth.address import (
    EthAddress,
    checksum_encode,
    eth_address_for_public_key,
    parse_eth_address,
)
from kassa.chains.network import ETH_MAINNET, EthNetwork

EIP55_VECTORS = [
    # All caps
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    # All lower
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    # Normal
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


@pytest.mark.parametrize("text", EIP55_VECTORS)
def test_eip55_vectors_are_their_own_checksummed_form(text: str) -> None:
    address = parse_eth_address(text)
    assert address.text == text
    assert checksum_encode(address.raw) == text


@pytest.mark.parametrize("text", EIP55_VECTORS)
def test_unchecksummed_spellings_normalise_to_the_eip55_form(text: str) -> None:
    lower = "0x" + text[2:].lower()
    upper = "0x" + text[2:].upper()
    assert parse_eth_address(lower).text == text
    assert parse_eth_address(upper).text == text


@pytest.mark.parametrize("text", EIP55_VECTORS[4:])
def test_one_flipped_letter_breaks_the_checksum(text: str) -> None:
    position = next(i for i in range(len(text) - 1, 1, -1) if text[i].isalpha())
    flipped = text[:position] + text[position].swapcase() + text[position + 1 :]
    with pytest.raises(InvalidAddress) as refused:
        parse_eth_address(flipped)
    assert refused.value.problem is AddressProblem.BAD_CHECKSUM
    assert "EIP-55" in refused.value.detail


@given(st.binary(min_size=20, max_size=20))
def test_checksum_agrees_with_eth_utils(raw: bytes) -> None:
    expected = to_checksum_address(raw)
    assert EthAddress.from_bytes(raw).text == expected
    assert parse_eth_address(expected) == parse_eth_address(expected.lower())


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", AddressProblem.EMPTY),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed ", AddressProblem.WHITESPACE),
        ("0x" + "ab" * 60, AddressProblem.TOO_LONG),
        ("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", AddressProblem.BAD_FORMAT),
        ("0X5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", AddressProblem.BAD_FORMAT),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", AddressProblem.BAD_LENGTH),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed00", AddressProblem.BAD_LENGTH),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg", AddressProblem.BAD_CHARACTER),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", AddressProblem.WRONG_CHAIN),
        ("1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo", AddressProblem.WRONG_CHAIN),
        ("TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH", AddressProblem.WRONG_CHAIN),
        ("41c8599111f29c1e1e061265b4af93ea1f274ad78a", AddressProblem.WRONG_CHAIN),
    ],
)
def test_refusals_name_the_problem(text: str, problem: AddressProblem) -> None:
    with pytest.raises(InvalidAddress) as refused:
        parse_eth_address(text)
    assert refused.value.problem is problem
    assert refused.value.code == "invalid_address"


def test_a_missing_prefix_is_named() -> None:
    with pytest.raises(InvalidAddress, match="lacks the 0x prefix"):
        parse_eth_address("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")


def test_a_bitcoin_address_is_named_as_such() -> None:
    with pytest.raises(InvalidAddress, match="it is a Bitcoin address"):
        parse_eth_address("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")


@given(st.integers(min_value=1, max_value=coincurve.utils.GROUP_ORDER_INT - 1))
def test_address_of_a_public_key_matches_eth_account(secret: int) -> None:
    key = coincurve.PrivateKey.from_int(secret)
    expected = Account.from_key(key.secret).address
    assert eth_address_for_public_key(key.public_key.format(compressed=False)).text == expected


def test_the_zero_address_is_recognised() -> None:
    assert parse_eth_address("0x" + "0" * 40).is_zero
    assert not parse_eth_address(EIP55_VECTORS[4]).is_zero


def test_dispatch_by_network() -> None:
    assert parse_address(EIP55_VECTORS[2], ETH_MAINNET) == parse_eth_address(EIP55_VECTORS[2])
    assert parse_address(EIP55_VECTORS[2], EthNetwork(1337)).text == EIP55_VECTORS[2]


@pytest.mark.parametrize("chain_id", [0, -1, 2**64, True])
def test_chain_ids_are_positive_64_bit_ints(chain_id: int) -> None:
    with pytest.raises(ValueError, match="chain id"):
        EthNetwork(chain_id)
