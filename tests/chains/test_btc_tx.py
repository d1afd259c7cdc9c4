"""BTC transactions against the BIP143 examples (native P2WPKH and P2SH-P2WPKH), plus the
builder's refusals and serialization round trips."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import coincurve
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kassa.chains.btc.address import BtcAddress, hash160, parse_btc_address
from kassa.chains.btc.keys import p2wpkh_address_for_key
from kassa.chains.btc.tx import (
    SEQUENCE_FINAL,
    SEQUENCE_RBF,
    Coin,
    OutPoint,
    Transaction,
    TxIn,
    TxOut,
    bip143_sighash,
    build_transaction,
    dust_threshold,
    estimate_vsize,
    fee_for_vsize,
    sign_p2wpkh_input,
)
from kassa.chains.errors import DustOutput, InsufficientInputs, InvalidTransaction
from kassa.chains.network import BtcNetwork

# ------------------------------------------------------------------ BIP143 "Native P2WPKH"

NATIVE_UNSIGNED = (
    "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eef"
    "fffffef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff"
    "02202cb206000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d00000000"
    "1976a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988ac11000000"
)
NATIVE_SIGNED = (
    "01000000000102fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f000000004"
    "94830450221008b9d1dc26ba6a9cb62127b02742fa9d754cd3bebf337f7a55d114c8e5cdd30be022040529b"
    "194ba3f9281a99f2b1c0a19c0489bc22ede944ccf4ecbab4cc618ef3ed01eeffffffef51e1b804cc89d182"
    "d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb206000000001976"
    "a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde42dbee7e4d"
    "be6a21b2d50ce2f0167faa815988ac000247304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5"
    "447a12fb1366d7f01cc44a0220573a954c4518331561406f90300e8f3358f51928d43c212a8caed02de67e"
    "ebee0121025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee635711000000"
)
# Input 0 spends a plain P2PK output: a legacy (pre-segwit) signature that this module does
# not make; the vector's scriptSig is taken as given.
NATIVE_INPUT0_SCRIPT_SIG = (
    "4830450221008b9d1dc26ba6a9cb62127b02742fa9d754cd3bebf337f7a55d114c8e5cdd30be022040529b19"
    "4ba3f9281a99f2b1c0a19c0489bc22ede944ccf4ecbab4cc618ef3ed01"
)
NATIVE_KEY = "619c335025c7f4012e556c2a58b2506e30b8511b53ade95ea316fd8c3286feb9"
NATIVE_PUBLIC_KEY = "025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee6357"
NATIVE_AMOUNT = 600_000_000  # "value: 6" BTC
NATIVE_SIGHASH = "c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670"
NATIVE_SIGNATURE = (
    "304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a0220573a954c45"
    "18331561406f90300e8f3358f51928d43c212a8caed02de67eebee"
)


def _native_unsigned_from_parts() -> Transaction:
    return Transaction(
        version=1,
        inputs=(
            TxIn(
                OutPoint(
                    bytes.fromhex(
                        "fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f"
                    )[::-1].hex(),
                    0,
                ),
                sequence=0xFFFFFFEE,
            ),
            TxIn(
                OutPoint(
                    bytes.fromhex(
                        "ef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a"
                    )[::-1].hex(),
                    1,
                ),
                sequence=SEQUENCE_FINAL,
            ),
        ),
        outputs=(
            TxOut(112_340_000, bytes.fromhex("76a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac")),
            TxOut(223_450_000, bytes.fromhex("76a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988ac")),
        ),
        locktime=17,
    )


def test_bip143_native_p2wpkh_unsigned_serialization() -> None:
    tx = _native_unsigned_from_parts()
    assert tx.serialize().hex() == NATIVE_UNSIGNED
    assert Transaction.parse(bytes.fromhex(NATIVE_UNSIGNED)) == tx


def test_bip143_native_p2wpkh_sighash_and_signature() -> None:
    tx = _native_unsigned_from_parts()
    key = coincurve.PrivateKey(bytes.fromhex(NATIVE_KEY))
    assert key.public_key.format().hex() == NATIVE_PUBLIC_KEY
    script_code = bytes.fromhex("76a9141d0f172a0ecb48aee1be1f2687d2963ae33f71a188ac")
    assert bip143_sighash(tx, 1, script_code, NATIVE_AMOUNT).hex() == NATIVE_SIGHASH

    signed = sign_p2wpkh_input(tx, 1, key, NATIVE_AMOUNT)
    assert signed.witnesses[1] == (
        bytes.fromhex(NATIVE_SIGNATURE + "01"),
        bytes.fromhex(NATIVE_PUBLIC_KEY),
    )
    assert signed.witnesses[0] == ()


def test_bip143_native_p2wpkh_signed_serialization() -> None:
    tx = _native_unsigned_from_parts()
    key = coincurve.PrivateKey(bytes.fromhex(NATIVE_KEY))
    signed = sign_p2wpkh_input(tx, 1, key, NATIVE_AMOUNT)
    legacy_input = replace(signed.inputs[0], script_sig=bytes.fromhex(NATIVE_INPUT0_SCRIPT_SIG))
    signed = replace(signed, inputs=(legacy_input, signed.inputs[1]))

    assert signed.serialize().hex() == NATIVE_SIGNED
    assert Transaction.parse(bytes.fromhex(NATIVE_SIGNED)) == signed
    # The txid leaves the witness out; the wtxid does not.
    assert signed.txid == _txid(signed.serialize(witness=False))
    assert signed.wtxid == _txid(bytes.fromhex(NATIVE_SIGNED))
    assert signed.txid != signed.wtxid
    assert signed.weight == 3 * len(signed.serialize(witness=False)) + len(NATIVE_SIGNED) // 2


def _txid(raw: bytes) -> str:
    return hashlib.sha256(hashlib.sha256(raw).digest()).digest()[::-1].hex()


# ------------------------------------------------------------------ BIP143 "P2SH-P2WPKH"

NESTED_UNSIGNED = (
    "0100000001db6b1b20aa0fd7b23880be2ecbd4a98130974cf4748fb66092ac4d3ceb1a5477010000000"
    "0feffffff02b8b4eb0b000000001976a914a457b684d7f0d539a46a45bbc043f35b59d0d96388ac0008"
    "af2f000000001976a914fd270b1ee6abcaea97fea7ad0402e8bd8ad6d77c88ac92040000"
)
NESTED_SIGNED = (
    "01000000000101db6b1b20aa0fd7b23880be2ecbd4a98130974cf4748fb66092ac4d3ceb1a5477010000"
    "001716001479091972186c449eb1ded22b78e40d009bdf0089feffffff02b8b4eb0b000000001976a914"
    "a457b684d7f0d539a46a45bbc043f35b59d0d96388ac0008af2f000000001976a914fd270b1ee6abcaea"
    "97fea7ad0402e8bd8ad6d77c88ac02473044022047ac8e878352d3ebbde1c94ce3a10d057c2417574711"
    "6f8288e5d794d12d482f0220217f36a485cae903c713331d877c1f64677e3622ad4010726870540656fe"
    "9dcb012103ad1d8e89212f0b92c74d23bb710c00662ad1470198ac48c43f7d6f93a2a2687392040000"
)


def test_bip143_p2sh_p2wpkh_signature() -> None:
    # The same v0 key-hash signature, nested in P2SH: the scriptSig pushes the redeem script.
    tx = Transaction.parse(bytes.fromhex(NESTED_UNSIGNED))
    key = coincurve.PrivateKey(
        bytes.fromhex("eb696a065ef48a2192da5b28b694f87544b30fae8327c4510137a922f32c6dcf")
    )
    script_code = bytes.fromhex("76a91479091972186c449eb1ded22b78e40d009bdf008988ac")
    assert bip143_sighash(tx, 0, script_code, 1_000_000_000).hex() == (
        "64f3b0f4dd2bb3aa1ce8566d220cc74dda9df97d8490cc81d89d735c92e59fb6"
    )
    signed = sign_p2wpkh_input(tx, 0, key, 1_000_000_000)
    redeem_push = bytes.fromhex("16001479091972186c449eb1ded22b78e40d009bdf0089")
    signed = replace(signed, inputs=(replace(signed.inputs[0], script_sig=redeem_push),))
    assert signed.serialize().hex() == NESTED_SIGNED


# ------------------------------------------------------------------ the builder

KEY = coincurve.PrivateKey(hashlib.sha256(b"kassa test key").digest())
OTHER_KEY = coincurve.PrivateKey(hashlib.sha256(b"another key").digest())
REGTEST = BtcNetwork.REGTEST
OWN = p2wpkh_address_for_key(KEY, REGTEST)
# One destination of each kind Kassa pays to (Bitcoin Core key_io_valid.json, regtest).
DESTINATIONS = [
    parse_btc_address(text, REGTEST)
    for text in (
        "bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9",  # P2WPKH
        "bcrt1qan8gntac7z7me2ejt4hpru42ad2f759fmy0m3ejvs98656znv7eqga4uhv",  # P2WSH
        "bcrt1pfwxjqvtt4tcxrtdluukfmy2dv7xd2qzdfy6kajv5nwn4yam3wxkq3553uh",  # P2TR
        "n4fajahJrAuKbN7uNsKjLjQkz9Qn5ewJXQ",  # P2PKH
        "2MxFajLApXpYk4VodBSZSt7rw8y4ryABkfA",  # P2SH
    )
]


def _coin(amount: int, n: int = 0, key: coincurve.PrivateKey = KEY) -> Coin:
    txid = hashlib.sha256(f"funding {n}".encode()).hexdigest()
    return Coin(OutPoint(txid, n), amount, p2wpkh_address_for_key(key, REGTEST).script_pubkey)


def _verify_all(tx: Transaction, coins: list[Coin]) -> None:
    """Check every witness as a node would: the key hashes to the coin and the signature
    verifies over the BIP143 digest."""
    for index, coin in enumerate(coins):
        signature, public_key = tx.witnesses[index]
        assert signature[-1] == 0x01  # SIGHASH_ALL
        assert hash160(public_key) == coin.script_pubkey[2:]
        script_code = b"\x76\xa9\x14" + hash160(public_key) + b"\x88\xac"
        digest = bip143_sighash(tx, index, script_code, coin.amount)
        assert coincurve.PublicKey(public_key).verify(signature[:-1], digest, hasher=None)


def test_build_and_sign_to_every_supported_script() -> None:
    coins = [_coin(5_000_000, 0), _coin(2_500_000, 1)]
    outputs = [TxOut.pay(address, 1_000_000 + i) for i, address in enumerate(DESTINATIONS)]
    change = 7_500_000 - sum(o.amount for o in outputs) - 2_000
    outputs.append(TxOut.pay(OWN, change))

    unsigned = build_transaction(coins, outputs)
    assert unsigned.fee == 2_000
    assert all(txin.sequence == SEQUENCE_RBF for txin in unsigned.tx.inputs)
    assert unsigned.tx.version == 2

    signed = unsigned.sign([KEY, KEY])
    _verify_all(signed, coins)
    assert Transaction.parse(signed.serialize()) == signed
    assert signed.txid == unsigned.tx.txid  # signing never changes the txid
    assert signed.vsize <= unsigned.estimated_vsize
    assert [o.script_pubkey for o in signed.outputs[:5]] == [d.script_pubkey for d in DESTINATIONS]


def test_signing_is_deterministic() -> None:
    coins = [_coin(100_000)]
    outputs = [TxOut.pay(DESTINATIONS[0], 90_000)]
    first = build_transaction(coins, outputs).sign([KEY])
    second = build_transaction(coins, outputs).sign([KEY])
    assert first.serialize() == second.serialize()


def test_signatures_are_low_s_der() -> None:
    half_order = coincurve.utils.GROUP_ORDER_INT // 2
    for n in range(20):  # different digests; about half would be high-S without normalising
        signed = build_transaction([_coin(100_000, n)], [TxOut.pay(OWN, 99_000)]).sign([KEY])
        der = signed.witnesses[0][0][:-1]
        assert der[0] == 0x30 and der[1] == len(der) - 2
        r_length = der[3]
        s_length = der[5 + r_length]
        s = int.from_bytes(der[6 + r_length : 6 + r_length + s_length], "big")
        assert 0 < s <= half_order


def test_typical_sizes() -> None:
    p2wpkh = OWN.script_pubkey
    # The widely quoted figures: 1 input → 1 output is 110 vB, → 2 outputs 141 vB.
    assert estimate_vsize(1, [p2wpkh]) == 110
    assert estimate_vsize(1, [p2wpkh, p2wpkh]) == 141
    signed = build_transaction([_coin(100_000)], [TxOut.pay(OWN, 50_000)] * 2).sign([KEY])
    assert signed.vsize in (140, 141)  # 71- or 72-byte signature


def test_explicit_sequence_and_locktime() -> None:
    unsigned = build_transaction(
        [_coin(100_000)], [TxOut.pay(OWN, 90_000)], sequence=SEQUENCE_FINAL, locktime=850_000
    )
    assert unsigned.tx.inputs[0].sequence == SEQUENCE_FINAL
    assert unsigned.tx.locktime == 850_000


@pytest.mark.parametrize(
    ("vsize", "rate", "fee"),
    [
        (141, 1_000, 141),
        (141, 1_500, 212),
        (141, 2_001, 283),
        (1, 1, 1),
        (0, 5_000, 0),
        (110, 0, 0),
    ],
)
def test_fee_for_vsize_rounds_up(vsize: int, rate: int, fee: int) -> None:
    assert fee_for_vsize(vsize, rate) == fee


@pytest.mark.parametrize(
    ("address", "dust"),
    list(zip(DESTINATIONS, [294, 330, 330, 546, 540], strict=True)),
)
def test_dust_thresholds_match_bitcoin_core(address: BtcAddress, dust: int) -> None:
    assert dust_threshold(address.script_pubkey) == dust


def test_dust_is_refused_and_the_limit_is_configurable() -> None:
    coins = [_coin(100_000)]
    build_transaction(coins, [TxOut.pay(OWN, 294)])
    with pytest.raises(DustOutput) as refused:
        build_transaction(coins, [TxOut.pay(OWN, 293)])
    assert refused.value.code == "dust_output"
    assert "294 sat" in refused.value.detail
    # At a 1 sat/vB dust relay fee the P2WPKH limit is 98 sat.
    build_transaction(coins, [TxOut.pay(OWN, 98)], dust_relay_fee=1_000)
    with pytest.raises(DustOutput):
        build_transaction(coins, [TxOut.pay(OWN, 97)], dust_relay_fee=1_000)


def test_inputs_must_cover_outputs() -> None:
    with pytest.raises(InsufficientInputs) as refused:
        build_transaction([_coin(10_000)], [TxOut.pay(OWN, 10_001)])
    assert refused.value.code == "insufficient_inputs"
    assert "1 sat short" in refused.value.detail
    # Exactly covering (a zero fee) is a valid transaction; relaying it is the node's call.
    assert build_transaction([_coin(10_000)], [TxOut.pay(OWN, 10_000)]).fee == 0


@pytest.mark.parametrize("amount", [-1, -100_000, 21_000_000 * 100_000_000 + 1])
def test_out_of_range_output_amounts_are_refused(amount: int) -> None:
    with pytest.raises(InvalidTransaction):
        TxOut.pay(OWN, amount)


def test_zero_and_non_int_outputs_are_refused() -> None:
    with pytest.raises(InvalidTransaction, match="pays nothing"):
        build_transaction([_coin(10_000)], [TxOut.pay(OWN, 0)])
    with pytest.raises(TypeError):
        TxOut.pay(OWN, True)
    with pytest.raises(TypeError):
        TxOut.pay(OWN, 1000.0)  # type: ignore[arg-type]


def test_the_fee_cap_catches_a_forgotten_change_output() -> None:
    with pytest.raises(InvalidTransaction, match="above the cap"):
        build_transaction([_coin(1_000_000)], [TxOut.pay(OWN, 10_000)], max_fee=50_000)


@pytest.mark.parametrize(
    ("coins", "outputs", "says"),
    [
        ([], [TxOut(1_000, OWN.script_pubkey)], "at least one input"),
        ([_coin(1_000)], [], "at least one output"),
        ([_coin(5_000), _coin(5_000)], [TxOut(1_000, OWN.script_pubkey)], "spent twice"),
    ],
)
def test_malformed_requests(coins: list[Coin], outputs: list[TxOut], says: str) -> None:
    with pytest.raises(InvalidTransaction, match=says):
        build_transaction(coins, outputs)


def test_only_p2wpkh_coins_are_spendable() -> None:
    with pytest.raises(InvalidTransaction, match="only P2WPKH"):
        Coin(OutPoint("ab" * 32, 0), 10_000, DESTINATIONS[2].script_pubkey)


def test_a_key_that_does_not_own_the_coin_is_refused() -> None:
    unsigned = build_transaction([_coin(10_000)], [TxOut.pay(OWN, 5_000)])
    with pytest.raises(InvalidTransaction, match="does not own"):
        unsigned.sign([OTHER_KEY])
    with pytest.raises(InvalidTransaction, match="1 keys for 2 inputs"):
        build_transaction([_coin(10_000, 0), _coin(10_000, 1)], [TxOut.pay(OWN, 5_000)]).sign([KEY])


def test_coins_of_several_keys() -> None:
    coins = [_coin(10_000, 0, KEY), _coin(20_000, 1, OTHER_KEY)]
    signed = build_transaction(coins, [TxOut.pay(OWN, 29_000)]).sign([KEY, OTHER_KEY])
    _verify_all(signed, coins)


def test_outpoints_display_big_endian() -> None:
    outpoint = OutPoint("AB" + "00" * 31, 3)
    assert outpoint.txid == "ab" + "00" * 31
    assert outpoint.serialize() == bytes(31) + b"\xab" + b"\x03\x00\x00\x00"
    with pytest.raises(ValueError, match="64 hex"):
        OutPoint("ab" * 31, 0)


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("raw_hex", "says"),
    [
        (NATIVE_UNSIGNED[:-2], "ends early"),
        (NATIVE_UNSIGNED + "00", "after the lock time"),
        # The segwit marker and flag with nothing but empty witness stacks.
        (NATIVE_UNSIGNED[:8] + "0001" + NATIVE_UNSIGNED[8:-8] + "0000" + "11000000", "no witness"),
        ("01000000" + "00" + "00" + "00000000", "no inputs"),
    ],
)
def test_malformed_bytes_are_refused(raw_hex: str, says: str) -> None:
    with pytest.raises(InvalidTransaction, match=says):
        Transaction.parse(bytes.fromhex(raw_hex))


_scripts = st.binary(max_size=300)
_txins = st.builds(
    TxIn,
    st.builds(
        OutPoint, st.binary(min_size=32, max_size=32).map(bytes.hex), st.integers(0, 2**32 - 1)
    ),
    st.binary(max_size=120),
    st.integers(0, 2**32 - 1),
)


@st.composite
def _transactions(draw: st.DrawFn) -> Transaction:
    inputs = tuple(draw(st.lists(_txins, min_size=1, max_size=4)))
    outputs = tuple(
        draw(
            st.lists(
                st.builds(TxOut, st.integers(0, 21_000_000 * 100_000_000), _scripts),
                max_size=4,
            )
        )
    )
    witnesses = draw(
        st.one_of(
            st.just(()),
            st.tuples(*[st.lists(st.binary(max_size=80), max_size=3).map(tuple) for _ in inputs]),
        )
    )
    return Transaction(
        draw(st.integers(0, 2**32 - 1)), inputs, outputs, draw(st.integers(0, 2**32 - 1)), witnesses
    )


@given(_transactions())
def test_serialization_round_trips(tx: Transaction) -> None:
    raw = tx.serialize()
    assert Transaction.parse(raw) == tx
    assert Transaction.parse(tx.serialize(witness=False)).serialize() == tx.serialize(witness=False)
    assert tx.weight == 3 * len(tx.serialize(witness=False)) + len(raw)
