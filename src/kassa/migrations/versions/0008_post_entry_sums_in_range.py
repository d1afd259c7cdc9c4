"""The journal's stored function keeps every running sum and balance in range.

`kassa_post_entry` (migration 0001) let a sum grow past 2**256-1, the range `Money` and the
`Amount` column promise: NUMERIC(78,0) holds up to 10**78-1, so PostgreSQL stored it, and from
then on the account's balance could not be read, nor any entry on it answered. The function now
refuses, before writing anything, an entry that would leave any running sum of a touched
account outside 0 … 2**256-1 or its available balance outside ±(2**256-1), with the error
`kassa.ledger.journal.PostgresJournal` turns into `amount_out_of_range`. The same rule is in
`PortableJournal` (SQLite). Everything else in the function is as in migration 0001.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MAX_AMOUNT = str(2**256 - 1)

POST_ENTRY = """
    CREATE OR REPLACE FUNCTION kassa_post_entry(
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

        -- Every running sum within 0 … 2**256-1 and the available balance within ±(2**256-1)
        -- after the entry, or nothing is written (the caller rolls back; migration 0008).
        IF EXISTS (
            SELECT 1
            FROM unnest(v_ids, v_dp, v_cp, v_dpend, v_cpend)
                 AS d(account_id, d_dp, d_cp, d_dpend, d_cpend)
                 JOIN ledger_account a ON a.id = d.account_id
                 CROSS JOIN LATERAL (SELECT a.debits_posted + d.d_dp AS dp,
                                            a.credits_posted + d.d_cp AS cp,
                                            a.debits_pending + d.d_dpend AS dpend,
                                            a.credits_pending + d.d_cpend AS cpend) n
            WHERE greatest(n.dp, n.cp, n.dpend, n.cpend) > MAX_AMOUNT
               OR abs(CASE WHEN a.normal_side = 'credit' THEN n.cp - n.dp - n.dpend
                           ELSE n.dp - n.cp - n.cpend END) > MAX_AMOUNT) THEN
            RAISE EXCEPTION 'kassa: sum out of range'
                USING ERRCODE = 'numeric_value_out_of_range';
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
""".replace("MAX_AMOUNT", MAX_AMOUNT)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POST_ENTRY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_post_entry_of_0001())


def _post_entry_of_0001() -> str:
    """Migration 0001's definition of the function, as a replacement."""
    first = importlib.import_module(
        "kassa.migrations.versions.0001_ledger_customer_accounts_api_keys"
    )
    (created,) = (s for s in first.POSTGRES_UP if "FUNCTION kassa_post_entry(" in s)
    return str(created).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
