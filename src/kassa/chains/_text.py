"""Shared first checks on address text and how refusals quote it."""

from __future__ import annotations

from kassa.chains.errors import AddressProblem, InvalidAddress

MAX_ADDRESS_LENGTH = 90
"""No address of any supported chain is longer (90 is the bech32 limit)."""

_QUOTE_LIMIT = 100


def quoted(text: str) -> str:
    """``text`` as a Python literal for a message, cut so a refusal never echoes a novel."""
    if len(text) <= _QUOTE_LIMIT:
        return repr(text)
    return repr(text[:_QUOTE_LIMIT]) + "…"


def check_address_text(text: object, expected: str) -> str:
    """Refuse what no address of any chain can be; ``expected`` names what was wanted."""
    if not isinstance(text, str):
        raise TypeError(f"an address must be a str, got {type(text).__name__}")
    if text == "":
        raise InvalidAddress(f"the {expected} is empty", problem=AddressProblem.EMPTY)
    if len(text) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress(
            f"the text given as {expected} is too long ({len(text)} characters; "
            f"no address is longer than {MAX_ADDRESS_LENGTH})",
            problem=AddressProblem.TOO_LONG,
        )
    # Refused rather than stripped: an address is copied whole, and text around it means the
    # paste picked up something else too.
    if any(ch.isspace() for ch in text):
        raise InvalidAddress(
            f"{quoted(text)} is not a valid {expected}: it contains whitespace "
            "(spaces, tabs or line breaks); paste the address alone",
            problem=AddressProblem.WHITESPACE,
        )
    if not text.isascii() or not text.isprintable():
        raise InvalidAddress(
            f"{quoted(text)} is not a valid {expected}: it contains characters that never "
            "appear in addresses (only ASCII letters and digits do)",
            problem=AddressProblem.BAD_CHARACTER,
        )
    return text
