"""Payout-request persistence: reading requests, creating them, and the one way they change
status.

Every status change of a request — an operator's approval or rejection, a customer's
cancellation, the payout worker's signing, broadcasting, confirming, failing or sending back for
a new signature — goes through `move`: it locks the request's row, checks the move against
`kassa.payouts.model.TRANSITIONS`, voids the request's hold when the move returns the funds
(rejected, cancelled, failed), updates the row and writes the ``payout_event`` line that
explains it. So a request's history is complete and no caller can skip a check. The one change
of a request's figures after it was made — re-pricing at approval — goes through `reprice`,
which writes the ``repriced`` entry of its history with the old and the new figures.

The queries the request services ask of stored requests (listing, the facts a policy decision
counts, whether an address was paid before) live here too, so only this module and the worker's
lease handling (`kassa.payouts.worker.claims`) read or write ``payout_request`` directly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, insert, or_, select, update

from kassa.assets import ASSETS_OF_CHAIN, chain_of
from kassa.deposits.addresses import match_key
from kassa.ledger import holds
from kassa.money import USD, Asset, Money
from kassa.payouts.errors import PayoutRequestNotFound
from kassa.payouts.model import (
    FEE_ABOVE_QUOTE,
    OPEN,
    PAID_OR_OPEN,
    IllegalRequestTransition,
    PayoutRequest,
    RequestKind,
    RequestStatus,
    check_transition,
    request_from_row,
)
from kassa.payouts.tables import payout_event, payout_request

_SENT = frozenset({RequestStatus.SIGNED, RequestStatus.BROADCAST})
"""Back to approved from these is the worker's re-signing of a dead transaction: no event."""

RETURNS_FUNDS = frozenset({RequestStatus.REJECTED, RequestStatus.CANCELLED, RequestStatus.FAILED})
"""Moves into these void the request's hold: the gross amount returns to the balance."""


# --------------------------------------------------------------------------- reading


def get(conn: Connection, request_id: uuid.UUID, *, for_update: bool = False) -> PayoutRequest:
    """The request; with ``for_update`` its row stays locked until the transaction ends."""
    query = select(payout_request).where(payout_request.c.id == request_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise PayoutRequestNotFound(f"no refund or withdrawal {request_id}")
    return request_from_row(row)


def for_account(
    conn: Connection, customer_account_id: uuid.UUID, kind: RequestKind | None = None
) -> list[PayoutRequest]:
    """An account's requests (of one kind), newest first."""
    query = select(payout_request).where(
        payout_request.c.customer_account_id == customer_account_id
    )
    if kind is not None:
        query = query.where(payout_request.c.kind == kind.value)
    rows = conn.execute(query.order_by(payout_request.c.created_at.desc())).all()
    return [request_from_row(row) for row in rows]


def search(
    conn: Connection,
    *,
    status: RequestStatus | None = None,
    customer_account_id: uuid.UUID | None = None,
    limit: int = 50,
    after: tuple[datetime, uuid.UUID] | None = None,
    oldest_first: bool = False,
) -> list[PayoutRequest]:
    """Requests in creation order (newest first unless ``oldest_first``), optionally of one
    status and one account; ``after`` is the (created_at, id) of the last one already seen."""
    query = select(payout_request)
    if status is not None:
        query = query.where(payout_request.c.status == status.value)
    if customer_account_id is not None:
        query = query.where(payout_request.c.customer_account_id == customer_account_id)
    created, ident = payout_request.c.created_at, payout_request.c.id
    if after is not None:
        at, last = after
        if oldest_first:
            query = query.where(or_(created > at, and_(created == at, ident > last)))
        else:
            query = query.where(or_(created < at, and_(created == at, ident < last)))
    order = (created.asc(), ident.asc()) if oldest_first else (created.desc(), ident.desc())
    rows = conn.execute(query.order_by(*order).limit(limit)).all()
    return [request_from_row(row) for row in rows]


def events(conn: Connection, request_id: uuid.UUID) -> list[dict[str, Any]]:
    """The request's history, oldest first."""
    rows = conn.execute(
        select(payout_event)
        .where(payout_event.c.request_id == request_id)
        .order_by(payout_event.c.id)
    ).all()
    return [
        {
            "from": row.from_status,
            "to": row.to_status,
            "actor": row.actor,
            "reason": row.reason,
            "at": row.at,
            "kind": row.kind,
            "detail": None if row.detail is None else json.loads(row.detail),
        }
        for row in rows
    ]


def holding(conn: Connection, hold_id: uuid.UUID) -> uuid.UUID | None:
    """The request whose funds ``hold_id`` reserves, if any."""
    return conn.execute(
        select(payout_request.c.id).where(payout_request.c.hold_id == hold_id)
    ).scalar()


# --------------------------------------------------------------------------- counting


def open_refunds(conn: Connection, customer_account_id: uuid.UUID) -> int:
    """Refunds of the account requested and not yet paid, rejected, cancelled or failed."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(payout_request)
            .where(
                payout_request.c.customer_account_id == customer_account_id,
                payout_request.c.kind == RequestKind.REFUND.value,
                payout_request.c.status.in_([s.value for s in OPEN]),
            )
        ).scalar_one()
    )


def paid_or_open_of_topup(conn: Connection, deposit_id: uuid.UUID) -> tuple[int, Money]:
    """Refunds of a top-up paid or still open (one refund per top-up), and their gross USD."""
    return _paid_or_open(conn, payout_request.c.deposit_id == deposit_id)


def paid_or_open_since(
    conn: Connection, customer_account_id: uuid.UUID, since: datetime
) -> tuple[int, Money]:
    """Requests of an account made after ``since`` whose money left or may still leave, and
    their gross USD (the daily limits)."""
    return _paid_or_open(
        conn,
        payout_request.c.customer_account_id == customer_account_id,
        payout_request.c.created_at > since,
    )


def _paid_or_open(conn: Connection, *where: ColumnElement[bool]) -> tuple[int, Money]:
    count, total = conn.execute(
        select(func.count(), func.coalesce(func.sum(payout_request.c.gross_usd), 0))
        .select_from(payout_request)
        .where(*where, payout_request.c.status.in_([s.value for s in PAID_OR_OPEN]))
    ).one()
    return int(count), Money(int(total), USD)


def paid_before(conn: Connection, coin: Asset, destination: str) -> bool:
    """Did a confirmed payout on ``coin``'s chain (any asset of that chain) go to
    ``destination``? Addresses compare as the chain does: ETH and bech32 regardless of case,
    base58 exactly."""
    chain = chain_of(coin)
    codes = [code.value for code in ASSETS_OF_CHAIN[chain]]
    column = payout_request.c.destination
    key = match_key(chain, destination)
    same: ColumnElement[bool] = (
        func.lower(column) == key if key == destination.lower() else column == destination
    )
    found = conn.execute(
        select(payout_request.c.id)
        .where(
            payout_request.c.asset.in_(codes),
            payout_request.c.status == RequestStatus.CONFIRMED.value,
            same,
        )
        .limit(1)
    ).first()
    return found is not None


# --------------------------------------------------------------------------- writing


def create(
    conn: Connection, values: Mapping[str, Any], *, actor: str, reason: str, now: datetime
) -> PayoutRequest:
    """Store a new request (``values`` are its columns) and the first line of its history."""
    conn.execute(insert(payout_request).values(**values))
    request_id: uuid.UUID = values["id"]
    _event(conn, request_id, None, RequestStatus(values["status"]), actor, reason, now)
    created = get(conn, request_id)
    from kassa.payouts import views  # the views read this module's history

    views.emit(conn, created, views.REQUESTED, now)
    if created.status is RequestStatus.APPROVED:
        views.emit(conn, created, views.EVENT_OF[RequestStatus.APPROVED], now)
    return created


def move(
    conn: Connection,
    request_id: uuid.UUID,
    new: RequestStatus,
    *,
    actor: str,
    reason: str | None,
    now: datetime,
    idempotent: bool = False,
    **values: Any,
) -> bool:
    """Move the request (row-locked) to ``new``, setting ``values`` too, and record why.

    An illegal move raises `IllegalRequestTransition` before anything changed. With
    ``idempotent`` a request already at ``new`` is left alone and False returned: the payout
    worker may redo a step after a crash or another worker's round."""
    current = get(conn, request_id, for_update=True)
    if idempotent and current.status is new:
        return False
    check_transition(current.status, new)
    if new in RETURNS_FUNDS:
        holds.void_hold(conn, current.hold_id, now=now, request=None)
    # What it waited on belongs to the old status (a fee to approve, a wallet to refill).
    values.setdefault("wait_reason", None)
    conn.execute(
        update(payout_request)
        .where(payout_request.c.id == request_id)
        .values(status=new.value, updated_at=now, **values)
    )
    _event(conn, request_id, current.status, new, actor, reason, now)
    from kassa.payouts import views

    event = views.EVENT_OF.get(new)
    if event is not None and not (new is RequestStatus.APPROVED and current.status in _SENT):
        views.emit(conn, get(conn, request_id), event, now)
    return True


def note(
    conn: Connection,
    request_id: uuid.UUID,
    status: RequestStatus,
    *,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    """Record a step that leaves the request where it is (one approval of two needed)."""
    conn.execute(
        update(payout_request).where(payout_request.c.id == request_id).values(updated_at=now)
    )
    _event(conn, request_id, status, status, actor, reason, now)


def approve_fee(
    conn: Connection, request_id: uuid.UUID, *, actor: str, note_text: str | None, now: datetime
) -> PayoutRequest:
    """Let an approved payout waiting on a network fee above its quote pay that fee at the
    house's cost: the committed figures stay, and the worker tries it again at once."""
    current = get(conn, request_id, for_update=True)
    waiting_on_fee = (current.wait_reason or "").startswith(FEE_ABOVE_QUOTE)
    # Approved: its first transaction waits to be signed. Broadcast: its stuck transaction
    # waits to be replaced by one paying more.
    fee_states = (RequestStatus.APPROVED, RequestStatus.BROADCAST)
    if current.status not in fee_states or not waiting_on_fee:
        raise IllegalRequestTransition(
            f"a {current.status.value} request is not waiting on a network fee above its quote"
        )
    conn.execute(
        update(payout_request)
        .where(payout_request.c.id == request_id)
        .values(fee_approved_by=actor, wait_reason=None, next_attempt_at=None, updated_at=now)
    )
    reason = "the network fee above the quote is paid by the house"
    _event(conn, request_id, current.status, current.status, actor, _with(reason, note_text), now)
    return get(conn, request_id)


def wait_in_flight(conn: Connection, request_id: uuid.UUID, reason: str, now: datetime) -> None:
    """A request whose transaction is in flight waits on an operator for ``reason`` (its status
    stays); recorded in its history once, not on every round that finds it still waiting."""
    current = get(conn, request_id, for_update=True)
    if current.wait_reason == reason:
        return
    conn.execute(
        update(payout_request)
        .where(payout_request.c.id == request_id)
        .values(wait_reason=reason, updated_at=now)
    )
    _event(conn, request_id, current.status, current.status, "payout-worker", reason, now)


REPRICED = "repriced"
"""The ``kind`` of the history entry that records a request priced again at approval."""


def reprice(
    conn: Connection,
    request_id: uuid.UUID,
    values: Mapping[str, Any],
    *,
    actor: str,
    reason: str,
    detail: Mapping[str, Any],
    now: datetime,
) -> PayoutRequest:
    """Commit the figures of a request priced again at approval (``values``: its re-priced
    columns) and record the ``repriced`` entry of its history, whose ``detail`` holds the old
    and the new figures. The request must be pending review (row-locked); its status stays.

    The one place a request's figures change after it was made, and the one place a
    ``repriced`` entry is written (`kassa.payouts.repricing.commit` calls it)."""
    current = get(conn, request_id, for_update=True)
    if current.status is not RequestStatus.PENDING_REVIEW:
        raise IllegalRequestTransition(
            f"a {current.status.value} request is not re-priced: only a request pending review "
            "is priced again when it is approved"
        )
    conn.execute(
        update(payout_request)
        .where(payout_request.c.id == request_id)
        .values(updated_at=now, **values)
    )
    _event(
        conn,
        request_id,
        current.status,
        current.status,
        actor,
        reason,
        now,
        kind=REPRICED,
        detail=json.dumps(detail, default=str),
    )
    from kassa.payouts import views  # the views read this module's history

    repriced = get(conn, request_id)
    views.emit(conn, repriced, views.REPRICED, now)
    return repriced


def _with(reason: str, note_text: str | None) -> str:
    return reason if not note_text else f"{reason}: {note_text}"


def paid_by(
    conn: Connection, request_ids: Sequence[uuid.UUID], tx_id: uuid.UUID, now: datetime
) -> None:
    """The requests are now paid by the stored transaction ``tx_id`` (a replacement with a
    higher fee of the one they were signed in); their status stays."""
    conn.execute(
        update(payout_request)
        .where(payout_request.c.id.in_(request_ids))
        .values(tx_id=tx_id, updated_at=now)
    )


def _event(
    conn: Connection,
    request_id: uuid.UUID,
    old: RequestStatus | None,
    new: RequestStatus,
    actor: str,
    reason: str | None,
    now: datetime,
    *,
    kind: str = "status",
    detail: str | None = None,
) -> None:
    conn.execute(
        insert(payout_event).values(
            request_id=request_id,
            from_status=None if old is None else old.value,
            to_status=new.value,
            actor=actor,
            reason=reason,
            at=now,
            kind=kind,
            detail=detail,
        )
    )
