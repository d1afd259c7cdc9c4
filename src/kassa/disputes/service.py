"""Opening, resolving and reading disputes (docs/disputes.md).

Why it is built this way:

* Opening checks the policy's claim window against the disputed event's own time (a top-up's
  payment time, an activation's creation), so the answer is the same whenever it is asked; a
  late claim is refused with the policy's clause and the deadline.
* The customer account row is locked before a dispute is opened or resolved, so two operators
  acting on the same account queue, and "one open dispute per subject" holds without a partial
  unique index.
* Resolution happens once (the dispute row is locked and must be ``open``) and its money moves
  in the same transaction as the status change and the event: a chargeback mirrors the top-up's
  USD legs (`kassa.ledger.transfers.reverse_asset`; the coins stay where the chain holds them),
  forced below zero when the policy says so, which freezes the account; an accepted activation
  dispute gives the captured price back from the revenue account it went to.
* Every step is an append-only `dispute_event` with actor and time; every ledger entry has a memo
  a support agent can read.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from kassa.accounts import service as accounts
from kassa.accounts import views as account_views
from kassa.accounts.service import CustomerAccount
from kassa.accounts.tables import customer_account
from kassa.deposits import records
from kassa.deposits.model import DepositStatus
from kassa.disputes import views
from kassa.disputes.errors import (
    DisputeAlreadyOpen,
    DisputeAlreadyResolved,
    DisputeNotFound,
    DisputeOutcomeNotAllowed,
    DisputeSubjectNotDisputable,
    DisputeSubjectNotFound,
    DisputeWindowClosed,
    InvalidDispute,
)
from kassa.disputes.model import (
    CLAIM_KIND,
    MAX_TEXT_LENGTH,
    RESOLUTIONS,
    Dispute,
    DisputeEvent,
    DisputeStatus,
    Outcome,
    Subject,
)
from kassa.disputes.tables import dispute, dispute_event
from kassa.ledger import holds
from kassa.ledger.idempotency import Request
from kassa.ledger.model import TransactionKind
from kassa.ledger.transfers import Leg, post, reverse_asset
from kassa.money import USD, Money
from kassa.policy import Policy, check_claim_window
from kassa.spending import activations
from kassa.spending.activations import ActivationStatus
from kassa.spending.errors import ActivationNotFound

#: Outcomes that moved money: the subject cannot be disputed again after them.
_SETTLED = (DisputeStatus.ACCEPTED.value, DisputeStatus.CHARGED_BACK.value)


def _text(value: str, what: str) -> str:
    if not value.strip() or len(value) > MAX_TEXT_LENGTH:
        raise InvalidDispute(f"{what} is 1 to {MAX_TEXT_LENGTH} characters")
    return value


def parse_subject(text: str) -> Subject:
    try:
        return Subject(text)
    except ValueError:
        raise InvalidDispute(
            f"a dispute is about a 'deposit' or an 'activation', not {text!r}"
        ) from None


def parse_outcome(text: str) -> Outcome:
    try:
        return Outcome(text)
    except ValueError:
        known = ", ".join(o.value for o in Outcome)
        raise InvalidDispute(f"unknown outcome {text!r}; known: {known}") from None


def _dispute(row: Row[Any]) -> Dispute:
    return Dispute(
        id=row.id,
        customer_account_id=row.customer_account_id,
        subject=Subject(row.subject),
        subject_id=row.subject_id,
        status=DisputeStatus(row.status),
        reason=row.reason,
        opened_by=row.opened_by,
        opened_at=row.opened_at,
        occurred_at=row.occurred_at,
        amount_usd=row.amount_usd,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
        note=row.note,
        transaction_id=row.transaction_id,
    )


# --------------------------------------------------------------------------- reading


def get(
    conn: Connection,
    dispute_id: uuid.UUID,
    *,
    account_id: uuid.UUID | None = None,
    for_update: bool = False,
) -> Dispute:
    """The dispute; with `account_id`, another account's dispute answers like a missing one."""
    statement = select(dispute).where(dispute.c.id == dispute_id)
    if account_id is not None:
        statement = statement.where(dispute.c.customer_account_id == account_id)
    if for_update:
        statement = statement.with_for_update()
    row = conn.execute(statement).first()
    if row is None:
        raise DisputeNotFound(f"dispute {dispute_id} does not exist")
    return _dispute(row)


def listing(
    conn: Connection,
    *,
    account_id: uuid.UUID | None = None,
    status: DisputeStatus | None = None,
    limit: int = 100,
) -> list[Dispute]:
    """Disputes, newest first."""
    statement = select(dispute).order_by(dispute.c.opened_at.desc(), dispute.c.id).limit(limit)
    if account_id is not None:
        statement = statement.where(dispute.c.customer_account_id == account_id)
    if status is not None:
        statement = statement.where(dispute.c.status == status.value)
    return [_dispute(row) for row in conn.execute(statement)]


def events(conn: Connection, dispute_id: uuid.UUID) -> list[DisputeEvent]:
    rows = conn.execute(
        select(dispute_event)
        .where(dispute_event.c.dispute_id == dispute_id)
        .order_by(dispute_event.c.id)
    )
    return [
        DisputeEvent(
            id=row.id,
            dispute_id=row.dispute_id,
            from_status=None if row.from_status is None else DisputeStatus(row.from_status),
            to_status=DisputeStatus(row.to_status),
            actor=row.actor,
            note=row.note,
            at=row.at,
        )
        for row in rows
    ]


def has_open(conn: Connection, account_id: uuid.UUID) -> bool:
    """Is a dispute or chargeback claim on the account still open (the refund fact)?"""
    found = conn.execute(
        select(dispute.c.id)
        .where(
            dispute.c.customer_account_id == account_id,
            dispute.c.status == DisputeStatus.OPEN.value,
        )
        .limit(1)
    ).first()
    return found is not None


# --------------------------------------------------------------------------- opening


def _lock_account(conn: Connection, account_id: uuid.UUID) -> None:
    conn.execute(
        select(customer_account.c.id).where(customer_account.c.id == account_id).with_for_update()
    ).one()


def _subject_facts(
    conn: Connection,
    account: CustomerAccount,
    subject: Subject,
    subject_id: uuid.UUID,
    now: datetime,
) -> tuple[datetime, int]:
    """When the disputed event happened and the micro-USD at stake."""
    if subject is Subject.DEPOSIT:
        found = records.get(conn, subject_id)
        if found is None or found.customer_account_id != account.id:
            raise DisputeSubjectNotFound(f"deposit {subject_id} does not exist")
        if found.status is not DepositStatus.CREDITED or found.usd_amount is None:
            raise DisputeSubjectNotDisputable(
                f"deposit {subject_id} is {found.status.value}: only a credited top-up is disputed"
            )
        return found.first_seen_at, found.usd_amount
    try:
        activation = activations.get(conn, account, subject_id, now=now)
    except ActivationNotFound:
        raise DisputeSubjectNotFound(f"activation {subject_id} does not exist") from None
    if activation.status is not ActivationStatus.FULFILLED:
        raise DisputeSubjectNotDisputable(
            f"activation {subject_id} is {activation.status.value}: only a fulfilled activation "
            "was charged (an unfulfilled one returns its price by itself)"
        )
    return activation.created_at, activation.price.amount


def _refuse_duplicate(conn: Connection, subject_id: uuid.UUID) -> None:
    row = conn.execute(
        select(dispute.c.id, dispute.c.status).where(
            dispute.c.subject_id == subject_id,
            dispute.c.status.in_((DisputeStatus.OPEN.value, *_SETTLED)),
        )
    ).first()
    if row is not None:
        raise DisputeAlreadyOpen(
            f"dispute {row.id} about {subject_id} is {row.status}: one dispute at a time, and "
            "none after money moved"
        )


def open_dispute(
    conn: Connection,
    *,
    account: CustomerAccount,
    subject: Subject,
    subject_id: uuid.UUID,
    reason: str,
    actor: str,
    policy: Policy,
    now: datetime,
) -> Dispute:
    """Record a customer's claim about a top-up or an activation, within the claim window."""
    _text(reason, "a dispute's reason")
    _text(actor, "a dispute's actor")
    _lock_account(conn, account.id)
    occurred_at, amount = _subject_facts(conn, account, subject, subject_id, now)
    window = check_claim_window(policy, CLAIM_KIND[subject], occurred_at, now)
    if not window.passed:
        raise DisputeWindowClosed(window.reason, window.clause)
    _refuse_duplicate(conn, subject_id)
    dispute_id = uuid.uuid4()
    conn.execute(
        insert(dispute).values(
            id=dispute_id,
            customer_account_id=account.id,
            subject=subject.value,
            subject_id=subject_id,
            status=DisputeStatus.OPEN.value,
            reason=reason,
            opened_by=actor,
            opened_at=now,
            occurred_at=occurred_at,
            amount_usd=amount,
        )
    )
    _event(conn, dispute_id, None, DisputeStatus.OPEN, actor, reason, now)
    opened = get(conn, dispute_id)
    views.emit(conn, opened, now)
    return opened


def _event(
    conn: Connection,
    dispute_id: uuid.UUID,
    old: DisputeStatus | None,
    new: DisputeStatus,
    actor: str,
    note: str,
    now: datetime,
) -> None:
    conn.execute(
        insert(dispute_event).values(
            dispute_id=dispute_id,
            from_status=None if old is None else old.value,
            to_status=new.value,
            actor=actor,
            note=note,
            at=now,
        )
    )


# --------------------------------------------------------------------------- resolving


def resolve(
    conn: Connection,
    dispute_id: uuid.UUID,
    *,
    outcome: Outcome,
    note: str,
    actor: str,
    policy: Policy,
    now: datetime,
    request: Request | None,
) -> Dispute:
    """Decide an open dispute once; the money it moves is posted in the same transaction."""
    _text(note, "a resolution's note")
    _text(actor, "a resolution's actor")
    current = get(conn, dispute_id)
    _lock_account(conn, current.customer_account_id)
    current = get(conn, dispute_id, for_update=True)
    if current.status is not DisputeStatus.OPEN:
        raise DisputeAlreadyResolved(
            f"dispute {dispute_id} was already resolved: {current.status.value}"
        )
    status = RESOLUTIONS[current.subject].get(outcome)
    if status is None:
        allowed = ", ".join(o.value for o in RESOLUTIONS[current.subject])
        raise DisputeOutcomeNotAllowed(
            f"a dispute about a {current.subject.value} is resolved {allowed}, not {outcome.value}"
        )
    owner = accounts.get(conn, current.customer_account_id)
    before = account_views.effective(conn, owner)
    transaction_id = _move_money(conn, current, outcome, note, actor, policy, now, request)
    conn.execute(
        update(dispute)
        .where(dispute.c.id == dispute_id)
        .values(
            status=status.value,
            resolved_by=actor,
            resolved_at=now,
            note=note,
            transaction_id=transaction_id,
        )
    )
    _event(conn, dispute_id, DisputeStatus.OPEN, status, actor, note, now)
    resolved = get(conn, dispute_id)
    views.emit(conn, resolved, now)
    # A chargeback below zero freezes the account; an accepted price may unfreeze it.
    account_views.emit_if_changed(conn, owner, before, now)
    return resolved


def _move_money(
    conn: Connection,
    current: Dispute,
    outcome: Outcome,
    note: str,
    actor: str,
    policy: Policy,
    now: datetime,
    request: Request | None,
) -> uuid.UUID | None:
    if outcome is Outcome.CHARGEBACK:
        return _charge_back(conn, current, note, actor, policy, now, request)
    if outcome is Outcome.ACCEPTED:
        return _give_back_price(conn, current, note, actor, now, request)
    return None


def _charge_back(
    conn: Connection,
    current: Dispute,
    note: str,
    actor: str,
    policy: Policy,
    now: datetime,
    request: Request | None,
) -> uuid.UUID:
    """Take the top-up's USD credit back: the balance is what it was before the payment."""
    found = records.get(conn, current.subject_id, for_update=True)
    if found is None or found.status is not DepositStatus.CREDITED:
        state = "gone" if found is None else found.status.value
        raise DisputeSubjectNotDisputable(
            f"deposit {current.subject_id} is {state}: its credit is no longer there to take back"
        )
    if found.credit_transaction_id is None:
        raise DisputeSubjectNotDisputable(f"deposit {found.id} has no credit to take back")
    credited = Money(found.usd_amount or 0, USD).format()
    memo = (
        f"chargeback of deposit {found.id} ({found.money.format()} {found.asset}, "
        f"tx {found.txid}, credited {credited} USD): {note}"
    )
    taken_back = reverse_asset(
        conn,
        found.credit_transaction_id,
        asset_code=USD.code,
        now=now,
        request=request,
        memo=memo,
        reason=note,
        actor=actor,
        force=policy.disputes.chargeback_below_zero,
        metadata={"dispute_id": str(current.id), "deposit_id": str(found.id)},
    )
    records.mark_charged_back(conn, found.id, taken_back)
    return taken_back


def _give_back_price(
    conn: Connection,
    current: Dispute,
    note: str,
    actor: str,
    now: datetime,
    request: Request | None,
) -> uuid.UUID:
    """Return a fulfilled activation's captured price from revenue to the balance."""
    account = accounts.get(conn, current.customer_account_id)
    activation = activations.get(conn, account, current.subject_id, now=now)
    hold = holds.get_hold(conn, activation.hold_id)
    price = hold.captured_amount or activation.price
    memo = f"dispute {current.id} accepted: price of activation {activation.id} returned: {note}"
    return post(
        conn,
        [Leg(hold.credit_account_id, price), Leg(account.ledger_account_id, -price)],
        kind=TransactionKind.ADJUSTMENT,
        now=now,
        request=request,
        memo=memo,
        actor=actor,
        reason=note,
        metadata={"dispute_id": str(current.id), "activation_id": str(activation.id)},
    )


def charged_back_usd(conn: Connection, deposit_id: uuid.UUID) -> Money:
    """USD of the top-up already returned to the customer by a chargeback: a refund of the same
    top-up counts it as refunded, so the money never goes back twice."""
    amount = conn.execute(
        select(dispute.c.amount_usd).where(
            dispute.c.subject == Subject.DEPOSIT.value,
            dispute.c.subject_id == deposit_id,
            dispute.c.status == DisputeStatus.CHARGED_BACK.value,
        )
    ).scalar_one_or_none()
    return Money(amount or 0, USD)
