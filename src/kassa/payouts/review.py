"""Operator review of refunds and withdrawals, and each account's daily limits.

A payout moves money out of Kassa for good, so some requests wait for a person. When a request is
created (`kassa.payouts.requests`), `screen` lists its *review reasons*:

* ``policy`` — the policy asks for a review (of every request of that kind, or in the account's
  state); the detail is the policy's own reason;
* ``above_threshold`` — the gross amount is above ``[payouts.review] threshold_usd``;
* ``new_destination`` — nothing was ever paid (a *confirmed* payout) to that address on that
  chain (ETH and USDT-ERC20 share one; BTC and TRON are their own), when ``new_destinations``
  is on. Refunds too: the sender of a top-up is where the coins came from, not necessarily a
  wallet the customer controls (an exchange's hot wallet, a payment processor), and a first
  payment there deserves a look.

A request with reasons waits in ``pending_review``; one without is ``approved`` at once. The
reasons are stored with the request (JSON ``[{code, detail}]``) so the review queue explains
itself. ``approvals_required`` is 2 above ``dual_approval_usd`` (when set), else 1: the request
becomes ``approved`` when that many *different* operators approved it (`approve`; one approval
per operator, recorded in ``payout_approval`` with the actor, the time and an optional note).
Under a policy that prices at approval, the approval that makes a request ``approved`` first
prices it again (`approve`'s ``before_approved``, `kassa.payouts.repricing`).
`reject` turns a request that is pending review or approved but not yet signed into
``rejected`` and voids its hold: the gross amount returns to the balance in full. Every move is
made under a row lock on the request and recorded as a ``payout_event``; the time is Kassa's
clock (the database's, or the devnet's scenario clock).

Daily limits (`check_daily_limits`) cap what one account may ask to take out: at most
``max_count_per_day`` requests and ``max_usd_per_day`` gross USD over the 24 hours before now.
Counted are requests whose money has left or may still leave (pending review, approved, signed,
broadcast, confirmed); rejected, cancelled and failed ones are not, since their funds came back.
The check runs in the request's own transaction after the policy allowed it and before the hold
is made, with the customer account's row locked so two concurrent requests of one account are
counted one after the other. A request over a limit is refused with ``payout_limit_exceeded``
(stored under its Idempotency-Key like the policy's refusals) and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Connection,
    insert,
    select,
)

from kassa.accounts.tables import customer_account
from kassa.assets import chain_of
from kassa.clock import Clock
from kassa.errors import InvalidRequest
from kassa.money import USD, Asset, Money, asset
from kassa.payouts import store
from kassa.payouts.errors import (
    AlreadyApproved,
    PayoutLimitExceeded,
    ReviewReasonRequired,
)
from kassa.payouts.model import (
    IllegalRequestTransition,
    PayoutRequest,
    RequestStatus,
    ReviewCode,
    ReviewReason,
)
from kassa.payouts.settings import ReviewSettings
from kassa.payouts.tables import (
    payout_approval,
    payout_tx,
    payout_tx_line,
)
from kassa.policy import Decision, DecisionKind, Policy

MAX_ACTOR_LENGTH = 200
MAX_TEXT_LENGTH = 2000
DAY = timedelta(days=1)


def _usd(value: Money) -> str:
    return f"${value.format()}"


# --------------------------------------------------------------------------- screening


@dataclass(frozen=True, slots=True)
class Screening:
    """What `screen` found: why the request waits (nothing: approved at once) and how many
    different operators must approve it."""

    reasons: tuple[ReviewReason, ...]
    approvals_required: int

    @property
    def status(self) -> RequestStatus:
        return RequestStatus.PENDING_REVIEW if self.reasons else RequestStatus.APPROVED


def screen(
    conn: Connection,
    settings: ReviewSettings,
    policy: Policy,
    decision: Decision,
    coin: Asset,
    destination: str,
) -> Screening:
    """The review reasons of an allowed request paying ``decision``'s gross amount in ``coin``
    to ``destination`` (canonical form), and the approvals it needs."""
    gross = decision.breakdown.gross_usd
    reasons: list[ReviewReason] = []
    if decision.needs_review:
        reasons.append(ReviewReason(ReviewCode.POLICY, policy_reason(policy, decision)))
    threshold = Money.parse(settings.threshold_usd, USD)
    if gross > threshold:
        reasons.append(
            ReviewReason(
                ReviewCode.ABOVE_THRESHOLD,
                f"{_usd(gross)} is above the {_usd(threshold)} review threshold",
            )
        )
    dual = (
        None if settings.dual_approval_usd is None else Money.parse(settings.dual_approval_usd, USD)
    )
    required = 2 if dual is not None and gross > dual else 1
    if required == 2 and not gross > threshold:
        # Only when dual_approval_usd is set below threshold_usd: still wait for both.
        reasons.append(
            ReviewReason(
                ReviewCode.ABOVE_DUAL_APPROVAL,
                f"{_usd(gross)} is above the {_usd(dual or gross)} dual-approval threshold",
            )
        )
    if settings.new_destinations and not store.paid_before(conn, coin, destination):
        chain = chain_of(coin)
        reasons.append(
            ReviewReason(
                ReviewCode.NEW_DESTINATION,
                f"nothing was ever paid to {destination} on {chain.display_name}",
            )
        )
    return Screening(tuple(reasons), required)


def policy_reason(policy: Policy, decision: Decision) -> str:
    """Why the policy asked for a review, in its own words where it has them."""
    rules = policy.refund if decision.kind is DecisionKind.REFUND else policy.withdrawal
    if rules.review_required:
        return f"policy {policy.name} has every {decision.kind.value} reviewed by an operator"
    try:
        # The account state's rule says "… an operator reviews the request" when its state
        # effect asks for a review.
        return decision.rule("account_state").reason
    except KeyError:
        return f"policy {policy.name} asks for an operator's review"


# --------------------------------------------------------------------------- daily limits


def check_daily_limits(
    conn: Connection,
    settings: ReviewSettings,
    customer_account_id: uuid.UUID,
    gross: Money,
    now: datetime,
) -> None:
    """Refuse (`PayoutLimitExceeded`) a request of ``gross`` USD that would take the account over
    its daily count or USD limit. Locks the customer account's row until the transaction ends.

    FOR NO KEY UPDATE, not FOR UPDATE: it queues concurrent limit checks of the account, yet
    lets the rows that reference the account (an activation, a usage batch, this request) be
    inserted meanwhile. A plain FOR UPDATE also blocks their foreign-key check, and an activation
    that already holds the balance then deadlocks with this request (the lock order is in
    `kassa.ledger`)."""
    conn.execute(
        select(customer_account.c.id)
        .where(customer_account.c.id == customer_account_id)
        .with_for_update(key_share=True)
    ).first()
    since = now - DAY
    count, used = store.paid_or_open_since(conn, customer_account_id, since)
    max_usd = Money.parse(settings.max_usd_per_day, USD)
    over: list[str] = []
    if count + 1 > settings.max_count_per_day:
        over.append(
            f"The account already made {count} refund or withdrawal requests in the last 24 "
            f"hours; the limit is {settings.max_count_per_day} a day."
        )
    if used + gross > max_usd:
        left = max_usd - used if used < max_usd else Money(0, USD)
        over.append(
            f"{_usd(gross)} on top of {_usd(used)} requested in the last 24 hours exceeds the "
            f"{_usd(max_usd)} daily limit ({_usd(left)} left)."
        )
    if over:
        raise PayoutLimitExceeded(
            "Refused: " + " ".join(over),
            {
                "window_hours": 24,
                "since": since.isoformat(),
                "requests": count,
                "max_requests": settings.max_count_per_day,
                "requested_usd": used.to_json(),
                "this_request_usd": gross.to_json(),
                "max_usd": max_usd.to_json(),
            },
        )


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Approval:
    actor: str
    note: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class PayoutTransaction:
    """A transaction of the payout worker paying (part of) one request."""

    id: uuid.UUID
    chain: str
    txid: str
    status: str
    amount_native: Money
    """Paid to this request's destination by it."""
    fee_native: Money
    """The most it can cost (the whole transaction's fee, shared in a batch)."""
    fee_paid_native: Money | None
    """What the chain charged, once known."""
    replaces_id: uuid.UUID | None
    broadcast_at: datetime | None
    last_error: str | None
    created_at: datetime


def approvals(
    conn: Connection, request_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Approval]]:
    """The approvals of each request, oldest first (requests without any are absent)."""
    found: dict[uuid.UUID, list[Approval]] = {}
    if not request_ids:
        return found
    rows = conn.execute(
        select(payout_approval)
        .where(payout_approval.c.request_id.in_(list(request_ids)))
        .order_by(payout_approval.c.id)
    ).all()
    for row in rows:
        found.setdefault(row.request_id, []).append(Approval(row.actor, row.note, row.at))
    return found


def transactions(conn: Connection, request_id: uuid.UUID) -> list[PayoutTransaction]:
    """Every transaction signed to pay the request (replacements included), oldest first."""
    rows = conn.execute(
        select(payout_tx, payout_tx_line.c.amount_native.label("line_amount"))
        .join(payout_tx_line, payout_tx_line.c.tx_id == payout_tx.c.id)
        .where(payout_tx_line.c.request_id == request_id)
        .order_by(payout_tx.c.created_at, payout_tx.c.id)
    ).all()
    result = []
    for row in rows:
        fee_asset = asset(row.fee_asset)
        result.append(
            PayoutTransaction(
                id=row.id,
                chain=row.chain,
                txid=row.txid,
                status=row.status,
                amount_native=Money(row.line_amount, asset(row.asset)),
                fee_native=Money(row.fee_native, fee_asset),
                fee_paid_native=(
                    None if row.fee_paid_native is None else Money(row.fee_paid_native, fee_asset)
                ),
                replaces_id=row.replaces_id,
                broadcast_at=row.broadcast_at,
                last_error=row.last_error,
                created_at=row.created_at,
            )
        )
    return result


def pending(conn: Connection, *, limit: int = 500) -> list[PayoutRequest]:
    """The review queue: requests pending review, oldest first."""
    return store.search(conn, status=RequestStatus.PENDING_REVIEW, limit=limit, oldest_first=True)


# --------------------------------------------------------------------------- operator actions


def _actor(actor: str) -> str:
    actor = actor.strip()
    if not actor or len(actor) > MAX_ACTOR_LENGTH:
        raise InvalidRequest(f"an operator is named by 1 to {MAX_ACTOR_LENGTH} characters")
    return actor


def _text(value: str | None, what: str) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidRequest(f"the {what} has at most {MAX_TEXT_LENGTH} characters")
    return value.strip()


BeforeApproved = Callable[[PayoutRequest, datetime], None]
"""Called, row lock held, when an approval is about to make a request ``approved`` — before
anything of the approval is written, so raising refuses it and changes nothing (re-pricing at
approval, `kassa.payouts.repricing`)."""


def approve(
    conn: Connection,
    request_id: uuid.UUID,
    *,
    actor: str,
    note: str | None = None,
    clock: Clock,
    before_approved: BeforeApproved | None = None,
) -> PayoutRequest:
    """Record ``actor``'s approval of a request pending review; with enough approvals (from
    different operators) it becomes ``approved`` and the payout worker may send it."""
    actor = _actor(actor)
    note = _text(note, "note")
    current = store.get(conn, request_id, for_update=True)
    if current.status is not RequestStatus.PENDING_REVIEW:
        raise IllegalRequestTransition(
            f"request {request_id} is {current.status.value}: only requests pending review "
            "can be approved"
        )
    given = approvals(conn, [request_id]).get(request_id, [])
    for earlier in given:
        if earlier.actor == actor:
            raise AlreadyApproved(
                f"{actor} already approved request {request_id} at "
                f"{earlier.at:%Y-%m-%d %H:%M:%S}Z; it needs {current.approvals_required} "
                "approvals from different operators"
            )
    now = clock.now(conn)
    actors = [a.actor for a in given] + [actor]
    if before_approved is not None and len(actors) >= current.approvals_required:
        before_approved(current, now)
    conn.execute(
        insert(payout_approval).values(request_id=request_id, actor=actor, note=note, at=now)
    )
    said = "" if note is None else f": {note}"
    if len(actors) >= current.approvals_required:
        reason = f"approved by {' and '.join(actors)}{said}"
        store.move(conn, request_id, RequestStatus.APPROVED, actor=actor, reason=reason, now=now)
    else:
        reason = (
            f"approval {len(actors)} of {current.approvals_required} by {actor}; "
            f"another operator must approve{said}"
        )
        store.note(
            conn, request_id, RequestStatus.PENDING_REVIEW, actor=actor, reason=reason, now=now
        )
    return store.get(conn, request_id)


_REJECTABLE = frozenset({RequestStatus.PENDING_REVIEW, RequestStatus.APPROVED})


def reject(
    conn: Connection,
    request_id: uuid.UUID,
    *,
    actor: str,
    reason: str,
    clock: Clock,
) -> PayoutRequest:
    """Refuse a request pending review, or approved but not yet signed: it becomes
    ``rejected``, its hold is voided and the gross amount returns to the balance."""
    actor = _actor(actor)
    said = _text(reason, "reason")
    if said is None:
        raise ReviewReasonRequired("say why the request is rejected (the customer may ask)")
    current = store.get(conn, request_id, for_update=True)
    if current.status not in _REJECTABLE:
        raise IllegalRequestTransition(
            f"request {request_id} is {current.status.value}: only requests pending review or "
            "approved and not yet signed can be rejected"
        )
    now = clock.now(conn)
    store.move(conn, request_id, RequestStatus.REJECTED, actor=actor, reason=said, now=now)
    return store.get(conn, request_id)
