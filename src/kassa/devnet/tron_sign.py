"""Build and sign the faucet's TRON transactions offline with tronpy, behind a typed surface.

tronpy is untyped, so its use is confined here. Transactions are built with `offline=True` on a
given reference block (no node call) and signed with the simulator's genesis key; the caller
broadcasts the returned JSON to `wallet/broadcasttransaction`. No memo is ever set: tronpy leaves
`raw_data.data` out of an offline txID, which a real node (and the simulator) rejects.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from tronpy import Tron, keys
from tronpy.contract import Contract
from tronpy.providers import HTTPProvider

__all__ = ["genesis_address", "trc20_transfer", "trx_transfer"]

_TRANSFER_ABI: list[dict[str, Any]] = [
    {
        "name": "transfer",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    }
]


@cache
def _genesis_key() -> Any:
    # The simulator's published devnet genesis key; it owns all TRX and USDT at block 0.
    from kassa.devnet.tron.config import DEFAULT_GENESIS_KEY_HEX

    return keys.PrivateKey(bytes.fromhex(DEFAULT_GENESIS_KEY_HEX))


def genesis_address() -> str:
    """Base58 address of the genesis account."""
    return str(_genesis_key().public_key.to_base58check_address())


@cache
def _offline_client() -> Any:
    # Offline builds never touch the provider; a dead loopback URL makes any accidental call fail
    # fast instead of reaching a public TRON endpoint (tronpy's default).
    return Tron(provider=HTTPProvider("http://127.0.0.1:9"))


def _check_address(address: str) -> str:
    if not isinstance(address, str) or not keys.is_base58check_address(address):
        raise ValueError(f"{address!r} is not a TRON address (base58check, T…)")
    return address


def trx_transfer(to: str, sun: int, ref_block_id: str) -> dict[str, Any]:
    """A signed TransferContract paying `sun` from the genesis account to `to`."""
    key = _genesis_key()
    owner = key.public_key.to_base58check_address()
    builder = _offline_client().trx.transfer(owner, _check_address(to), sun)
    signed = builder.build(offline=True, ref_block_id=ref_block_id).sign(key)
    return dict(signed.to_json())


def trc20_transfer(
    contract: str, to: str, amount: int, ref_block_id: str, fee_limit: int
) -> dict[str, Any]:
    """A signed TriggerSmartContract calling `transfer(to, amount)` on `contract` from genesis."""
    key = _genesis_key()
    owner = key.public_key.to_base58check_address()
    token = Contract(addr=_check_address(contract), abi=_TRANSFER_ABI, client=_offline_client())
    builder = token.functions.transfer(_check_address(to), amount).with_owner(owner)
    signed = builder.fee_limit(fee_limit).build(offline=True, ref_block_id=ref_block_id).sign(key)
    return dict(signed.to_json())
