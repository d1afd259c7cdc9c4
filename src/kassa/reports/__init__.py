"""Finance: reconciliation of the ledger, the records and the chains, and the reports a finance
team closes a period with. Everything here reads; the only rows it writes are its own (the
reconciliation breaks it tracks across runs)."""
