"""The errors of `kassa.chains.tron.api.TronApi`: the three ways a java-tron HTTP call goes
wrong, and a contract call the node will not run.

java-tron answers HTTP 200 even for failures and says so in the body, so a caller cannot tell
from the status alone what happened. The client sorts every failure into one of these, so a
caller decides by type: `TronTransportError` (no usable HTTP answer: try again later),
`TronNodeError` (the node's ``{"Error": …}`` body: it could not serve the request as sent),
`TronUnexpectedAnswer` (JSON of a shape java-tron does not give: a different server, or a node
version Kassa does not know) and `TronCallRefused` (a contract call's ``result.code``).
All are `TronApiError`, which names the endpoint.
"""

from __future__ import annotations

from kassa.errors import KassaError

__all__ = [
    "TronApiError",
    "TronCallRefused",
    "TronNodeError",
    "TronTransportError",
    "TronUnexpectedAnswer",
]


class TronApiError(KassaError):
    """A java-tron HTTP API call failed; ``path`` names the endpoint."""

    code = "tron_api_error"
    title = "TRON node request failed"

    def __init__(self, detail: str, *, path: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path


class TronTransportError(TronApiError):
    """No usable HTTP answer: connection refused or reset, timeout, non-200 status, not JSON."""

    code = "tron_node_unreachable"
    title = "TRON node unreachable"

    def __init__(self, detail: str, *, path: str, status_code: int | None = None) -> None:
        super().__init__(detail, path=path)
        self.status_code = status_code


class TronNodeError(TronApiError):
    """The node answered ``{"Error": …}``: it could not serve the request as sent."""

    code = "tron_node_error"
    title = "TRON node refused the request"

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"the node says: {message}", path=path)
        self.message = message


class TronUnexpectedAnswer(TronApiError):
    """The answer is JSON, but not of a shape java-tron gives for this endpoint."""

    code = "tron_unexpected_answer"
    title = "Unexpected answer from the TRON node"


class TronCallRefused(TronApiError):
    """The node would not run a contract call: its ``result.code`` (a validation error, a revert
    found by ``estimateenergy``, or ``estimateenergy`` switched off on this node)."""

    code = "tron_call_refused"
    title = "TRON node refused the contract call"

    def __init__(self, response_code: str, message: str, *, path: str) -> None:
        super().__init__(f"{response_code}: {message}", path=path)
        self.response_code = response_code
        self.message = message
