"""Ledger, customer accounts and API keys.

Besides the tables, this installs what the models cannot express:
- append-only triggers on ledger_transaction and ledger_posting (both databases);
- on PostgreSQL, a deferred constraint trigger that refuses, at commit, any journal transaction
  whose postings do not sum to zero per asset or that has fewer than two postings, and a
  trigger that refuses postings added to a journal transaction after it was committed;
- on PostgreSQL, `kassa_post_entry`, the one-round-trip journal entry (see kassa.ledger.journal).

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kassa.db.types import Amount, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("ledger_transaction", "ledger_posting")


def upgrade() -> None:
    op.create_table(
        "idempotency_record",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "scope",
            sa.String(length=100),
            nullable=False,
            comment="Whose key: an API key id or 'system'",
        ),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column(
            "fingerprint",
            sa.String(length=64),
            nullable=False,
            comment="sha256 of the canonical request",
        ),
        sa.Column("outcome", sa.String(length=64), nullable=True, comment="'ok' or a refusal code"),
        sa.Column("resource_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_record")),
        sa.UniqueConstraint("scope", "key", name="uq_idempotency_record_scope_key"),
    )
    op.create_table(
        "ledger_account",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "code", sa.String(length=200), nullable=False, comment="Stable name, e.g. user:…:USD"
        ),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("normal_side", sa.String(length=6), nullable=False, comment="debit or credit"),
        sa.Column(
            "kind",
            sa.String(length=32),
            nullable=False,
            comment="user, revenue, adjustment, fx, wallet…",
        ),
        sa.Column(
            "owner",
            sa.String(length=200),
            nullable=True,
            comment="Owning customer account id, if any",
        ),
        sa.Column(
            "allow_negative",
            sa.Boolean(),
            nullable=False,
            comment="False: available balance may not go below zero (user accounts)",
        ),
        sa.Column(
            "debits_posted",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Sum of posted debits, minor units",
        ),
        sa.Column(
            "credits_posted",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Sum of posted credits, minor units",
        ),
        sa.Column(
            "debits_pending",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Open holds debiting, minor units",
        ),
        sa.Column(
            "credits_pending",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Open holds crediting, minor units",
        ),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "normal_side IN ('debit', 'credit')", name=op.f("ck_ledger_account_normal_side")
        ),
        sa.CheckConstraint(
            "debits_posted >= 0 AND credits_posted >= 0 "
            "AND debits_pending >= 0 AND credits_pending >= 0",
            name=op.f("ck_ledger_account_sums_not_negative"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_account")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_account_code")),
    )
    op.create_table(
        "ledger_transaction",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column(
            "actor",
            sa.String(length=200),
            nullable=True,
            comment="Who triggered it (operator, key, worker)",
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "reverses_id",
            sa.Uuid(),
            nullable=True,
            comment="The transaction this one reverses; a transaction is reversed at most once",
        ),
        sa.Column(
            "hold_id", sa.Uuid(), nullable=True, comment="The hold this transaction captured"
        ),
        sa.Column("metadata_json", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["ledger_transaction.id"],
            name=op.f("fk_ledger_transaction_reverses_id_ledger_transaction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transaction")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_ledger_transaction_reverses_id")),
    )
    op.create_table(
        "customer_account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False, comment="Host's user id"),
        sa.Column(
            "ledger_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            comment="The USD balance (micro-USD, credit-normal liability)",
        ),
        sa.Column(
            "status", sa.String(length=16), nullable=False, comment="active, suspended, terminated"
        ),
        sa.Column("metadata_json", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ledger_account_id"],
            ["ledger_account.id"],
            name=op.f("fk_customer_account_ledger_account_id_ledger_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_account")),
        sa.UniqueConstraint("external_id", name=op.f("uq_customer_account_external_id")),
        sa.UniqueConstraint(
            "ledger_account_id", name=op.f("uq_customer_account_ledger_account_id")
        ),
    )
    op.create_table(
        "ledger_hold",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "debit_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "credit_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column(
            "amount",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Reserved minor units of `asset`",
        ),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="pending, captured, voided, expired",
        ),
        sa.Column("expires_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "captured_amount",
            Amount(precision=78, scale=0),
            nullable=True,
            comment="Posted minor units on capture",
        ),
        sa.Column("capture_transaction_id", sa.Uuid(), nullable=True),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'captured', 'voided', 'expired')",
            name=op.f("ck_ledger_hold_status"),
        ),
        sa.ForeignKeyConstraint(
            ["capture_transaction_id"],
            ["ledger_transaction.id"],
            name=op.f("fk_ledger_hold_capture_transaction_id_ledger_transaction"),
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["ledger_account.id"],
            name=op.f("fk_ledger_hold_credit_account_id_ledger_account"),
        ),
        sa.ForeignKeyConstraint(
            ["debit_account_id"],
            ["ledger_account.id"],
            name=op.f("fk_ledger_hold_debit_account_id_ledger_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_hold")),
    )
    with op.batch_alter_table("ledger_hold", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_hold_debit_account_id", ["debit_account_id"], unique=False)
        batch_op.create_index(
            "ix_ledger_hold_status_expires_at", ["status", "expires_at"], unique=False
        )

    op.create_table(
        "ledger_posting",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "asset",
            sa.String(length=16),
            nullable=False,
            comment="Copied from the account for sum checks",
        ),
        sa.Column(
            "amount",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Signed minor units of `asset`: positive = debit, negative = credit",
        ),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_posting_nonzero")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_account.id"],
            name=op.f("fk_ledger_posting_account_id_ledger_account"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transaction.id"],
            name=op.f("fk_ledger_posting_transaction_id_ledger_transaction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_posting")),
    )
    with op.batch_alter_table("ledger_posting", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_posting_account_id_id", ["account_id", "id"], unique=False)
        batch_op.create_index("ix_ledger_posting_transaction_id", ["transaction_id"], unique=False)

    op.create_table(
        "api_key",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False, comment="Public lookup part"),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "scopes", sa.String(length=500), nullable=False, comment="Space-separated scopes"
        ),
        sa.Column(
            "customer_account_id",
            sa.Uuid(),
            nullable=True,
            comment="When set, the key may only touch this customer account",
        ),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_account_id"],
            ["customer_account.id"],
            name=op.f("fk_api_key_customer_account_id_customer_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_key_prefix")),
    )

    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_UP:
            op.execute(statement)
    else:
        for statement in sqlite_append_only_triggers():
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWN:
            op.execute(statement)
    op.drop_table("api_key")
    with op.batch_alter_table("ledger_posting", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_posting_transaction_id")
        batch_op.drop_index("ix_ledger_posting_account_id_id")

    op.drop_table("ledger_posting")
    with op.batch_alter_table("ledger_hold", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_hold_status_expires_at")
        batch_op.drop_index("ix_ledger_hold_debit_account_id")

    op.drop_table("ledger_hold")
    op.drop_table("customer_account")
    op.drop_table("ledger_transaction")
    op.drop_table("ledger_account")
    op.drop_table("idempotency_record")


def sqlite_append_only_triggers() -> list[str]:
    statements = []
    for table in APPEND_ONLY_TABLES:
        for action in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: post a reversal instead'); END"
            )
    return statements


POSTGRES_UP = [
    """
    CREATE FUNCTION kassa_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: post a reversal instead', TG_TABLE_NAME
            USING ERRCODE = 'raise_exception';
    END $$
    """,
    *[
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION kassa_refuse_change()"
        for table in APPEND_ONLY_TABLES
    ],
    *[
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION kassa_refuse_change()"
        for table in APPEND_ONLY_TABLES
    ],
    """
    CREATE FUNCTION kassa_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF (SELECT count(*) FROM ledger_posting WHERE transaction_id = NEW.id) < 2 THEN
            RAISE EXCEPTION 'ledger transaction % has fewer than two postings', NEW.id
                USING ERRCODE = 'check_violation';
        END IF;
        IF EXISTS (SELECT 1 FROM ledger_posting WHERE transaction_id = NEW.id
                   GROUP BY asset HAVING sum(amount) <> 0) THEN
            RAISE EXCEPTION 'ledger transaction % does not balance per asset', NEW.id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_transaction_balanced
        AFTER INSERT ON ledger_transaction DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION kassa_check_balanced()
    """,
    # A posting joins only the journal transaction inserted by the same (sub)transaction (equal
    # xmin): a committed journal transaction cannot gain postings later (its balance check ran).
    # Row-level with two index lookups and a cached plan; a statement-level version over a
    # transition table cost 30 times more per transfer.
    """
    CREATE FUNCTION kassa_check_posting_joins_new_transaction() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM ledger_transaction t, ledger_posting p
                       WHERE t.id = NEW.transaction_id AND p.id = NEW.id AND t.xmin = p.xmin) THEN
            RAISE EXCEPTION 'kassa: postings can only be added with their journal transaction'
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER ledger_posting_joins_new_transaction
        AFTER INSERT ON ledger_posting
        FOR EACH ROW EXECUTE FUNCTION kassa_check_posting_joins_new_transaction()
    """,
    # The journal entry in one round trip. Mirrors PortableJournal._apply rule for rule:
    # claim the idempotency key; lock accounts in id order; refuse (without writing) an entry
    # that takes a non-negative account's available balance below zero unless forced; insert
    # the transaction and postings; update the running sums. Kept to a few statements: it is
    # the hot path of every transfer.
    """
    CREATE FUNCTION kassa_post_entry(
        p_txn_id uuid, p_kind text, p_memo text, p_actor text, p_reason text,
        p_reverses_id uuid, p_hold_id uuid, p_metadata text,
        p_account_ids bigint[], p_assets text[], p_posted numeric[], p_pending_debits numeric[],
        p_pending_credits numeric[], p_force boolean, p_now timestamptz,
        p_idem_scope text, p_idem_key text, p_idem_operation text, p_idem_fingerprint text)
    RETURNS TABLE (
        outcome text, resource_id text, stored_operation text, stored_fingerprint text,
        replayed boolean, refused_account_code text, refused_asset text,
        available_before numeric, available_after numeric)
    LANGUAGE plpgsql
    -- Its statements take arrays; re-planning them per call cost ~30 % of the function.
    SET plan_cache_mode = force_generic_plan
    AS $$
    DECLARE
        v_now timestamptz := coalesce(p_now, now());
        v_idem_id bigint;
        v_locked integer;
        v_mismatch boolean;
        v_unbalanced boolean;
        v_bad record;
        v_ids bigint[];
        v_dp numeric[];
        v_cp numeric[];
        v_dpend numeric[];
        v_cpend numeric[];
    BEGIN
        IF p_idem_key IS NOT NULL THEN
            -- Claimed with the success outcome; the refusal path below overwrites it. A
            -- concurrent claim of the same key waits here until this transaction ends.
            INSERT INTO idempotency_record AS r
                (scope, key, operation, fingerprint, created_at, outcome, resource_id)
            VALUES (p_idem_scope, p_idem_key, p_idem_operation, p_idem_fingerprint, v_now,
                    'ok', p_txn_id::text)
            ON CONFLICT (scope, key) DO NOTHING
            RETURNING r.id INTO v_idem_id;
            IF v_idem_id IS NULL THEN
                RETURN QUERY
                    SELECT r.outcome::text, r.resource_id::text, r.operation::text,
                           r.fingerprint::text, true, NULL::text, NULL::text,
                           NULL::numeric, NULL::numeric
                    FROM idempotency_record r
                    WHERE r.scope = p_idem_scope AND r.key = p_idem_key;
                RETURN;
            END IF;
        END IF;

        -- Net change of the four running sums per account, aggregated once, in id order.
        SELECT array_agg(s.account_id ORDER BY s.account_id),
               array_agg(s.d_dp ORDER BY s.account_id),
               array_agg(s.d_cp ORDER BY s.account_id), array_agg(s.d_dpend ORDER BY s.account_id),
               array_agg(s.d_cpend ORDER BY s.account_id)
        INTO v_ids, v_dp, v_cp, v_dpend, v_cpend
        FROM (SELECT u.account_id, sum(greatest(u.posted, 0)) AS d_dp,
                     sum(greatest(-u.posted, 0)) AS d_cp, sum(u.pd) AS d_dpend, sum(u.pc) AS d_cpend
              FROM unnest(p_account_ids, p_posted, p_pending_debits, p_pending_credits)
                   AS u(account_id, posted, pd, pc)
              GROUP BY u.account_id) s;

        -- Lock every touched account in id order: concurrent entries never deadlock.
        -- (A join, not id = ANY(array): that re-sorts the array on every lock conflict.)
        PERFORM 1 FROM unnest(v_ids) AS u(id) JOIN ledger_account a ON a.id = u.id
        ORDER BY a.id FOR UPDATE OF a;
        GET DIAGNOSTICS v_locked = ROW_COUNT;
        IF v_locked <> cardinality(v_ids) THEN
            RAISE EXCEPTION 'kassa: ledger accounts missing in %', p_account_ids
                USING ERRCODE = 'foreign_key_violation';
        END IF;

        SELECT coalesce(bool_or(g.mismatch), false), coalesce(bool_or(g.unbalanced), false)
        INTO v_mismatch, v_unbalanced
        FROM (SELECT bool_or(u.asset IS NOT NULL AND u.asset <> a.asset) AS mismatch,
                     sum(u.posted) <> 0 OR sum(u.pd - u.pc) <> 0 AS unbalanced
              FROM unnest(p_account_ids, p_assets, p_posted, p_pending_debits, p_pending_credits)
                   AS u(account_id, asset, posted, pd, pc)
              JOIN ledger_account a ON a.id = u.account_id
              GROUP BY a.asset) g;
        IF v_mismatch THEN
            RAISE EXCEPTION 'kassa: asset mismatch: a line names another asset than its account'
                USING ERRCODE = 'check_violation';
        END IF;
        IF v_unbalanced THEN
            RAISE EXCEPTION 'kassa: entry does not balance per asset'
                USING ERRCODE = 'check_violation';
        END IF;

        SELECT a.code, a.asset, x.before, x.before + x.delta AS after
        INTO v_bad
        FROM unnest(v_ids, v_dp, v_cp, v_dpend, v_cpend)
             AS d(account_id, d_dp, d_cp, d_dpend, d_cpend)
             JOIN ledger_account a ON a.id = d.account_id
             CROSS JOIN LATERAL (SELECT
                CASE WHEN a.normal_side = 'credit'
                     THEN a.credits_posted - a.debits_posted - a.debits_pending
                     ELSE a.debits_posted - a.credits_posted - a.credits_pending END AS before,
                CASE WHEN a.normal_side = 'credit'
                     THEN d.d_cp - d.d_dp - d.d_dpend
                     ELSE d.d_dp - d.d_cp - d.d_cpend END AS delta) x
        WHERE NOT a.allow_negative AND NOT p_force AND x.delta < 0 AND x.before + x.delta < 0
        ORDER BY a.id LIMIT 1;
        IF FOUND THEN
            IF v_idem_id IS NOT NULL THEN
                UPDATE idempotency_record
                SET outcome = CASE WHEN v_bad.before < 0 THEN 'account_frozen'
                                   ELSE 'insufficient_funds' END,
                    resource_id = NULL
                WHERE id = v_idem_id;
            END IF;
            RETURN QUERY SELECT
                CASE WHEN v_bad.before < 0 THEN 'account_frozen' ELSE 'insufficient_funds' END,
                NULL::text, NULL::text, NULL::text, false, v_bad.code::text, v_bad.asset::text,
                v_bad.before, v_bad.after;
            RETURN;
        END IF;

        IF p_txn_id IS NOT NULL THEN
            INSERT INTO ledger_transaction
                (id, kind, memo, actor, reason, reverses_id, hold_id, metadata_json, created_at)
            VALUES (p_txn_id, p_kind, p_memo, p_actor, p_reason, p_reverses_id, p_hold_id,
                    p_metadata, v_now);
            INSERT INTO ledger_posting (transaction_id, account_id, asset, amount)
            SELECT p_txn_id, u.account_id, a.asset, u.posted
            FROM unnest(p_account_ids, p_posted) WITH ORDINALITY AS u(account_id, posted, ord)
            JOIN ledger_account a ON a.id = u.account_id
            WHERE u.posted <> 0
            ORDER BY u.ord;
        END IF;

        -- The table's CHECK constraints refuse pending sums below zero.
        UPDATE ledger_account a
        SET debits_posted = a.debits_posted + d.d_dp,
            credits_posted = a.credits_posted + d.d_cp,
            debits_pending = a.debits_pending + d.d_dpend,
            credits_pending = a.credits_pending + d.d_cpend
        FROM unnest(v_ids, v_dp, v_cp, v_dpend, v_cpend)
             AS d(account_id, d_dp, d_cp, d_dpend, d_cpend)
        WHERE a.id = d.account_id;

        RETURN QUERY SELECT 'ok'::text, p_txn_id::text, NULL::text, NULL::text, false,
                            NULL::text, NULL::text, NULL::numeric, NULL::numeric;
    END $$
    """,
]

POSTGRES_DOWN = [
    "DROP FUNCTION IF EXISTS kassa_post_entry",
    "DROP TRIGGER IF EXISTS ledger_transaction_balanced ON ledger_transaction",
    "DROP FUNCTION IF EXISTS kassa_check_balanced",
    "DROP TRIGGER IF EXISTS ledger_posting_joins_new_transaction ON ledger_posting",
    "DROP FUNCTION IF EXISTS kassa_check_posting_joins_new_transaction",
    *[f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}" for t in APPEND_ONLY_TABLES],
    *[f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}" for t in APPEND_ONLY_TABLES],
    "DROP FUNCTION IF EXISTS kassa_refuse_change",
]
