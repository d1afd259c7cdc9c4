"""Bitcoin private-key helpers for the signing side (payout worker, devnet faucet).

Kassa's BTC wallets are P2WPKH only, so keys are always used compressed: an uncompressed WIF
is refused rather than silently compressed, because its legacy addresses would differ.
Errors never quote the key text.
"""

from __future__ import annotations

import coincurve

from kassa.chains._base58 import Base58Error, b58check_decode, b58check_encode
from kassa.chains.btc.address import BtcAddress, p2wpkh_address_for_public_key
from kassa.chains.network import BtcNetwork

__all__ = ["p2wpkh_address_for_key", "parse_wif", "to_wif"]

_COMPRESSED = b"\x01"


def p2wpkh_address_for_key(key: coincurve.PrivateKey, network: BtcNetwork) -> BtcAddress:
    """The P2WPKH address that ``key`` spends from on ``network``."""
    return p2wpkh_address_for_public_key(key.public_key.format(compressed=True), network)


def to_wif(key: coincurve.PrivateKey, network: BtcNetwork) -> str:
    """Wallet Import Format of ``key`` (compressed) for ``network``."""
    return b58check_encode(bytes([network.wif_version]) + key.secret + _COMPRESSED)


def parse_wif(text: str, network: BtcNetwork) -> coincurve.PrivateKey:
    """Read a compressed WIF private key of ``network``; raise ValueError saying why not."""
    try:
        payload = b58check_decode(text)
    except Base58Error as error:
        raise ValueError(f"not a WIF private key: {error}") from None
    if len(payload) == 33:
        raise ValueError("an uncompressed WIF key; Kassa's P2WPKH wallets use compressed keys")
    if len(payload) != 34 or payload[-1:] != _COMPRESSED:
        raise ValueError("not a WIF private key (wrong length)")
    if payload[0] != network.wif_version:
        owners = [n.value for n in BtcNetwork if n.wif_version == payload[0]]
        owner = " or ".join(owners) if owners else f"version 0x{payload[0]:02x}"
        raise ValueError(f"a WIF key for {owner}, not for {network.label}")
    try:
        return coincurve.PrivateKey(payload[1:33])
    except ValueError:
        raise ValueError("the WIF key is outside the secp256k1 range") from None
