"""The hand-written protobuf encoding against tronpy's generated one: same bytes, same txID."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tronpy.proto import calculate_txid_from_raw_data

from kassa_dev.devnet.tron.transactions import (
    MalformedTransaction,
    RawTransaction,
    TransferCall,
    TriggerCall,
    raw_from_bytes,
    signed_from_bytes,
)
from kassa_dev.devnet.tron.wire import as_int64, decode, encode, varint

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
addresses = st.binary(min_size=20, max_size=20).map(lambda body: b"\x41" + body)
calls = st.one_of(
    st.builds(TransferCall, owner=addresses, to=addresses, amount=INT64),
    st.builds(
        TriggerCall,
        owner=addresses,
        contract=addresses,
        data=st.binary(max_size=200),
        call_value=INT64,
        call_token_value=INT64,
        token_id=INT64,
    ),
)


def raw_transactions(*, memo: bool) -> st.SearchStrategy[RawTransaction]:
    return st.builds(
        RawTransaction,
        call=calls,
        ref_block_bytes=st.binary(min_size=2, max_size=2),
        ref_block_hash=st.binary(min_size=8, max_size=8),
        expiration=INT64,
        timestamp=INT64,
        fee_limit=INT64,
        data=st.binary(max_size=40) if memo else st.just(b""),
        permission_id=st.integers(0, 2**31 - 1) if memo else st.just(0),
    )


@settings(max_examples=150, deadline=None)
@given(raw_transactions(memo=False))
def test_txid_equals_tronpys_protobuf_txid(raw: RawTransaction) -> None:
    assert hashlib.sha256(raw.encode()).hexdigest() == calculate_txid_from_raw_data(
        raw.to_json(visible=False)
    )


@settings(max_examples=150, deadline=None)
@given(raw_transactions(memo=True))
def test_encoding_round_trips(raw: RawTransaction) -> None:
    # An unset type_url is encoded as the standard one, and decodes as that.
    assert raw_from_bytes(raw.encode()) == replace(raw, type_url=raw.effective_type_url())


@given(INT64)
def test_varints_round_trip_int64(value: int) -> None:
    ((number, decoded),) = decode(encode([(3, value)])) or [(3, 0)]
    assert number == 3
    assert as_int64(decoded) == value
    assert len(varint(value)) <= 10


@pytest.mark.parametrize(
    "data",
    [b"\x0a\x05ab", b"\x80", b"\x0b\x00", b"\x5a\x02\x08\x05", b"\xff" * 11],
    ids=["field past the end", "truncated varint", "group wire type", "no contract type", "long"],
)
def test_malformed_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedTransaction):
        raw_from_bytes(data)
    with pytest.raises(MalformedTransaction):
        signed_from_bytes(data)
