"""Reconciliation of the ledger, the records and the chains (issue 16), with its breaks tracked
across runs. See docs/reconciliation.md.

- `ledger_leg` (1): the books on their own;
- `records_leg` (2): deposits, payouts and activations against the ledger;
- `chain_leg` (3): deposit addresses, hot wallets and confirmed payouts against the chains, read
  through `chain_reader` (Kassa's chain adapters);
- `solvency` (4): customer liabilities against the coins held;
- `store`: the lifecycle of breaks (new → persisting → resolved) and the run's event;
- `run`: one run (`Reconciler`), its JSON and CSV;
- `funding`: booking hot-wallet funding so the ledger knows what the hot wallets hold.
"""
