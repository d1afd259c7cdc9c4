"""What a Bitcoin payout transaction pays in fees: the rate it is priced and signed at, and the
fee a replacement must reach.

* **Rates** come from ``estimatesmartfee(target_blocks)`` in sat per 1000 vB, rounded up, never
  below the 1 sat/vB relay floor, the configured fallback when the node has no estimate
  (regtest, a fresh node), and never above ``max_sat_per_kvb``. An estimate prices one input;
  ``sign`` uses the same rate (`BtcFeePolicy.signing_rate`) with the real input count, so the
  fee of a transaction is exactly its (largest possible) vsize times the priced rate.
* **Replacement** (BIP125): the fee is raised by at least ``bump_percent`` and by at least the
  relay increment (1 sat/vB of its size), or to the current estimate if that is higher; never
  above what ``max_sat_per_kvb`` allows for its size (then there is no replacement).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kassa.chains.btc.rpc import BtcNodeError
from kassa.chains.btc.scanner import MIN_RELAY_FEE_RATE, BtcScanner, FeeSource
from kassa.chains.btc.tx import estimate_vsize, fee_for_vsize
from kassa.money import BTC, Money
from kassa.payouts.rails.base import FeeEstimate, RailUnavailable
from kassa.payouts.settings import BtcPayoutSettings

__all__ = ["INCREMENTAL_RELAY_FEE", "BtcFeePolicy"]

INCREMENTAL_RELAY_FEE = 1_000
"""Sat per 1000 vB a replacement must add on top of the fee it replaces (BIP125 rule 4,
Core's default -incrementalrelayfee)."""


class BtcFeePolicy:
    """Fee rates from ``scanner``'s node within the limits of ``settings``."""

    def __init__(self, scanner: BtcScanner, settings: BtcPayoutSettings) -> None:
        self.scanner = scanner
        self.settings = settings

    def rate(self) -> tuple[int, str]:
        """The rate to pay now (sat per 1000 vB, capped), and where it came from."""
        try:
            found = self.scanner.fee_rate(self.settings.target_blocks)
        except BtcNodeError as error:
            raise RailUnavailable(f"Bitcoin node: {error}") from error
        source = "estimatesmartfee" if found.source is FeeSource.NODE else "fallback"
        return min(found.sat_per_kvb, self.settings.max_sat_per_kvb), source

    def estimate(self, scripts: Sequence[bytes], change_script: bytes) -> FeeEstimate:
        """The fee of one transaction of one input paying ``scripts`` and the change."""
        rate, source = self.rate()
        vsize = estimate_vsize(1, [*scripts, change_script])
        return FeeEstimate(
            total=Money(fee_for_vsize(vsize, rate), BTC),
            params={
                "sat_per_kvb": rate,
                "inputs": 1,
                "vsize": vsize,
                "target_blocks": self.settings.target_blocks,
            },
            source=source,
        )

    def signing_rate(self, params: Mapping[str, int]) -> int:
        """The rate an estimate's ``params`` were priced at, within today's cap."""
        rate = params.get("sat_per_kvb")
        if type(rate) is not int or rate < MIN_RELAY_FEE_RATE:
            raise ValueError(f"a BTC fee estimate carries sat_per_kvb ≥ 1000, got {rate!r}")
        return min(rate, self.settings.max_sat_per_kvb)

    def replacement_fee(self, old_fee: int, vsize: int, bump_percent: int) -> int | None:
        """The fee of a replacement of ``vsize`` for a transaction that paid ``old_fee``; None
        when the cap forbids the least bump nodes accept. The market is asked only then, and a
        node that cannot say leaves the bump alone."""
        bumped = -(-old_fee * (100 + bump_percent) // 100)
        needed = max(bumped, old_fee + fee_for_vsize(vsize, INCREMENTAL_RELAY_FEE))
        ceiling = fee_for_vsize(vsize, self.settings.max_sat_per_kvb)
        if needed > ceiling:
            return None
        try:
            market = fee_for_vsize(vsize, self.rate()[0])
        except RailUnavailable:
            market = 0
        return max(needed, min(market, ceiling))
