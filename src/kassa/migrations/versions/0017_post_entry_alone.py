"""The journal entry that is its own transaction: `kassa_post_entry_alone` (issue 17)

`kassa.ledger.transfers.commit_post` posts an entry that is the whole unit of work in one round
trip: the call runs as a single autocommit statement, so the server commits it with no BEGIN
or COMMIT from the client and the accounts stay locked only while the function runs and its
commit flushes. The wrapper calls `kassa_post_entry` (migration 0008) unchanged, with the same
checks, lock order and idempotency claim. The one difference is a refusal: in a transaction
of its own, the refusal `kassa_post_entry` records under the key would be committed without the
detail the client adds, so the wrapper raises instead, the statement rolls back whole, and the
client redoes the entry in an ordinary transaction that stores the refusal as before.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

REFUSED_MARK = "kassa: refused in a transaction of its own"
"""How the wrapper says that the entry was refused; `kassa.ledger.journal` matches it."""

POST_ENTRY_ALONE = """
    CREATE FUNCTION kassa_post_entry_alone(
        p_txn_id uuid, p_kind text, p_memo text, p_actor text, p_reason text,
        p_reverses_id uuid, p_hold_id uuid, p_metadata text,
        p_account_ids bigint[], p_assets text[], p_posted numeric[], p_pending_debits numeric[],
        p_pending_credits numeric[], p_force boolean, p_now timestamptz,
        p_idem_scope text, p_idem_key text, p_idem_operation text, p_idem_fingerprint text)
    RETURNS TABLE (
        outcome text, resource_id text, stored_operation text, stored_fingerprint text,
        replayed boolean)
    LANGUAGE plpgsql
    AS $$
    DECLARE
        r record;
    BEGIN
        SELECT * INTO STRICT r
        FROM kassa_post_entry(
            p_txn_id, p_kind, p_memo, p_actor, p_reason, p_reverses_id, p_hold_id, p_metadata,
            p_account_ids, p_assets, p_posted, p_pending_debits, p_pending_credits, p_force,
            p_now, p_idem_scope, p_idem_key, p_idem_operation, p_idem_fingerprint) AS e;
        IF NOT r.replayed AND r.outcome <> 'ok' THEN
            RAISE EXCEPTION 'REFUSED_MARK: %', r.outcome;
        END IF;
        outcome := r.outcome;
        resource_id := r.resource_id;
        stored_operation := r.stored_operation;
        stored_fingerprint := r.stored_fingerprint;
        replayed := r.replayed;
        RETURN NEXT;
    END $$
""".replace("REFUSED_MARK", REFUSED_MARK)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POST_ENTRY_ALONE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION kassa_post_entry_alone")
