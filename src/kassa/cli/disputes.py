"""`kassa disputes …`: an operator opens, lists, shows and resolves disputes about a customer's
top-up or activation (`kassa.disputes.service`), the same service the admin API uses, under the
configured policy's claim windows.

The actor recorded is ``operator:cli:<OS user>``. A refusal (a closed window, a dispute already
open or resolved) ends the command with its reason and exit status 1.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from kassa.cli._common import fail, migrated_database, say
from kassa.cli.payouts import operator_actor

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from kassa.disputes.model import Dispute

app = typer.Typer(
    rich_markup_mode=None,
    help="Disputes and chargebacks: open, list, show, resolve.",
    no_args_is_help=True,
)


def _uuid(text: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        fail(f"{text!r} is not {what} (a UUID)", 2)


def _line(conn: Connection, item: Dispute) -> str:
    from kassa.accounts import service as accounts
    from kassa.money import USD, Money

    owner = accounts.get(conn, item.customer_account_id).external_id
    amount = Money(item.amount_usd, USD).format()
    return (
        f"{item.id}  {item.status.value:<13}{owner:<16}{item.subject.value:<11}"
        f"{amount:>12} USD  {item.opened_at:%Y-%m-%d %H:%M}  {item.reason}"
    )


@app.command("open")
def disputes_open(
    ctx: typer.Context,
    external_id: Annotated[str, typer.Argument(help="The customer's account")],
    subject: Annotated[str, typer.Argument(help="deposit or activation")],
    subject_id: Annotated[str, typer.Argument(help="The deposit's or activation's id")],
    reason: Annotated[str, typer.Option(help="The customer's claim")],
) -> None:
    """Open a dispute within the policy's claim window; prints its id."""
    from kassa.accounts import service as accounts
    from kassa.disputes import service as disputes
    from kassa.wiring import clock_of, policy_of

    ident = _uuid(subject_id, "a deposit or activation id")
    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        kind = disputes.parse_subject(subject)
        opened = disputes.open_dispute(
            conn,
            account=accounts.get_by_external_id(conn, external_id),
            subject=kind,
            subject_id=ident,
            reason=reason,
            actor=operator_actor(),
            policy=policy_of(settings),
            now=clock_of(settings).now(conn),
        )
    say(f"dispute about {kind.value} {ident} opened")
    typer.echo(str(opened.id))


@app.command("list")
def disputes_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="open, rejected, accepted or charged_back")
    ] = None,
) -> None:
    """Disputes, newest first (at most 100)."""
    from kassa.disputes import service as disputes
    from kassa.disputes.model import DisputeStatus

    wanted = None
    if status is not None:
        try:
            wanted = DisputeStatus(status)
        except ValueError:
            fail(f"unknown status {status!r}", 2)
    with migrated_database(ctx) as (_settings, database), database.transaction() as conn:
        for item in disputes.listing(conn, status=wanted):
            typer.echo(_line(conn, item))


@app.command("show")
def disputes_show(
    ctx: typer.Context, dispute_id: Annotated[str, typer.Argument(help="The dispute's id")]
) -> None:
    """One dispute and every step, with actor and time."""
    from kassa.disputes import service as disputes

    ident = _uuid(dispute_id, "a dispute id")
    with migrated_database(ctx) as (_settings, database), database.transaction() as conn:
        item = disputes.get(conn, ident)
        typer.echo(_line(conn, item))
        typer.echo(f"  {item.subject.value} {item.subject_id}, occurred {item.occurred_at}")
        for event in disputes.events(conn, ident):
            was = event.from_status.value if event.from_status else "-"
            typer.echo(
                f"  {event.at}  {was} → {event.to_status.value}  {event.actor}: {event.note}"
            )
        if item.transaction_id is not None:
            typer.echo(f"  ledger entry {item.transaction_id}")


@app.command("resolve")
def disputes_resolve(
    ctx: typer.Context,
    dispute_id: Annotated[str, typer.Argument(help="The dispute's id")],
    outcome: Annotated[str, typer.Argument(help="rejected, accepted or chargeback")],
    note: Annotated[str, typer.Option(help="Why (on the event and the ledger memo)")],
) -> None:
    """Resolve an open dispute once; prints its new status."""
    from kassa.disputes import service as disputes
    from kassa.wiring import clock_of, policy_of

    ident = _uuid(dispute_id, "a dispute id")
    actor = operator_actor()
    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        chosen = disputes.parse_outcome(outcome)
        item = disputes.resolve(
            conn,
            ident,
            outcome=chosen,
            note=note,
            actor=actor,
            policy=policy_of(settings),
            now=clock_of(settings).now(conn),
            request=None,
        )
    say(f"dispute {item.id} resolved {chosen.value} by {actor}")
    typer.echo(item.status.value)
