"""The devnet as the product sees it (`kassa.plugins.Devnet`), registered under the ``kassa.devnet``
entry point: `kassa up`, `kassa watch` and `kassa payout-worker` call it when ``devnet = true``."""

from __future__ import annotations

from pydantic import SecretStr

from kassa.clock import Clock
from kassa.config import Settings
from kassa.plugins import DevnetUnavailable, Echo
from kassa_dev.devnet import tron_node
from kassa_dev.devnet.processes import ProcessError
from kassa_dev.devnet.stack import Devnet, DevnetError
from kassa_dev.devnet.tools import ChainToolsError
from kassa_dev.scenario import ScenarioClock


class LocalChains:
    """ganache, bcoin regtest and the TRON simulator under ``<data_dir>/devnet/``."""

    def up(self, settings: Settings, echo: Echo) -> None:
        try:
            Devnet(settings.data_dir, echo=echo).up()
        except (ChainToolsError, ProcessError, DevnetError) as error:
            raise DevnetUnavailable(str(error)) from error

    def connect(self, settings: Settings, echo: Echo, *, hot_wallets: bool = False) -> Settings:
        devnet = Devnet(settings.data_dir, echo=echo)
        settings = _with_endpoints(settings, devnet)
        if not hot_wallets:
            return settings
        from kassa_dev.devnet.hot_wallets import ensure_hot_wallets

        signer = ensure_hot_wallets(
            settings.data_dir, settings.signer, settings.chains, devnet.faucet(), echo=echo
        )
        return settings.model_copy(update={"signer": signer})

    def clock(self) -> Clock:
        return ScenarioClock()


def _with_endpoints(settings: Settings, devnet: Devnet) -> Settings:
    """Fill the node URLs, the bcoin API key and the token contracts of development networks
    from the running devnet; anything configured explicitly wins."""
    endpoints = devnet.endpoints()
    chains = settings.chains
    btc, eth, tron = chains.btc, chains.eth, chains.tron
    if btc.is_dev() and endpoints.btc_url and endpoints.btc_api_key:
        btc = btc.model_copy(
            update={
                "rpc_url": btc.rpc_url or endpoints.btc_url,
                "rpc_api_key": btc.rpc_api_key or SecretStr(endpoints.btc_api_key),
            }
        )
    if eth.is_dev() and endpoints.eth_url:
        eth = eth.model_copy(
            update={
                "rpc_url": eth.rpc_url or endpoints.eth_url,
                "usdt_contract": eth.usdt_contract or endpoints.usdt_erc20,
            }
        )
    if tron.is_dev() and endpoints.tron_url:
        contract = tron.usdt_contract or tron_node.debug_info(endpoints.tron_url).usdt_contract
        tron = tron.model_copy(
            update={"api_url": tron.api_url or endpoints.tron_url, "usdt_contract": contract}
        )
    chains = chains.model_copy(update={"btc": btc, "eth": eth, "tron": tron})
    return settings.model_copy(update={"chains": chains})
