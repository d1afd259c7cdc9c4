"""The refund and withdrawal policy engine: policy files, presets, and decisions with reasons.

A *policy* is a TOML file validated on load (`load_policy`, `load_preset`, `with_overrides`;
problems raise `InvalidPolicy`, code ``invalid_policy``). Presets ship in ``presets/``: the
product's ``default`` and one per real-world policy (``codexkey``, ``codegateway``,
``ticketed-hosting``, ``activkode``); ``docs/policies.md`` lists every parameter.

A *decision* is a pure function of (policy, facts, now) — no database, chain or clock:

* `quote_refund` — refund (part of) one top-up: `TopUpFacts`, `AccountFacts`, the refund-date
  `RateFacts` and `NetworkFee` in; a `Decision` out.
* `quote_withdrawal` — pay part of the balance out in a chosen asset.
* `quote_activation_refund` — does an activation's price go back to the balance.
* `check_claim_window` — is a top-up-error claim or a dispute still in time.
* `reprice` — a committed refund or withdrawal priced again at approval, when the policy's
  ``pricing`` is ``at_approval`` (`reprices`); the USD it is worth stays, the coins follow.

A `Decision` says ``allowed``, lists every rule applied (`RuleOutcome`: rule id, the clause it
comes from, passed, a sentence for support), the money (`Breakdown`: gross, fees, network fee,
net in USD and in coins, the rate), whether an operator must review it and by when (business
days, `add_business_days`), and whether an operator override could turn a refusal around.

Amounts are `kassa.money.Money`: USD in micro-dollars, coins in minor units. Rounding favours
the house: coins paid out round down, fees charged round up (see ``_support``).
"""

from kassa.policy._support import FeeCharge, Payout, payout
from kassa.policy.activations import check_claim_window, quote_activation_refund
from kassa.policy.calendar import add_business_days, add_months, is_business_day
from kassa.policy.decisions import network_fee_charge, quote_refund, quote_withdrawal
from kassa.policy.facts import (
    AccountFacts,
    ActivationFacts,
    ActivationOutcome,
    NetworkFee,
    RateFacts,
    TopUpFacts,
)
from kassa.policy.loading import (
    InvalidPolicy,
    load_policy,
    load_preset,
    parse_policy,
    preset_names,
    with_overrides,
)
from kassa.policy.model import (
    AccountState,
    ActivationRule,
    AfterUsage,
    ClaimKind,
    Destination,
    Policy,
    Pricing,
    RefundRule,
    StateReason,
    WithdrawalRule,
)
from kassa.policy.outcome import (
    Breakdown,
    Decision,
    DecisionKind,
    Requester,
    RuleOutcome,
    decision_of,
)
from kassa.policy.repricing import Repricing, pricing_of, reprice, reprices

__all__ = [
    "AccountFacts",
    "AccountState",
    "ActivationFacts",
    "ActivationOutcome",
    "ActivationRule",
    "AfterUsage",
    "Breakdown",
    "ClaimKind",
    "Decision",
    "DecisionKind",
    "Destination",
    "FeeCharge",
    "InvalidPolicy",
    "NetworkFee",
    "Payout",
    "Policy",
    "Pricing",
    "RateFacts",
    "RefundRule",
    "Repricing",
    "Requester",
    "RuleOutcome",
    "StateReason",
    "TopUpFacts",
    "WithdrawalRule",
    "add_business_days",
    "add_months",
    "check_claim_window",
    "decision_of",
    "is_business_day",
    "load_policy",
    "load_preset",
    "network_fee_charge",
    "parse_policy",
    "payout",
    "preset_names",
    "pricing_of",
    "quote_activation_refund",
    "quote_refund",
    "quote_withdrawal",
    "reprice",
    "reprices",
    "with_overrides",
]
