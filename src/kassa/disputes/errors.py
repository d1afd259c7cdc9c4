"""Refusals of dispute actions, each with a stable code (HTTP statuses in kassa.api.problems)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kassa.errors import Conflict, InvalidRequest, NotFound


class DisputeNotFound(NotFound):
    code = "dispute_not_found"
    title = "Dispute not found"


class DisputeSubjectNotFound(NotFound):
    code = "dispute_subject_not_found"
    title = "Nothing to dispute"


class InvalidDispute(InvalidRequest):
    code = "invalid_dispute"
    title = "Invalid dispute"


class DisputeOutcomeNotAllowed(InvalidRequest):
    code = "dispute_outcome_not_allowed"
    title = "Outcome not possible for this dispute"


class DisputeSubjectNotDisputable(Conflict):
    code = "dispute_subject_not_disputable"
    title = "Not in a state that can be disputed"


class DisputeAlreadyOpen(Conflict):
    code = "dispute_already_open"
    title = "A dispute about this is already open"


class DisputeAlreadyResolved(Conflict):
    code = "dispute_already_resolved"
    title = "Dispute already resolved"


class DisputeWindowClosed(Conflict):
    """The policy's claim window for this kind of claim has closed."""

    code = "dispute_window_closed"
    title = "Claim window closed"

    def __init__(self, detail: str, clause: str) -> None:
        super().__init__(detail)
        self.clause = clause

    def problem_extra(self) -> Mapping[str, Any]:
        return {"clause": self.clause}
