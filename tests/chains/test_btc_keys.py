"""WIF keys (Bitcoin Core key_io_valid.json) and the P2WPKH address of a key (BIP84)."""

from __future__ import annotations

import coincurve
import pytest

from kassa.chains.btc.keys import p2wpkh_address_for_key, parse_wif, to_wif
from kassa.chains.network import BtcNetwork

# (WIF, secret, Core chain), compressed keys from key_io_valid.json.
CORE_WIF = [
    (
        "L5nJeqKmpHp4P7F8ZYyjwc5a7P4d8EabuGAzfGJk7yC1BJyzNaEd",
        "ff778740f88ddcf102aeb81daee289c044c4a4571c4b6f287400f4b8e0b843f8",
        BtcNetwork.MAINNET,
    ),
    (
        "cV83kKisF3RQSvXbUCm9ox3kaz5JjEUBWcx8tNydfGJcyeUxuH47",
        "e0fcd4ce4e3d0e3de091f21415bb7cd011fac288c42020a879f28c2a4387df9b",
        BtcNetwork.TESTNET,
    ),
    (
        "cPisAUdLvqqAr6MYtXnrWvgvyUAwuNyuTvZkDGw6miPhZdaiSDNH",
        "3fdfec1371cedcdb8c190ca6ff8ad603f817edc0d93c2a687c7b36dd66e70f2a",
        BtcNetwork.REGTEST,
    ),
    (
        "KwuVvu6hsuEMHrfFWJQV64tRrWX3QzqHH18JuAHYqYV6dqBvNKxd",
        "147804bf8a0dfff35939a611c7f5a60ac107f33f33d6059f273d2079ab1d90f2",
        BtcNetwork.MAINNET,
    ),
]


@pytest.mark.parametrize(("wif", "secret", "network"), CORE_WIF)
def test_core_wif_vectors(wif: str, secret: str, network: BtcNetwork) -> None:
    key = parse_wif(wif, network)
    assert key.secret.hex() == secret
    assert to_wif(key, network) == wif


def test_bip84_private_keys_give_the_bip84_addresses() -> None:
    # BIP84 test vectors: the WIF and address of m/84'/0'/0'/0/0 and m/84'/0'/0'/0/1.
    for wif, address in (
        (
            "KyZpNDKnfs94vbrwhJneDi77V6jF64PWPF8x5cdJb8ifgg2DUc9d",
            "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
        ),
        (
            "Kxpf5b8p3qX56DKEe5NqWbNUP9MnqoRFzZwHRtsFqhzuvUJsYZCy",
            "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g",
        ),
    ):
        key = parse_wif(wif, BtcNetwork.MAINNET)
        assert p2wpkh_address_for_key(key, BtcNetwork.MAINNET).text == address


def test_regtest_address_of_a_key() -> None:
    key = parse_wif("cPisAUdLvqqAr6MYtXnrWvgvyUAwuNyuTvZkDGw6miPhZdaiSDNH", BtcNetwork.REGTEST)
    address = p2wpkh_address_for_key(key, BtcNetwork.REGTEST)
    assert address.text.startswith("bcrt1q")
    assert address.program == p2wpkh_address_for_key(key, BtcNetwork.TESTNET).program


@pytest.mark.parametrize(
    ("wif", "network", "says"),
    [
        # Uncompressed (Core key_io_valid, mainnet).
        ("5JuW2AMDYu4xVwRG9DZW18VbzQrGcd5RCgb99sS6ehJsNQXu5b9", BtcNetwork.MAINNET, "uncompressed"),
        ("L5nJeqKmpHp4P7F8ZYyjwc5a7P4d8EabuGAzfGJk7yC1BJyzNaEd", BtcNetwork.REGTEST, "mainnet"),
        ("cV83kKisF3RQSvXbUCm9ox3kaz5JjEUBWcx8tNydfGJcyeUxuH47", BtcNetwork.MAINNET, "testnet"),
        ("L5nJeqKmpHp4P7F8ZYyjwc5a7P4d8EabuGAzfGJk7yC1BJyzNaEe", BtcNetwork.MAINNET, "checksum"),
        ("1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo", BtcNetwork.MAINNET, "wrong length"),
    ],
)
def test_unusable_wif_is_refused_without_echoing_it(
    wif: str, network: BtcNetwork, says: str
) -> None:
    with pytest.raises(ValueError, match=says) as refused:
        parse_wif(wif, network)
    assert wif not in str(refused.value)


def test_wif_round_trip_for_a_fresh_key() -> None:
    key = coincurve.PrivateKey()
    assert parse_wif(to_wif(key, BtcNetwork.REGTEST), BtcNetwork.REGTEST).secret == key.secret
