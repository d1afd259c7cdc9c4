"""Double-entry ledger: accounts, append-only journal, holds, idempotency.

The core of Kassa. It imports nothing from the API, chain or payout layers (import-linter
enforces it). See `kassa.ledger.journal` for the design.

Lock order
----------
Any number of API processes and workers share one PostgreSQL database, so every use case that
moves money takes its row locks in one order; a transaction only ever waits for locks later in
the order than those it holds, so no two can wait on each other (a deadlock, answered 500).

1. The idempotency key: a unique insert into `idempotency_record`. Only a request with the
   same key waits here, and it holds nothing else yet.
2. The object the request names, row locked FOR UPDATE: the top-up being refunded, the payout
   request being cancelled, the activation being cancelled or fulfilled; then that object's
   ledger hold (a capture or void locks only the hold).
3. The customer account's row, FOR NO KEY UPDATE, by the payout daily-limit check
   (`kassa.payouts.review.check_daily_limits`) only. Inserting a row that references the
   account (usage batch, activation, payout request) takes FOR KEY SHARE on it, which that
   lock does not block, so such inserts may come at any point. A state change
   (`kassa.accounts.states`) locks the row FOR UPDATE and takes no later lock.
4. The ledger accounts an entry touches, FOR UPDATE in ascending id order, in the journal
   (`kassa.ledger.journal`, step 2), held to the end of the transaction. A house account that
   many entries credit (revenue) is a hot row: it is held from the entry to COMMIT, so a use
   case posts its entry as late as it can, and an entry that is the whole unit of work uses
   `transfers.commit_post`/`commit_transfer` (one round trip, the lock held only inside the
   server). Opening a house account (`house.revenue`, …) reads it and never waits on its lock.
5. Rows the use case creates after its entry (the hold, the activation, the payout request,
   the usage batch's totals, `account_usage`): new rows, or rows nobody locks before the
   journal.

Use case by use case (each in one transaction, after step 1):

| use case | locks, in order |
|---|---|
| usage batch | usage events (unique per event id), ledger accounts, `account_usage` |
| hold create, activation reserve, admin adjustment | ledger accounts |
| hold capture, hold void | hold, ledger accounts |
| activation cancel, fulfil | activation, hold, ledger accounts |
| withdrawal create | customer account (no key update), ledger accounts |
| refund create | top-up, customer account (no key update), ledger accounts |
| withdrawal or refund cancel | payout request, hold, ledger accounts |

`tests/api/test_lock_order.py` races every pair of these on one account.
"""
