"""The facts a policy decision needs, as plain frozen values gathered by the caller.

Design
------
The policy engine never reads a database, a chain or a price feed: the caller (the refund and
withdrawal services) collects these facts inside its unit of work and passes them in, together
with ``now``. So a decision is a pure function of (policy, facts, clock) and a test builds the
facts by hand. Each value checks its own invariants on construction (time zones, assets, signs);
a violation is a programming error in the caller and raises ``ValueError``, not a refusal.

Units: every ``*_usd`` field is `Money` in micro-USD; ``amount`` fields are minor units of their
asset (satoshi, wei, sun, micro-USDT); rates are `Decimal` whole USD per whole coin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from kassa.assets import Chain, chain_of, on_chain
from kassa.money import USD, Asset, Money
from kassa.policy.model import AccountState, StateReason

__all__ = [
    "AccountFacts",
    "ActivationFacts",
    "ActivationOutcome",
    "FeeSource",
    "NetworkFee",
    "RateFacts",
    "TopUpFacts",
]

_ZERO_USD = Money(0, USD)


def _aware(name: str, moment: datetime | None) -> None:
    if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware (UTC)")


def _usd(name: str, value: Money, *, allow_negative: bool = False) -> None:
    if not isinstance(value, Money) or value.asset != USD:
        raise ValueError(f"{name} must be USD Money (micro-USD), got {value!r}")
    if value.is_negative and not allow_negative:
        raise ValueError(f"{name} must not be negative, got {value}")


def _count(name: str, value: int) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")


@dataclass(frozen=True, slots=True)
class TopUpFacts:
    """One credited deposit (a top-up), as the refund decision sees it."""

    id: str
    amount: Money
    """What arrived on chain, in minor units of the top-up's asset."""
    credited_usd: Money
    """USD credited to the balance, fixed at payment time (micro-USD)."""
    paid_at: datetime
    """Payment time: when the transfer was first seen (the rate-lock instant)."""
    sender_address: str | None
    """The originating wallet, or None when it is unknown or ambiguous."""
    sender_ambiguous: bool = False
    """True when a BTC payment had inputs from several addresses (so ``sender_address`` is None)."""
    refund_count: int = 0
    """Refunds of this top-up already made or in flight."""
    refunded_usd: Money = _ZERO_USD
    """USD already refunded or reserved for refunds of this top-up (micro-USD)."""

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Money) or not on_chain(self.amount.asset):
            raise ValueError(f"a top-up is BTC, ETH, TRX or USDT on chain, got {self.amount!r}")
        if not self.amount.is_positive:
            raise ValueError(f"a top-up amount must be positive, got {self.amount}")
        _usd("credited_usd", self.credited_usd)
        _usd("refunded_usd", self.refunded_usd)
        _aware("paid_at", self.paid_at)
        _count("refund_count", self.refund_count)
        if self.sender_ambiguous and self.sender_address is not None:
            raise ValueError("an ambiguous sender has no single sender_address")

    @property
    def asset(self) -> Asset:
        return self.amount.asset

    @property
    def chain(self) -> Chain:
        return chain_of(self.amount.asset)


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """The customer account, at the moment of the decision."""

    available_usd: Money
    """Posted balance minus pending holds (micro-USD); below zero only when frozen."""
    state: AccountState = AccountState.ACTIVE
    state_reason: StateReason | None = None
    state_changed_at: datetime | None = None
    """When the account entered ``state``; required for every state but ``active``."""
    last_usage_at: datetime | None = None
    """The latest metered usage event, None if there never was one."""
    pending_refund_count: int = 0
    """Refunds of this account requested and not yet paid, rejected or cancelled."""
    open_dispute: bool = False
    """A dispute or chargeback about this account is open."""

    def __post_init__(self) -> None:
        _usd("available_usd", self.available_usd, allow_negative=True)
        _aware("state_changed_at", self.state_changed_at)
        _aware("last_usage_at", self.last_usage_at)
        _count("pending_refund_count", self.pending_refund_count)
        if self.state is not AccountState.ACTIVE and self.state_changed_at is None:
            raise ValueError(f"a {self.state.value} account needs state_changed_at")


@dataclass(frozen=True, slots=True)
class RateFacts:
    """The rate a payout is priced at (the payout-side rate lock of the refund or withdrawal)."""

    asset: Asset
    usd_per_unit: Decimal
    """Whole USD per whole coin, e.g. ``Decimal("50000")`` for BTC."""
    source: str = ""
    """Where the rate came from (e.g. ``median:coinbase,kraken``), for the record."""
    lock_id: str | None = None
    """The rate lock the payout will use, when one is already taken."""

    def __post_init__(self) -> None:
        if not isinstance(self.asset, Asset) or self.asset == USD:
            raise ValueError(f"a rate prices a coin in USD, got asset {self.asset!r}")
        rate = self.usd_per_unit
        if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
            raise ValueError(f"usd_per_unit must be a positive finite Decimal, got {rate!r}")

    def ratio(self) -> tuple[int, int]:
        """The rate as an exact ``(numerator, denominator)`` for `kassa.money` conversions."""
        return self.usd_per_unit.as_integer_ratio()


class FeeSource(StrEnum):
    """Where a network fee figure came from, shown in the decision's breakdown."""

    LIVE = "live"
    """Read from the chain now (fee estimate, base fee, resource prices), margin included."""
    FALLBACK = "fallback"
    """The configured estimate: the node could not answer (or live fees are switched off)."""


@dataclass(frozen=True, slots=True)
class NetworkFee:
    """The chain fee estimate of one payout transaction, in the chain's fee asset."""

    amount: Money
    """Minor units of the chain's fee asset: satoshi on BTC, wei on ETH, sun on TRON."""
    rate: RateFacts | None = None
    """The fee asset's USD rate. Needed only when it differs from the payout asset (USDT on
    ETH or TRON); otherwise the payout rate prices the fee."""
    source: FeeSource = FeeSource.FALLBACK
    """Live from the chain, or the configured fallback estimate."""

    def __post_init__(self) -> None:
        if not isinstance(self.source, FeeSource):
            raise ValueError(f"a network fee's source is a FeeSource, got {self.source!r}")
        if not isinstance(self.amount, Money) or not on_chain(self.amount.asset):
            raise ValueError(f"a network fee is paid in a chain asset, got {self.amount!r}")
        if self.amount.is_negative:
            raise ValueError(f"a network fee cannot be negative, got {self.amount}")
        if self.rate is not None and self.rate.asset != self.amount.asset:
            raise ValueError(f"the fee rate prices {self.rate.asset}, not {self.amount.asset}")


class ActivationOutcome(StrEnum):
    PENDING = "pending"
    """Still waiting for the code; the hold is open."""
    EXPIRED = "expired"
    """No code arrived within the activation window."""
    CANCELLED = "cancelled"
    """The customer cancelled before any code arrived."""
    FULFILLED = "fulfilled"
    """A code arrived: the purchase is delivered."""


@dataclass(frozen=True, slots=True)
class ActivationFacts:
    """One activation (a time-limited purchase held against the balance)."""

    id: str
    price_usd: Money
    """What the activation cost (micro-USD)."""
    activated_at: datetime
    outcome: ActivationOutcome

    def __post_init__(self) -> None:
        _usd("price_usd", self.price_usd)
        _aware("activated_at", self.activated_at)
