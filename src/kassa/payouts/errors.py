"""Refusals of refund and withdrawal requests, and of operators' review actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from kassa.errors import Conflict, InvalidRequest, NotFound
from kassa.ledger.errors import register_replayable


class PayoutRequestNotFound(NotFound):
    code = "payout_request_not_found"
    title = "Refund or withdrawal not found"


class TopUpNotFound(NotFound):
    code = "topup_not_found"
    title = "Top-up not found"


class TopUpNotCredited(Conflict):
    code = "topup_not_credited"
    title = "Top-up not credited"


class DestinationIsOwnAddress(InvalidRequest):
    code = "destination_is_deposit_address"
    title = "Destination is a Kassa deposit address"


class AssetNotPayable(InvalidRequest):
    code = "asset_not_payable"
    title = "Asset cannot be paid out"


class _PolicyRefusal(Conflict):
    """The policy said no. ``decision`` (when known) is the full record: every rule, why.

    Recorded: the refusal is stored under the request's Idempotency-Key (with its decision), so
    a retry with the same key gets the same refusal even if the facts changed meanwhile."""

    def __init__(self, detail: str, decision: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.decision = decision

    def problem_extra(self) -> Mapping[str, Any]:
        return {} if self.decision is None else {"decision": self.decision}

    @classmethod
    def from_record(cls, summary: str, record: Mapping[str, Any]) -> Self:
        """The refusal again from what `problem_extra` stored (a retry under the same key)."""
        return cls(summary, record.get("decision"))


@register_replayable
class RefundRefused(_PolicyRefusal):
    code = "refund_refused"
    title = "Refund refused by policy"


@register_replayable
class WithdrawalRefused(_PolicyRefusal):
    code = "withdrawal_refused"
    title = "Withdrawal refused by policy"


@register_replayable
class PayoutLimitExceeded(Conflict):
    """The account's daily limits (``[payouts.review] max_count_per_day`` / ``max_usd_per_day``)
    would be exceeded. ``limits`` says what was counted; stored under the Idempotency-Key like
    the policy's refusals, so a retry with the same key gets the same answer."""

    code = "payout_limit_exceeded"
    title = "Daily refund and withdrawal limit reached"

    def __init__(self, detail: str, limits: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.limits = limits

    def problem_extra(self) -> Mapping[str, Any]:
        return {} if self.limits is None else {"limits": self.limits}

    @classmethod
    def from_record(cls, summary: str, record: Mapping[str, Any]) -> Self:
        return cls(summary, record.get("limits"))


class HoldOwnedByPayout(Conflict):
    """The generic holds API may not capture or void the hold of a refund or withdrawal: the
    payout worker captures it when the chain confirms the payment, and rejecting or
    cancelling the request voids it."""

    code = "hold_owned_by_payout"
    title = "Hold belongs to a payout"


class AlreadyApproved(Conflict):
    code = "payout_already_approved"
    title = "Already approved by this operator"


class ReviewReasonRequired(InvalidRequest):
    code = "payout_reason_required"
    title = "A reason is required"


class QuoteNotFound(NotFound):
    """No such quote for this account (another account's quote answers the same)."""

    code = "quote_not_found"
    title = "Quote not found"


class QuoteExpired(Conflict):
    code = "quote_expired"
    title = "Quote expired"


class QuoteAlreadyUsed(Conflict):
    code = "quote_already_used"
    title = "Quote already used"


class QuoteMismatch(Conflict):
    """The request is not the one quoted (another amount, asset, address or top-up), or its
    figures would no longer be the quoted ones (the balance or the account changed)."""

    code = "quote_mismatch"
    title = "Request does not match its quote"


class RepricingRefused(Conflict):
    """Approving would price the request again (the policy's ``pricing = "at_approval"``) at
    figures the policy refuses (after the network fee, nothing would be paid). The approval is
    not recorded and nothing changes; ``repricing`` holds the committed and the re-priced
    figures. The operator rejects the request (its funds return) or approves once the market
    allows."""

    code = "payout_repricing_refused"
    title = "Re-priced at approval, the policy refuses the payout"

    def __init__(self, detail: str, repricing: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.repricing = repricing

    def problem_extra(self) -> Mapping[str, Any]:
        return {} if self.repricing is None else {"repricing": self.repricing}
