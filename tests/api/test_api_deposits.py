"""Deposit addresses and deposits over the API (the watcher here reads the in-memory FakeChain;
the chain suites drive the same watcher against the real local nodes)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from kassa.chains.hd import parse_account_key
from kassa.chains.network import BtcNetwork, Chain, EthNetwork, TronNetwork
from kassa.chains.scanning import ChainTransfer, SenderKind
from kassa.deposits.fake import FakeChain
from kassa.deposits.settings import DEV_MNEMONIC
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.devkeys import dev_account_xpub

if TYPE_CHECKING:
    from tests.api.conftest import Api


def test_one_static_address_per_account_and_chain(api: Api) -> None:
    api.account("u1")
    first = api.post("/v1/accounts/u1/deposit-addresses", {"chain": "btc"})
    assert first.status_code == 201, first.text
    body = first.json()
    expected = parse_account_key(
        dev_account_xpub(DEV_MNEMONIC, BtcNetwork.REGTEST), BtcNetwork.REGTEST
    )
    assert body["address"] == str(expected.address(0))
    assert body["assets"] == ["BTC"] and body["derivation_index"] == 0

    again = api.post("/v1/accounts/u1/deposit-addresses", {"chain": "btc"})
    assert again.status_code == 200 and again.json()["address"] == body["address"]

    eth = api.post("/v1/accounts/u1/deposit-addresses", {"chain": "eth"}).json()
    tron = api.post("/v1/accounts/u1/deposit-addresses", {"chain": "tron"}).json()
    eth_key = parse_account_key(dev_account_xpub(DEV_MNEMONIC, EthNetwork(1337)), EthNetwork(1337))
    assert eth["address"] == str(eth_key.address(0)) and eth["assets"] == ["ETH", "USDT-ERC20"]
    assert tron["address"].startswith("T") and tron["assets"] == ["TRX", "USDT-TRC20"]
    listed = api.get("/v1/accounts/u1/deposit-addresses").json()["addresses"]
    assert [a["chain"] for a in listed] == ["btc", "eth", "tron"]

    api.account("u2")
    other = api.post("/v1/accounts/u2/deposit-addresses", {"chain": "btc"}).json()
    assert other["derivation_index"] == 1 and other["address"] != body["address"]


def test_unknown_chain_and_foreign_accounts_are_refused(api: Api) -> None:
    api.account("u1")
    api.account("u2")
    api.problem(
        api.post("/v1/accounts/u1/deposit-addresses", {"chain": "doge"}), 422, "chain_not_enabled"
    )
    bound = api.key(["accounts:read", "accounts:write"], account="u1")
    response = api.post("/v1/accounts/u2/deposit-addresses", {"chain": "btc"}, token=bound)
    api.problem(response, 404, "account_not_found")
    api.problem(api.get("/v1/accounts/u2/deposits", bound), 404, "account_not_found")
    reader = api.key(["accounts:read"])
    api.problem(
        api.post("/v1/accounts/u1/deposit-addresses", {"chain": "btc"}, token=reader),
        403,
        "forbidden",
    )


def test_deposits_list_status_value_rate_and_sender(api: Api) -> None:
    api.account("u1")
    address = api.post("/v1/accounts/u1/deposit-addresses", {"chain": "btc"}).json()["address"]
    chain = FakeChain(Chain.BTC, api.clock.now() - timedelta(minutes=20), final_depth=2)
    pricing = PricingService(api.db, api.clock, PricingSettings(history_tolerance_seconds=3600))
    pricing.refresh()
    watcher = Watcher(api.db, api.clock, chain, pricing, WatcherConfig(Chain.BTC))
    chain.mine(
        [
            ChainTransfer(
                Chain.BTC,
                "BTC",
                "ab" * 32,
                1,
                address,
                150_000,
                "bcrt1qfrom",
                SenderKind.KNOWN,
                True,
            ),
        ]
    )
    watcher.tick()
    [confirming] = api.get("/v1/accounts/u1/deposits").json()["deposits"]
    assert confirming["status"] == "confirming"
    assert confirming["usd_value"] is None and confirming["rate_lock"] is None
    assert confirming["amount"] == {"amount": "0.0015", "asset": "BTC"}
    assert confirming["confirmations"] == 1

    chain.mine()
    watcher.tick()
    [credited] = api.get("/v1/accounts/u1/deposits").json()["deposits"]
    assert credited["status"] == "credited"
    assert credited["usd_value"] == {"amount": "90.00", "asset": "USD"}  # 0.0015 at 60 000
    assert credited["rate_lock"]["rate"] == "60000"
    assert credited["rate_lock"]["side"] == "bid"
    assert credited["rate_lock"]["sources"] == ["static"]
    assert credited["sender"] == "bcrt1qfrom" and credited["sender_kind"] == "known"
    assert credited["address"] == address and credited["position"] == 1
    assert api.available("u1") == "90.00"


def test_tron_addresses_derive_on_the_devnet_network(api: Api) -> None:
    api.account("t")
    tron = api.post("/v1/accounts/t/deposit-addresses", {"chain": "tron"}).json()
    key = parse_account_key(dev_account_xpub(DEV_MNEMONIC, TronNetwork.DEVNET), TronNetwork.DEVNET)
    assert tron["address"] == str(key.address(0))


def test_health_shows_each_watcher_lag(api: Api) -> None:
    chain = FakeChain(Chain.BTC, api.clock.now(), final_depth=1)
    pricing = PricingService(api.db, api.clock, PricingSettings())
    watcher = Watcher(api.db, api.clock, chain, pricing, WatcherConfig(Chain.BTC))
    chain.mine_empty(4)
    watcher.tick()
    chain.mine_empty(2)
    [btc] = api.get("/v1/health").json()["watchers"]
    assert (btc["chain"], btc["scanned_height"], btc["head_height"], btc["lag"]) == ("btc", 4, 4, 0)
    assert btc["last_error"] is None
