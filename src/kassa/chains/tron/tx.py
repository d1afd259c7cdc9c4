"""TRON payouts: TRX and TRC-20 transfers, built offline on a given reference block and signed.

Design:
* A TRON transaction names a recent block (TAPoS: two bytes of its number and eight of its id)
  and an expiration; once expired it can never be included, which is how the payout worker
  proves an unconfirmed payout dead before signing a new one. So the caller supplies the
  reference block id (from ``wallet/getnodeinfo`` or ``getnowblock``), the creation time from
  Kassa's clock, and optionally the expiration (default +60 s, java-tron allows up to 24 h).
* The JSON has exactly the shape tronpy's offline builder produces (addresses in ``41…`` hex),
  so java-tron and Kassa's simulator read it alike. tronpy computes the txID (sha256 of the
  protobuf ``Transaction.raw``) and makes the 65-byte recoverable signature; no memo is ever
  set, because tronpy's offline txID leaves ``raw_data.data`` out.
* The result keeps the broadcast JSON as text, ready to store before broadcasting, with the
  txID and expiration that identify the spend.
Amounts are ``int`` sun (TRX) or token minor units.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import coincurve
from eth_hash.auto import keccak
from tronpy import keys as tron_keys
from tronpy.proto import calculate_txid_from_raw_data

from kassa.chains.errors import InvalidTransaction
from kassa.chains.tron.address import TronAddress, tron_address_for_public_key

__all__ = [
    "DEFAULT_EXPIRATION_MS",
    "DEFAULT_TRC20_FEE_LIMIT",
    "MAX_EXPIRATION_MS",
    "MAX_FEE_LIMIT",
    "SignedTronTransaction",
    "sign_trc20_transfer",
    "sign_trx_transfer",
    "trc20_transfer_calldata",
    "tron_address_for_key",
]

DEFAULT_EXPIRATION_MS = 60_000
"""tronpy's and java-tron clients' default lifetime."""
MAX_EXPIRATION_MS = 24 * 60 * 60 * 1000
"""java-tron refuses an expiration further than 24 h after the creation time."""
DEFAULT_TRC20_FEE_LIMIT = 30_000_000
"""30 TRX of energy at most; a USDT transfer to a fresh address burns about 13–27 TRX."""
MAX_FEE_LIMIT = 15_000_000_000
"""java-tron's maxFeeLimit chain parameter (15 000 TRX)."""
_TRC20_TRANSFER_SELECTOR = keccak(b"transfer(address,uint256)")[:4]
_BLOCK_ID_RE = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_INT64_MAX = 2**63 - 1


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidTransaction(f"{name} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class SignedTronTransaction:
    """A signed TRON transaction: the JSON for ``wallet/broadcasttransaction`` and its
    identity."""

    txid: str
    """64 hex digits: sha256 of the protobuf raw data."""
    json_text: str
    """The broadcast body as JSON text (store it, then broadcast exactly this)."""
    sender: TronAddress
    expiration_ms: int
    """Unix milliseconds after which the network will never include it."""

    def payload(self) -> dict[str, Any]:
        """A fresh dict of the broadcast body."""
        body: dict[str, Any] = json.loads(self.json_text)
        return body


def tron_address_for_key(key: coincurve.PrivateKey) -> TronAddress:
    """The TRON address that ``key`` sends from."""
    return tron_address_for_public_key(key.public_key.format(compressed=False))


def trc20_transfer_calldata(to: TronAddress, amount: int) -> bytes:
    """ABI calldata of ``transfer(to, amount)``; the TVM sees the 20 bytes after 0x41."""
    _check_int("a token amount", amount, 1, 2**256 - 1)
    return _TRC20_TRANSFER_SELECTOR + bytes(12) + to.evm_bytes + amount.to_bytes(32, "big")


def _sign(
    key: coincurve.PrivateKey,
    contract: dict[str, Any],
    *,
    ref_block_id: str,
    timestamp_ms: int,
    expiration_ms: int | None,
    fee_limit: int | None,
) -> SignedTronTransaction:
    if not isinstance(ref_block_id, str) or not _BLOCK_ID_RE.fullmatch(ref_block_id):
        raise InvalidTransaction(f"a TRON block id is 64 hex digits, got {ref_block_id!r}")
    _check_int("timestamp_ms", timestamp_ms, 1, _INT64_MAX - MAX_EXPIRATION_MS)
    if expiration_ms is None:
        expiration_ms = timestamp_ms + DEFAULT_EXPIRATION_MS
    _check_int("expiration_ms", expiration_ms, timestamp_ms + 1, timestamp_ms + MAX_EXPIRATION_MS)
    block_id = ref_block_id.lower()
    raw_data: dict[str, Any] = {
        "contract": [contract],
        "timestamp": timestamp_ms,
        "expiration": expiration_ms,
        # TAPoS: bytes 6-7 of the block number and bytes 8-15 of the block hash.
        "ref_block_bytes": block_id[12:16],
        "ref_block_hash": block_id[16:32],
    }
    if fee_limit is not None:
        raw_data["fee_limit"] = fee_limit
    txid = str(calculate_txid_from_raw_data(raw_data))
    signature = tron_keys.PrivateKey(key.secret).sign_msg_hash(bytes.fromhex(txid))
    body = {"txID": txid, "raw_data": raw_data, "signature": [signature.hex()], "permission": None}
    return SignedTronTransaction(
        txid=txid,
        json_text=json.dumps(body, separators=(",", ":")),
        sender=tron_address_for_key(key),
        expiration_ms=expiration_ms,
    )


def _contract(kind: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "parameter": {"value": value, "type_url": f"type.googleapis.com/protocol.{kind}"},
        "type": kind,
    }


def _check_recipient(to: TronAddress) -> None:
    if to.is_zero:
        raise InvalidTransaction("refusing to send to the TRON zero address: it is burnt")


def sign_trx_transfer(
    key: coincurve.PrivateKey,
    *,
    to: TronAddress,
    amount_sun: int,
    ref_block_id: str,
    timestamp_ms: int,
    expiration_ms: int | None = None,
) -> SignedTronTransaction:
    """Sign a TransferContract of ``amount_sun`` from ``key``'s address to ``to``."""
    _check_int("amount_sun", amount_sun, 1, _INT64_MAX)
    sender = tron_address_for_key(key)
    _check_recipient(to)
    if to == sender:
        raise InvalidTransaction("TRON refuses a TRX transfer to its own sender")
    contract = _contract(
        "TransferContract",
        {"owner_address": sender.hex, "to_address": to.hex, "amount": amount_sun},
    )
    return _sign(
        key,
        contract,
        ref_block_id=ref_block_id,
        timestamp_ms=timestamp_ms,
        expiration_ms=expiration_ms,
        fee_limit=None,
    )


def sign_trc20_transfer(
    key: coincurve.PrivateKey,
    *,
    token: TronAddress,
    to: TronAddress,
    amount: int,
    ref_block_id: str,
    timestamp_ms: int,
    expiration_ms: int | None = None,
    fee_limit_sun: int = DEFAULT_TRC20_FEE_LIMIT,
) -> SignedTronTransaction:
    """Sign a TriggerSmartContract calling ``token.transfer(to, amount)`` from ``key``'s
    address, burning at most ``fee_limit_sun`` for energy."""
    sender = tron_address_for_key(key)
    _check_recipient(to)
    if to == token:
        raise InvalidTransaction(
            "refusing to send tokens to the token contract itself: most tokens keep them forever"
        )
    _check_int("fee_limit_sun", fee_limit_sun, 1, MAX_FEE_LIMIT)
    contract = _contract(
        "TriggerSmartContract",
        {
            "owner_address": sender.hex,
            "contract_address": token.hex,
            "data": trc20_transfer_calldata(to, amount).hex(),
            "call_token_value": 0,
            "call_value": 0,
            "token_id": 0,
        },
    )
    return _sign(
        key,
        contract,
        ref_block_id=ref_block_id,
        timestamp_ms=timestamp_ms,
        expiration_ms=expiration_ms,
        fee_limit=fee_limit_sun,
    )
