"""Building the deposit machinery from settings: address derivers, dust thresholds, watchers.

Derivers need only the account public keys, so the API can hand out addresses with no node
running. Scanners and watchers need node URLs; `kassa up` fills devnet endpoints in before
building them. A watcher reads one node, or fails over between several (``rpc_urls``), and
runs a mempool tracker beside it on BTC and ETH.
"""

from __future__ import annotations

from collections.abc import Mapping

from kassa.chains.btc.mempool import BtcMempool
from kassa.chains.btc.rpc import BtcRpc
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.eth.mempool import EthMempool
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.eth.scanner import EthScanner
from kassa.chains.failover import ChainNode, FailoverMempool, FailoverScanner, NodeSet
from kassa.chains.hd import parse_account_key
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainScanner, MempoolSource
from kassa.chains.tron.api import TronApi
from kassa.chains.tron.scanner import TronScanner
from kassa.clock import Clock
from kassa.db import Database
from kassa.deposits.derive import HdDeriver
from kassa.deposits.mempool import MempoolConfig, MempoolTracker
from kassa.deposits.nodes import NodeRecorder, checkpoint_height
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
    """The real adapter for `chain`, talking to its first configured node (mainnet or devnet
    alike)."""
    urls = _node_urls(settings, chain)
    return _scanner_at(settings, chain, urls[0])


def _node_urls(settings: ChainsSettings, chain: Chain) -> list[str]:
    urls = settings.of(chain).node_urls()
    if chain is Chain.BTC:
        if not urls or settings.btc.rpc_api_key is None:
            raise ChainNotConfigured("[chains.btc] needs rpc_url (or rpc_urls) and rpc_api_key")
    elif chain is Chain.ETH:
        if not urls or not settings.eth.usdt_contract:
            raise ChainNotConfigured("[chains.eth] needs rpc_url (or rpc_urls) and usdt_contract")
    elif not urls or not settings.tron.usdt_contract:
        raise ChainNotConfigured("[chains.tron] needs api_url (or api_urls) and usdt_contract")
    return urls


def _scanner_at(settings: ChainsSettings, chain: Chain, url: str) -> ChainScanner:
    timeout = settings.of(chain).rpc_timeout_seconds
    if chain is Chain.BTC:
        btc = settings.btc
        if btc.rpc_api_key is None:
            raise ChainNotConfigured("[chains.btc] needs rpc_api_key")
        rpc = BtcRpc(url, btc.rpc_api_key.get_secret_value(), timeout=timeout)
        return BtcScanner(rpc, btc.network, confirmations=btc.confirmations)
    if chain is Chain.ETH:
        eth = settings.eth
        if not eth.usdt_contract:
            raise ChainNotConfigured("[chains.eth] needs usdt_contract")
        return EthScanner(
            EthRpc(url, timeout=timeout),
            usdt_contract=eth.usdt_contract,
            confirmations=eth.confirmations,
            finality=eth.finality,
        )
    tron = settings.tron
    if not tron.usdt_contract:
        raise ChainNotConfigured("[chains.tron] needs usdt_contract")
    return TronScanner(TronApi(url, timeout=timeout), usdt_contract=tron.usdt_contract)


def _mempool_at(settings: ChainsSettings, chain: Chain, url: str) -> MempoolSource | None:
    """The node's mempool reader, on its own connection (it runs in its own thread); None
    where there is none (TRON) or it is switched off."""
    if not settings.of(chain).mempool or chain is Chain.TRON:
        return None
    scanner = _scanner_at(settings, chain, url)
    if isinstance(scanner, BtcScanner):
        return BtcMempool(scanner)
    if isinstance(scanner, EthScanner):
        return EthMempool(scanner.rpc, usdt_contract=scanner.usdt_contract)
    return None


def _sources(
    settings: ChainsSettings, chain: Chain, database: Database
) -> tuple[ChainScanner, MempoolSource | None]:
    """One node: its scanner and mempool. Several: failover over them (`kassa.chains.failover`),
    never reading a node behind the watcher's checkpoint, their health recorded for the API."""
    urls = _node_urls(settings, chain)
    if len(urls) == 1:
        return _scanner_at(settings, chain, urls[0]), _mempool_at(settings, chain, urls[0])
    chain_settings = settings.of(chain)
    nodes = NodeSet(
        chain,
        [
            ChainNode(url, _scanner_at(settings, chain, url), _mempool_at(settings, chain, url))
            for url in urls
        ],
        floor=lambda: checkpoint_height(database, chain),
        retry_after_seconds=chain_settings.node_retry_seconds,
        probe_every_seconds=chain_settings.node_probe_seconds,
        behind_blocks=chain_settings.node_behind_blocks,
        on_health=NodeRecorder(database, chain),
    )
    mempool = FailoverMempool(nodes) if nodes.nodes[0].mempool is not None else None
    return FailoverScanner(nodes), mempool


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
        prefetch_blocks=chain_settings.prefetch_blocks,
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
    scanner, pool = _sources(settings, chain, database)
    chain_settings = settings.of(chain)
    tracker = None
    if pool is not None:
        tracker = MempoolTracker(
            database,
            clock,
            pool,
            MempoolConfig(
                chain,
                interval_seconds=chain_settings.mempool_interval_seconds,
                drop_after_seconds=chain_settings.mempool_drop_after_seconds,
            ),
        )
    return Watcher(
        database,
        clock,
        scanner,
        pricing,
        watcher_config(settings, chain),
        owner=owner,
        mempool=tracker,
    )
