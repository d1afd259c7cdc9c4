"""The protobuf wire format, just enough for TRON's transaction messages.

A transaction's txID is the sha256 of its `protocol.Transaction.raw` protobuf encoding, so the
simulator must produce exactly the bytes protobuf produces: fields in field-number order, proto3
zero values left out, integers as varints (negative int64 as ten-byte two's complement).
Written out here rather than taken from tronpy's generated `tron_pb2`: importing that module
imports all of tronpy (over a second at start-up), and an encoder of our own lets the tests
check it against tronpy's txIDs instead of comparing tronpy with itself.

Messages (field numbers from java-tron's `Tron.proto`):
- `Transaction`: raw_data 1, signature 2 (repeated bytes)
- `Transaction.raw`: ref_block_bytes 1, ref_block_hash 4, expiration 8, data 10,
  contract 11 (repeated), timestamp 14, fee_limit 18
- `Transaction.Contract`: type 1, parameter 2 (`google.protobuf.Any`), Permission_id 5
- `Any`: type_url 1, value 2
- `TransferContract`: owner_address 1, to_address 2, amount 3
- `TriggerSmartContract`: owner_address 1, contract_address 2, call_value 3, data 4,
  call_token_value 5, token_id 6
"""

from __future__ import annotations

from collections.abc import Iterable

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5

Field = tuple[int, int | bytes]
"""A field number and its value: an int for varints, bytes for length-delimited fields."""


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message."""


def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64: two's complement over 64 bits, always ten bytes
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def encode(fields: Iterable[tuple[int, int | bytes | None]]) -> bytes:
    """Encode fields given in field-number order, leaving out proto3 defaults (0, b"") and
    None. Use `message_field` for a sub-message that must appear even when empty."""
    out = bytearray()
    for number, value in fields:
        if value is None or value == 0 or value == b"":
            continue
        if isinstance(value, int):
            out += varint(number << 3 | VARINT) + varint(value)
        else:
            out += varint(number << 3 | LENGTH_DELIMITED) + varint(len(value)) + value
    return bytes(out)


def length_delimited_size(payload_length: int) -> int:
    """Bytes a length-delimited field with a one-byte tag takes (tag, length, payload)."""
    return 1 + len(varint(payload_length)) + payload_length


def decode(data: bytes) -> list[Field]:
    """All fields of a message in order. Fixed-width fields are skipped (none of TRON's
    transaction fields use them); anything malformed raises `WireError`."""
    fields: list[Field] = []
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire_type == VARINT:
            value, position = _read_varint(data, position)
            fields.append((number, value))
        elif wire_type == LENGTH_DELIMITED:
            length, position = _read_varint(data, position)
            end = position + length
            if end > len(data):
                raise WireError("a field runs past the end of the message")
            fields.append((number, data[position:end]))
            position = end
        elif wire_type == FIXED64:
            position += 8
        elif wire_type == FIXED32:
            position += 4
        else:
            raise WireError(f"unsupported wire type {wire_type}")
    if position != len(data):
        raise WireError("truncated message")
    return fields


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    result = 0
    for shift in range(0, 70, 7):
        if position >= len(data):
            raise WireError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
    raise WireError("varint longer than ten bytes")


def as_int64(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise WireError("expected a varint")
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def as_bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise WireError("expected a length-delimited field")
    return value
