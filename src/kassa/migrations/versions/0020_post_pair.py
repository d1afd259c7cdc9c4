"""The two-line journal entry without arrays: `kassa_post_pair`, and a one-pass balance check

A transfer is two lines (+amount on one account, −amount on another). `kassa_post_entry`
(migration 0008) handles any number of lines through arrays: it aggregates them with
`unnest`/`GROUP BY`, locks through a join over the distinct ids and checks ranges, balance and
funds in set-based queries. For two lines that machinery was most of the function's cost.
`kassa_post_pair` takes the two lines as scalars and applies the same rules in the same order,
with the same errors and results:

1. claims the idempotency key with the success outcome (`ON CONFLICT DO NOTHING`; a replay
   returns the stored record), exactly as `kassa_post_entry`;
2. locks both accounts `FOR UPDATE` in ascending id order (two primary-key lookups);
3. refuses a missing account, a line naming another asset than its account, lines on two
   assets (which cannot balance), any running sum beyond 2**256−1 or available balance
   beyond ±(2**256−1) after the entry; then finds the first account in id order that may not
   go negative and would (unless `p_force`), and returns that refusal as
   `kassa_post_entry` does — or, with `p_alone`, raises the mark of `kassa_post_entry_alone`
   (migration 0017), so a one-round-trip call rolls back whole and the client redoes it in an
   ordinary transaction that stores the refusal and its detail;
4. inserts the transaction and its two postings, in line order, and adds the entry to both
   accounts' running sums in one UPDATE.

`p_alone` also replaces `kassa_post_entry_alone`'s nested call for two-line entries. The
general function and its wrapper are unchanged and still serve every other entry.

`kassa_check_balanced`, the deferred trigger that refuses at commit a journal transaction with
fewer than two postings or not summing to zero per asset, reads the postings once instead of
twice, in one plain aggregate (same checks, same errors, in the same order; the per-asset
sums are computed only for a transaction with postings in more than one asset).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

MAX_AMOUNT = str(2**256 - 1)
REFUSED_MARK = "kassa: refused in a transaction of its own"
"""As in migration 0017; `kassa.ledger.journal` matches it."""

POST_PAIR = """
    CREATE FUNCTION kassa_post_pair(
        p_txn_id uuid, p_kind text, p_memo text, p_actor text, p_reason text,
        p_reverses_id uuid, p_hold_id uuid, p_metadata text,
        p_first_id bigint, p_first_asset text, p_second_id bigint, p_second_asset text,
        p_amount numeric, p_force boolean, p_now timestamptz, p_alone boolean,
        p_idem_scope text, p_idem_key text, p_idem_operation text, p_idem_fingerprint text)
    RETURNS TABLE (
        outcome text, resource_id text, stored_operation text, stored_fingerprint text,
        replayed boolean, refused_account_code text, refused_asset text,
        available_before numeric, available_after numeric)
    LANGUAGE plpgsql
    AS $$
    DECLARE
        v_now timestamptz := coalesce(p_now, now());
        v_idem_id bigint;
        lo ledger_account%ROWTYPE;
        hi ledger_account%ROWTYPE;
        v_lo_posted numeric;
        v_lo_before numeric;
        v_lo_delta numeric;
        v_hi_before numeric;
        v_hi_delta numeric;
        v_outcome text;
    BEGIN
        -- The first line posts p_amount (+ debit, − credit), the second its opposite.
        IF p_first_id = p_second_id OR p_amount = 0 OR p_txn_id IS NULL THEN
            RAISE EXCEPTION 'kassa: a two-line entry moves a non-zero amount between two accounts'
                USING ERRCODE = 'check_violation';
        END IF;
        IF p_idem_key IS NOT NULL THEN
            -- As in kassa_post_entry: claimed with the success outcome, a refusal overwrites
            -- it; a concurrent claim of the same key waits here until this transaction ends.
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

        -- Lock both accounts in ascending id order, like every other entry.
        SELECT * INTO lo FROM ledger_account a
        WHERE a.id = least(p_first_id, p_second_id) FOR UPDATE;
        SELECT * INTO hi FROM ledger_account a
        WHERE a.id = greatest(p_first_id, p_second_id) FOR UPDATE;
        IF lo.id IS NULL OR hi.id IS NULL THEN
            RAISE EXCEPTION 'kassa: ledger accounts missing in %', ARRAY[p_first_id, p_second_id]
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        IF (p_first_asset IS NOT NULL AND p_first_asset <>
                CASE WHEN lo.id = p_first_id THEN lo.asset ELSE hi.asset END)
           OR (p_second_asset IS NOT NULL AND p_second_asset <>
                CASE WHEN lo.id = p_second_id THEN lo.asset ELSE hi.asset END) THEN
            RAISE EXCEPTION 'kassa: asset mismatch: a line names another asset than its account'
                USING ERRCODE = 'check_violation';
        END IF;
        IF lo.asset <> hi.asset THEN
            RAISE EXCEPTION 'kassa: entry does not balance per asset'
                USING ERRCODE = 'check_violation';
        END IF;

        -- Each account's signed posting, available balance before, and change of it.
        v_lo_posted := CASE WHEN lo.id = p_first_id THEN p_amount ELSE -p_amount END;
        v_lo_before := CASE WHEN lo.normal_side = 'credit'
                            THEN lo.credits_posted - lo.debits_posted - lo.debits_pending
                            ELSE lo.debits_posted - lo.credits_posted - lo.credits_pending END;
        v_lo_delta := CASE WHEN lo.normal_side = 'credit' THEN -v_lo_posted ELSE v_lo_posted END;
        v_hi_before := CASE WHEN hi.normal_side = 'credit'
                            THEN hi.credits_posted - hi.debits_posted - hi.debits_pending
                            ELSE hi.debits_posted - hi.credits_posted - hi.credits_pending END;
        v_hi_delta := CASE WHEN hi.normal_side = 'credit' THEN v_lo_posted ELSE -v_lo_posted END;

        -- Every running sum within 0 … 2**256-1 and the available balance within ±(2**256-1)
        -- after the entry, or nothing is written (the caller rolls back; migration 0008).
        IF greatest(lo.debits_posted + greatest(v_lo_posted, 0),
                    lo.credits_posted + greatest(-v_lo_posted, 0),
                    lo.debits_pending, lo.credits_pending,
                    hi.debits_posted + greatest(-v_lo_posted, 0),
                    hi.credits_posted + greatest(v_lo_posted, 0),
                    hi.debits_pending, hi.credits_pending) > MAX_AMOUNT
           OR abs(v_lo_before + v_lo_delta) > MAX_AMOUNT
           OR abs(v_hi_before + v_hi_delta) > MAX_AMOUNT THEN
            RAISE EXCEPTION 'kassa: sum out of range'
                USING ERRCODE = 'numeric_value_out_of_range';
        END IF;

        -- The first account in id order that may not go negative and would (unless forced).
        IF NOT p_force AND NOT lo.allow_negative AND v_lo_delta < 0
           AND v_lo_before + v_lo_delta < 0 THEN
            v_outcome := CASE WHEN v_lo_before < 0 THEN 'account_frozen'
                              ELSE 'insufficient_funds' END;
            refused_account_code := lo.code;
            refused_asset := lo.asset;
            available_before := v_lo_before;
            available_after := v_lo_before + v_lo_delta;
        ELSIF NOT p_force AND NOT hi.allow_negative AND v_hi_delta < 0
              AND v_hi_before + v_hi_delta < 0 THEN
            v_outcome := CASE WHEN v_hi_before < 0 THEN 'account_frozen'
                              ELSE 'insufficient_funds' END;
            refused_account_code := hi.code;
            refused_asset := hi.asset;
            available_before := v_hi_before;
            available_after := v_hi_before + v_hi_delta;
        END IF;
        IF v_outcome IS NOT NULL THEN
            IF p_alone THEN
                RAISE EXCEPTION 'REFUSED_MARK: %', v_outcome;
            END IF;
            IF v_idem_id IS NOT NULL THEN
                UPDATE idempotency_record SET outcome = v_outcome, resource_id = NULL
                WHERE id = v_idem_id;
            END IF;
            outcome := v_outcome;
            replayed := false;
            RETURN NEXT;
            RETURN;
        END IF;

        INSERT INTO ledger_transaction
            (id, kind, memo, actor, reason, reverses_id, hold_id, metadata_json, created_at)
        VALUES (p_txn_id, p_kind, p_memo, p_actor, p_reason, p_reverses_id, p_hold_id,
                p_metadata, v_now);
        INSERT INTO ledger_posting (transaction_id, account_id, asset, amount)
        VALUES (p_txn_id, p_first_id, lo.asset, p_amount),
               (p_txn_id, p_second_id, lo.asset, -p_amount);
        -- One statement for both rows (each statement re-reads the table's CHECK constraints).
        UPDATE ledger_account a
        SET debits_posted = a.debits_posted + CASE WHEN a.id = lo.id
            THEN greatest(v_lo_posted, 0) ELSE greatest(-v_lo_posted, 0) END,
            credits_posted = a.credits_posted + CASE WHEN a.id = lo.id
            THEN greatest(-v_lo_posted, 0) ELSE greatest(v_lo_posted, 0) END
        WHERE a.id IN (lo.id, hi.id);

        outcome := 'ok';
        resource_id := p_txn_id::text;
        replayed := false;
        RETURN NEXT;
    END $$
""".replace("MAX_AMOUNT", MAX_AMOUNT).replace("REFUSED_MARK", REFUSED_MARK)

CHECK_BALANCED = """
    CREATE OR REPLACE FUNCTION kassa_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        v_postings bigint;
        v_lowest_asset text;
        v_highest_asset text;
        v_total numeric;
        v_unbalanced boolean;
    BEGIN
        -- One plain aggregate over the transaction's postings; per-asset sums are only needed
        -- when it has postings in more than one asset.
        SELECT count(*), min(asset), max(asset), sum(amount)
        INTO v_postings, v_lowest_asset, v_highest_asset, v_total
        FROM ledger_posting WHERE transaction_id = NEW.id;
        IF v_postings < 2 THEN
            RAISE EXCEPTION 'ledger transaction % has fewer than two postings', NEW.id
                USING ERRCODE = 'check_violation';
        END IF;
        IF v_lowest_asset = v_highest_asset THEN
            v_unbalanced := v_total <> 0;
        ELSE
            v_unbalanced := EXISTS (SELECT 1 FROM ledger_posting WHERE transaction_id = NEW.id
                                    GROUP BY asset HAVING sum(amount) <> 0);
        END IF;
        IF v_unbalanced THEN
            RAISE EXCEPTION 'ledger transaction % does not balance per asset', NEW.id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$
"""

CHECK_BALANCED_OF_0001 = """
    CREATE OR REPLACE FUNCTION kassa_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
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
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POST_PAIR)
        op.execute(CHECK_BALANCED)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CHECK_BALANCED_OF_0001)
        op.execute("DROP FUNCTION kassa_post_pair")
