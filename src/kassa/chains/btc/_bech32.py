"""Bech32 (BIP173) and Bech32m (BIP350) strings and segwit address payloads.

Written from the two BIPs: the BCH checksum over GF(32) with the generator constants of BIP173,
xor-ed with 1 (Bech32) or 0x2bc830a3 (Bech32m). Segwit v0 must use Bech32 and v1..v16 Bech32m;
that pairing is what closes Bech32's insertion weakness for new versions. Errors say which rule
was broken so the address module can explain it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum

__all__ = [
    "CHARSET",
    "MAX_LENGTH",
    "Bech32Error",
    "Encoding",
    "bech32_decode",
    "bech32_encode",
    "segwit_decode",
    "segwit_encode",
]

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_INDEX = {ch: i for i, ch in enumerate(CHARSET)}
MAX_LENGTH = 90
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Encoding(Enum):
    BECH32 = 1
    BECH32M = 0x2BC830A3

    @property
    def label(self) -> str:
        return "Bech32" if self is Encoding.BECH32 else "Bech32m"


class Bech32Error(ValueError):
    """Why a string is not a valid bech32/bech32m string or segwit payload."""

    class Kind(Enum):
        BAD_CHARACTER = "bad_character"
        MIXED_CASE = "mixed_case"
        TOO_LONG = "too_long"
        BAD_FORMAT = "bad_format"
        BAD_CHECKSUM = "bad_checksum"
        WRONG_VARIANT = "wrong_variant"
        BAD_PROGRAM = "bad_program"
        BAD_VERSION = "bad_version"

    def __init__(self, kind: Bech32Error.Kind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _polymod(values: Iterable[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(_GENERATOR):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(ch) >> 5 for ch in hrp] + [0] + [ord(ch) & 31 for ch in hrp]


def _checksum_of(hrp: str, data: Sequence[int], encoding: Encoding) -> list[int]:
    polymod = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ encoding.value
    return [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]


def bech32_encode(hrp: str, data: Sequence[int], encoding: Encoding) -> str:
    combined = [*data, *_checksum_of(hrp, data, encoding)]
    return hrp + "1" + "".join(CHARSET[d] for d in combined)


def bech32_decode(text: str) -> tuple[str, list[int], Encoding]:
    """Split a bech32/bech32m string into (lower-case HRP, 5-bit data without checksum, variant).

    Raises `Bech32Error`; the checksum is verified against both variants and the one that
    matches is returned (no string is valid under both).
    """
    if any(not 33 <= ord(ch) <= 126 for ch in text):
        raise Bech32Error(
            Bech32Error.Kind.BAD_CHARACTER, "it contains a character outside US-ASCII 33-126"
        )
    if text.lower() != text and text.upper() != text:
        raise Bech32Error(Bech32Error.Kind.MIXED_CASE, "it mixes upper- and lower-case letters")
    if len(text) > MAX_LENGTH:
        raise Bech32Error(Bech32Error.Kind.TOO_LONG, f"it is longer than {MAX_LENGTH} characters")
    lowered = text.lower()
    separator = lowered.rfind("1")
    if separator < 1:
        raise Bech32Error(Bech32Error.Kind.BAD_FORMAT, "it has no human-readable part before '1'")
    if separator + 7 > len(lowered):
        raise Bech32Error(Bech32Error.Kind.BAD_FORMAT, "it is too short to hold a checksum")
    hrp, tail = lowered[:separator], lowered[separator + 1 :]
    data: list[int] = []
    for ch in tail:
        value = _INDEX.get(ch)
        if value is None:
            raise Bech32Error(Bech32Error.Kind.BAD_CHARACTER, f"{ch!r} is not a bech32 character")
        data.append(value)
    residue = _polymod([*_hrp_expand(hrp), *data])
    for encoding in Encoding:
        if residue == encoding.value:
            return hrp, data[:-6], encoding
    raise Bech32Error(Bech32Error.Kind.BAD_CHECKSUM, "the checksum does not match")


def _convert_bits(data: Iterable[int], from_bits: int, to_bits: int, *, pad: bool) -> list[int]:
    accumulator = 0
    bits = 0
    result: list[int] = []
    mask = (1 << to_bits) - 1
    for value in data:
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            result.append((accumulator >> bits) & mask)
    if pad:
        if bits:
            result.append((accumulator << (to_bits - bits)) & mask)
    elif bits >= from_bits:
        raise Bech32Error(Bech32Error.Kind.BAD_PROGRAM, "it has more than 4 bits of padding")
    elif (accumulator << (to_bits - bits)) & mask:
        raise Bech32Error(Bech32Error.Kind.BAD_PROGRAM, "its padding bits are not zero")
    return result


def segwit_decode(text: str) -> tuple[str, int, bytes]:
    """(HRP, witness version, witness program) of a segwit address, per BIP173/BIP350.

    Enforces the consensus-level shape: version 0..16, a 2..40 byte program, 20 or 32 bytes for
    version 0, Bech32 for version 0 and Bech32m for the others. Which versions Kassa *pays to*
    is decided by the caller.
    """
    hrp, data, encoding = bech32_decode(text)
    if not data:
        raise Bech32Error(Bech32Error.Kind.BAD_FORMAT, "its data part is empty")
    version = data[0]
    if version > 16:
        raise Bech32Error(Bech32Error.Kind.BAD_VERSION, f"witness version {version} does not exist")
    program = bytes(_convert_bits(data[1:], 5, 8, pad=False))
    if not 2 <= len(program) <= 40:
        raise Bech32Error(
            Bech32Error.Kind.BAD_PROGRAM,
            f"its witness program is {len(program)} bytes (2 to 40 allowed)",
        )
    if version == 0 and len(program) not in (20, 32):
        raise Bech32Error(
            Bech32Error.Kind.BAD_PROGRAM,
            f"a version 0 witness program is 20 or 32 bytes, this one is {len(program)}",
        )
    expected = Encoding.BECH32 if version == 0 else Encoding.BECH32M
    if encoding is not expected:
        raise Bech32Error(
            Bech32Error.Kind.WRONG_VARIANT,
            f"witness version {version} needs a {expected.label} checksum "
            f"but it has a {encoding.label} one",
        )
    return hrp, version, program


def segwit_encode(hrp: str, version: int, program: bytes) -> str:
    encoding = Encoding.BECH32 if version == 0 else Encoding.BECH32M
    text = bech32_encode(hrp, [version, *_convert_bits(program, 8, 5, pad=True)], encoding)
    segwit_decode(text)  # Never hand out an address we would refuse to read back.
    return text
