"""Payout worker: turns approved withdrawal requests into on-chain transfers."""
