"""Every event type Kassa emits: its subject kind and what it means.

`kassa.events.outbox.record` refuses a type that is not listed here, so nothing reaches a
receiver undocumented. The schema of each type's ``data`` is the API's response model of its
subject kind (the same object `GET` returns); `kassa.api.event_schemas` publishes them as the
OpenAPI 3.1 ``webhooks`` section, one entry per type, and docs/events.md describes them with
an example each.

Subject kinds of a customer's objects: ``deposit``, ``refund``, ``withdrawal``,
``activation``, ``account``, ``dispute``. The operator's: ``watcher`` (one per chain),
``rate`` (one per priced symbol), ``hot_wallet`` (one per payout asset) and
``webhook_endpoint`` (one per endpoint, disabled by the sender), ``reconciliation`` (one
subject, an event per run) and ``report`` (one per daily report file); the first four fire on
transitions only (`kassa.events.operational`, `kassa.webhooks.sender`); the others once per run
or file (`kassa.reports.reconciliation.store`, `kassa.reports.daily`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CUSTOMER_KINDS = ("deposit", "refund", "withdrawal", "activation", "account", "dispute")
OPERATOR_KINDS = (
    "watcher",
    "rate",
    "hot_wallet",
    "webhook_endpoint",
    "reconciliation",
    "report",
)


@dataclass(frozen=True, slots=True)
class EventType:
    type: str
    subject_kind: str
    meaning: str


def _payout_types(kind: str, what: str) -> list[EventType]:
    return [
        EventType(
            f"{kind}.requested",
            kind,
            f"A {what} was allowed by the policy and queued; "
            "its gross amount is reserved on the balance.",
        ),
        EventType(
            f"{kind}.approved",
            kind,
            f"The {what} may be paid: by the policy at once "
            "or by an operator (the last approval when two are needed).",
        ),
        EventType(
            f"{kind}.rejected",
            kind,
            f"An operator rejected the {what}; the reserved funds are back on the balance.",
        ),
        EventType(
            f"{kind}.cancelled",
            kind,
            f"The {what} was cancelled before its coins left; "
            "the reserved funds are back on the balance.",
        ),
        EventType(
            f"{kind}.repriced",
            kind,
            f"The {what}'s network fee or rate was priced again "
            "before it was paid (its figures changed).",
        ),
        EventType(
            f"{kind}.broadcast",
            kind,
            f"The {what}'s signed transaction was sent to the "
            "chain (`history` and the admin view name the transaction).",
        ),
        EventType(
            f"{kind}.confirmed",
            kind,
            f"The {what}'s transaction is final on the chain: the money has left.",
        ),
        EventType(
            f"{kind}.failed",
            kind,
            f"The {what} could not be paid; the reserved funds are back on the balance.",
        ),
    ]


_TYPES: list[EventType] = [
    EventType(
        "deposit.seen",
        "deposit",
        "A transfer to a deposit address reached the node's mempool (BTC, ETH: "
        "`block_height` is null) or was mined (or mined again after a reorganisation, or after "
        "it was dropped); not credited yet.",
    ),
    EventType(
        "deposit.confirming",
        "deposit",
        "The deposit waits for more confirmations "
        "(`confirmations` and `status_reason` say how many of how many).",
    ),
    EventType(
        "deposit.credited",
        "deposit",
        "The deposit is final and its USD value was "
        "credited at the rate locked at payment time (`usd_value`, `rate_lock`).",
    ),
    EventType(
        "deposit.reversed",
        "deposit",
        "A credited deposit's block left the chain; its "
        "credit was taken back (a balance below zero freezes the account).",
    ),
    EventType(
        "deposit.ignored",
        "deposit",
        "The transfer is not credited; `status_reason` "
        "says why: below the dust threshold, a token contract that is not the canonical "
        "one, a transaction that failed on chain, or worth less than one micro-dollar.",
    ),
    EventType(
        "deposit.dropped",
        "deposit",
        "A transfer seen in the mempool left it unmined; `status_reason` says why: replaced "
        "or double-spent (an input or the nonce was used by another transaction), or evicted. "
        "Nothing was credited. Should it be mined after all, `deposit.seen` follows.",
    ),
    *_payout_types("refund", "refund"),
    *_payout_types("withdrawal", "withdrawal"),
    EventType(
        "activation.fulfilled",
        "activation",
        "The activation was fulfilled: its price is charged, final.",
    ),
    EventType(
        "activation.cancelled",
        "activation",
        "The activation was cancelled within its window: its price is back on the balance.",
    ),
    EventType(
        "activation.expired",
        "activation",
        "The activation's window ended unfulfilled: "
        "its price returns to the balance (`refunded` says whether it has yet).",
    ),
    EventType(
        "account.state_changed",
        "account",
        "The state that applies to the account "
        "changed: an operator moved it (active, suspended, terminated, frozen), or a "
        "reversal or chargeback took the balance below zero (frozen), or credits covered "
        "it again.",
    ),
    EventType(
        "dispute.opened", "dispute", "An operator opened a dispute about a top-up or an activation."
    ),
    EventType("dispute.rejected", "dispute", "The dispute was rejected: nothing moved."),
    EventType(
        "dispute.accepted",
        "dispute",
        "The dispute was accepted: the activation's "
        "price is back on the balance (`transaction_id`).",
    ),
    EventType(
        "dispute.charged_back",
        "dispute",
        "The top-up was charged back: its USD credit "
        "was taken back, even below zero (`transaction_id`).",
    ),
    EventType(
        "watcher.lagging",
        "watcher",
        "A chain watcher is more blocks behind its node than its threshold (once per episode).",
    ),
    EventType("watcher.recovered", "watcher", "A lagging chain watcher caught up again."),
    EventType(
        "rate.unavailable",
        "rate",
        "No usable rate for a symbol could be aggregated "
        "(once per episode): deposits wait, quotes are refused.",
    ),
    EventType(
        "rate.depegged",
        "rate",
        "A stablecoin's market left its peg band (once per "
        "episode): it is valued at its market rate, not at 1.00.",
    ),
    EventType(
        "rate.recovered",
        "rate",
        "The symbol has a usable rate again (and is back within its peg band).",
    ),
    EventType(
        "hot_wallet.low",
        "hot_wallet",
        "A payout hot wallet's balance fell below its threshold (once until it recovers).",
    ),
    EventType(
        "hot_wallet.recovered", "hot_wallet", "A low hot wallet is back at or above its threshold."
    ),
    EventType(
        "webhook_endpoint.disabled",
        "webhook_endpoint",
        "A webhook endpoint was disabled by the sender: it answered 410 Gone, or failed for "
        "longer than [webhooks] disable_after_failing_seconds; its deliveries wait until it "
        "is enabled.",
    ),
    EventType(
        "reconciliation.completed",
        "reconciliation",
        "A reconciliation run finished: how many breaks are new, persisting and resolved, and "
        "the solvency coverage.",
    ),
    EventType(
        "report.ready",
        "report",
        "The worker wrote a day's activity report (CSV and HTML with charts) into the data "
        "directory.",
    ),
]

CATALOG: Mapping[str, EventType] = {t.type: t for t in _TYPES}


def kind_of(type_: str) -> str:
    """The subject kind of an event type; KeyError for a type not in the catalog."""
    return CATALOG[type_].subject_kind
