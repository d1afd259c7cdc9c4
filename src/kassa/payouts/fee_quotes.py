"""The network fee a quote charges, read from the chain at quote time.

Why: fixed configured estimates are wrong both ways. On the devnet they charged 0.00042 ETH
(≈ $1.26) for a transfer that costs ≈ $0.09; on a busy mainnet they would charge less than the
chain takes. So a quote asks the node what one payout transaction costs *now*, for *this*
destination, and adds a configured safety margin (``[payouts.fee_quotes]
safety_margin_percent``, rounded up), because the worker pays the fee of the block it lands in:

* **BTC**: ``estimatesmartfee(target_blocks)`` in sat per 1000 vB (rounded up, at least the
  relay floor, at most ``max_sat_per_kvb``; a node without an estimate, as bcoin regtest
  usually is, gives the configured ``fallback_sat_per_kvb``, the rate the worker signs at
  then) times the vsize of a one-input P2WPKH transaction paying the destination's script
  plus change: the rail's own `kassa.payouts.rails.btc_fees.BtcFeePolicy` prices it.
* **ETH / USDT-ERC20**: one ``eth_feeHistory`` call gives the next block's base fee (its last
  ``baseFeePerGas``) and the tips the last blocks paid (a configured percentile); the tip is
  never below the configured one the worker pays. Gas: 21 000 for ETH to an account without
  code, ``eth_estimateGas`` for a contract; a token transfer costs more when it creates the
  recipient's balance (a zero storage slot), so the recipient's ``balanceOf`` picks the
  configured gas of a first or a repeat transfer. A node without ``eth_feeHistory`` is asked
  for the pending block's base fee.
* **TRX / USDT-TRC20**: ``getchainparameters`` gives the energy, bandwidth and account
  creation prices. A TRX transfer to an address with no account pays the creation fees; a
  token transfer's energy is the configured figure of a first or a repeat transfer (the
  recipient's token balance decides: a first one costs about twice as much), times the energy
  price. Bandwidth is priced as burned: the hot wallet's free bandwidth, when it covers the
  transaction, makes the real fee lower, never higher.

A quote never waits long for a node: each client has a short timeout of its own
(``timeout_seconds``), and an answer — or the failure to get one — is reused for
``cache_seconds`` per (asset, destination), so a burst of quotes asks the node once. When the
node cannot answer (down, slow, malformed), the configured ``[payouts.network_fee_estimates]``
figure is used and the fee says so: `NetworkFee.source` is ``fallback`` instead of ``live``, and
the decision's breakdown shows it.

Quotes only: the payout worker prices and measures the fee it really pays with the rails' own
fee modules (`kassa.payouts.rails`), and the difference is booked to the network-fee account.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kassa.assets import chain_of, fee_asset_of
from kassa.chains.btc.address import parse_btc_address
from kassa.chains.btc.rpc import BtcNodeError, BtcRpc
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.errors import InvalidAddress
from kassa.chains.eth.address import parse_eth_address
from kassa.chains.eth.rpc import EthNodeError, EthRpc, quantity
from kassa.chains.eth.tx import NATIVE_TRANSFER_GAS
from kassa.chains.network import Chain
from kassa.chains.tron.address import TronAddress, parse_tron_address
from kassa.chains.tron.api import TronApi, TronApiError
from kassa.chains.tron.tx import MAX_FEE_LIMIT, trc20_transfer_calldata
from kassa.deposits.settings import ChainsSettings
from kassa.money import ETH, TRX, Asset, Money
from kassa.payouts.rails.base import RailUnavailable
from kassa.payouts.rails.btc_fees import BtcFeePolicy
from kassa.payouts.rails.tron_fees import FEE_LIMIT_HEADROOM, transaction_bandwidth
from kassa.payouts.settings import (
    EthPayoutSettings,
    FeeQuoteSettings,
    PayoutSettings,
)
from kassa.policy.facts import FeeSource

__all__ = [
    "ChainFee",
    "FeeQuotes",
    "LiveFeeUnavailable",
    "QuotedFee",
    "erc20_gas",
    "eth_fee",
    "eth_next_fees",
    "trc20_energy",
    "tron_trc20_fee",
    "tron_trx_fee",
    "with_margin",
]

_TYPICAL_BTC_SCRIPT = bytes([0, 20]) + bytes(20)
"""A P2WPKH output script (OP_0, push 20, hash): the hot wallet's change, and the destination
a quote assumes when it has none."""
_BALANCE_OF = bytes.fromhex("70a08231")
_TYPICAL_TRON_AMOUNT = 10**9
"""Sun (or token units) a quote without an amount sizes a transfer for (varints grow slowly)."""


class LiveFeeUnavailable(Exception):
    """The node gave no usable fee figures; the configured estimate is used instead."""


@dataclass(frozen=True, slots=True)
class ChainFee:
    """What the chain says one payout transaction costs, before the safety margin."""

    amount: Money
    """Minor units of the chain's fee asset."""
    detail: str
    """The figures it came from, for logs and the record (e.g. ``12000 sat/kvB × 141 vB``)."""


@dataclass(frozen=True, slots=True)
class QuotedFee:
    """The fee a quote charges: margin included when live, the configured figure otherwise."""

    amount: Money
    source: FeeSource
    detail: str


# --------------------------------------------------------------------------- arithmetic


def with_margin(amount: int, percent: int) -> int:
    """``amount`` raised by ``percent``, rounded up to the minor unit."""
    return -(-amount * (100 + percent) // 100)


def eth_next_fees(history: Mapping[str, Any], configured_tip: int) -> tuple[int, int]:
    """(next block's base fee, tip) from an ``eth_feeHistory`` answer asked for one reward
    percentile: the base fee is the last ``baseFeePerGas`` (the block after the newest), the
    tip the median of the blocks' percentile rewards, never below ``configured_tip``."""
    bases = history.get("baseFeePerGas")
    if not isinstance(bases, list) or not bases:
        raise LiveFeeUnavailable("eth_feeHistory gave no baseFeePerGas")
    base = quantity(bases[-1], "baseFeePerGas")
    rewards = history.get("reward") or []
    if not isinstance(rewards, list):
        raise LiveFeeUnavailable("eth_feeHistory gave a malformed reward list")
    tips = sorted(quantity(row[0], "reward") for row in rewards if isinstance(row, list) and row)
    market = tips[len(tips) // 2] if tips else 0
    return base, max(market, configured_tip)


def eth_fee(gas: int, base_fee: int, tip: int, settings: EthPayoutSettings) -> int:
    """Wei a transaction of ``gas`` is expected to pay: the base fee plus the tip per gas, as
    the worker prices it, within the worker's fee cap."""
    cap = min(base_fee * settings.base_fee_multiplier + tip, settings.max_fee_per_gas_wei)
    return gas * min(base_fee + tip, cap)


def erc20_gas(recipient_balance: int, settings: FeeQuoteSettings) -> int:
    """Gas of a token transfer: creating the recipient's balance writes a fresh slot."""
    if recipient_balance > 0:
        return settings.erc20_transfer_gas
    return settings.erc20_transfer_gas_new_holder


def trc20_energy(recipient_balance: int, settings: FeeQuoteSettings) -> int:
    """Energy of a TRC-20 transfer: about twice as much for a first one to an empty balance."""
    if recipient_balance > 0:
        return settings.trc20_transfer_energy
    return settings.trc20_transfer_energy_new_holder


def tron_trx_fee(chain: Mapping[str, int], size: int, *, creates: bool) -> int:
    """Sun a TRX transfer of ``size`` bandwidth bytes burns: the creation fees when it creates
    the recipient's account, else its bytes at the bandwidth price."""
    if creates:
        return chain.get("getCreateAccountFee", 0) + chain.get(
            "getCreateNewAccountFeeInSystemContract", 0
        )
    return size * chain.get("getTransactionFee", 0)


def tron_trc20_fee(chain: Mapping[str, int], energy: int, size: int) -> int:
    """Sun a TRC-20 transfer burns: its energy at the energy price and its bytes."""
    return energy * chain.get("getEnergyFee", 0) + size * chain.get("getTransactionFee", 0)


# --------------------------------------------------------------------------- the chains


class _BtcReader:
    """Prices with the rail's own `BtcFeePolicy` (same rate, same vsize), so a quote is the
    worker's estimate for a one-input payout, plus the margin."""

    def __init__(self, chains: ChainsSettings, settings: PayoutSettings, timeout: float) -> None:
        btc = chains.btc
        if not btc.rpc_url or btc.rpc_api_key is None:
            raise LiveFeeUnavailable("[chains.btc] has no rpc_url and rpc_api_key")
        self.network = btc.network
        self.rpc = BtcRpc(btc.rpc_url, btc.rpc_api_key.get_secret_value(), timeout=timeout)
        scanner = BtcScanner(
            self.rpc,
            btc.network,
            confirmations=btc.confirmations,
            fallback_fee_rate=settings.btc.fallback_sat_per_kvb,
        )
        self.policy = BtcFeePolicy(scanner, settings.btc)

    def fee(self, coin: Asset, destination: str | None) -> ChainFee:
        script = (
            _TYPICAL_BTC_SCRIPT
            if destination is None
            else parse_btc_address(destination, self.network).script_pubkey
        )
        found = self.policy.estimate([script], _TYPICAL_BTC_SCRIPT)
        rate, vsize = found.params["sat_per_kvb"], found.params["vsize"]
        return ChainFee(found.total, f"{rate} sat/kvB ({found.source}) × {vsize} vB")

    def close(self) -> None:
        self.rpc.close()


class _EthReader:
    def __init__(self, chains: ChainsSettings, settings: PayoutSettings, timeout: float) -> None:
        eth = chains.eth
        if not eth.rpc_url:
            raise LiveFeeUnavailable("[chains.eth] has no rpc_url")
        self.token = eth.usdt_contract or None
        self.settings = settings.eth
        self.quotes = settings.fee_quotes
        self.rpc = EthRpc(eth.rpc_url, timeout=timeout)

    def fee(self, coin: Asset, destination: str | None) -> ChainFee:
        base, tip, said = self._fees()
        gas, gas_said = self._gas(coin, destination)
        total = eth_fee(gas, base, tip, self.settings)
        return ChainFee(
            Money(total, ETH), f"{gas} gas ({gas_said}) × (base {base} + tip {tip} wei, {said})"
        )

    def _fees(self) -> tuple[int, int, str]:
        blocks = self.quotes.eth_fee_history_blocks
        try:
            history = self.rpc.call(
                "eth_feeHistory", hex(blocks), "latest", [self.quotes.eth_tip_percentile]
            )
        except EthNodeError:
            history = None
        if isinstance(history, dict) and history.get("baseFeePerGas"):
            base, tip = eth_next_fees(history, self.settings.priority_fee_wei)
            return base, tip, f"eth_feeHistory of {blocks} blocks"
        block = self.rpc.get_block("pending", full=False) or {}
        if block.get("baseFeePerGas") is None:
            raise LiveFeeUnavailable("the Ethereum node reports no base fee")
        base = quantity(block["baseFeePerGas"], "baseFeePerGas")
        return base, self.settings.priority_fee_wei, "pending block, configured tip"

    def _gas(self, coin: Asset, destination: str | None) -> tuple[int, str]:
        to = None if destination is None else parse_eth_address(destination).text
        if coin == ETH:
            if to is None or not self.rpc.get_code(to):
                return NATIVE_TRANSFER_GAS, "native transfer"
            return self.rpc.estimate_gas({"to": to, "value": "0x0"}), "eth_estimateGas"
        if to is None or self.token is None:
            return erc20_gas(0, self.quotes), "token transfer to a new holder"
        holder = bytes(12) + parse_eth_address(to).raw
        answer = self.rpc.call_contract(
            {"to": self.token, "data": "0x" + (_BALANCE_OF + holder).hex()}
        )
        balance = int.from_bytes(answer, "big") if answer else 0
        said = "token transfer to a holder" if balance else "token transfer to a new holder"
        return erc20_gas(balance, self.quotes), said

    def close(self) -> None:
        self.rpc.close()


class _TronReader:
    def __init__(self, chains: ChainsSettings, settings: PayoutSettings, timeout: float) -> None:
        tron = chains.tron
        if not tron.api_url:
            raise LiveFeeUnavailable("[chains.tron] has no api_url")
        self.token = None if not tron.usdt_contract else parse_tron_address(tron.usdt_contract)
        self.settings = settings.tron
        self.quotes = settings.fee_quotes
        self.api = TronApi(tron.api_url, timeout=timeout)

    def fee(self, coin: Asset, destination: str | None) -> ChainFee:
        to = None if destination is None else parse_tron_address(destination)
        chain = self.api.chain_parameters()
        now_ms = time.time_ns() // 1_000_000
        expiration_ms = now_ms + self.settings.expiration_seconds * 1000
        if coin == TRX:
            size = transaction_bandwidth(
                call_data=None,
                amount_sun=_TYPICAL_TRON_AMOUNT,
                timestamp_ms=now_ms,
                expiration_ms=expiration_ms,
                fee_limit_sun=0,
            )
            creates = to is None or self.api.account(to) is None
            fee = tron_trx_fee(chain, size, creates=creates)
            said = "creates the account" if creates else f"{size} bytes"
            return ChainFee(Money(fee, TRX), f"TRX transfer: {said} (getchainparameters)")
        balance = self._token_balance(to)
        energy = trc20_energy(balance, self.quotes)
        price = chain.get("getEnergyFee", 0)
        fee_limit = min(
            max(
                energy * price,
                min(self.settings.trc20_fee_limit_sun, FEE_LIMIT_HEADROOM * energy * price),
                1,
            ),
            chain.get("getMaxFeeLimit", MAX_FEE_LIMIT) or MAX_FEE_LIMIT,
        )
        size = transaction_bandwidth(
            call_data=trc20_transfer_calldata(to or _ZERO_TRON, _TYPICAL_TRON_AMOUNT),
            amount_sun=0,
            timestamp_ms=now_ms,
            expiration_ms=expiration_ms,
            fee_limit_sun=fee_limit,
        )
        fee = tron_trc20_fee(chain, energy, size)
        holder = "a holder" if balance else "a new holder"
        return ChainFee(
            Money(fee, TRX),
            f"token transfer to {holder}: {energy} energy × {price} sun + {size} bytes",
        )

    def _token_balance(self, to: TronAddress | None) -> int:
        if to is None or self.token is None:
            return 0
        return self.api.trc20_balance(self.token, to)

    def close(self) -> None:
        self.api.close()


_ZERO_TRON = TronAddress.from_bytes(bytes(20))
"""Sizes a token transfer when the quote has no destination (the address's length is fixed)."""

_Reader = _BtcReader | _EthReader | _TronReader
_READERS: dict[Chain, Callable[[ChainsSettings, PayoutSettings, float], _Reader]] = {
    Chain.BTC: _BtcReader,
    Chain.ETH: _EthReader,
    Chain.TRON: _TronReader,
}
_NODE_ERRORS = (
    BtcNodeError,
    EthNodeError,
    TronApiError,
    RailUnavailable,
    LiveFeeUnavailable,
    ValueError,
    InvalidAddress,
)
"""A node down, slow, refusing or answering nonsense (a malformed quantity is a ValueError):
all mean the same to a quote, the configured estimate. So does a destination the chain's parser
refuses (a refund's recorded sender is checked by the caller only when coins go there)."""


# --------------------------------------------------------------------------- the service


class FeeQuotes:
    """Live network fees for quotes, one client per chain, answers reused briefly.

    Thread-safe: the API answers quotes from a thread pool. ``monotonic`` is the clock the
    cache expires by (a test may pass its own)."""

    def __init__(
        self,
        settings: PayoutSettings,
        chains: ChainsSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.chains = chains
        self._monotonic = monotonic
        self._readers: dict[Chain, _Reader | LiveFeeUnavailable] = {}
        self._cache: dict[tuple[str, str | None], tuple[float, QuotedFee]] = {}
        self._locks = {chain: threading.Lock() for chain in Chain}

    def fee(self, coin: Asset, destination: str | None) -> QuotedFee:
        """The fee one payout of ``coin`` to ``destination`` (None: a typical one) is charged."""
        if not self.settings.fee_quotes.live:
            return self._fallback(coin, "live fee quotes are switched off")
        chain = chain_of(coin)
        key = (coin.code.value, destination)
        with self._locks[chain]:
            cached = self._cache.get(key)
            now = self._monotonic()
            if cached is not None and cached[0] > now:
                return cached[1]
            quoted = self._ask(chain, coin, destination)
            ttl = self.settings.fee_quotes.cache_seconds
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            self._cache[key] = (now + ttl, quoted)
            return quoted

    def close(self) -> None:
        for reader in self._readers.values():
            if not isinstance(reader, LiveFeeUnavailable):
                reader.close()
        self._readers.clear()

    def _ask(self, chain: Chain, coin: Asset, destination: str | None) -> QuotedFee:
        try:
            reader = self._reader(chain)
            found = reader.fee(coin, destination)
        except _NODE_ERRORS as error:
            return self._fallback(coin, f"the {chain.display_name} node did not answer: {error}")
        if found.amount.asset != fee_asset_of(coin):
            raise AssertionError(f"{coin} fee priced in {found.amount.asset}")
        margin = self.settings.fee_quotes.safety_margin_percent
        amount = Money(with_margin(found.amount.amount, margin), found.amount.asset)
        return QuotedFee(amount, FeeSource.LIVE, f"{found.detail}, +{margin} %")

    def _reader(self, chain: Chain) -> _Reader:
        reader = self._readers.get(chain)
        if reader is None:
            try:
                timeout = self.settings.fee_quotes.timeout_seconds
                reader = _READERS[chain](self.chains, self.settings, timeout)
            except LiveFeeUnavailable as error:
                reader = error
            self._readers[chain] = reader
        if isinstance(reader, LiveFeeUnavailable):
            raise reader
        return reader

    def _fallback(self, coin: Asset, why: str) -> QuotedFee:
        estimate = self.settings.fee_estimate(coin.code.value)
        return QuotedFee(estimate, FeeSource.FALLBACK, f"configured estimate: {why}")
