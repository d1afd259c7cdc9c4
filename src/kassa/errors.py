"""Domain errors with stable codes.

Every error a user or operator can provoke is a `KassaError` subclass with a stable `code`
(snake_case, never renamed once released). The API maps codes to HTTP statuses in one table
(`kassa.api.problems`); domain packages never know about HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self


class KassaError(Exception):
    """Base of all domain errors. `detail` is a sentence a support agent can read."""

    code: ClassVar[str] = "kassa_error"
    title: ClassVar[str] = "Request failed"
    always_recorded: ClassVar[bool] = False
    """For a refusal only ever raised after its consequence was written (see `recorded`)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.recorded = self.always_recorded
        """Set on this error once the refusal itself was written down (stored under an
        idempotency key, or with a consequence such as an expired hold): the unit of work then
        commits what it wrote. Per error, never per class: the same refusal raised where
        nothing was stored must roll back."""

    def record(self) -> Self:
        """Mark this refusal as written down (see `recorded`)."""
        self.recorded = True
        return self

    def problem_extra(self) -> Mapping[str, Any]:
        """Extra members of the RFC 9457 problem body (e.g. the policy decision of a refusal)."""
        return {}


class NotFound(KassaError):
    code = "not_found"
    title = "Not found"


class Conflict(KassaError):
    code = "conflict"
    title = "Conflict"


class InvalidRequest(KassaError):
    code = "invalid_request"
    title = "Invalid request"
