"""Recognise an address of another chain, so a refusal can say "this is a TRON address"
instead of a vague "bad checksum".

Only complete, checksum-valid forms count: a guess never turns a typo into a wrong-chain
message.
"""

from __future__ import annotations

import re

from kassa.chains._base58 import Base58Error, b58check_decode
from kassa.chains.btc._bech32 import Bech32Error, segwit_decode
from kassa.chains.network import Chain

_ETH_RE = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)
_TRON_HEX_RE = re.compile(r"41[0-9a-fA-F]{40}", re.ASCII)
_BTC_BASE58_VERSIONS = frozenset({0x00, 0x05, 0x6F, 0xC4})
_BTC_HRPS = frozenset({"bc", "tb", "bcrt"})


def _is_eth(text: str) -> bool:
    return _ETH_RE.fullmatch(text) is not None


def _is_tron(text: str) -> bool:
    if _TRON_HEX_RE.fullmatch(text):
        return True
    if len(text) != 34 or not text.startswith("T"):
        return False
    try:
        payload = b58check_decode(text)
    except Base58Error:
        return False
    return len(payload) == 21 and payload[0] == 0x41


def _is_btc(text: str) -> bool:
    try:
        hrp, _, _ = segwit_decode(text)
    except Bech32Error:
        pass
    else:
        return hrp in _BTC_HRPS
    try:
        payload = b58check_decode(text)
    except Base58Error:
        return False
    return len(payload) == 21 and payload[0] in _BTC_BASE58_VERSIONS


_CHECKS = ((Chain.ETH, _is_eth), (Chain.TRON, _is_tron), (Chain.BTC, _is_btc))


def other_chain(text: str, expected: Chain) -> Chain | None:
    """The chain other than ``expected`` whose address format ``text`` matches, if any."""
    for chain, matches in _CHECKS:
        if chain is not expected and matches(text):
            return chain
    return None
