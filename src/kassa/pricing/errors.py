"""Pricing errors callers see."""

from __future__ import annotations

from kassa.errors import KassaError, NotFound


class NoRate(KassaError):
    """No trustworthy rate exists for what was asked; nothing may be valued with a guess."""

    code = "no_rate"
    title = "No rate available"


class RateLockNotFound(NotFound):
    code = "rate_lock_not_found"
    title = "Rate lock not found"
