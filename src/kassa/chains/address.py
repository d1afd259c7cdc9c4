"""One entry point for addresses of any chain: `parse_address(text, network)`.

Deposit and payout code holds a `Network` from configuration and a string from a user or a
node; this picks the chain's parser. The per-chain modules stay the place for the rules.
"""

from __future__ import annotations

from typing import TypeAlias

from kassa.chains.btc.address import BtcAddress, parse_btc_address
from kassa.chains.eth.address import EthAddress, parse_eth_address
from kassa.chains.network import BtcNetwork, EthNetwork, Network, TronNetwork
from kassa.chains.tron.address import TronAddress, parse_tron_address

__all__ = ["Address", "parse_address"]

Address: TypeAlias = BtcAddress | EthAddress | TronAddress


def parse_address(text: str, network: Network) -> Address:
    """Parse ``text`` as an address on ``network``; raise `InvalidAddress` saying why not."""
    if isinstance(network, BtcNetwork):
        return parse_btc_address(text, network)
    if isinstance(network, EthNetwork):
        return parse_eth_address(text)
    if isinstance(network, TronNetwork):
        return parse_tron_address(text)
    raise TypeError(f"not a network: {network!r}")
