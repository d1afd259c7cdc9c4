"""``rpc_urls`` (issue 18): several nodes make a failover watcher with a mempool tracker, one
node keeps the plain scanner, ``rpc_url`` keeps working and defaults to the first of
``rpc_urls`` (payouts read it), and TRON refuses a mempool it does not have."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.failover import FailoverMempool, FailoverScanner
from kassa.chains.network import Chain
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits.runtime import build_watcher
from kassa.deposits.settings import (
    BtcChainSettings,
    ChainsSettings,
    EthChainSettings,
    TronChainSettings,
)
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

USDT = "0x" + "11" * 20


def test_rpc_url_defaults_to_the_first_of_rpc_urls() -> None:
    eth = EthChainSettings(rpc_urls=["http://a:8545", "http://b:8545"])
    assert eth.rpc_url == "http://a:8545"
    assert eth.node_urls() == ["http://a:8545", "http://b:8545"]
    assert EthChainSettings(rpc_url="http://only:8545").node_urls() == ["http://only:8545"]
    tron = TronChainSettings(api_urls=["http://t1:8090", "http://t2:8090"])
    assert tron.api_url == "http://t1:8090"


def test_tron_has_no_mempool() -> None:
    with pytest.raises(ValidationError, match="no public mempool"):
        TronChainSettings(mempool=True)


def test_several_nodes_make_a_failover_watcher_with_a_mempool_tracker(
    db: Database, clock: ManualClock
) -> None:
    pricing = PricingService(db, clock, PricingSettings())
    several = ChainsSettings(
        btc=BtcChainSettings(
            rpc_urls=["http://a:18443", "http://b:18443"], rpc_api_key=SecretStr("k")
        ),
        eth=EthChainSettings(rpc_url="http://a:8545", usdt_contract=USDT, mempool=False),
    )
    watcher = build_watcher(several, Chain.BTC, db, clock, pricing)
    assert isinstance(watcher.scanner, FailoverScanner)
    assert len(watcher.scanner.nodes.nodes) == 2
    assert watcher.mempool is not None
    assert isinstance(watcher.mempool.source, FailoverMempool)

    single = build_watcher(several, Chain.ETH, db, clock, pricing)
    assert not isinstance(single.scanner, (FailoverScanner, BtcScanner))
    assert single.mempool is None  # switched off
