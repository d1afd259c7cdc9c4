"""Blocks and their java-tron JSON, and the transaction-info (receipt) JSON.

A block id is java-tron's: 8 bytes of the block number (big-endian) followed by the last 24
bytes of the header hash, so `id[6:8]` (`ref_block_bytes`) is the low 16 bits of the number and
`id[8:16]` (`ref_block_hash`) is a piece of the hash. The header hash is sha256 over a fixed
concatenation of number, timestamp, parent id, transaction root, witness and version — not
java-tron's protobuf header, which no client recomputes. Blocks are signed by the single
witness, the genesis account.

JSON follows java-tron's proto3 printing: zero numbers are left out (the genesis block has no
`number` and no `timestamp`), an empty block has no `transactions` key, and a transaction info
omits fees that are zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import coincurve

from kassa_dev.devnet.tron.codec import hex_utf8, render_address, sha256
from kassa_dev.devnet.tron.execution import Outcome
from kassa_dev.devnet.tron.transactions import JsonObject, SignedTransaction, TriggerCall

BLOCK_VERSION = 30


@dataclass(frozen=True)
class IncludedTransaction:
    tx: SignedTransaction
    outcome: Outcome
    block_number: int
    block_timestamp: int


@dataclass(frozen=True)
class Block:
    number: int
    timestamp: int
    """Milliseconds since the epoch."""
    parent_id: bytes
    witness: bytes
    tx_trie_root: bytes
    block_id: bytes
    transactions: tuple[IncludedTransaction, ...]

    @property
    def id_hex(self) -> str:
        return self.block_id.hex()

    @property
    def header_hash(self) -> bytes:
        return _header_hash(
            self.number, self.timestamp, self.parent_id, self.tx_trie_root, self.witness
        )


def _header_hash(
    number: int, timestamp: int, parent_id: bytes, tx_trie_root: bytes, witness: bytes
) -> bytes:
    return sha256(
        number.to_bytes(8, "big")
        + timestamp.to_bytes(8, "big")
        + parent_id
        + tx_trie_root
        + witness
        + BLOCK_VERSION.to_bytes(4, "big")
    )


def transaction_root(txids: list[bytes]) -> bytes:
    """Merkle root of the txids (pairwise sha256; an odd last node moves up unchanged)."""
    if not txids:
        return bytes(32)
    level = txids
    while len(level) > 1:
        paired = [sha256(level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def make_block(
    number: int,
    timestamp: int,
    parent_id: bytes,
    witness: bytes,
    included: list[tuple[SignedTransaction, Outcome]],
) -> Block:
    root = transaction_root([tx.txid_bytes for tx, _ in included])
    header_hash = _header_hash(number, timestamp, parent_id, root, witness)
    return Block(
        number=number,
        timestamp=timestamp,
        parent_id=parent_id,
        witness=witness,
        tx_trie_root=root,
        block_id=number.to_bytes(8, "big") + header_hash[8:],
        transactions=tuple(
            IncludedTransaction(
                tx=tx, outcome=outcome, block_number=number, block_timestamp=timestamp
            )
            for tx, outcome in included
        ),
    )


def block_json(
    block: Block, visible: bool, witness_key: bytes, *, detail: bool = True
) -> JsonObject:
    """A block as java-tron answers it; without ``detail`` (``getblock``'s default) only its
    id and header, not its transactions."""
    raw: JsonObject = {}
    if block.number:
        raw["number"] = block.number
    raw["txTrieRoot"] = block.tx_trie_root.hex()
    raw["witness_address"] = render_address(block.witness, visible)
    raw["parentHash"] = block.parent_id.hex()
    raw["version"] = BLOCK_VERSION
    if block.timestamp:
        raw["timestamp"] = block.timestamp
    header: JsonObject = {"raw_data": raw}
    if block.number:
        # Like java-tron's genesis, block 0 carries no witness signature.
        signature = coincurve.PrivateKey(witness_key).sign_recoverable(
            block.header_hash, hasher=None
        )
        header["witness_signature"] = signature.hex()
    body: JsonObject = {"blockID": block.id_hex, "block_header": header}
    if detail and block.transactions:
        body["transactions"] = [
            included.tx.to_json(visible, included.outcome.contract_ret)
            for included in block.transactions
        ]
    return body


def transaction_info_json(included: IncludedTransaction) -> JsonObject:
    """`gettransactioninfobyid`: fee, block, receipt, logs, and the failure if there was one."""
    outcome = included.outcome
    info: JsonObject = {"id": included.tx.txid}
    if outcome.fee:
        info["fee"] = outcome.fee
    info["blockNumber"] = included.block_number
    info["blockTimeStamp"] = included.block_timestamp
    info["contractResult"] = [outcome.contract_result.hex()]
    call = included.tx.raw.call
    if isinstance(call, TriggerCall):
        info["contract_address"] = call.contract.hex()
    receipt: JsonObject = {}
    for key, value in (
        ("energy_fee", outcome.energy_fee),
        ("energy_usage_total", outcome.energy_usage_total),
        ("net_usage", outcome.net_usage),
        ("net_fee", outcome.net_fee),
    ):
        if value:
            receipt[key] = value
    if outcome.is_contract_call:
        receipt["result"] = outcome.contract_ret
    info["receipt"] = receipt
    if outcome.logs:
        info["log"] = [
            {
                # Log addresses are 20-byte EVM addresses in java-tron's receipts (no 41).
                "address": log.address[1:].hex(),
                "topics": [topic.hex() for topic in log.topics],
                "data": log.data.hex(),
            }
            for log in outcome.logs
        ]
    if outcome.failed:
        info["result"] = "FAILED"
        info["resMessage"] = hex_utf8(outcome.res_message)
    return info
