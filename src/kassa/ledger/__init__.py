"""Double-entry ledger: accounts, append-only journal, holds, idempotency.

The core of Kassa. It imports nothing from the API, chain or payout layers (import-linter
enforces it). See `kassa.ledger.journal` for the design.
"""
