"""Per-chain deposit settings (``[chains.btc]``, ``[chains.eth]``, ``[chains.tron]``).

Defaults describe the local devnet (`kassa devnet up`): regtest, chain id 1337 and Kassa's TRON
simulator, with node URLs, the bcoin API key and token contracts filled in from the devnet's
state when left empty. On a development network an unset ``account_xpub`` is the account key of
the public development mnemonic (`DEV_ACCOUNT_XPUBS`) — convenient and worthless, which is the
point. On a production network Kassa refuses to start without an explicit account public key.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from kassa.chains.network import BtcNetwork, Chain, EthNetwork, Network, TronNetwork

DEV_MNEMONIC = (
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
)
"""The BIP39 test mnemonic: deposit keys of the devnet only (anyone can spend from it)."""

DEV_ACCOUNT_XPUBS: Mapping[Chain, str] = MappingProxyType(
    {
        # BIP84 m/84'/1'/0' on regtest (the only development network of Bitcoin).
        Chain.BTC: "vpub5Y6cjg78GGuNLsaPhmYsiw4gYX3HoQiRBiSwDaBXKUafCt9bNwWQiitDk5VZ5BVxYnQdwo"
        "TyXSs2JHRPAgjAvtbBrf8ZhDYe2jWAqvZVnsc",
        # BIP44 m/44'/60'/0' (the same on every chain id, 1337 and 31337 alike).
        Chain.ETH: "xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdha"
        "WHPFsBngh5GFZaM6si3yZdUsT8ddYM3PwnATt",
        # BIP44 m/44'/195'/0' on the TRON devnet.
        Chain.TRON: "xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoHVn8WNqS7"
        "dqnJokZHAHcHGoaQgmv8D45oNUKx6DZMNZBCd",
    }
)
"""The account public keys of `DEV_MNEMONIC` on each chain's development networks: what an
unset ``account_xpub`` means there. Kassa never derives keys from a mnemonic; these are the
published public keys (kassa-dev's `kassa_dev.devkeys.dev_account_xpub` derives them, and a test
checks they agree)."""

DEV_ETH_CHAIN_IDS = frozenset({1337, 31337})


class _ChainSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    account_xpub: str | None = Field(
        default=None, description="Account-level extended public key (watch-only)"
    )
    start_height: int = Field(default=0, ge=0, description="First block a new watcher scans")
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    reorg_window: int = Field(default=100, ge=2, le=10_000)
    lag_alert_blocks: int = Field(
        default=20,
        ge=1,
        description="A watcher further behind its node than this after a tick fires "
        "watcher.lagging (once; watcher.recovered when it catches up)",
    )
    lease_seconds: int = Field(
        default=60,
        ge=1,
        description="A watcher holds its chain this long per tick; a crashed one's successor "
        "waits it out",
    )
    store_batch_blocks: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="Scanned blocks stored per database transaction (with the checkpoint at "
        "the batch's last block); a crash rescans at most one batch",
    )
    prefetch_blocks: int = Field(
        default=50,
        ge=0,
        le=10_000,
        description="Blocks fetched and scanned ahead, in a thread, while the watcher stores "
        "and credits the ones before; 0 fetches each block only when it is needed",
    )
    credit_batch: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Final deposits credited per database transaction, each its own ledger "
        "transaction under its own idempotency key",
    )

    rpc_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A node request taking longer fails (and, with several nodes, fails over)",
    )
    node_retry_seconds: float = Field(
        default=10.0, ge=0, description="A failed node is asked again after this long"
    )
    node_probe_seconds: float = Field(
        default=30.0, ge=0, description="How often standby nodes' tips and latency are checked"
    )
    node_behind_blocks: int = Field(
        default=3,
        ge=0,
        description="A node this many blocks below a standby node's tip is behind (stalled)",
    )
    mempool: bool = Field(
        default=True,
        description="Announce deposits from the node's mempool (BTC, ETH; TRON has none)",
    )
    mempool_interval_seconds: float = Field(default=0.5, gt=0)
    mempool_drop_after_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A seen transaction missing from the pool this long is looked up, and "
        "dropped if the node no longer knows it",
    )

    def is_dev(self) -> bool:
        raise NotImplementedError

    def node_urls(self) -> list[str]:
        """The nodes in priority order (``rpc_urls``, or the one ``rpc_url``)."""
        raise NotImplementedError

    def network_value(self) -> Network:
        raise NotImplementedError

    @model_validator(mode="after")
    def _production_needs_a_key(self) -> _ChainSettings:
        if self.enabled and self.account_xpub is None and not self.is_dev():
            raise ValueError(
                "a production network needs account_xpub (the account-level public key); "
                "the development key is only used on devnets"
            )
        return self


def _first_url_as_rpc_url(data: object, single: str, several: str) -> object:
    """``rpc_url`` defaults to the first of ``rpc_urls`` (payouts and fee quotes use one node)."""
    if isinstance(data, dict) and data.get(several) and not data.get(single):
        return {**data, single: data[several][0]}
    return data


class BtcChainSettings(_ChainSettings):
    network: BtcNetwork = BtcNetwork.REGTEST
    rpc_url: str | None = Field(default=None, description="Node JSON-RPC URL")
    rpc_urls: list[str] = Field(
        default_factory=list,
        description="Several nodes in priority order (the watcher fails over); the first is "
        "rpc_url's default. All share rpc_api_key",
    )
    rpc_api_key: SecretStr | None = Field(default=None, description="RPC password / API key")
    confirmations: int = Field(default=1, ge=1, le=1000, description="Final after N (6 mainnet)")
    dust: str = Field(default="0.00000546", description="Smaller deposits are ignored, BTC")

    @model_validator(mode="before")
    @classmethod
    def _default_rpc_url(cls, data: object) -> object:
        return _first_url_as_rpc_url(data, "rpc_url", "rpc_urls")

    def is_dev(self) -> bool:
        return self.network is BtcNetwork.REGTEST

    def node_urls(self) -> list[str]:
        return self.rpc_urls or ([self.rpc_url] if self.rpc_url else [])

    def network_value(self) -> Network:
        return self.network


class EthChainSettings(_ChainSettings):
    chain_id: int = Field(default=1337, ge=1)
    rpc_url: str | None = None
    rpc_urls: list[str] = Field(
        default_factory=list,
        description="Several nodes in priority order (the watcher fails over); the first is "
        "rpc_url's default",
    )
    usdt_contract: str | None = Field(default=None, description="The canonical USDT (ERC-20)")
    finality: Literal["tag", "confirmations"] = Field(
        default="confirmations",
        description="`tag` uses the node's finalized block; ganache has none worth the name",
    )
    confirmations: int = Field(default=1, ge=1, le=1000)
    dust_eth: str = "0.00001"
    dust_usdt: str = "0.01"

    @model_validator(mode="before")
    @classmethod
    def _default_rpc_url(cls, data: object) -> object:
        return _first_url_as_rpc_url(data, "rpc_url", "rpc_urls")

    def is_dev(self) -> bool:
        return self.chain_id in DEV_ETH_CHAIN_IDS

    def node_urls(self) -> list[str]:
        return self.rpc_urls or ([self.rpc_url] if self.rpc_url else [])

    def network_value(self) -> Network:
        return EthNetwork(self.chain_id)


class TronChainSettings(_ChainSettings):
    network: TronNetwork = TronNetwork.DEVNET
    api_url: str | None = None
    api_urls: list[str] = Field(
        default_factory=list,
        description="Several full nodes in priority order (the watcher fails over); the first "
        "is api_url's default",
    )
    mempool: bool = Field(
        default=False, description="TRON has no public mempool: seen comes from the first block"
    )
    usdt_contract: str | None = Field(default=None, description="The canonical USDT (TRC-20)")
    dust_trx: str = "0.1"
    dust_usdt: str = "0.01"

    @model_validator(mode="before")
    @classmethod
    def _default_api_url(cls, data: object) -> object:
        return _first_url_as_rpc_url(data, "api_url", "api_urls")

    @model_validator(mode="after")
    def _no_mempool(self) -> TronChainSettings:
        if self.mempool:
            raise ValueError("TRON nodes have no public mempool; leave mempool off")
        return self

    def is_dev(self) -> bool:
        return self.network is TronNetwork.DEVNET

    def node_urls(self) -> list[str]:
        return self.api_urls or ([self.api_url] if self.api_url else [])

    def network_value(self) -> Network:
        return self.network


class ChainsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    btc: BtcChainSettings = Field(default_factory=BtcChainSettings)
    eth: EthChainSettings = Field(default_factory=EthChainSettings)
    tron: TronChainSettings = Field(default_factory=TronChainSettings)

    def of(self, chain: Chain) -> BtcChainSettings | EthChainSettings | TronChainSettings:
        if chain is Chain.BTC:
            return self.btc
        if chain is Chain.ETH:
            return self.eth
        return self.tron

    def enabled(self) -> list[Chain]:
        return [chain for chain in Chain if self.of(chain).enabled]
