"""`kassa doctor`: check the books' integrity rules on the configured database.

Runs every check of `kassa.ledger.checks` (idempotency keys without an outcome, postings that
do not balance, stored sums that differ from the postings or the open holds) and prints each
finding; exits 1 when there is any, 0 when the books hold. Read-only: safe on a live system.
"""

from __future__ import annotations

import typer

from kassa.cli._common import fail, migrated_database, say


def doctor(ctx: typer.Context) -> None:
    """Check the books: idempotency records, balanced postings, stored sums (read-only)."""
    from kassa.ledger import checks

    def progress(name: str, rows: int) -> None:
        say(f"  {name}: {rows:,} rows read")

    with migrated_database(ctx) as (_settings, database), database.transaction() as conn:
        say("checking idempotency records, postings and stored sums")
        found = checks.everything(conn, progress)
    for finding in found:
        typer.echo(f"{finding.check}: {finding.detail}")
    if found:
        fail(f"{len(found)} problem(s) found")
    say("the books hold: every key has its outcome, postings balance, stored sums agree")
