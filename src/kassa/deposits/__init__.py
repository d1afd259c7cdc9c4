"""Deposits: watch-only addresses, chain watchers, crediting and reorg handling."""
