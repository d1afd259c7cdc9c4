"""`kassa payouts …`: an operator's side of refunds and withdrawals — the review queue, one
request in full, lists, approve and reject (`kassa.payouts.review`), and approve-fee for a payout
waiting on a network fee above its quote (`kassa.payouts.store.approve_fee`).

The actor recorded is ``operator:cli:<OS user>``. Under a policy that prices at approval
(``pricing = "at_approval"``), ``review`` and ``show`` print what approving now would commit next
to the committed figures, and ``approve`` prints the figures it re-priced the request at.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kassa.cli._common import fail, migrated_database, say

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from sqlalchemy import Connection

    from kassa.config import Settings
    from kassa.db import Database
    from kassa.payouts.model import PayoutRequest
    from kassa.policy import Repricing
    from kassa.wiring import Services

app = typer.Typer(
    rich_markup_mode=None,
    help="Refunds and withdrawals: the review queue, approve, reject, approve-fee, list, show.",
    no_args_is_help=True,
)


def operator_actor() -> str:
    """Who approves or rejects from this shell: ``operator:cli:<OS user>``."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        user = f"uid-{os.getuid()}"
    return f"operator:cli:{user}"


def _request_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        fail(f"{text!r} is not a request id (a UUID, as `kassa payouts list` shows)", 2)


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _figures(side: dict[str, Any], coin: str) -> str:
    fee = side["network_fee_native"]
    fee_text = "no fee" if fee is None else f"fee {fee['amount']} {fee['asset']}"
    net, native = side["net"], side["net_native"]
    coins = "" if native is None else f" = {native['amount']} {native['asset']}"
    return f"${side['rate']}/{coin}, {fee_text}, net ${net['amount']}{coins}"


def repricing_lines(record: dict[str, Any], coin: str, *, preview: bool) -> list[str]:
    """A re-pricing at approval (`kassa.payouts.repricing.record`) as lines to print: the
    committed figures, the re-priced ones, and whether the policy allows them."""
    head = "re-priced now (approving commits)" if preview else f"re-priced {record['at']}"
    lines = [
        f"{head}: the gross ${record['gross']['amount']} stays",
        f"  committed  {_figures(record['committed'], coin)}",
        f"  re-priced  {_figures(record['repriced'], coin)}",
    ]
    if not record["allowed"]:
        lines.append(f"  REFUSED: {record['refusal']} (approval refused; reject instead)")
    return lines


def _payout_rows(
    conn: Connection,
    items: list[PayoutRequest],
    now: datetime,
    *,
    reasons: bool,
    previews: dict[uuid.UUID, Repricing | None] | None = None,
) -> None:
    """A table of requests; with ``reasons``, each followed by its destination, why it waits
    and who approved it so far."""
    from kassa.accounts import service as accounts
    from kassa.payouts import review as payout_review

    given = payout_review.approvals(conn, [item.id for item in items])
    owners: dict[uuid.UUID, str] = {}
    typer.echo(
        f"{'ID':<37}{'KIND':<11}{'STATUS':<15}{'ACCOUNT':<16}{'GROSS USD':>12}  "
        f"{'PAYS':<26}{'AGE':>8}  APPROVALS"
    )
    for item in items:
        if item.customer_account_id not in owners:
            owner = accounts.get(conn, item.customer_account_id).external_id
            owners[item.customer_account_id] = owner
        done = given.get(item.id, [])
        pays = f"{item.net_native.format()} {item.asset}"
        typer.echo(
            f"{item.id!s:<37}{item.kind.value:<11}{item.status.value:<15}"
            f"{owners[item.customer_account_id]:<16}{item.gross_usd.format():>12}  "
            f"{pays:<26}{_age((now - item.created_at).total_seconds()):>8}  "
            f"{len(done)}/{item.approvals_required}"
        )
        if reasons:
            typer.echo(f"    to {item.destination}")
            for reason in item.review_reasons:
                typer.echo(f"    - {reason.code.value}: {reason.detail}")
            for approval in done:
                note = f" ({approval.note})" if approval.note else ""
                typer.echo(
                    f"    + approved by {approval.actor} at {approval.at:%Y-%m-%d %H:%M:%S}Z{note}"
                )
            preview = (previews or {}).get(item.id)
            if preview is not None:
                for line in repricing_lines(record_of(preview), item.asset, preview=True):
                    typer.echo(f"    {line}")


def record_of(preview: Repricing) -> dict[str, Any]:
    from kassa.payouts import repricing

    return repricing.record(preview)


@contextmanager
def _services(settings: Settings, database: Database) -> Iterator[Services]:
    """The services the payout commands use, their live fee clients closed at the end."""
    from kassa.wiring import Services, clock_of

    services = Services(settings, database, clock_of(settings))
    try:
        yield services
    finally:
        services.close()


@app.command("review")
def payouts_review(ctx: typer.Context) -> None:
    """Requests waiting for an operator, oldest first, with why each waits."""
    from kassa.payouts import review as payout_review
    from kassa.wiring import clock_of

    with migrated_database(ctx) as (settings, database), _services(settings, database) as services:
        with database.transaction() as conn:
            items = payout_review.pending(conn)
        if not items:
            say("no refund or withdrawal waits for review")
            return
        # Outside any transaction: a preview of re-pricing reads the rates and the chain's fee.
        previews = {item.id: services.payouts.preview_repricing(item) for item in items}
        with database.transaction() as conn:
            now = clock_of(settings).now(conn)
            _payout_rows(conn, items, now, reasons=True, previews=previews)
    say(
        f"\n{len(items)} waiting. Approve: kassa payouts approve ID [--note TEXT]; "
        "reject: kassa payouts reject ID --reason TEXT"
    )


@app.command("list")
def payouts_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="pending_review, approved, signed, broadcast, confirmed, …")
    ] = None,
    account: Annotated[str | None, typer.Option(help="Only this customer (external id)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many")] = 50,
) -> None:
    """Refunds and withdrawals, newest first."""
    from kassa.accounts import service as accounts
    from kassa.payouts import store
    from kassa.payouts.model import RequestStatus
    from kassa.wiring import clock_of

    wanted = None
    if status is not None:
        try:
            wanted = RequestStatus(status)
        except ValueError:
            known = ", ".join(s.value for s in RequestStatus)
            fail(f"unknown status {status!r}; one of {known}", 2)
    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        owner = None if account is None else accounts.get_by_external_id(conn, account).id
        items = store.search(conn, status=wanted, customer_account_id=owner, limit=limit)
        if not items:
            say("no refund or withdrawal matches")
            return
        _payout_rows(conn, items, clock_of(settings).now(conn), reasons=False)


@app.command("show")
def payouts_show(
    ctx: typer.Context, request_id: Annotated[str, typer.Argument(help="The request's id")]
) -> None:
    """One request in full: money, why it waits, approvals, history, transactions."""
    from kassa.payouts import store

    ident = _request_id(request_id)
    with migrated_database(ctx) as (settings, database), _services(settings, database) as services:
        with database.transaction() as conn:
            pending = store.get(conn, ident)
        # Outside any transaction: a preview of re-pricing reads the rates and the chain's fee.
        preview = services.payouts.preview_repricing(pending)
        _show(settings, database, ident, preview)


def _show(
    settings: Settings, database: Database, ident: uuid.UUID, preview: Repricing | None
) -> None:
    from kassa.accounts import service as accounts
    from kassa.payouts import review as payout_review
    from kassa.payouts import store
    from kassa.payouts.model import RequestStatus
    from kassa.wiring import clock_of

    with database.transaction() as conn:
        item = store.get(conn, ident)
        owner = accounts.get(conn, item.customer_account_id).external_id
        now = clock_of(settings).now(conn)
        done = payout_review.approvals(conn, [item.id]).get(item.id, [])
        history = store.events(conn, item.id)
        txs = payout_review.transactions(conn, item.id)
    fee_native = "" if item.network_fee_native is None else f" ({item.network_fee_native})"
    lines = [
        f"{item.kind.value} {item.id}",
        f"  status       {item.status.value}",
        f"  account      {owner}",
        f"  destination  {item.destination} ({item.asset})",
        f"  gross        {item.gross_usd}",
        f"  fees         {item.fees_usd} (flat {item.flat_fee_usd})",
        f"  network fee  {item.network_fee_usd}{fee_native}, borne: {item.fee_charge.value}",
        f"  net          {item.net_usd} = {item.net_native}",
        f"  policy       {item.policy}; requested by {item.requested_by} ({item.actor})",
        f"  created      {item.created_at:%Y-%m-%d %H:%M:%S}Z"
        f" ({_age((now - item.created_at).total_seconds())} ago)",
    ]
    if item.review_due_at is not None:
        lines.append(f"  review due   {item.review_due_at:%Y-%m-%d %H:%M:%S}Z")
    if item.wait_reason:
        lines.append(f"  waiting      {item.wait_reason}")
    if item.failure_reason:
        lines.append(f"  failed       {item.failure_reason}")
    lines.append(f"  review       {len(done)} of {item.approvals_required} approvals")
    lines += [f"    - {r.code.value}: {r.detail}" for r in item.review_reasons]
    for approval in done:
        note = f" ({approval.note})" if approval.note else ""
        lines.append(
            f"    + approved by {approval.actor} at {approval.at:%Y-%m-%d %H:%M:%S}Z{note}"
        )
    if preview is not None and item.status is RequestStatus.PENDING_REVIEW:
        lines += [
            f"  {line}" for line in repricing_lines(record_of(preview), item.asset, preview=True)
        ]
    lines.append("  history")
    for event in history:
        was = f"{event['from']} → " if event["from"] else ""
        lines.append(
            f"    {event['at']:%Y-%m-%d %H:%M:%S}Z {was}{event['to']} by {event['actor']}"
            + (f": {event['reason']}" if event["reason"] else "")
        )
    if txs:
        lines.append("  transactions")
    for tx in txs:
        paid = "" if tx.fee_paid_native is None else f", fee paid {tx.fee_paid_native}"
        lines.append(
            f"    {tx.chain} {tx.txid} {tx.status}: {tx.amount_native}, fee up to {tx.fee_native}"
            f"{paid}"
        )
    typer.echo("\n".join(lines))


@app.command("approve")
def payouts_approve(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The request's id")],
    note: Annotated[str | None, typer.Option(help="Recorded with the approval")] = None,
) -> None:
    """Approve a request pending review (as operator:cli:<you>); prints its new status."""
    from kassa.payouts import store
    from kassa.payouts.model import RequestStatus

    ident = _request_id(request_id)
    actor = operator_actor()
    with migrated_database(ctx) as (settings, database), _services(settings, database) as services:
        payouts = services.payouts
        # Re-pricing at approval: its rate locks and the chain's fee, before the transaction.
        locks = payouts.approval_locks(ident)
        with database.transaction() as conn:
            item = payouts.approve(conn, ident, actor=actor, note=note, locks=locks)
            repriced = [e for e in store.events(conn, ident) if e["kind"] == store.REPRICED]
    if locks is not None and repriced:
        for line in repricing_lines(repriced[-1]["detail"], item.asset, preview=False):
            say(line)
    if item.status is RequestStatus.APPROVED:
        say(f"{item.kind.value} {item.id} approved by {actor}: the payout worker sends it")
    else:
        say(
            f"{item.kind.value} {item.id}: approval recorded for {actor}; it needs "
            f"{item.approvals_required} approvals from different operators"
        )
    typer.echo(item.status.value)


@app.command("reject")
def payouts_reject(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The request's id")],
    reason: Annotated[str, typer.Option(help="Why (recorded; the customer may ask)")],
) -> None:
    """Reject a request not yet signed; its reserved funds return to the balance."""
    ident = _request_id(request_id)
    actor = operator_actor()
    with (
        migrated_database(ctx) as (settings, database),
        _services(settings, database) as services,
        database.transaction() as conn,
    ):
        item = services.payouts.reject(conn, ident, actor=actor, reason=reason)
    say(
        f"{item.kind.value} {item.id} rejected by {actor}; {item.gross_usd} returned to the balance"
    )
    typer.echo(item.status.value)


@app.command("approve-fee")
def payouts_approve_fee(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The request's id")],
    note: Annotated[str | None, typer.Option(help="Recorded in the request's history")] = None,
) -> None:
    """Let an approved payout waiting on a network fee above its quote pay that fee at the
    house's cost (the customer still receives the committed coins); prints its status."""
    from kassa.payouts import store
    from kassa.wiring import clock_of

    ident = _request_id(request_id)
    actor = operator_actor()
    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        item = store.approve_fee(
            conn, ident, actor=actor, note_text=note, now=clock_of(settings).now(conn)
        )
    say(
        f"{item.kind.value} {item.id}: {actor} lets the house pay the network fee above the "
        f"quote; the payout worker sends {item.net_native.format()} {item.asset} as committed"
    )
    typer.echo(item.status.value)
