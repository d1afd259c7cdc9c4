"""Errors about deposits."""

from __future__ import annotations

from kassa.errors import NotFound


class DepositNotFound(NotFound):
    code = "deposit_not_found"
    title = "Deposit not found"
