"""Building the payout machinery from settings: one rail per chain that has a node and a key.

A chain without its node URL, token contract or signing key gets no rail; its approved payouts
then wait with a reason saying so (they are never failed for it), and `kassa up` says which
chains pay out.
"""

from __future__ import annotations

from kassa.chains.btc.rpc import BtcRpc
from kassa.chains.eth.address import parse_eth_address
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.network import Chain
from kassa.chains.tron.address import parse_tron_address
from kassa.chains.tron.api import TronApi
from kassa.clock import Clock
from kassa.db import Database
from kassa.deposits.settings import ChainsSettings
from kassa.payouts.rails.base import Rail
from kassa.payouts.settings import PayoutSettings
from kassa.payouts.signer import LocalKeySigner
from kassa.payouts.worker import PayoutWorker
from kassa.pricing.service import PricingService


class PayoutsNotConfigured(ValueError):
    """A chain cannot pay out: its node, token contract or signing key is missing."""


def build_rail(
    chains: ChainsSettings, payouts: PayoutSettings, signer: LocalKeySigner, chain: Chain
) -> Rail:
    if chain not in signer.keys:
        raise PayoutsNotConfigured(f"no signing key for {chain.display_name}")
    timeout = payouts.worker.node_timeout_seconds
    # Each rail is imported when its chain is set up: a process paying on one chain does not
    # load the others' libraries.
    if chain is Chain.BTC:
        from kassa.payouts.rails.btc import BtcRail

        btc = chains.btc
        if not btc.rpc_url or btc.rpc_api_key is None:
            raise PayoutsNotConfigured("[chains.btc] needs rpc_url and rpc_api_key")
        return BtcRail(
            BtcRpc(btc.rpc_url, btc.rpc_api_key.get_secret_value(), timeout=timeout),
            signer,
            btc.network,
            settings=payouts.btc,
            confirmations=btc.confirmations,
            scan_from_height=btc.start_height,
        )
    if chain is Chain.ETH:
        from kassa.payouts.rails.eth import EthRail

        eth = chains.eth
        if not eth.rpc_url:
            raise PayoutsNotConfigured("[chains.eth] needs rpc_url")
        return EthRail(
            EthRpc(eth.rpc_url, timeout=timeout),
            signer,
            eth.network_value(),  # type: ignore[arg-type]
            usdt_contract=None if not eth.usdt_contract else parse_eth_address(eth.usdt_contract),
            settings=payouts.eth,
            confirmations=eth.confirmations,
            finality=eth.finality,
        )
    from kassa.payouts.rails.tron import TronRail

    tron = chains.tron
    if not tron.api_url:
        raise PayoutsNotConfigured("[chains.tron] needs api_url")
    return TronRail(
        TronApi(tron.api_url, timeout=timeout),
        signer,
        tron.network,
        usdt_contract=None if not tron.usdt_contract else parse_tron_address(tron.usdt_contract),
        settings=payouts.tron,
    )


def build_rails(
    chains: ChainsSettings, payouts: PayoutSettings, signer: LocalKeySigner
) -> tuple[dict[Chain, Rail], dict[Chain, str]]:
    """The rails that can be built, and for the others why not."""
    rails: dict[Chain, Rail] = {}
    skipped: dict[Chain, str] = {}
    for chain in chains.enabled():
        try:
            rails[chain] = build_rail(chains, payouts, signer, chain)
        except PayoutsNotConfigured as error:
            skipped[chain] = str(error)
    return rails, skipped


def build_worker(
    database: Database,
    clock: Clock,
    pricing: PricingService,
    payouts: PayoutSettings,
    rails: dict[Chain, Rail],
    *,
    worker_id: str | None = None,
) -> PayoutWorker:
    if worker_id is None:
        return PayoutWorker(database, clock, pricing, payouts, rails)
    return PayoutWorker(database, clock, pricing, payouts, rails, worker_id=worker_id)
