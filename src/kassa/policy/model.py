"""The policy model: every parameter of a refund and withdrawal policy, validated on load.

Design
------
* A policy is data, not code: a frozen pydantic model with ``extra="forbid"`` at every level, so a
  misspelt key is an error rather than a silently ignored wish. Files are TOML
  (`kassa.policy.loading`); the field defaults are the product's own policy (``default.toml``),
  but every shipped preset spells out every parameter so a reader never has to look here.
* Amounts are decimal strings of whole USD in the file (``minimum = "20.00"``) and `Money` in
  micro-USD here; TOML numbers are refused for money, since ``20.1`` would be a binary float.
* Integers and booleans are strict (``"14"`` is not 14, ``1`` is not ``true``). Optional limits
  are switched off by leaving them out, or by the word ``"none"`` (which an override needs,
  because TOML has no null).
* Each section carries ``clauses``: the citation of the policy text behind each rule, keyed by
  rule id. Decisions quote them, so a support agent sees *why* next to *what*.
* Account-state effects are an ordered list matched first-hit on ``(state, reason)``; an entry
  without ``reason`` matches every reason. Entries that can never match are refused on load.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from kassa.money import USD, AssetCode, MoneyError
from kassa.money import Money as _Money

__all__ = [
    "AccountState",
    "ActivationPolicy",
    "ActivationRule",
    "AfterUsage",
    "CalendarPolicy",
    "ClaimKind",
    "ClaimWindows",
    "Destination",
    "DisputePolicy",
    "DisputeRule",
    "FeePayer",
    "Policy",
    "Pricing",
    "RefundNetworkFee",
    "RefundPolicy",
    "RefundRule",
    "StateEffect",
    "StateReason",
    "Valuation",
    "WithdrawalNetworkFee",
    "WithdrawalPolicy",
    "WithdrawalRule",
]


# --------------------------------------------------------------------------- vocabulary


class AccountState(StrEnum):
    """The states of a customer account (docs/domain.md §6). Their effects come from the policy."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"
    FROZEN = "frozen"
    """Negative balance after a reversal: spending and withdrawal stop (docs/domain.md §4)."""


class StateReason(StrEnum):
    """Why an account left the active state; policies treat some reasons differently."""

    VIOLATION = "violation"
    """Terms / public offer violated (policy A "suspended for a violation", policy D)."""
    SERIOUS_BREACH = "serious_breach"
    """Serious breach of acceptable use (policy B §5.1)."""
    GEOGRAPHIC = "geographic"
    """Geographic-restrictions violation (policy B §5.2)."""
    NEGATIVE_BALANCE = "negative_balance"
    """A reversed deposit left the balance below zero (the usual reason for ``frozen``)."""
    CUSTOMER_REQUEST = "customer_request"
    """The customer closed or paused the account."""
    OTHER = "other"


class Destination(StrEnum):
    """Where a payout goes."""

    ORIGINAL_WALLET = "original_wallet"
    """The address the top-up came from, in the top-up's asset."""
    BALANCE = "balance"
    """The customer's USD balance (no chain transaction, no network fee)."""
    WITHDRAWAL_ADDRESS = "withdrawal_address"
    """An address the customer gives for a withdrawal (only withdrawals go there)."""


class Valuation(StrEnum):
    USD_AT_PAYMENT = "usd_at_payment"
    """The refund is worth the USD credited at payment time; the coins sent are that USD at the
    refund-date rate, so exchange-rate movement is the customer's (docs/domain.md §11)."""


class AfterUsage(StrEnum):
    """How a refund reads "the balance has not been spent" once usage followed the top-up."""

    REFUND_UNSPENT_REST = "refund_unspent_rest"
    """The unspent rest of the top-up stays refundable: min(credited − refunded, available)."""
    REFUSE = "refuse"
    """Any usage charged at or after the top-up's payment refuses its refund (policy A's
    "already been used to make API requests")."""


class RefundNetworkFee(StrEnum):
    DEDUCT = "deduct"
    """The whole network fee comes out of the payout."""
    HOUSE = "house"
    """The house pays the network fee."""


class WithdrawalNetworkFee(StrEnum):
    DEDUCT = "deduct"
    """The whole network fee comes out of the payout, on top of the flat fee."""
    BEYOND_FLAT_FEE = "beyond_flat_fee"
    """The flat fee covers the network fee up to its amount; only the excess comes out."""
    HOUSE = "house"
    """The house pays the network fee (the flat fee, if any, is still charged)."""


class Pricing(StrEnum):
    """When the coins of a payout that waits for an operator are priced (issue 14)."""

    COMMITTED = "committed"
    """The figures committed when the request was made stand, however long the review takes
    (the binding quote; the house bears the market's moves until the payout leaves)."""
    AT_APPROVAL = "at_approval"
    """A request that waits for review is priced again when the operator approves it: the USD
    it is worth stays, the coins, the network fee and the net follow the rate and the fee of
    the approval (policy A's "the crypto amount is recalculated at the rate on the refund
    date"). The change is recorded as a ``repriced`` event with the old and the new figures."""


class FeePayer(StrEnum):
    CUSTOMER = "customer"
    HOUSE = "house"


class RefundRule(StrEnum):
    """Ids of the rules `quote_refund` evaluates, in the order it lists them."""

    REFUNDS_ENABLED = "refunds_enabled"
    REFUND_WINDOW = "refund_window"
    ONE_REFUND_PER_TOPUP = "one_refund_per_topup"
    NO_PENDING_REFUND = "no_pending_refund"
    NO_OPEN_DISPUTE = "no_open_dispute"
    USAGE_QUIET_PERIOD = "usage_quiet_period"
    ACCOUNT_STATE = "account_state"
    REFUNDABLE_AMOUNT = "refundable_amount"
    MINIMUM_AMOUNT = "minimum_amount"
    ORIGIN_ADDRESS = "origin_address"
    NET_POSITIVE = "net_positive"


class WithdrawalRule(StrEnum):
    """Ids of the rules `quote_withdrawal` evaluates, in the order it lists them."""

    WITHDRAWALS_ENABLED = "withdrawals_enabled"
    WITHDRAWAL_ASSET = "withdrawal_asset"
    ACCOUNT_STATE = "account_state"
    MINIMUM_AMOUNT = "minimum_amount"
    SUFFICIENT_BALANCE = "sufficient_balance"
    NET_POSITIVE = "net_positive"


class ActivationRule(StrEnum):
    """Ids of the rules `quote_activation_refund` evaluates."""

    ACTIVATION_OUTCOME = "activation_outcome"
    DISPUTE_WINDOW = "dispute_window"


class ClaimKind(StrEnum):
    TOPUP_ERROR = "topup_error"
    """A top-up made or credited in error (duplicate, wrong amount, wrong account)."""
    DISPUTE = "dispute"
    """A dispute about a specific purchase or activation."""


# Rules an operator override can never waive: they are arithmetic or physics, not policy.
_UNWAIVABLE_REFUND_RULES = frozenset({RefundRule.NET_POSITIVE, RefundRule.ORIGIN_ADDRESS})


# --------------------------------------------------------------------------- field types


def _parse_usd(value: object) -> _Money:
    """Money fields: a decimal string of whole USD, e.g. ``"20.00"``; never negative."""
    if isinstance(value, _Money):
        if value.asset != USD:
            raise ValueError(f"expected a USD amount, got {value.asset.code.value}")
        if value.is_negative:
            raise ValueError("negative amounts are not allowed")
        return value
    if not isinstance(value, str):
        # A TOML float such as 20.1 is already inexact; refuse numbers outright.
        raise ValueError(
            f'expected a USD amount as a decimal string such as "20.00", got '
            f"{type(value).__name__} {value!r}"
        )
    try:
        return _Money.parse(value, USD)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


_PAYOUT_ASSETS = tuple(code for code in AssetCode if code is not AssetCode.USD)


def _payout_asset(value: object) -> AssetCode:
    """Withdrawal assets: a chain asset code such as ``"USDT-TRC20"`` (never USD)."""
    if value == AssetCode.USD:
        raise ValueError("USD is the ledger currency, not an asset a withdrawal can pay in")
    for code in _PAYOUT_ASSETS:
        if value == code.value:
            return code
    raise ValueError(
        f"unknown asset {value!r}; use one of {', '.join(c.value for c in _PAYOUT_ASSETS)}"
    )


def _none_word(value: object) -> object:
    """Optional limits: ``"none"`` switches the limit off (TOML has no null)."""
    return None if value == "none" else value


UsdAmount = Annotated[
    _Money,
    PlainValidator(_parse_usd),
    PlainSerializer(lambda m: m.format(), return_type=str),
]
"""A non-negative USD amount: a decimal string in the file, `Money` in micro-USD here."""

PayoutAsset = Annotated[
    AssetCode,
    PlainValidator(_payout_asset),
    PlainSerializer(lambda code: code.value, return_type=str),
]
"""An asset a payout can be made in: BTC, ETH, TRX, USDT-ERC20 or USDT-TRC20."""

Days = Annotated[StrictInt, Field(ge=1, le=36_500)]
"""A whole number of calendar days (at least 1)."""
OptionalDays = Annotated[Days | None, BeforeValidator(_none_word)]
BusinessDays = Annotated[StrictInt, Field(ge=0, le=365)]
OptionalBusinessDays = Annotated[BusinessDays | None, BeforeValidator(_none_word)]
Months = Annotated[StrictInt, Field(ge=1, le=1_200)]
OptionalMonths = Annotated[Months | None, BeforeValidator(_none_word)]
Minutes = Annotated[StrictInt, Field(ge=0, le=525_600)]
ClauseText = Annotated[StrictStr, Field(min_length=1, max_length=2_000)]

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- sections


class RefundPolicy(_Section):
    """Refunds: returning (part of) one specific top-up."""

    enabled: StrictBool = True
    """Whether a top-up can be refunded at all (policy D: no, use the balance or withdraw)."""
    window_days: OptionalDays = None
    """Calendar days after payment during which a refund may be asked for; None = no limit.
    Inclusive: a request exactly ``window_days`` × 24 h after payment is still in time."""
    spent_funds_refundable: StrictBool = False
    """False: only the unspent part of the top-up is refundable, measured as
    min(credited − already refunded, available balance). True: the whole top-up."""
    after_usage: AfterUsage = AfterUsage.REFUND_UNSPENT_REST
    """Once usage followed the top-up: refund the unspent rest, or refuse the refund outright.
    ``refuse`` cannot be combined with ``spent_funds_refundable = true``."""
    minimum: UsdAmount = _Money(0, USD)
    """Smallest refund (gross, before fees), USD. "0.00" = no minimum."""
    one_per_topup: StrictBool = False
    """A top-up that has been refunded once (even partly) cannot be refunded again."""
    usage_quiet_minutes: Minutes = 0
    """Minutes without metered usage required before a refund (0 = none)."""
    block_while_refund_pending: StrictBool = False
    """Refuse while another refund of the same account is pending."""
    block_while_dispute_open: StrictBool = False
    """Refuse while a dispute or chargeback on the account is open."""
    destination: Destination = Destination.ORIGINAL_WALLET
    """``original_wallet`` (the top-up's sender, in its asset) or ``balance``."""
    valuation: Valuation = Valuation.USD_AT_PAYMENT
    network_fee: RefundNetworkFee = RefundNetworkFee.DEDUCT
    """Who bears the chain fee of a refund to the original wallet."""
    pricing: Pricing = Pricing.COMMITTED
    """A refund waiting for review keeps its committed coins (``committed``) or is priced again
    at approval (``at_approval``)."""
    provider_fee: FeePayer = FeePayer.CUSTOMER
    """Who bears a fee a payment provider charges for the refund."""
    review_required: StrictBool = False
    """Every allowed refund waits for an operator's approval."""
    review_sla_business_days: OptionalBusinessDays = None
    """Business days within which a review is due; None = no promise."""
    operator_may_waive: tuple[RefundRule, ...] = ()
    """Rules an operator override may waive (e.g. policy C's exceptions for our own fault)."""
    fault_credits_to_balance: StrictBool = False
    """Operators may compensate outages / billing errors on the house's side by crediting the
    balance (a ledger adjustment, not a refund of a top-up). Declared here; posted elsewhere."""
    clauses: dict[RefundRule, ClauseText] = Field(default_factory=dict)
    """Citation of the policy text behind each rule, quoted in every decision."""

    @field_validator("destination")
    @classmethod
    def _refund_destination(cls, value: Destination) -> Destination:
        if value is Destination.WITHDRAWAL_ADDRESS:
            raise ValueError("a refund goes to 'original_wallet' or 'balance'")
        return value

    @field_validator("operator_may_waive")
    @classmethod
    def _waivable(cls, value: tuple[RefundRule, ...]) -> tuple[RefundRule, ...]:
        bad = sorted(rule.value for rule in value if rule in _UNWAIVABLE_REFUND_RULES)
        if bad:
            raise ValueError(f"these rules can never be waived: {', '.join(bad)}")
        return _unique(value)

    @model_validator(mode="after")
    def _strict_usage_needs_unspent(self) -> RefundPolicy:
        if self.after_usage is AfterUsage.REFUSE and self.spent_funds_refundable:
            raise ValueError(
                "after_usage = 'refuse' refuses a top-up once the balance was used, which "
                "contradicts spent_funds_refundable = true; set one of them differently"
            )
        return self


class WithdrawalPolicy(_Section):
    """Withdrawals: paying unspent balance out to an address the customer gives."""

    enabled: StrictBool = True
    minimum: UsdAmount = _Money(20_000_000, USD)
    """Smallest withdrawal (gross, debited from the balance), USD."""
    flat_fee: UsdAmount = _Money(5_000_000, USD)
    """Fee per withdrawal, USD, deducted from the amount paid out."""
    network_fee: WithdrawalNetworkFee = WithdrawalNetworkFee.DEDUCT
    pricing: Pricing = Pricing.COMMITTED
    """A withdrawal waiting for review keeps its committed coins (``committed``) or is priced
    again at approval (``at_approval``)."""
    assets: tuple[PayoutAsset, ...] = (
        AssetCode.BTC,
        AssetCode.ETH,
        AssetCode.USDT_ERC20,
        AssetCode.USDT_TRC20,
    )
    """Assets a withdrawal may be paid in."""
    review_required: StrictBool = False
    review_sla_business_days: OptionalBusinessDays = None
    clauses: dict[WithdrawalRule, ClauseText] = Field(default_factory=dict)

    @field_validator("assets")
    @classmethod
    def _unique_assets(cls, value: tuple[AssetCode, ...]) -> tuple[AssetCode, ...]:
        return _unique(value)

    @model_validator(mode="after")
    def _enabled_needs_assets(self) -> WithdrawalPolicy:
        if self.enabled and not self.assets:
            raise ValueError("withdrawals are enabled but 'assets' is empty")
        return self


class ActivationPolicy(_Section):
    """Refunds of activations (time-limited purchases held against the balance)."""

    refund_expired: StrictBool = True
    """An activation that expired unfulfilled is refunded to the balance automatically."""
    refund_cancelled: StrictBool = True
    """An activation cancelled before fulfilment is refunded to the balance at once."""
    refund_fulfilled: StrictBool = False
    """A fulfilled activation is refundable (normally not)."""
    operator_may_waive: tuple[ActivationRule, ...] = ()
    review_sla_business_days: OptionalBusinessDays = None
    """Business days for a manual review of an activation refund (an operator override)."""
    clauses: dict[ActivationRule, ClauseText] = Field(default_factory=dict)

    @field_validator("operator_may_waive")
    @classmethod
    def _unique_rules(cls, value: tuple[ActivationRule, ...]) -> tuple[ActivationRule, ...]:
        return _unique(value)


class ClaimWindows(_Section):
    """How long after an event a customer may raise a claim about it (calendar days)."""

    topup_error_days: OptionalDays = None
    dispute_days: OptionalDays = None
    clauses: dict[ClaimKind, ClauseText] = Field(default_factory=dict)

    def days(self, kind: ClaimKind) -> int | None:
        return self.topup_error_days if kind is ClaimKind.TOPUP_ERROR else self.dispute_days


# --------------------------------------------------------------------------- disputes


class DisputeRule(StrEnum):
    CHARGEBACK = "chargeback"


class DisputePolicy(_Section):
    """What resolving a dispute does to money (the claim windows are ``[claims]``)."""

    chargeback_below_zero: StrictBool = True
    """A chargeback of a top-up resets the balance to what it was before the payment, even
    below zero, which freezes the account (docs/domain.md §4). False: a chargeback the
    balance cannot cover is refused (the operator settles it another way)."""
    clauses: dict[DisputeRule, ClauseText] = Field(default_factory=dict)


class CalendarPolicy(_Section):
    """Business days for review SLAs: Monday to Friday in UTC, minus these holidays."""

    holidays: tuple[date, ...] = ()

    @field_validator("holidays")
    @classmethod
    def _sorted_holidays(cls, value: tuple[date, ...]) -> tuple[date, ...]:
        return tuple(sorted(set(value)))


class StateEffect(_Section):
    """What an account state (optionally: for one reason) does to refunds and withdrawals."""

    state: AccountState
    reason: StateReason | None = None
    """None matches every reason."""
    refund: StrictBool
    withdrawal: StrictBool
    handling_cost: UsdAmount = _Money(0, USD)
    """Deducted from an allowed refund or withdrawal, USD."""
    within_months: OptionalMonths = None
    """Allowed only within this many calendar months after the state change."""
    review: StrictBool = False
    """An allowed refund or withdrawal in this state waits for an operator."""
    clause: ClauseText

    @field_validator("state")
    @classmethod
    def _not_active(cls, value: AccountState) -> AccountState:
        if value is AccountState.ACTIVE:
            raise ValueError("active accounts follow the other rules; list only other states")
        return value

    def matches(self, state: AccountState, reason: StateReason | None) -> bool:
        return self.state is state and (self.reason is None or self.reason is reason)


_FROZEN_EFFECT = StateEffect(
    state=AccountState.FROZEN,
    refund=False,
    withdrawal=False,
    clause=(
        "docs/domain.md §4: a negative balance freezes spending and withdrawal until it is covered."
    ),
)


# --------------------------------------------------------------------------- the policy


class Policy(_Section):
    """A complete refund and withdrawal policy. Defaults are the product's own policy."""

    name: StrictStr = "default"
    """Short id (lower case, digits, dashes): the preset or deployment name."""
    title: StrictStr = "Kassa default policy"
    source: StrictStr = "Kassa default policy (docs/domain.md §7)"
    """The document (and its date) this policy encodes."""
    refund: RefundPolicy = RefundPolicy()
    withdrawal: WithdrawalPolicy = WithdrawalPolicy()
    activations: ActivationPolicy = ActivationPolicy()
    claims: ClaimWindows = ClaimWindows()
    disputes: DisputePolicy = DisputePolicy()
    calendar: CalendarPolicy = CalendarPolicy()
    account_states: tuple[StateEffect, ...] = (_FROZEN_EFFECT,)
    """Effects of non-active states, matched in order (first hit wins)."""

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _NAME_RE.fullmatch(value):
            raise ValueError(
                "use 1-63 characters: lower-case letters, digits and dashes, "
                f"starting with a letter or digit (got {value!r})"
            )
        return value

    @field_validator("account_states")
    @classmethod
    def _reachable(cls, value: tuple[StateEffect, ...]) -> tuple[StateEffect, ...]:
        for index, effect in enumerate(value):
            for earlier_index, earlier in enumerate(value[:index]):
                if earlier.state is effect.state and earlier.reason in (None, effect.reason):
                    which = f"reason {effect.reason.value!r}" if effect.reason else "any reason"
                    raise ValueError(
                        f"entry {index} ({effect.state.value}, {which}) can never match: "
                        f"entry {earlier_index} already covers it (first match wins; "
                        "put specific reasons before the catch-all)"
                    )
        return value

    def state_effect(self, state: AccountState, reason: StateReason | None) -> StateEffect | None:
        """The first effect matching ``(state, reason)``; None if the policy lists none."""
        return next((e for e in self.account_states if e.matches(state, reason)), None)

    @property
    def holidays(self) -> frozenset[date]:
        return frozenset(self.calendar.holidays)

    def to_data(self) -> dict[str, Any]:
        """The policy as file-shaped data (money as strings), e.g. to merge overrides into."""
        return self.model_dump(mode="python", exclude_none=True)


_T = TypeVar("_T")


def _unique(values: tuple[_T, ...]) -> tuple[_T, ...]:
    seen: list[_T] = []
    for value in values:
        if value in seen:
            raise ValueError(f"{value!s} is listed twice")
        seen.append(value)
    return tuple(seen)
