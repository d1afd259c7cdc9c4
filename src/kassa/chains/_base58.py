"""Base58 and Base58Check (Bitcoin alphabet), used by Bitcoin legacy addresses, WIF keys,
BIP32 extended keys and TRON addresses.

Callers bound the input length before decoding (addresses are at most 90 characters, extended
keys 111), so the big-integer arithmetic here stays small.
"""

from __future__ import annotations

import hashlib
from enum import Enum

__all__ = [
    "ALPHABET",
    "Base58Error",
    "b58check_decode",
    "b58check_encode",
    "b58decode",
    "b58encode",
]

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}


class Base58Error(ValueError):
    """Why a Base58Check string did not decode."""

    class Kind(Enum):
        BAD_CHARACTER = "bad_character"
        TOO_SHORT = "too_short"
        BAD_CHECKSUM = "bad_checksum"

    def __init__(self, kind: Base58Error.Kind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_DIGIT_PAIRS = tuple(high + low for high in ALPHABET for low in ALPHABET)
"""Two base58 digits per division: half the big-integer divisions of one digit at a time."""


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    pairs: list[str] = []
    while number:
        number, pair = divmod(number, 58 * 58)
        pairs.append(_DIGIT_PAIRS[pair])
    # The top pair may start with a zero digit ('1') that is padding, not part of the number.
    digits = "".join(reversed(pairs)).lstrip("1")
    # Each leading zero byte is written as a leading '1' (the zero digit).
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + digits


def b58decode(text: str) -> bytes:
    number = 0
    for ch in text:
        digit = _INDEX.get(ch)
        if digit is None:
            raise Base58Error(Base58Error.Kind.BAD_CHARACTER, f"{ch!r} is not a base58 character")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


def b58check_encode(payload: bytes) -> str:
    return b58encode(payload + _checksum(payload))


def b58check_decode(text: str) -> bytes:
    """The payload of a Base58Check string (without its 4-byte checksum)."""
    raw = b58decode(text)
    if len(raw) < 5:
        raise Base58Error(Base58Error.Kind.TOO_SHORT, "too short to hold a checksum")
    payload, checksum = raw[:-4], raw[-4:]
    if _checksum(payload) != checksum:
        raise Base58Error(Base58Error.Kind.BAD_CHECKSUM, "the checksum does not match")
    return payload
