"""`kassa keys …`: issue, list and revoke API keys.

A token is printed once, to stdout alone, so `TOKEN=$(kassa keys create …)` works; everything
else goes to stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kassa.cli._common import migrated_database, say

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from kassa.apikeys.service import ApiKey

app = typer.Typer(
    rich_markup_mode=None, help="Issue, list and revoke API keys.", no_args_is_help=True
)


@app.command("create")
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Who or what uses the key")],
    scope: Annotated[
        list[str],
        typer.Option(
            help="accounts:read, accounts:write, reports:read, webhooks:manage or admin "
            "(repeatable)"
        ),
    ],
    account: Annotated[
        str | None, typer.Option(help="Bind the key to this customer account (external id)")
    ] = None,
) -> None:
    """Create a key and print its token (once)."""
    from kassa.accounts import service as accounts
    from kassa.apikeys import service as apikeys
    from kassa.clock import DatabaseClock

    with migrated_database(ctx) as (_settings, database), database.transaction() as conn:
        account_id = None if account is None else accounts.get_by_external_id(conn, account).id
        key, token = apikeys.create_key(
            conn,
            name=name,
            scopes=scope,
            customer_account_id=account_id,
            now=DatabaseClock().now(conn),
        )
    bound = f", bound to account {account}" if account else ""
    say(f"created key {key.prefix} ({key.name}; {' '.join(sorted(key.scopes))}{bound})")
    say("the token below is shown only this once:")
    typer.echo(token)


@app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """List keys (never their secrets)."""
    from kassa.apikeys import service as apikeys

    with migrated_database(ctx) as (_settings, database), database.transaction() as conn:
        rows = [(key, _account_label(conn, key)) for key in apikeys.list_keys(conn)]
    typer.echo(f"{'PREFIX':<14}{'STATUS':<10}{'SCOPES':<30}{'ACCOUNT':<24}NAME")
    for key, label in rows:
        status = "revoked" if key.revoked_at else "active"
        scopes = " ".join(sorted(key.scopes))
        typer.echo(f"{key.prefix:<14}{status:<10}{scopes:<30}{label:<24}{key.name}")


def _account_label(conn: Connection, key: ApiKey) -> str:
    from kassa.accounts import service as accounts

    if key.customer_account_id is None:
        return "-"
    return accounts.get(conn, key.customer_account_id).external_id


@app.command("revoke")
def keys_revoke(
    ctx: typer.Context, prefix: Annotated[str, typer.Argument(help="The key's prefix")]
) -> None:
    """Revoke a key; requests with it are refused from now on."""
    from kassa.apikeys import service as apikeys
    from kassa.clock import DatabaseClock

    with migrated_database(ctx) as (_settings, database), database.transaction() as conn:
        key = apikeys.revoke_key(conn, prefix, DatabaseClock().now(conn))
    say(f"key {key.prefix} ({key.name}) revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S}Z")
