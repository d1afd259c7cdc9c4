"""Errors of the chain primitives, each with a stable ``code``.

Address and extended-key refusals are input errors (HTTP 422 through the `InvalidRequest`
fallback in `kassa.api.problems`). Every refusal also carries a machine-readable ``problem``
(an `AddressProblem` / `KeyProblem`), so callers and tests can branch on *why* without parsing
the sentence in ``detail``, which is written for a support agent.
"""

from __future__ import annotations

from enum import StrEnum

from kassa.errors import InvalidRequest, KassaError

__all__ = [
    "AddressProblem",
    "DustOutput",
    "InsufficientInputs",
    "InvalidAddress",
    "InvalidExtendedKey",
    "InvalidTransaction",
    "KeyProblem",
]


class AddressProblem(StrEnum):
    """Why an address was refused (stable values; extend, never rename)."""

    EMPTY = "empty"
    WHITESPACE = "whitespace"
    TOO_LONG = "too_long"
    BAD_CHARACTER = "bad_character"
    BAD_FORMAT = "bad_format"
    BAD_LENGTH = "bad_length"
    BAD_CHECKSUM = "bad_checksum"
    MIXED_CASE = "mixed_case"
    UNKNOWN_PREFIX = "unknown_prefix"
    WRONG_NETWORK = "wrong_network"
    WRONG_CHAIN = "wrong_chain"
    UNSUPPORTED_WITNESS_VERSION = "unsupported_witness_version"
    NOT_AN_ADDRESS = "not_an_address"
    """A key (private WIF or extended key) was given where an address was expected."""


class InvalidAddress(InvalidRequest):
    """The text is not a valid address of the expected chain and network."""

    code = "invalid_address"
    title = "Invalid address"

    def __init__(self, detail: str, *, problem: AddressProblem) -> None:
        super().__init__(detail)
        self.problem = problem


class KeyProblem(StrEnum):
    """Why an extended key was refused (stable values; extend, never rename)."""

    MALFORMED = "malformed"
    PRIVATE_KEY = "private_key"
    WRONG_NETWORK = "wrong_network"
    WRONG_KIND = "wrong_kind"
    WRONG_DEPTH = "wrong_depth"


class InvalidExtendedKey(InvalidRequest):
    """The text is not a usable watch-only account key for the chain and network."""

    code = "invalid_extended_key"
    title = "Invalid extended public key"

    def __init__(self, detail: str, *, problem: KeyProblem) -> None:
        super().__init__(detail)
        self.problem = problem


class InvalidTransaction(KassaError):
    """A transaction cannot be built as asked (a bug or a bad payout request, never I/O)."""

    code = "invalid_transaction"
    title = "Invalid transaction"


class DustOutput(InvalidTransaction):
    """An output is below the dust limit: nodes would refuse to relay the transaction."""

    code = "dust_output"
    title = "Output below the dust limit"


class InsufficientInputs(InvalidTransaction):
    """The inputs do not cover the outputs."""

    code = "insufficient_inputs"
    title = "Inputs do not cover the outputs"
