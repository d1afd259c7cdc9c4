"""Benchmarks: commands that measure Kassa on a real database (not tests).

`kassa_dev.bench.ledger` measures ledger write throughput — single transfers, batched usage
postings and the raw INSERT+COMMIT rate of the same client stack — on SQLite and PostgreSQL
with their durable settings, and checks that the ledger is still consistent afterwards.
"""
