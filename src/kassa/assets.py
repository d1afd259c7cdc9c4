"""What Kassa knows about each on-chain asset: its chain, the asset its fee is paid in, and the
market symbol that prices it — in one place, next to `kassa.money`.

The chain vocabulary (`Chain`) and the priced symbols (`Symbol`) live here rather than in
`kassa.chains` and `kassa.pricing` so that every layer can ask these facts: the policy may not
import chain code, money may not import anything. `kassa.chains.network` and
`kassa.pricing.model` re-export `Chain` and `Symbol` for their own vocabulary.

USD is not on a chain: it has none of these facts (`on_chain` says so), and asking for them
raises `KeyError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from kassa.money import BTC, ETH, TRX, Asset, AssetCode

__all__ = [
    "ASSETS_OF_CHAIN",
    "Chain",
    "Symbol",
    "chain_of",
    "fee_asset_of",
    "on_chain",
    "price_symbol",
]


class Chain(StrEnum):
    """The three blockchains Kassa speaks."""

    BTC = "btc"
    ETH = "eth"
    TRON = "tron"

    @property
    def display_name(self) -> str:
        return _CHAIN_NAMES[self]


_CHAIN_NAMES = MappingProxyType({Chain.BTC: "Bitcoin", Chain.ETH: "Ethereum", Chain.TRON: "TRON"})


class Symbol(StrEnum):
    """A market symbol priced against USD. Both USDT tokens share the market price of USDT."""

    BTC = "BTC"
    ETH = "ETH"
    TRX = "TRX"
    USDT = "USDT"


@dataclass(frozen=True, slots=True)
class _Facts:
    """The facts of one asset that lives on a chain."""

    chain: Chain
    fee_asset: Asset
    """The asset its transfers pay the network fee in (a USDT transfer on TRON burns TRX)."""
    price_symbol: Symbol


_FACTS: Mapping[str, _Facts] = MappingProxyType(
    {
        AssetCode.BTC: _Facts(Chain.BTC, BTC, Symbol.BTC),
        AssetCode.ETH: _Facts(Chain.ETH, ETH, Symbol.ETH),
        AssetCode.USDT_ERC20: _Facts(Chain.ETH, ETH, Symbol.USDT),
        AssetCode.TRX: _Facts(Chain.TRON, TRX, Symbol.TRX),
        AssetCode.USDT_TRC20: _Facts(Chain.TRON, TRX, Symbol.USDT),
    }
)

ASSETS_OF_CHAIN: Mapping[Chain, tuple[AssetCode, ...]] = MappingProxyType(
    {
        chain: tuple(code for code in AssetCode if code in _FACTS and _FACTS[code].chain is chain)
        for chain in Chain
    }
)
"""The assets each chain carries (what one deposit address of that chain receives)."""


def _code(of: Asset | str) -> str:
    """An asset's code; a plain code string finds its `AssetCode` key (a `StrEnum` member is
    equal to, and hashes as, its value)."""
    return of.code if isinstance(of, Asset) else of


def on_chain(of: Asset | str) -> bool:
    """Does the asset live on a chain (can it be deposited and paid out)?"""
    return _code(of) in _FACTS


def chain_of(of: Asset | str) -> Chain:
    return _FACTS[_code(of)].chain


def fee_asset_of(of: Asset | str) -> Asset:
    return _FACTS[_code(of)].fee_asset


def price_symbol(of: Asset | str) -> Symbol:
    return _FACTS[_code(of)].price_symbol
