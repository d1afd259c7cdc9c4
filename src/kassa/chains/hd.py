"""Watch-only HD derivation: deposit addresses from an account-level extended public key.

Design:
* The API and the watchers hold only an *account* public key (depth 3: m/84'/0'/0' for Bitcoin
  BIP84, m/44'/60'/0' for Ethereum, m/44'/195'/0' for TRON). Deposit address ``i`` is the
  external-chain child m/…/0/i, derived with public derivation only, so no private key ever
  exists in those processes. A private extended key is refused outright, never "used
  carefully".
* Keys are checked before derivation, with sentences an operator can act on: private keys,
  the wrong key kind for the chain (a BIP44 ``xpub`` where BIP84 needs a ``zpub``), the wrong
  network (``vpub`` on mainnet), the wrong depth, and malformed text. An Ethereum and a TRON
  account ``xpub`` look alike (the coin type is hashed away), so show the operator the first
  derived address to confirm before trusting a new key.
* bip-utils does the BIP32 arithmetic (untyped, so wrapped here); the address text comes from
  Kassa's own address modules, so derived and parsed addresses are the same value objects.
* Parse once, derive many: an `AccountKey` caches the external-chain node (derivation costs
  about 0.13 ms per address on this project's machines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeAlias, overload

from bip_utils import Bip44, Bip44Changes, Bip44Coins, Bip84, Bip84Coins

from kassa.chains._base58 import Base58Error, b58check_decode
from kassa.chains.btc.address import BtcAddress, p2wpkh_address_for_public_key
from kassa.chains.errors import InvalidExtendedKey, KeyProblem
from kassa.chains.eth.address import EthAddress, eth_address_for_public_key
from kassa.chains.network import BtcNetwork, EthNetwork, Network, TronNetwork
from kassa.chains.tron.address import TronAddress, tron_address_for_public_key

__all__ = [
    "ACCOUNT_DEPTH",
    "MAX_ADDRESS_INDEX",
    "AccountKey",
    "BtcAccountKey",
    "EthAccountKey",
    "TronAccountKey",
    "parse_account_key",
]

ACCOUNT_DEPTH = 3
"""purpose' / coin_type' / account'."""
MAX_ADDRESS_INDEX = 2**31 - 1
"""The largest non-hardened child index; hardened children need the private key."""
_MAX_KEY_LENGTH = 120
"""A Base58Check extended key is 111 characters."""

# BIP32 / SLIP-132 version bytes: name, is_private, the script family it announces.
_VERSIONS = MappingProxyType(
    {
        0x0488B21E: ("xpub", False, "BIP44 (legacy P2PKH, also used by Ethereum and TRON)"),
        0x0488ADE4: ("xprv", True, ""),
        0x049D7CB2: ("ypub", False, "BIP49 (P2SH-wrapped segwit)"),
        0x049D7878: ("yprv", True, ""),
        0x04B24746: ("zpub", False, "BIP84 (native segwit) mainnet"),
        0x04B2430C: ("zprv", True, ""),
        0x043587CF: ("tpub", False, "Bitcoin testnet BIP44"),
        0x04358394: ("tprv", True, ""),
        0x044A5262: ("upub", False, "Bitcoin testnet BIP49"),
        0x044A4E28: ("uprv", True, ""),
        0x045F1CF6: ("vpub", False, "BIP84 (native segwit) testnet/regtest"),
        0x045F18BC: ("vprv", True, ""),
        0x0295B43F: ("Ypub", False, "multisig BIP49"),
        0x0295B005: ("Yprv", True, ""),
        0x02AA7ED3: ("Zpub", False, "multisig BIP84"),
        0x02AA7A99: ("Zprv", True, ""),
        0x024289EF: ("Upub", False, "multisig testnet BIP49"),
        0x024285B5: ("Uprv", True, ""),
        0x02575483: ("Vpub", False, "multisig testnet BIP84"),
        0x02575048: ("Vprv", True, ""),
    }
)

_BTC_COINS = MappingProxyType(
    {
        BtcNetwork.MAINNET: Bip84Coins.BITCOIN,
        BtcNetwork.TESTNET: Bip84Coins.BITCOIN_TESTNET,
        # Regtest shares testnet's vpub prefix; the coin only changes the address HRP.
        BtcNetwork.REGTEST: Bip84Coins.BITCOIN_REGTEST,
    }
)


def _expected(network: Network) -> tuple[str, str]:
    """(version name, derivation path of the account key) that ``network`` needs."""
    if isinstance(network, BtcNetwork):
        coin = 0 if network is BtcNetwork.MAINNET else 1
        return ("zpub" if network is BtcNetwork.MAINNET else "vpub"), f"m/84'/{coin}'/0'"
    if isinstance(network, EthNetwork):
        return "xpub", "m/44'/60'/0'"
    return "xpub", "m/44'/195'/0'"


def _refuse(network: Network, reason: str, problem: KeyProblem) -> InvalidExtendedKey:
    # The key text is never echoed: an extended key identifies every address of the account.
    return InvalidExtendedKey(
        f"not a usable {network.label} account key: {reason}", problem=problem
    )


def _check_key_text(text: object, network: Network) -> None:
    if not isinstance(text, str):
        raise TypeError(f"an extended key must be a str, got {type(text).__name__}")
    want, path = _expected(network)
    if text == "":
        raise _refuse(network, "it is empty", KeyProblem.MALFORMED)
    if len(text) > _MAX_KEY_LENGTH or any(ch.isspace() for ch in text):
        raise _refuse(
            network,
            f"an extended key is 111 characters with no spaces, this text has {len(text)}",
            KeyProblem.MALFORMED,
        )
    try:
        payload = b58check_decode(text)
    except Base58Error as error:
        raise _refuse(network, f"it is not Base58Check ({error})", KeyProblem.MALFORMED) from None
    if len(payload) != 78:
        raise _refuse(
            network,
            f"it decodes to {len(payload)} bytes, an extended key has 78",
            KeyProblem.MALFORMED,
        )
    version = int.from_bytes(payload[:4], "big")
    depth = payload[4]
    child_number = int.from_bytes(payload[9:13], "big")
    key_data = payload[45:]
    known = _VERSIONS.get(version)
    if known is None:
        raise _refuse(
            network,
            f"its version bytes 0x{version:08x} are not an extended key's",
            KeyProblem.MALFORMED,
        )
    name, is_private, family = known
    if is_private or key_data[0] == 0:
        raise _refuse(
            network,
            f"this is a private key ({name}). Kassa is watch-only and only ever needs the "
            f"account's public key ({want}); treat this private key as exposed",
            KeyProblem.PRIVATE_KEY,
        )
    if name != want:
        wrong_network = isinstance(network, BtcNetwork) and {name, want} == {"zpub", "vpub"}
        raise _refuse(
            network,
            f"it is a {name} key ({family}); {network.label} deposit addresses are derived "
            f"from the {want} of account {path}",
            KeyProblem.WRONG_NETWORK if wrong_network else KeyProblem.WRONG_KIND,
        )
    if depth != ACCOUNT_DEPTH or child_number < 2**31:
        raise _refuse(
            network,
            f"it is a key at depth {depth}; Kassa needs the account-level key (depth 3, "
            f"{path}, whose last step is hardened)",
            KeyProblem.WRONG_DEPTH,
        )


def _external_chain(text: str, network: Network) -> Any:
    """The bip-utils context of m/…/account'/0 (external addresses)."""
    _check_key_text(text, network)
    try:
        if isinstance(network, BtcNetwork):
            account = Bip84.FromExtendedKey(text, _BTC_COINS[network])
        elif isinstance(network, EthNetwork):
            account = Bip44.FromExtendedKey(text, Bip44Coins.ETHEREUM)
        else:
            account = Bip44.FromExtendedKey(text, Bip44Coins.TRON)
        return account.Change(Bip44Changes.CHAIN_EXT)
    except Exception as error:  # bip-utils raises bare Exception subclasses for bad points
        raise _refuse(network, f"the key does not decode ({error})", KeyProblem.MALFORMED) from None


def _check_index(index: int) -> int:
    if type(index) is not int or not 0 <= index <= MAX_ADDRESS_INDEX:
        raise ValueError(f"an address index is an int in 0..2**31-1, got {index!r}")
    return index


def _public_key(node: Any, index: int, *, compressed: bool) -> bytes:
    public = node.AddressIndex(_check_index(index)).PublicKey()
    raw = public.RawCompressed() if compressed else public.RawUncompressed()
    return bytes(raw.ToBytes())


@dataclass(frozen=True)
class BtcAccountKey:
    """A BIP84 account public key (zpub/vpub) that derives P2WPKH deposit addresses."""

    text: str
    network: BtcNetwork
    _node: Any = field(repr=False, compare=False)

    def public_key(self, index: int) -> bytes:
        """The 33-byte compressed public key of external address ``index``."""
        return _public_key(self._node, index, compressed=True)

    def address(self, index: int) -> BtcAddress:
        """The P2WPKH address m/84'/coin'/account'/0/``index``."""
        return p2wpkh_address_for_public_key(self.public_key(index), self.network)


@dataclass(frozen=True)
class EthAccountKey:
    """A BIP44 coin-60 account public key that derives EIP-55 deposit addresses."""

    text: str
    network: EthNetwork
    _node: Any = field(repr=False, compare=False)

    def address(self, index: int) -> EthAddress:
        """The address m/44'/60'/account'/0/``index``."""
        return eth_address_for_public_key(_public_key(self._node, index, compressed=False))


@dataclass(frozen=True)
class TronAccountKey:
    """A BIP44 coin-195 account public key that derives TRON deposit addresses."""

    text: str
    network: TronNetwork
    _node: Any = field(repr=False, compare=False)

    def address(self, index: int) -> TronAddress:
        """The address m/44'/195'/account'/0/``index``."""
        return tron_address_for_public_key(_public_key(self._node, index, compressed=False))


AccountKey: TypeAlias = BtcAccountKey | EthAccountKey | TronAccountKey


@overload
def parse_account_key(text: str, network: BtcNetwork) -> BtcAccountKey: ...
@overload
def parse_account_key(text: str, network: EthNetwork) -> EthAccountKey: ...
@overload
def parse_account_key(text: str, network: TronNetwork) -> TronAccountKey: ...
def parse_account_key(text: str, network: Network) -> AccountKey:
    """Check ``text`` as the account public key for ``network`` and prepare derivation.

    Raises `InvalidExtendedKey` (with a ``problem``) for private, foreign, mis-levelled or
    malformed keys.
    """
    node = _external_chain(text, network)
    if isinstance(network, BtcNetwork):
        return BtcAccountKey(text, network, node)
    if isinstance(network, EthNetwork):
        return EthAccountKey(text, network, node)
    return TronAccountKey(text, network, node)
