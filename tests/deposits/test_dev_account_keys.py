"""The development account keys: the product falls back to the public keys of the development
mnemonic on development networks only, and never derives them itself (kassa-dev does)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from kassa.chains.network import BtcNetwork, Chain, EthNetwork, Network, TronNetwork
from kassa.deposits.runtime import account_xpub, derivers
from kassa.deposits.settings import (
    DEV_ACCOUNT_XPUBS,
    DEV_ETH_CHAIN_IDS,
    DEV_MNEMONIC,
    BtcChainSettings,
    ChainsSettings,
    EthChainSettings,
    TronChainSettings,
)
from kassa_dev.devkeys import dev_account_xpub

DEV_NETWORKS: list[tuple[Chain, Network]] = [
    (Chain.BTC, BtcNetwork.REGTEST),
    *[(Chain.ETH, EthNetwork(chain_id)) for chain_id in sorted(DEV_ETH_CHAIN_IDS)],
    (Chain.TRON, TronNetwork.DEVNET),
]


@pytest.mark.parametrize(("chain", "network"), DEV_NETWORKS, ids=str)
def test_the_published_dev_keys_are_the_dev_mnemonic_s(chain: Chain, network: Network) -> None:
    assert DEV_ACCOUNT_XPUBS[chain] == dev_account_xpub(DEV_MNEMONIC, network)


def test_an_unset_key_on_a_development_network_is_the_dev_key() -> None:
    settings = ChainsSettings(eth=EthChainSettings(chain_id=31337))
    for chain in Chain:
        assert account_xpub(settings, chain) == DEV_ACCOUNT_XPUBS[chain]
    assert set(derivers(settings)) == set(Chain)


def test_a_configured_key_wins() -> None:
    key = dev_account_xpub(DEV_MNEMONIC, BtcNetwork.REGTEST, account=1)
    settings = ChainsSettings(btc=BtcChainSettings(account_xpub=key))
    assert account_xpub(settings, Chain.BTC) == key


@pytest.mark.parametrize(
    "make",
    [
        lambda: BtcChainSettings(network=BtcNetwork.MAINNET),
        lambda: BtcChainSettings(network=BtcNetwork.TESTNET),
        lambda: EthChainSettings(chain_id=1),
        lambda: TronChainSettings(network=TronNetwork.MAINNET),
    ],
    ids=["btc-mainnet", "btc-testnet", "eth-mainnet", "tron-mainnet"],
)
def test_a_production_network_refuses_to_go_without_a_key(make: Callable[[], object]) -> None:
    with pytest.raises(ValidationError, match="a production network needs account_xpub"):
        make()
