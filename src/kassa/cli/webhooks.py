"""`kassa webhooks …`: operators manage webhook endpoints and read the delivery log
(`kassa.webhooks`), the same services the API uses under ``webhooks:manage``.

``create`` and ``rotate-secret`` print the secret once, to stdout alone (``SECRET=$(kassa
webhooks create …)`` works); everything else an operator reads goes to stderr or is a listing.
URLs are checked against ``[webhooks]``; on the devnet (or, as `kassa up` decides, with no
devnet setting on the embedded SQLite database) loopback receivers are allowed. Delivery ids read
``dlv_<n>`` as in the API.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from kassa.cli._common import fail, migrated_database, say
from kassa.cli.payouts import operator_actor

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from kassa.config import Settings
    from kassa.webhooks.deliveries import Delivery
    from kassa.webhooks.endpoints import Endpoint
    from kassa.webhooks.transport import AddressPolicy

app = typer.Typer(
    rich_markup_mode=None,
    help="Webhook endpoints, the delivery log, redelivery and replay.",
    no_args_is_help=True,
)

_DELIVERY = "dlv_"


def _policy(settings: Settings) -> AddressPolicy:
    """Where endpoints may point: as `kassa up` decides, an unset devnet on the embedded SQLite
    database is the devnet (loopback allowed), so its receivers can be registered from here."""
    from kassa.webhooks.transport import AddressPolicy

    devnet = settings.devnet if settings.devnet is not None else settings.database_url is None
    return AddressPolicy.of(settings.webhooks.with_loopback() if devnet else settings.webhooks)


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        fail(f"{text!r} is not an endpoint id (a UUID)", 2)


def _line(conn: Connection, item: Endpoint) -> str:
    from kassa.accounts import service as accounts

    owner = "-"
    if item.customer_account_id is not None:
        owner = accounts.get(conn, item.customer_account_id).external_id
    types = ",".join(item.event_types) or "*"
    return f"{item.id}  {item.status.value:<9}{owner:<16}{types:<28}{item.url}"


@app.command("create")
def webhooks_create(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="https://… (http only where [webhooks] allows)")],
    event_type: Annotated[
        list[str] | None,
        typer.Option("--event-type", help="deposit.credited or deposit.* (repeatable; none: all)"),
    ] = None,
    description: Annotated[str, typer.Option(help="What it is for")] = "",
    account: Annotated[
        str | None, typer.Option(help="Only this customer account's events (external id)")
    ] = None,
) -> None:
    """Create an endpoint; prints its signing secret (once)."""
    from kassa.accounts import service as accounts
    from kassa.webhooks import endpoints
    from kassa.wiring import clock_of

    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        owner = None if account is None else accounts.get_by_external_id(conn, account).id
        made, secret = endpoints.create(
            conn,
            url=url,
            event_types=event_type or [],
            description=description,
            customer_account_id=owner,
            actor=operator_actor(),
            now=clock_of(settings).now(conn),
            policy=_policy(settings),
        )
    say(f"endpoint {made.id} created for {made.url}")
    say("its signing secret below is shown only this once:")
    typer.echo(secret)


@app.command("list")
def webhooks_list(ctx: typer.Context) -> None:
    """Every endpoint (never their secrets)."""
    from kassa.webhooks import endpoints

    with migrated_database(ctx) as (_settings, database), database.transaction() as conn:
        for item in endpoints.listing(conn):
            typer.echo(_line(conn, item))


@app.command("show")
def webhooks_show(
    ctx: typer.Context, endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id")]
) -> None:
    """One endpoint and its latest deliveries."""
    from kassa.webhooks import deliveries, endpoints

    ident = _uuid(endpoint_id)
    with migrated_database(ctx) as (_settings, database), database.transaction() as conn:
        item = endpoints.get(conn, ident)
        typer.echo(_line(conn, item))
        typer.echo(f"  description: {item.description or '-'}")
        if item.disabled_reason:
            typer.echo(f"  disabled: {item.disabled_reason}")
        if item.failing_since:
            typer.echo(f"  failing since {item.failing_since}")
        for delivery in deliveries.listing(conn, endpoint_id=ident, limit=20):
            typer.echo("  " + _delivery_line(delivery))


@app.command("update")
def webhooks_update(
    ctx: typer.Context,
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id")],
    url: Annotated[str | None, typer.Option(help="A new URL")] = None,
    event_type: Annotated[
        list[str] | None, typer.Option("--event-type", help="Replaces the filter (repeatable)")
    ] = None,
    all_events: Annotated[bool, typer.Option(help="Clear the filter: every type")] = False,
    description: Annotated[str | None, typer.Option(help="A new description")] = None,
) -> None:
    """Change an endpoint's URL, event types or description."""
    from kassa.webhooks import endpoints
    from kassa.wiring import clock_of

    types = [] if all_events else event_type
    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        item = endpoints.update_endpoint(
            conn,
            _uuid(endpoint_id),
            now=clock_of(settings).now(conn),
            policy=_policy(settings),
            url=url,
            event_types=types,
            description=description,
        )
        typer.echo(_line(conn, item))


@app.command("disable")
def webhooks_disable(
    ctx: typer.Context,
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id")],
    reason: Annotated[str, typer.Option(help="Why")] = "disabled by an operator",
) -> None:
    """Stop deliveries to an endpoint until it is enabled (pending ones wait)."""
    from kassa.webhooks import endpoints
    from kassa.wiring import clock_of

    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        endpoints.disable(conn, _uuid(endpoint_id), reason=reason, now=clock_of(settings).now(conn))
    say(f"endpoint {endpoint_id} disabled")


@app.command("enable")
def webhooks_enable(
    ctx: typer.Context, endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id")]
) -> None:
    """Resume deliveries; pending ones are due at once (missed events: `replay`)."""
    from kassa.webhooks import endpoints
    from kassa.wiring import clock_of

    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        endpoints.enable(conn, _uuid(endpoint_id), now=clock_of(settings).now(conn))
    say(f"endpoint {endpoint_id} enabled")


@app.command("rotate-secret")
def webhooks_rotate(
    ctx: typer.Context, endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id")]
) -> None:
    """A new signing secret, printed once; the old one signs too during the overlap."""
    from kassa.webhooks import endpoints
    from kassa.wiring import clock_of

    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        item, secret = endpoints.rotate(
            conn,
            _uuid(endpoint_id),
            now=clock_of(settings).now(conn),
            overlap_seconds=settings.webhooks.rotation_overlap_seconds,
        )
    say(
        f"endpoint {item.id}: new secret; the old one signs too until "
        f"{item.previous_secret_expires_at or 'now (no overlap)'}"
    )
    typer.echo(secret)


@app.command("delete")
def webhooks_delete(
    ctx: typer.Context, endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id")]
) -> None:
    """Delete an endpoint for good (its pending deliveries fail; its log stays)."""
    from kassa.webhooks import endpoints
    from kassa.wiring import clock_of

    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        endpoints.delete(conn, _uuid(endpoint_id), now=clock_of(settings).now(conn))
    say(f"endpoint {endpoint_id} deleted")


def _delivery_line(item: Delivery) -> str:
    code = item.last_status_code if item.last_status_code is not None else "-"
    due = f" next {item.next_attempt_at:%Y-%m-%d %H:%M:%S}" if item.next_attempt_at else ""
    error = f"  {item.last_error}" if item.last_error else ""
    return (
        f"{_DELIVERY}{item.id:<8} {item.status.value:<10}{item.attempts:>3} tries  {code!s:<4}"
        f"{item.event_type:<28}{item.event_id}{due}{error}"
    )


@app.command("deliveries")
def webhooks_deliveries(
    ctx: typer.Context,
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint's")] = None,
    event: Annotated[str | None, typer.Option(help="Only this event's (evt_…)")] = None,
    status: Annotated[str | None, typer.Option(help="pending, succeeded or failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 50,
) -> None:
    """The delivery log, newest first."""
    from kassa.webhooks import deliveries
    from kassa.webhooks.deliveries import DeliveryStatus

    wanted = None
    if status is not None:
        try:
            wanted = DeliveryStatus(status)
        except ValueError:
            fail(f"unknown status {status!r}", 2)
    with migrated_database(ctx) as (_settings, database), database.transaction() as conn:
        for item in deliveries.listing(
            conn,
            endpoint_id=None if endpoint is None else _uuid(endpoint),
            event_id=event,
            status=wanted,
            limit=limit,
        ):
            typer.echo(_delivery_line(item))


@app.command("attempts")
def webhooks_attempts(
    ctx: typer.Context, delivery_id: Annotated[str, typer.Argument(help="dlv_…")]
) -> None:
    """One delivery and every attempt: status, latency, the start of the answer."""
    from kassa.webhooks import deliveries

    number = delivery_id.removeprefix(_DELIVERY)
    if not number.isdigit():
        fail(f"{delivery_id!r} is not a delivery id (dlv_…)", 2)
    with migrated_database(ctx) as (_settings, database), database.transaction() as conn:
        item, attempts = deliveries.get(conn, int(number))
    typer.echo(_delivery_line(item))
    for attempt in attempts:
        answer = attempt.status_code if attempt.status_code is not None else attempt.error
        snippet = (attempt.response_snippet or "").replace("\n", " ")[:80]
        typer.echo(
            f"  #{attempt.number} {attempt.started_at:%Y-%m-%d %H:%M:%S} {attempt.worker} "
            f"{attempt.address or '-'} {attempt.latency_ms} ms  {answer}  {snippet}"
        )


@app.command("redeliver")
def webhooks_redeliver(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(help="The event's id (evt_…)")],
    endpoint: Annotated[str | None, typer.Option(help="Only to this endpoint")] = None,
) -> None:
    """Deliver one event again (same body and webhook-id)."""
    from kassa.webhooks import deliveries
    from kassa.wiring import clock_of

    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        made = deliveries.redeliver(
            conn,
            event_id,
            now=clock_of(settings).now(conn),
            endpoint_id=None if endpoint is None else _uuid(endpoint),
        )
    say(f"{len(made)} delivery(ies) queued")
    for item in made:
        typer.echo(f"{_DELIVERY}{item.id}")


@app.command("replay")
def webhooks_replay(
    ctx: typer.Context,
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id")],
    since: Annotated[str, typer.Option(help="ISO 8601 time, e.g. 2026-12-07T10:00:00Z")],
) -> None:
    """Deliver again every event since a time that the endpoint's filter wants."""
    from kassa.clock import parse_time
    from kassa.webhooks import deliveries
    from kassa.wiring import clock_of

    moment = parse_time(since)
    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        count = deliveries.replay(
            conn, _uuid(endpoint_id), since=moment, now=clock_of(settings).now(conn)
        )
    say(f"{count} delivery(ies) queued")
    typer.echo(str(count))
