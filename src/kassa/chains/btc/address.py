"""Bitcoin addresses: parse, normalise and turn into output scripts.

Design:
* `parse_btc_address` is the one way in for text. It accepts exactly the address kinds Kassa
  can pay to and watch — P2PKH and P2SH (Base58Check), P2WPKH and P2WSH (segwit v0, Bech32,
  BIP173) and P2TR (segwit v1 with a 32-byte program, Bech32m, BIP350) — for *one* network,
  and refuses everything else with `InvalidAddress` and a sentence saying what is wrong.
* Valid segwit addresses of other witness versions (v1 with another length, v2..v16) are refused
  as unsupported: they are spendable by anyone today, so paying to one would lose the money.
* A `BtcAddress` is normalised (bech32 in lower case) and carries its output script, so
  watchers compare scripts or canonical text, never user spelling.
* Regtest base58 addresses share testnet's version bytes; ``bcrt`` is regtest's own HRP.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

# hashlib's ripemd160 depends on how OpenSSL was built (OpenSSL 3 hides it in the legacy
# provider); pycryptodome, which bip-utils and tronpy already require, always has it.
from Crypto.Hash import RIPEMD160

from kassa.chains import _sniff
from kassa.chains._base58 import ALPHABET, Base58Error, b58check_decode, b58check_encode
from kassa.chains._text import check_address_text, quoted
from kassa.chains.btc._bech32 import Bech32Error, bech32_decode, segwit_decode, segwit_encode
from kassa.chains.errors import AddressProblem, InvalidAddress
from kassa.chains.network import BtcNetwork, Chain

__all__ = [
    "BtcAddress",
    "BtcAddressKind",
    "btc_address_for_script",
    "hash160",
    "p2wpkh_address_for_public_key",
    "parse_btc_address",
]


class BtcAddressKind(StrEnum):
    P2PKH = "p2pkh"
    P2SH = "p2sh"
    P2WPKH = "p2wpkh"
    P2WSH = "p2wsh"
    P2TR = "p2tr"


_PROGRAM_LENGTH = MappingProxyType(
    {
        BtcAddressKind.P2PKH: 20,
        BtcAddressKind.P2SH: 20,
        BtcAddressKind.P2WPKH: 20,
        BtcAddressKind.P2WSH: 32,
        BtcAddressKind.P2TR: 32,
    }
)


def hash160(data: bytes) -> bytes:
    """RIPEMD160(SHA256(data)), the hash in P2PKH, P2SH and P2WPKH scripts."""
    return RIPEMD160.new(hashlib.sha256(data).digest()).digest()


@dataclass(frozen=True, slots=True)
class BtcAddress:
    """A valid Bitcoin address of one network, in canonical form.

    Build it with `parse_btc_address`, `btc_address_for_script` or
    `p2wpkh_address_for_public_key`; the constructor does not re-derive ``text``.
    """

    text: str
    """Canonical spelling: bech32 lower-case, base58 as encoded."""
    network: BtcNetwork
    kind: BtcAddressKind
    program: bytes
    """The 20-byte hash (P2PKH, P2SH, P2WPKH) or the 32-byte witness program (P2WSH, P2TR)."""

    def __post_init__(self) -> None:
        if len(self.program) != _PROGRAM_LENGTH[self.kind]:
            raise ValueError(
                f"a {self.kind} program is {_PROGRAM_LENGTH[self.kind]} bytes, "
                f"got {len(self.program)}"
            )

    @property
    def chain(self) -> Chain:
        return Chain.BTC

    @property
    def script_pubkey(self) -> bytes:
        """The output script that pays to this address."""
        program = self.program
        match self.kind:
            case BtcAddressKind.P2PKH:
                return b"\x76\xa9\x14" + program + b"\x88\xac"
            case BtcAddressKind.P2SH:
                return b"\xa9\x14" + program + b"\x87"
            case BtcAddressKind.P2WPKH | BtcAddressKind.P2WSH:
                return bytes([0x00, len(program)]) + program
            case BtcAddressKind.P2TR:
                return b"\x51\x20" + program

    @classmethod
    def from_program(cls, kind: BtcAddressKind, program: bytes, network: BtcNetwork) -> BtcAddress:
        """Encode ``program`` as an address of ``kind`` on ``network``."""
        match kind:
            case BtcAddressKind.P2PKH:
                text = b58check_encode(bytes([network.p2pkh_version]) + program)
            case BtcAddressKind.P2SH:
                text = b58check_encode(bytes([network.p2sh_version]) + program)
            case BtcAddressKind.P2WPKH | BtcAddressKind.P2WSH:
                text = segwit_encode(network.hrp, 0, program)
            case BtcAddressKind.P2TR:
                text = segwit_encode(network.hrp, 1, program)
        return cls(text, network, kind, program)

    def __str__(self) -> str:
        return self.text


def p2wpkh_address_for_public_key(public_key: bytes, network: BtcNetwork) -> BtcAddress:
    """The P2WPKH address of a 33-byte compressed secp256k1 public key."""
    # BIP143: version 0 witness programs accept compressed keys only; an uncompressed key
    # here would make the coins unspendable under standard policy.
    if len(public_key) != 33 or public_key[0] not in (2, 3):
        raise ValueError("P2WPKH needs a 33-byte compressed public key")
    return BtcAddress.from_program(BtcAddressKind.P2WPKH, hash160(public_key), network)


def btc_address_for_script(script: bytes, network: BtcNetwork) -> BtcAddress | None:
    """The address an output script pays to, or None for scripts without one (OP_RETURN,
    bare multisig, unknown witness versions…)."""
    size = len(script)
    if size == 25 and script[:3] == b"\x76\xa9\x14" and script[23:] == b"\x88\xac":
        return BtcAddress.from_program(BtcAddressKind.P2PKH, script[3:23], network)
    if size == 23 and script[:2] == b"\xa9\x14" and script[22] == 0x87:
        return BtcAddress.from_program(BtcAddressKind.P2SH, script[2:22], network)
    if size == 22 and script[:2] == b"\x00\x14":
        return BtcAddress.from_program(BtcAddressKind.P2WPKH, script[2:], network)
    if size == 34 and script[:2] == b"\x00\x20":
        return BtcAddress.from_program(BtcAddressKind.P2WSH, script[2:], network)
    if size == 34 and script[:2] == b"\x51\x20":
        return BtcAddress.from_program(BtcAddressKind.P2TR, script[2:], network)
    return None


# --------------------------------------------------------------------------- parsing

_HRP_NETWORK = MappingProxyType({n.hrp: n for n in BtcNetwork})
_BASE58_SET = frozenset(ALPHABET)
_WIF_VERSIONS = frozenset({0x80, 0xEF})


def _refuse(text: str, network: BtcNetwork, reason: str, problem: AddressProblem) -> InvalidAddress:
    # Never echo a key: error details end up in logs and support tickets.
    shown = "the text" if problem is AddressProblem.NOT_AN_ADDRESS else quoted(text)
    return InvalidAddress(
        f"{shown} is not a valid {network.label} address: {reason}", problem=problem
    )


def parse_btc_address(text: str, network: BtcNetwork) -> BtcAddress:
    """Parse ``text`` as an address on ``network``; raise `InvalidAddress` saying why not."""
    check_address_text(text, f"{network.label} address")
    other = _sniff.other_chain(text, Chain.BTC)
    if other is not None:
        raise _refuse(
            text,
            network,
            f"it is a{'n' if other is Chain.ETH else ''} {other.display_name} address, "
            "not a Bitcoin one",
            AddressProblem.WRONG_CHAIN,
        )
    lowered = text.lower()
    if any(lowered.startswith(hrp + "1") for hrp in _HRP_NETWORK):
        return _parse_segwit(text, network)
    if set(text) <= _BASE58_SET:
        return _parse_base58(text, network)
    # Neither form: maybe bech32 of another coin (ltc1…, tc1…), else plain garbage.
    try:
        hrp, _, _ = bech32_decode(text)
    except Bech32Error:
        raise _refuse(
            text,
            network,
            f"it is neither a {network.hrp}1… address nor a Base58 one",
            AddressProblem.BAD_FORMAT,
        ) from None
    raise _refuse(
        text,
        network,
        f"its prefix {hrp!r} is not Bitcoin's (expected {network.hrp}1…)",
        AddressProblem.UNKNOWN_PREFIX,
    )


_BECH32_PROBLEMS = MappingProxyType(
    {
        Bech32Error.Kind.BAD_CHARACTER: AddressProblem.BAD_CHARACTER,
        Bech32Error.Kind.MIXED_CASE: AddressProblem.MIXED_CASE,
        Bech32Error.Kind.TOO_LONG: AddressProblem.TOO_LONG,
        Bech32Error.Kind.BAD_FORMAT: AddressProblem.BAD_FORMAT,
        Bech32Error.Kind.BAD_CHECKSUM: AddressProblem.BAD_CHECKSUM,
        Bech32Error.Kind.WRONG_VARIANT: AddressProblem.BAD_CHECKSUM,
        Bech32Error.Kind.BAD_PROGRAM: AddressProblem.BAD_LENGTH,
        Bech32Error.Kind.BAD_VERSION: AddressProblem.UNSUPPORTED_WITNESS_VERSION,
    }
)


def _parse_segwit(text: str, network: BtcNetwork) -> BtcAddress:
    try:
        hrp, version, program = segwit_decode(text)
    except Bech32Error as error:
        reason = str(error)
        if error.kind is Bech32Error.Kind.BAD_CHECKSUM:
            reason += " (a typo?)"
        raise _refuse(text, network, reason, _BECH32_PROBLEMS[error.kind]) from None
    if hrp != network.hrp:
        raise _refuse(
            text,
            network,
            f"it is a {_HRP_NETWORK[hrp].label} address (it starts with {hrp}1, "
            f"{network.value} addresses start with {network.hrp}1)",
            AddressProblem.WRONG_NETWORK,
        )
    if version == 0:
        kind = BtcAddressKind.P2WPKH if len(program) == 20 else BtcAddressKind.P2WSH
    elif version == 1 and len(program) == 32:
        kind = BtcAddressKind.P2TR
    else:
        raise _refuse(
            text,
            network,
            f"witness version {version} with a {len(program)}-byte program is not in use on "
            "Bitcoin yet (only v0 and v1 taproot are supported); coins sent there could be "
            "taken by anyone",
            AddressProblem.UNSUPPORTED_WITNESS_VERSION,
        )
    return BtcAddress(text.lower(), network, kind, program)


def _parse_base58(text: str, network: BtcNetwork) -> BtcAddress:
    try:
        payload = b58check_decode(text)
    except Base58Error as error:
        if error.kind is Base58Error.Kind.BAD_CHECKSUM:
            raise _refuse(
                text, network, "the checksum does not match (a typo?)", AddressProblem.BAD_CHECKSUM
            ) from None
        raise _refuse(text, network, "it is too short", AddressProblem.BAD_LENGTH) from None
    version = payload[0]
    if len(payload) in (33, 34) and version in _WIF_VERSIONS:
        raise _refuse(
            text,
            network,
            "it is a private key (WIF), not an address; whoever has seen it can spend its "
            "coins, so treat it as compromised",
            AddressProblem.NOT_AN_ADDRESS,
        )
    if len(payload) == 78:
        raise _refuse(
            text,
            network,
            "it is an extended key (xpub/zpub…), not an address",
            AddressProblem.NOT_AN_ADDRESS,
        )
    if len(payload) != 21:
        raise _refuse(
            text,
            network,
            f"it decodes to {len(payload) - 1} bytes after the version byte; a Bitcoin "
            "address has 20",
            AddressProblem.BAD_LENGTH,
        )
    if version == network.p2pkh_version:
        return BtcAddress(text, network, BtcAddressKind.P2PKH, payload[1:])
    if version == network.p2sh_version:
        return BtcAddress(text, network, BtcAddressKind.P2SH, payload[1:])
    for other in BtcNetwork:
        if version in (other.p2pkh_version, other.p2sh_version):
            # Testnet and regtest share base58 versions, so name both.
            owner = "mainnet" if other is BtcNetwork.MAINNET else "testnet or regtest"
            raise _refuse(
                text, network, f"it is a Bitcoin {owner} address", AddressProblem.WRONG_NETWORK
            )
    raise _refuse(
        text,
        network,
        f"its version byte 0x{version:02x} is not a Bitcoin address type",
        AddressProblem.UNKNOWN_PREFIX,
    )
