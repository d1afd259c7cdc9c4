"""Bitcoin transactions: an exact, typed builder and signer for P2WPKH spends.

Design:
* Data model: `Transaction` holds `TxIn`s, `TxOut`s and per-input witness stacks, immutable,
  with the consensus serialization with and without witness (BIP144), ``txid``/``wtxid``,
  ``weight`` and ``vsize``, and `Transaction.parse` for bytes stored or read from a node.
* Building (`build_transaction`) spends P2WPKH coins only — the only kind Kassa's hot wallet
  holds — to any output script (P2WPKH, P2WSH, P2TR, P2PKH, P2SH via `TxOut.pay`). It refuses
  what a node would refuse or what would lose money: empty or zero outputs, outputs below the
  dust limit (Bitcoin Core's rule, 294 sat for P2WPKH at the default dust relay fee), inputs
  that do not cover the outputs, a fee above an optional cap, a non-standard weight.
  Every input signals replace-by-fee by default (nSequence 0xfffffffd), so a stuck payout is
  bumped by replacing *the same inputs*, never by paying twice.
* Signing (`UnsignedTransaction.sign`) computes the BIP143 digest with SIGHASH_ALL and signs
  with libsecp256k1 through coincurve: RFC6979 deterministic nonces and low-S DER signatures,
  so the same unsigned transaction and keys always give the same bytes. Each signature is
  verified before it is returned.
* Amounts are ``int`` satoshi; fee rates are ``int`` sat per 1000 vbytes (1 sat/vB = 1000), and
  `fee_for_vsize` rounds up so a fee never falls short of its rate.
No I/O here: broadcasting and coin lookup belong to the chain adapter.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import coincurve

from kassa.chains.btc.address import BtcAddress, hash160
from kassa.chains.errors import DustOutput, InsufficientInputs, InvalidTransaction

__all__ = [
    "DUST_RELAY_FEE",
    "MAX_MONEY",
    "MAX_STANDARD_TX_WEIGHT",
    "SEQUENCE_FINAL",
    "SEQUENCE_RBF",
    "SIGHASH_ALL",
    "Coin",
    "OutPoint",
    "Transaction",
    "TxIn",
    "TxOut",
    "UnsignedTransaction",
    "bip143_sighash",
    "build_transaction",
    "dust_threshold",
    "estimate_vsize",
    "fee_for_vsize",
    "sign_p2wpkh_input",
]

MAX_MONEY = 21_000_000 * 100_000_000
"""Consensus upper bound of any amount, in satoshi."""
SEQUENCE_FINAL = 0xFFFFFFFF
SEQUENCE_RBF = 0xFFFFFFFD
"""Signals opt-in replace-by-fee (BIP125) without enabling a relative lock time."""
SIGHASH_ALL = 0x01
DUST_RELAY_FEE = 3_000
"""Bitcoin Core's default -dustrelayfee, in sat per 1000 vbytes."""
MAX_STANDARD_TX_WEIGHT = 400_000
"""Bitcoin Core relays nothing heavier."""

_MAX_SIGNATURE_LENGTH = 72
"""DER with a 33-byte r and a low-S 32-byte s (71 bytes) plus the sighash byte."""
_TXID_RE = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_U32 = 0xFFFFFFFF


def _dsha256(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= _U32:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def _varbytes(data: bytes) -> bytes:
    return _varint(len(data)) + data


def _check_int(name: str, value: object) -> int:
    # ``type(...) is int`` keeps bool (and every other int subclass) out of amounts.
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def _check_u32(name: str, value: object) -> int:
    number = _check_int(name, value)
    if not 0 <= number <= _U32:
        raise ValueError(f"{name} must fit in 32 bits, got {number}")
    return number


# --------------------------------------------------------------------------- data model


@dataclass(frozen=True, slots=True)
class OutPoint:
    """A reference to an output: ``txid`` as nodes display it (big-endian hex) and ``vout``."""

    txid: str
    vout: int

    def __post_init__(self) -> None:
        if not isinstance(self.txid, str) or not _TXID_RE.fullmatch(self.txid):
            raise ValueError(f"a txid is 64 hex digits, got {self.txid!r}")
        object.__setattr__(self, "txid", self.txid.lower())
        _check_u32("vout", self.vout)

    def serialize(self) -> bytes:
        # Serialized little-endian: the reverse of the displayed hex.
        return bytes.fromhex(self.txid)[::-1] + self.vout.to_bytes(4, "little")

    def __str__(self) -> str:
        return f"{self.txid}:{self.vout}"


@dataclass(frozen=True, slots=True)
class TxIn:
    outpoint: OutPoint
    script_sig: bytes = b""
    """Empty for segwit spends; the signature lives in the witness."""
    sequence: int = SEQUENCE_RBF

    def __post_init__(self) -> None:
        _check_u32("sequence", self.sequence)

    def serialize(self) -> bytes:
        return (
            self.outpoint.serialize()
            + _varbytes(self.script_sig)
            + self.sequence.to_bytes(4, "little")
        )


@dataclass(frozen=True, slots=True)
class TxOut:
    amount: int
    """Satoshi."""
    script_pubkey: bytes

    def __post_init__(self) -> None:
        _check_int("an output amount", self.amount)
        if not 0 <= self.amount <= MAX_MONEY:
            raise InvalidTransaction(
                f"an output amount must be 0 to {MAX_MONEY} sat, got {self.amount}"
            )

    @classmethod
    def pay(cls, address: BtcAddress, amount: int) -> TxOut:
        """An output of ``amount`` satoshi to ``address``."""
        return cls(amount, address.script_pubkey)

    def serialize(self) -> bytes:
        return self.amount.to_bytes(8, "little") + _varbytes(self.script_pubkey)


Witness = tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Transaction:
    """A Bitcoin transaction, signed or not.

    ``witnesses`` is empty (no witness data at all) or holds one stack per input; a stack is
    empty for an input without witness.
    """

    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int = 0
    witnesses: tuple[Witness, ...] = ()

    def __post_init__(self) -> None:
        _check_u32("version", self.version)
        _check_u32("locktime", self.locktime)
        if self.witnesses and len(self.witnesses) != len(self.inputs):
            raise ValueError(f"{len(self.witnesses)} witness stacks for {len(self.inputs)} inputs")
        if not any(self.witnesses):
            # All stacks empty is the same transaction as no witness; one spelling keeps
            # equality meaning "same bytes".
            object.__setattr__(self, "witnesses", ())

    @property
    def has_witness(self) -> bool:
        return any(self.witnesses)

    def serialize(self, *, witness: bool = True) -> bytes:
        """Consensus bytes; with witness data (BIP144) when asked and any input has some."""
        with_witness = witness and self.has_witness
        parts = [self.version.to_bytes(4, "little")]
        if with_witness:
            parts.append(b"\x00\x01")  # segwit marker and flag
        parts.append(_varint(len(self.inputs)))
        parts.extend(txin.serialize() for txin in self.inputs)
        parts.append(_varint(len(self.outputs)))
        parts.extend(txout.serialize() for txout in self.outputs)
        if with_witness:
            for stack in self.witnesses:
                parts.append(_varint(len(stack)))
                parts.extend(_varbytes(item) for item in stack)
        parts.append(self.locktime.to_bytes(4, "little"))
        return b"".join(parts)

    @property
    def txid(self) -> str:
        """The id nodes show: hash of the bytes without witness, displayed big-endian."""
        return _dsha256(self.serialize(witness=False))[::-1].hex()

    @property
    def wtxid(self) -> str:
        """The witness id (BIP141); equals ``txid`` when there is no witness."""
        return _dsha256(self.serialize())[::-1].hex()

    @property
    def weight(self) -> int:
        """BIP141 weight: base size × 3 + total size."""
        return len(self.serialize(witness=False)) * 3 + len(self.serialize())

    @property
    def vsize(self) -> int:
        """Virtual size in vbytes: weight / 4, rounded up."""
        return -(-self.weight // 4)

    def with_witness(self, index: int, stack: Witness) -> Transaction:
        """A copy with input ``index``'s witness stack replaced."""
        stacks = list(self.witnesses) or [() for _ in self.inputs]
        stacks[index] = tuple(stack)
        return replace(self, witnesses=tuple(stacks))

    @classmethod
    def parse(cls, raw: bytes) -> Transaction:
        """Read consensus bytes (with or without witness); `InvalidTransaction` if malformed."""
        reader = _Reader(bytes(raw))
        try:
            version = reader.u32()
            segwit = reader.peek(2) == b"\x00\x01"
            if segwit:
                reader.take(2)
            inputs = tuple(
                TxIn(
                    OutPoint(reader.take(32)[::-1].hex(), reader.u32()),
                    reader.varbytes(),
                    reader.u32(),
                )
                for _ in range(reader.varint())
            )
            outputs = tuple(TxOut(reader.u64(), reader.varbytes()) for _ in range(reader.varint()))
            witnesses: tuple[Witness, ...] = ()
            if segwit:
                witnesses = tuple(
                    tuple(reader.varbytes() for _ in range(reader.varint())) for _ in inputs
                )
                if not any(witnesses):
                    raise InvalidTransaction("malformed transaction: a segwit flag but no witness")
            locktime = reader.u32()
        except (ValueError, TypeError) as error:  # InvalidTransaction is not a ValueError
            raise InvalidTransaction(f"malformed transaction: {error}") from None
        if not inputs:
            raise InvalidTransaction("malformed transaction: no inputs")
        if reader.remaining:
            raise InvalidTransaction(
                f"malformed transaction: {reader.remaining} bytes after the lock time"
            )
        return cls(version, inputs, outputs, locktime, witnesses)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def peek(self, n: int) -> bytes:
        return self._data[self._pos : self._pos + n]

    def take(self, n: int) -> bytes:
        if n > self.remaining:
            raise ValueError("it ends early")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")

    def varint(self) -> int:
        first = self.take(1)[0]
        width = {0xFD: 2, 0xFE: 4, 0xFF: 8}.get(first)
        return first if width is None else int.from_bytes(self.take(width), "little")

    def varbytes(self) -> bytes:
        return self.take(self.varint())


# --------------------------------------------------------------------------- signing


def bip143_sighash(tx: Transaction, index: int, script_code: bytes, amount: int) -> bytes:
    """The BIP143 (segwit v0) SIGHASH_ALL digest for input ``index``.

    ``script_code`` is the bare script (for P2WPKH: ``76a914{hash160(pubkey)}88ac``);
    ``amount`` is the satoshi value of the output being spent, which v0 signatures commit to.
    """
    txin = tx.inputs[index]
    hash_prevouts = _dsha256(b"".join(i.outpoint.serialize() for i in tx.inputs))
    hash_sequence = _dsha256(b"".join(i.sequence.to_bytes(4, "little") for i in tx.inputs))
    hash_outputs = _dsha256(b"".join(o.serialize() for o in tx.outputs))
    preimage = b"".join(
        (
            tx.version.to_bytes(4, "little"),
            hash_prevouts,
            hash_sequence,
            txin.outpoint.serialize(),
            _varbytes(script_code),
            amount.to_bytes(8, "little"),
            txin.sequence.to_bytes(4, "little"),
            hash_outputs,
            tx.locktime.to_bytes(4, "little"),
            SIGHASH_ALL.to_bytes(4, "little"),
        )
    )
    return _dsha256(preimage)


def _p2wpkh_script_code(public_key: bytes) -> bytes:
    return b"\x76\xa9\x14" + hash160(public_key) + b"\x88\xac"


def sign_p2wpkh_input(
    tx: Transaction, index: int, key: coincurve.PrivateKey, amount: int
) -> Transaction:
    """``tx`` with input ``index`` signed as a P2WPKH spend of ``amount`` satoshi by ``key``."""
    public_key = key.public_key.format(compressed=True)
    digest = bip143_sighash(tx, index, _p2wpkh_script_code(public_key), amount)
    # libsecp256k1: RFC6979 nonce, and the signature is normalised to low S (BIP146/BIP62
    # policy), so nodes relay it and the bytes are reproducible.
    signature = key.sign(digest, hasher=None)
    if not key.public_key.verify(signature, digest, hasher=None):  # pragma: no cover
        # Verify-after-sign guards against faulty hardware or memory producing a bad or
        # key-leaking signature; it never fires on a healthy machine.
        raise InvalidTransaction(f"input {index}: the fresh signature does not verify")
    return tx.with_witness(index, (signature + bytes([SIGHASH_ALL]), public_key))


# --------------------------------------------------------------------------- building


@dataclass(frozen=True, slots=True)
class Coin:
    """An unspent P2WPKH output Kassa can spend."""

    outpoint: OutPoint
    amount: int
    """Satoshi."""
    script_pubkey: bytes

    def __post_init__(self) -> None:
        _check_int("a coin amount", self.amount)
        if not 0 < self.amount <= MAX_MONEY:
            raise InvalidTransaction(
                f"coin {self.outpoint}: an amount must be 1 to {MAX_MONEY} sat, got {self.amount}"
            )
        if len(self.script_pubkey) != 22 or self.script_pubkey[:2] != b"\x00\x14":
            raise InvalidTransaction(
                f"coin {self.outpoint}: only P2WPKH outputs can be spent by this builder"
            )


def _is_witness_program(script: bytes) -> bool:
    return (
        4 <= len(script) <= 42
        and (script[0] == 0 or 0x51 <= script[0] <= 0x60)
        and script[1] == len(script) - 2
    )


def dust_threshold(script_pubkey: bytes, dust_relay_fee: int = DUST_RELAY_FEE) -> int:
    """The smallest standard amount for an output with ``script_pubkey`` (Bitcoin Core's
    GetDustThreshold): what spending it would cost at ``dust_relay_fee`` sat/kvB.

    294 sat for P2WPKH, 330 for P2WSH/P2TR, 540 for P2SH and 546 for P2PKH at the default.
    """
    _check_int("dust_relay_fee", dust_relay_fee)
    size = len(TxOut(0, script_pubkey).serialize())
    # The input that later spends it: outpoint 36, script length 1, sequence 4, plus a
    # signature and key of 107 bytes, discounted to a quarter for witness programs.
    size += 32 + 4 + 1 + (107 // 4 if _is_witness_program(script_pubkey) else 107) + 4
    return fee_for_vsize(size, dust_relay_fee)


def fee_for_vsize(vsize: int, sat_per_kvb: int) -> int:
    """The fee in satoshi for ``vsize`` vbytes at ``sat_per_kvb`` sat per 1000 vbytes, rounded
    up (fees round in the house's favour, and a fee below its rate may not relay)."""
    _check_int("vsize", vsize)
    _check_int("sat_per_kvb", sat_per_kvb)
    if vsize < 0 or sat_per_kvb < 0:
        raise ValueError("vsize and fee rate must not be negative")
    return -(-vsize * sat_per_kvb // 1000)


def _placeholder_witness() -> Witness:
    return (bytes(_MAX_SIGNATURE_LENGTH), bytes(33))


def estimate_vsize(input_count: int, output_scripts: Iterable[bytes]) -> int:
    """The largest vsize a transaction spending ``input_count`` P2WPKH coins to outputs with
    these scripts can have once signed (for fee estimates before signing)."""
    _check_int("input_count", input_count)
    if input_count < 1:
        raise ValueError("a transaction needs at least one input")
    placeholder = OutPoint("00" * 32, 0)
    tx = Transaction(
        2,
        tuple(TxIn(placeholder) for _ in range(input_count)),
        tuple(TxOut(0, script) for script in output_scripts),
        0,
        tuple(_placeholder_witness() for _ in range(input_count)),
    )
    return tx.vsize


@dataclass(frozen=True, slots=True)
class UnsignedTransaction:
    """A checked transaction waiting for signatures, with the coins it spends."""

    tx: Transaction
    coins: tuple[Coin, ...]

    @property
    def fee(self) -> int:
        """Satoshi: inputs minus outputs."""
        return sum(c.amount for c in self.coins) - sum(o.amount for o in self.tx.outputs)

    @property
    def estimated_vsize(self) -> int:
        """The vsize once signed, at most (a signature is 71 or 72 bytes)."""
        return estimate_vsize(len(self.coins), (o.script_pubkey for o in self.tx.outputs))

    def sign(self, keys: Sequence[coincurve.PrivateKey]) -> Transaction:
        """Sign every input; ``keys[i]`` must own ``coins[i]``."""
        if len(keys) != len(self.coins):
            raise InvalidTransaction(f"{len(keys)} keys for {len(self.coins)} inputs")
        tx = self.tx
        for index, (coin, key) in enumerate(zip(self.coins, keys, strict=True)):
            # Refuse rather than produce a transaction every node would reject.
            if hash160(key.public_key.format(compressed=True)) != coin.script_pubkey[2:]:
                raise InvalidTransaction(
                    f"input {index}: the key does not own coin {coin.outpoint}"
                )
            tx = sign_p2wpkh_input(tx, index, key, coin.amount)
        return tx


def build_transaction(
    coins: Sequence[Coin],
    outputs: Sequence[TxOut],
    *,
    version: int = 2,
    locktime: int = 0,
    sequence: int = SEQUENCE_RBF,
    dust_relay_fee: int = DUST_RELAY_FEE,
    max_fee: int | None = None,
) -> UnsignedTransaction:
    """Check and assemble a transaction spending ``coins`` (in order) to ``outputs`` (in order).

    The fee is whatever the inputs leave over; the caller sizes it with `estimate_vsize` and
    `fee_for_vsize` and adds change itself. Raises `DustOutput`, `InsufficientInputs` or
    `InvalidTransaction` with the reason.
    """
    if not coins:
        raise InvalidTransaction("a transaction needs at least one input")
    if not outputs:
        raise InvalidTransaction("a transaction needs at least one output")
    if version not in (1, 2):
        raise InvalidTransaction(f"transaction version must be 1 or 2, got {version!r}")
    seen: set[OutPoint] = set()
    for coin in coins:
        if coin.outpoint in seen:
            raise InvalidTransaction(f"coin {coin.outpoint} is spent twice")
        seen.add(coin.outpoint)
    for position, output in enumerate(outputs):
        if output.amount == 0:
            raise InvalidTransaction(f"output {position} pays nothing")
        dust = dust_threshold(output.script_pubkey, dust_relay_fee)
        if output.amount < dust:
            raise DustOutput(
                f"output {position} pays {output.amount} sat, below the dust limit of {dust} sat "
                "for its script type; nodes would not relay it"
            )
    total_in = sum(c.amount for c in coins)
    total_out = sum(o.amount for o in outputs)
    if total_out > MAX_MONEY:
        raise InvalidTransaction(f"the outputs add up to {total_out} sat, more than exist")
    if total_in < total_out:
        raise InsufficientInputs(
            f"the inputs hold {total_in} sat but the outputs pay {total_out} sat "
            f"({total_out - total_in} sat short)"
        )
    fee = total_in - total_out
    if max_fee is not None and fee > max_fee:
        raise InvalidTransaction(
            f"the fee would be {fee} sat, above the cap of {max_fee} sat (missing change?)"
        )
    tx = Transaction(
        version,
        tuple(TxIn(c.outpoint, b"", sequence) for c in coins),
        tuple(outputs),
        locktime,
    )
    unsigned = UnsignedTransaction(tx, tuple(coins))
    if unsigned.estimated_vsize * 4 > MAX_STANDARD_TX_WEIGHT:
        raise InvalidTransaction(
            f"the transaction would weigh up to {unsigned.estimated_vsize * 4} WU, above the "
            f"standard limit of {MAX_STANDARD_TX_WEIGHT}; split it"
        )
    return unsigned
