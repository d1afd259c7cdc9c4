"""Watch-only derivation against the BIP84 test vectors and the reference wallets
(eth_account for Ethereum, tronpy for TRON) on the "abandon ×11 about" mnemonic."""

from __future__ import annotations

import coincurve
import pytest
from bip_utils import Bip39SeedGenerator, Bip44Changes, Bip84, Bip84Coins
from eth_account import Account
from tronpy import Tron
from tronpy.providers import HTTPProvider

from kassa.chains._base58 import b58check_decode, b58check_encode
from kassa.chains.btc.address import p2wpkh_address_for_public_key
from kassa.chains.errors import InvalidExtendedKey, KeyProblem
from kassa.chains.hd import MAX_ADDRESS_INDEX, parse_account_key
from kassa.chains.network import ETH_MAINNET, BtcNetwork, EthNetwork, TronNetwork
from kassa_dev.devkeys import dev_account_xpub, dev_private_key

ABANDON = " ".join(["abandon"] * 11 + ["about"])

# BIP84 "Test vectors": account 0 xpub (zpub form), receive 0 and 1, their public keys, and
# the change-chain address 0.
BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3E"
    "fH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"
)
BIP84_RECEIVE = [
    (
        "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
        "0330d54fd0dd420a6e5f8d3624f5f3482cae350f79d5f0753bf5beef9c2d91af3c",
    ),
    (
        "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g",
        "03e775fd51f0dfb8cd865d9ff1cca2a158cf651fe997fdc9fee9c1d3b5e995ea77",
    ),
]
BIP84_CHANGE_0 = "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"
ABANDON_TRON_0 = "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"


# --------------------------------------------------------------------- Bitcoin BIP84


def test_dev_helper_produces_the_bip84_account_zpub() -> None:
    assert dev_account_xpub(ABANDON, BtcNetwork.MAINNET) == BIP84_ZPUB


@pytest.mark.parametrize(("index", "vector"), list(enumerate(BIP84_RECEIVE)))
def test_bip84_receive_addresses_from_the_zpub(index: int, vector: tuple[str, str]) -> None:
    address, public_key = vector
    account = parse_account_key(BIP84_ZPUB, BtcNetwork.MAINNET)
    assert account.public_key(index).hex() == public_key
    assert account.address(index).text == address
    assert account.address(index).network is BtcNetwork.MAINNET


def test_bip84_change_vector_from_the_dev_private_key() -> None:
    key = dev_private_key(ABANDON, BtcNetwork.MAINNET, 0, change=True)
    address = p2wpkh_address_for_public_key(key.public_key.format(), BtcNetwork.MAINNET)
    assert address.text == BIP84_CHANGE_0


def test_regtest_vpub_derives_bcrt_addresses() -> None:
    vpub = dev_account_xpub(ABANDON, BtcNetwork.REGTEST)
    assert vpub.startswith("vpub")
    account = parse_account_key(vpub, BtcNetwork.REGTEST)
    # bip-utils' own encoder (independent of Kassa's bech32) for m/84'/1'/0'/0/i.
    reference = Bip84.FromExtendedKey(vpub, Bip84Coins.BITCOIN_REGTEST).Change(
        Bip44Changes.CHAIN_EXT
    )
    for index in range(3):
        derived = account.address(index).text
        assert derived.startswith("bcrt1q")
        assert derived == reference.AddressIndex(index).PublicKey().ToAddress()
    # Testnet and regtest share the key and the program; only the HRP differs.
    testnet = parse_account_key(vpub, BtcNetwork.TESTNET).address(0)
    assert testnet.text == "tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl"
    assert testnet.program == account.address(0).program


def test_derived_public_keys_match_the_dev_private_keys() -> None:
    account = parse_account_key(dev_account_xpub(ABANDON, BtcNetwork.REGTEST), BtcNetwork.REGTEST)
    for index in (0, 7, MAX_ADDRESS_INDEX):
        key = dev_private_key(ABANDON, BtcNetwork.REGTEST, index)
        assert key.public_key.format() == account.public_key(index)


# --------------------------------------------------------------------- Ethereum and TRON


def test_ethereum_addresses_equal_eth_account_from_mnemonic() -> None:
    Account.enable_unaudited_hdwallet_features()
    xpub = dev_account_xpub(ABANDON, ETH_MAINNET)
    account = parse_account_key(xpub, ETH_MAINNET)
    for index in range(3):
        expected = Account.from_mnemonic(ABANDON, account_path=f"m/44'/60'/0'/0/{index}")
        assert account.address(index).text == expected.address
        assert dev_private_key(ABANDON, ETH_MAINNET, index).secret == bytes(expected.key)
    assert account.address(0).text == "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"


def test_ethereum_derivation_does_not_depend_on_the_chain_id() -> None:
    xpub = dev_account_xpub(ABANDON, ETH_MAINNET)
    assert parse_account_key(xpub, EthNetwork(1337)).address(5) == parse_account_key(
        xpub, ETH_MAINNET
    ).address(5)


def test_tron_addresses_equal_tronpy_from_mnemonic() -> None:
    xpub = dev_account_xpub(ABANDON, TronNetwork.MAINNET)
    account = parse_account_key(xpub, TronNetwork.MAINNET)
    assert account.address(0).text == ABANDON_TRON_0
    # A provider that is never contacted: mnemonic derivation is local.
    tron = Tron(HTTPProvider("http://127.0.0.1:9"))
    for index in range(1, 3):
        expected = tron.generate_address_from_mnemonic(
            ABANDON, account_path=f"m/44'/195'/0'/0/{index}"
        )
        assert account.address(index).text == expected["base58check_address"]


# --------------------------------------------------------------------- refusals


def _with_version(key: str, version: int) -> str:
    return b58check_encode(version.to_bytes(4, "big") + b58check_decode(key)[4:])


def _master_zpub() -> str:
    seed = Bip39SeedGenerator(ABANDON).Generate()
    return str(Bip84.FromSeed(seed, Bip84Coins.BITCOIN).PublicKey().ToExtended())


def _change_level_zpub() -> str:
    seed = Bip39SeedGenerator(ABANDON).Generate()
    wallet = Bip84.FromSeed(seed, Bip84Coins.BITCOIN).Purpose().Coin().Account(0)
    return str(wallet.Change(Bip44Changes.CHAIN_EXT).PublicKey().ToExtended())


def _zprv() -> str:
    seed = Bip39SeedGenerator(ABANDON).Generate()
    wallet = Bip84.FromSeed(seed, Bip84Coins.BITCOIN).Purpose().Coin().Account(0)
    return str(wallet.PrivateKey().ToExtended())


def test_a_private_extended_key_is_refused_and_not_echoed() -> None:
    zprv = _zprv()
    with pytest.raises(InvalidExtendedKey) as refused:
        parse_account_key(zprv, BtcNetwork.MAINNET)
    assert refused.value.problem is KeyProblem.PRIVATE_KEY
    assert refused.value.code == "invalid_extended_key"
    assert "zprv" in refused.value.detail
    assert zprv not in refused.value.detail


def test_a_private_key_under_a_public_version_is_still_refused() -> None:
    # Same bytes, relabelled zpub: the 0x00 key-data marker still gives the private key away.
    relabelled = _with_version(_zprv(), 0x04B24746)
    with pytest.raises(InvalidExtendedKey) as refused:
        parse_account_key(relabelled, BtcNetwork.MAINNET)
    assert refused.value.problem is KeyProblem.PRIVATE_KEY


@pytest.mark.parametrize(
    ("key", "network", "problem", "says"),
    [
        (_with_version(BIP84_ZPUB, 0x0488B21E), BtcNetwork.MAINNET, KeyProblem.WRONG_KIND, "xpub"),
        (_with_version(BIP84_ZPUB, 0x049D7CB2), BtcNetwork.MAINNET, KeyProblem.WRONG_KIND, "ypub"),
        (
            _with_version(BIP84_ZPUB, 0x045F1CF6),
            BtcNetwork.MAINNET,
            KeyProblem.WRONG_NETWORK,
            "vpub",
        ),
        (BIP84_ZPUB, BtcNetwork.REGTEST, KeyProblem.WRONG_NETWORK, "zpub"),
        (BIP84_ZPUB, BtcNetwork.TESTNET, KeyProblem.WRONG_NETWORK, "zpub"),
        (BIP84_ZPUB, ETH_MAINNET, KeyProblem.WRONG_KIND, "zpub"),
        (BIP84_ZPUB, TronNetwork.DEVNET, KeyProblem.WRONG_KIND, "zpub"),
        (_master_zpub(), BtcNetwork.MAINNET, KeyProblem.WRONG_DEPTH, "depth 0"),
        (_change_level_zpub(), BtcNetwork.MAINNET, KeyProblem.WRONG_DEPTH, "depth 4"),
        ("", BtcNetwork.MAINNET, KeyProblem.MALFORMED, "empty"),
        (BIP84_ZPUB[:-1] + "t", BtcNetwork.MAINNET, KeyProblem.MALFORMED, "checksum"),
        (BIP84_ZPUB[:60], BtcNetwork.MAINNET, KeyProblem.MALFORMED, "checksum"),
        (" " + BIP84_ZPUB, BtcNetwork.MAINNET, KeyProblem.MALFORMED, "no spaces"),
        ("0x" + "ab" * 20, ETH_MAINNET, KeyProblem.MALFORMED, "Base58"),
        (b58check_encode(bytes(78)), BtcNetwork.MAINNET, KeyProblem.MALFORMED, "version bytes"),
        (b58check_encode(bytes(40)), BtcNetwork.MAINNET, KeyProblem.MALFORMED, "78"),
    ],
)
def test_unusable_keys_are_refused_with_a_reason(
    key: str,
    network: BtcNetwork | EthNetwork | TronNetwork,
    problem: KeyProblem,
    says: str,
) -> None:
    with pytest.raises(InvalidExtendedKey) as refused:
        parse_account_key(key, network)
    assert refused.value.problem is problem
    assert says in refused.value.detail


def test_a_key_that_is_not_a_curve_point_is_malformed() -> None:
    payload = bytearray(b58check_decode(BIP84_ZPUB))
    payload[46:] = bytes(32)  # 0x02 ‖ 0…0 has no point on secp256k1
    with pytest.raises(InvalidExtendedKey) as refused:
        parse_account_key(b58check_encode(bytes(payload)), BtcNetwork.MAINNET)
    assert refused.value.problem is KeyProblem.MALFORMED


@pytest.mark.parametrize("index", [-1, MAX_ADDRESS_INDEX + 1, True])
def test_only_non_hardened_indexes_derive(index: int) -> None:
    account = parse_account_key(BIP84_ZPUB, BtcNetwork.MAINNET)
    with pytest.raises(ValueError, match="index"):
        account.address(index)


def test_dev_helpers_refuse_a_bad_mnemonic() -> None:
    with pytest.raises(ValueError, match="mnemonic"):
        dev_account_xpub(" ".join(["abandon"] * 12), BtcNetwork.MAINNET)


def test_the_dev_private_key_is_a_coincurve_key() -> None:
    assert isinstance(dev_private_key(ABANDON, TronNetwork.DEVNET, 0), coincurve.PrivateKey)
