"""Building the deposit machinery from settings: address derivers, dust thresholds, watchers.

Derivers need only the account public keys, so the API can hand out addresses with no node
running. Scanners and watchers need node URLs; `kassa up` fills devnet endpoints in before
building them.
"""

from __future__ import annotations

from collections.abc import Mapping

from kassa.chains.btc.rpc import BtcRpc
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.eth.scanner import EthScanner
from kassa.chains.hd import parse_account_key
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainScanner
from kassa.chains.tron.api import TronApi
from kassa.chains.tron.scanner import TronScanner
from kassa.clock import Clock
from kassa.db import Database
from kassa.deposits.derive import HdDeriver
from kassa.deposits.settings import DEV_ACCOUNT_XPUBS, ChainsSettings
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.errors import InvalidRequest
from kassa.money import Money, asset
from kassa.pricing.service import PricingService


class ChainNotEnabled(InvalidRequest):
    code = "chain_not_enabled"
    title = "Chain not enabled"


def account_xpub(settings: ChainsSettings, chain: Chain) -> str:
    chain_settings = settings.of(chain)
    if chain_settings.account_xpub is not None:
        return chain_settings.account_xpub
    # Only reachable on a development network (the settings refuse it elsewhere): the public
    # development key, never derived here.
    return DEV_ACCOUNT_XPUBS[chain]


def derivers(settings: ChainsSettings) -> dict[Chain, HdDeriver]:
    """One deriver per enabled chain; a bad key fails here, at start-up, with the reason."""
    result: dict[Chain, HdDeriver] = {}
    for chain in settings.enabled():
        network = settings.of(chain).network_value()
        result[chain] = HdDeriver(parse_account_key(account_xpub(settings, chain), network))
    return result


def dust_thresholds(settings: ChainsSettings, chain: Chain) -> dict[str, int]:
    """Per asset code, the smallest credited amount in minor units."""
    if chain is Chain.BTC:
        texts = {"BTC": settings.btc.dust}
    elif chain is Chain.ETH:
        texts = {"ETH": settings.eth.dust_eth, "USDT-ERC20": settings.eth.dust_usdt}
    else:
        texts = {"TRX": settings.tron.dust_trx, "USDT-TRC20": settings.tron.dust_usdt}
    return {code: Money.parse(text, asset(code)).amount for code, text in texts.items()}


def parse_chain(text: str, enabled: Mapping[Chain, object]) -> Chain:
    try:
        chain = Chain(text)
    except ValueError:
        raise ChainNotEnabled(f"{text!r} is not a chain; use btc, eth or tron") from None
    if chain not in enabled:
        raise ChainNotEnabled(f"deposits on {chain.display_name} are not enabled here")
    return chain


class ChainNotConfigured(ValueError):
    """A watcher cannot start: the chain's node URL (or token contract) is not known."""


def build_scanner(settings: ChainsSettings, chain: Chain) -> ChainScanner:
    """The real adapter for `chain`, talking to the configured node (mainnet or devnet alike)."""
    if chain is Chain.BTC:
        btc = settings.btc
        if not btc.rpc_url or btc.rpc_api_key is None:
            raise ChainNotConfigured("[chains.btc] needs rpc_url and rpc_api_key")
        rpc = BtcRpc(btc.rpc_url, btc.rpc_api_key.get_secret_value())
        return BtcScanner(rpc, btc.network, confirmations=btc.confirmations)
    if chain is Chain.ETH:
        eth = settings.eth
        if not eth.rpc_url or not eth.usdt_contract:
            raise ChainNotConfigured("[chains.eth] needs rpc_url and usdt_contract")
        return EthScanner(
            EthRpc(eth.rpc_url),
            usdt_contract=eth.usdt_contract,
            confirmations=eth.confirmations,
            finality=eth.finality,
        )
    tron = settings.tron
    if not tron.api_url or not tron.usdt_contract:
        raise ChainNotConfigured("[chains.tron] needs api_url and usdt_contract")
    return TronScanner(TronApi(tron.api_url), usdt_contract=tron.usdt_contract)


def watcher_config(settings: ChainsSettings, chain: Chain) -> WatcherConfig:
    chain_settings = settings.of(chain)
    return WatcherConfig(
        chain=chain,
        dust=dust_thresholds(settings, chain),
        start_height=chain_settings.start_height,
        reorg_window=chain_settings.reorg_window,
        lag_alert_blocks=chain_settings.lag_alert_blocks,
        lease_seconds=chain_settings.lease_seconds,
        store_batch_blocks=chain_settings.store_batch_blocks,
        credit_batch=chain_settings.credit_batch,
    )


def build_watcher(
    settings: ChainsSettings,
    chain: Chain,
    database: Database,
    clock: Clock,
    pricing: PricingService,
    *,
    owner: str | None = None,
) -> Watcher:
    return Watcher(
        database,
        clock,
        build_scanner(settings, chain),
        pricing,
        watcher_config(settings, chain),
        owner=owner,
    )
