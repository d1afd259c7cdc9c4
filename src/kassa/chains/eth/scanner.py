"""The Ethereum adapter of the `ChainScanner` port: native ETH and ERC-20 Transfer logs, over
raw JSON-RPC (`EthRpc`).

Design:
* `head` reads the ``latest`` block (number and hash in one answer). Finality is explicit:
  `EthFinality.TAG` asks for the ``finalized`` block (post-merge finality, docs/domain.md
  §4); the first answer decides for the scanner's lifetime whether the node supports the tag,
  and a node that refuses it falls back to ``tip - confirmations + 1``. A node that knows the
  tag but has finalized nothing yet makes nothing final. `EthFinality.CONFIRMATIONS` always
  counts confirmations: the devnet needs it, because ganache answers ``finalized`` with the
  latest block and would make every block final at once.
* `block` costs one round trip however many addresses are watched: a JSON-RPC batch of
  ``eth_getBlockByNumber(h, true)`` and ``eth_getLogs`` for the block's ERC-20 ``Transfer``
  events of *any* contract (a node without batches gets them one by one). Only what pays a
  watched address is decoded: the recipient's lower-case hex is looked up first, and only a
  hit is validated, checksummed and turned into a transfer.
  - Native ETH: transactions with a recipient and a non-zero value, ``position`` =
    `NATIVE_POSITION`, sender = ``from``. A transaction's success is only in its receipt, so
    the receipts of the transactions paying a *watched* address are fetched, in one more
    batch, and only those native transfers are reported (a guessed success flag for the
    others would be a lie). Value moved by contract-internal calls is not seen (it would need
    tracing; docs/domain.md §4).
  - Tokens: logs with exactly three topics (ERC-721's Transfer has a fourth, the token id) and
    a 32-byte amount, whose ``to`` is watched; ``position`` = the log's ordinal among its
    transaction's Transfer logs (stable when a reorg re-mines the transaction elsewhere; the
    block-wide ``logIndex`` is not), sender = the
    token's ``from``, ``token_contract`` = the emitting contract, ``canonical`` = it is the
    configured USDT contract. A reverted transaction leaves no logs, so these are successful.
    Every emitter is reported, so the watcher can record fakes as ignored, with the reason.
* A reorg between the two requests would mix two blocks; every receipt and log must carry the
  block's hash, or `ChainMoved` is raised and the watcher retries on its next tick.
Addresses are reported EIP-55 checksummed; hashes as the node prints them (``0x``, lower case);
amounts as exact ``int`` wei / token minor units.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from eth_hash.auto import keccak

from kassa.chains.eth.address import checksum_encode, parse_eth_address
from kassa.chains.eth.rpc import (
    EthNodeError,
    EthRpc,
    RpcError,
    UnexpectedResponse,
    block_tag,
    quantity,
)
from kassa.chains.network import Chain
from kassa.chains.scanning import (
    NATIVE_POSITION,
    ChainBlock,
    ChainHead,
    ChainTransfer,
    SenderKind,
)
from kassa.money import AssetCode

__all__ = [
    "TRANSFER_TOPIC",
    "BlockNotFound",
    "ChainMoved",
    "EthFinality",
    "EthScanner",
]

log = logging.getLogger(__name__)

TRANSFER_TOPIC = "0x" + keccak(b"Transfer(address,address,uint256)").hex()
"""topic0 of ERC-20 (and ERC-721) ``Transfer`` events."""

_WORD_HEX = 64


class BlockNotFound(EthNodeError, LookupError):
    """No block at that height on the node's chain (above the tip)."""


class ChainMoved(EthNodeError):
    """The node's chain changed while a block was being read; read it again."""


class EthFinality(StrEnum):
    TAG = "tag"
    """The node's ``finalized`` block; confirmations if the node does not know the tag."""
    CONFIRMATIONS = "confirmations"
    """``tip - confirmations + 1``, whatever the node says (devnets, non-PoS chains)."""


class EthScanner:
    """`ChainScanner` for Ethereum and its USDT ERC-20 (``usdt_contract``)."""

    def __init__(
        self,
        rpc: EthRpc,
        *,
        usdt_contract: str,
        confirmations: int,
        finality: EthFinality | Literal["tag", "confirmations"] = EthFinality.TAG,
    ) -> None:
        if type(confirmations) is not int or confirmations < 1:
            raise ValueError(f"confirmations must be a positive int, got {confirmations!r}")
        self.rpc = rpc
        self.usdt_contract = parse_eth_address(usdt_contract).text
        self.confirmations = confirmations
        self.finality = EthFinality(finality)
        self._tag_supported: bool | None = None
        """Whether the node answers the ``finalized`` tag; None until it was asked."""

    @property
    def chain(self) -> Chain:
        return Chain.ETH

    # ------------------------------------------------------------------ the port

    def head(self) -> ChainHead:
        latest = self.rpc.get_block("latest", full=False)
        if latest is None:
            raise UnexpectedResponse("the node has no latest block")
        tip = quantity(latest.get("number"), "block.number")
        return ChainHead(tip, _hash(latest.get("hash")), self._final_height(tip))

    def block_hash(self, height: int) -> str | None:
        if height < 0:
            return None
        found = self.rpc.get_block(height, full=False)
        return None if found is None else _hash(found.get("hash"))

    def block(self, height: int, watched: frozenset[str]) -> ChainBlock:
        # The block and its Transfer logs in one round trip (a JSON-RPC batch).
        found, logs = self.rpc.batch(
            [
                ("eth_getBlockByNumber", (block_tag(height), True)),
                ("eth_getLogs", (_logs_filter(height),)),
            ],
            return_errors=True,
        )
        if isinstance(found, Exception):
            raise found
        if found is None:
            raise BlockNotFound(f"no Ethereum block at height {height} (above the tip)")
        raw = _dict(found, "eth_getBlockByNumber")
        if quantity(raw.get("number"), "block.number") != height:
            raise UnexpectedResponse(f"asked for block {height}, got {raw.get('number')}")
        if isinstance(logs, Exception):
            raise logs
        if not isinstance(logs, list) or not all(isinstance(e, dict) for e in logs):
            raise UnexpectedResponse(f"eth_getLogs: expected a list of logs, got {logs!r}")
        block_hash = _hash(raw.get("hash"))
        transfers = self._native(raw, block_hash, watched)
        transfers += self._tokens(height, block_hash, logs, watched)
        return ChainBlock(
            height=height,
            hash=block_hash,
            parent_hash=_hash(raw.get("parentHash")),
            time=datetime.fromtimestamp(quantity(raw.get("timestamp"), "block.timestamp"), UTC),
            transfers=tuple(transfers),
        )

    # ------------------------------------------------------------------ finality

    def _final_height(self, tip: int) -> int:
        by_confirmations = tip - self.confirmations + 1
        if self.finality is EthFinality.CONFIRMATIONS or self._tag_supported is False:
            return by_confirmations
        try:
            finalized = self.rpc.get_block("finalized", full=False)
        except RpcError as error:
            if self._tag_supported:
                raise  # it answered before: this is a real failure, not a missing feature
            self._tag_supported = False
            log.warning(
                "the Ethereum node does not know the 'finalized' tag (%s); counting %d "
                "confirmations instead",
                error,
                self.confirmations,
            )
            return by_confirmations
        self._tag_supported = True
        if finalized is None:
            return -1  # the node knows the tag but has finalized nothing yet
        return min(quantity(finalized.get("number"), "finalized.number"), tip)

    # ------------------------------------------------------------------ transfers

    def _native(
        self, raw: Mapping[str, Any], block_hash: str, watched: frozenset[str]
    ) -> list[ChainTransfer]:
        paid = []
        for item in _list(raw.get("transactions"), "block.transactions"):
            to = item.get("to") if type(item) is dict else _dict(item, "block.transactions[]")
            if to is None:
                continue  # contract creation
            if type(to) is not str:
                raise UnexpectedResponse(f"tx.to: expected a 20-byte 0x address, got {to!r}")
            # Only a watched recipient is decoded further: a block holds hundreds of others.
            if to.lower() not in watched:
                continue
            value = quantity(item.get("value"), "tx.value")
            if value == 0:
                continue
            paid.append((item, _address(to, "tx.to"), value, _hash(item.get("hash"))))
        if not paid:
            return []
        # A native transfer's success is only in its receipt: one batch for the block's.
        receipts = self.rpc.batch(
            [("eth_getTransactionReceipt", (txid,)) for _, _, _, txid in paid]
        )
        return [
            ChainTransfer(
                chain=Chain.ETH,
                asset=AssetCode.ETH.value,
                txid=txid,
                position=NATIVE_POSITION,
                to_address=to,
                amount=value,
                sender=_address(tx.get("from"), "tx.from"),
                sender_kind=SenderKind.KNOWN,
                success=_succeeded(receipt, txid, block_hash),
            )
            for (tx, to, value, txid), receipt in zip(paid, receipts, strict=True)
        ]

    def _tokens(
        self,
        height: int,
        block_hash: str,
        logs: list[dict[str, Any]],
        watched: frozenset[str],
    ) -> list[ChainTransfer]:
        transfers = []
        ordinal: dict[str, int] = {}
        live = [e for e in logs if not e.get("removed")]
        indexes = [quantity(e.get("logIndex"), "log.logIndex") for e in live]
        if indexes != sorted(indexes):
            live = [e for _, e in sorted(zip(indexes, live, strict=True), key=lambda p: p[0])]
        for entry in live:
            if entry.get("blockHash") != block_hash and _hash(entry.get("blockHash")) != block_hash:
                raise ChainMoved(f"the logs of block {height} belong to another block now")
            txid = entry.get("transactionHash")
            if type(txid) is not str:
                raise UnexpectedResponse(f"expected a 32-byte 0x hash, got {txid!r}")
            # The position is the log's ordinal among its transaction's Transfer logs, not the
            # block-wide logIndex: re-mined in another block after a reorg, the same transfer
            # keeps its (txid, position) key and is recognised, not recorded twice.
            position = ordinal.get(txid, 0)
            ordinal[txid] = position + 1
            topics = entry.get("topics")
            if type(topics) is not list:
                raise UnexpectedResponse(f"log.topics: expected a list, got {topics!r}")
            if len(topics) != 3 or str(topics[0]).lower() != TRANSFER_TOPIC:
                continue  # ERC-721 (token id indexed) or another event
            # Before decoding anything: is the recipient (the last 20 bytes) watched?
            word = topics[2]
            if type(word) is not str or "0x" + word[-40:].lower() not in watched:
                continue
            to = _topic_address(word)
            sender = _topic_address(topics[1])
            amount = _word(entry.get("data"))
            if to is None or sender is None or amount is None:
                continue  # not ABI-encoded as ERC-20's Transfer(address,address,uint256)
            contract = _address(entry.get("address"), "log.address")
            transfers.append(
                ChainTransfer(
                    chain=Chain.ETH,
                    asset=AssetCode.USDT_ERC20.value,
                    txid=_hash(txid),
                    position=position,
                    to_address=to,
                    amount=amount,
                    sender=sender,
                    sender_kind=SenderKind.KNOWN,
                    success=True,  # logs exist only for transactions that did not revert
                    token_contract=contract,
                    canonical=contract == self.usdt_contract,
                )
            )
        return transfers


def _logs_filter(height: int) -> dict[str, object]:
    return {"fromBlock": hex(height), "toBlock": hex(height), "topics": [TRANSFER_TOPIC]}


def _succeeded(receipt: object, txid: str, block_hash: str) -> bool:
    if receipt is None:
        raise ChainMoved(f"the receipt of {txid} is not in block {block_hash} any more")
    receipt = _dict(receipt, "eth_getTransactionReceipt")
    if _hash(receipt.get("blockHash")) != block_hash:
        raise ChainMoved(f"the receipt of {txid} is not in block {block_hash} any more")
    status = receipt.get("status")
    if status is None:
        # Pre-Byzantium receipts carry a state root instead; no current chain has them.
        raise UnexpectedResponse(f"the receipt of {txid} has no status")
    return quantity(status, "receipt.status") == 1


# --------------------------------------------------------------------------- decoding


def _hash(value: object) -> str:
    if not isinstance(value, str) or len(value) != 66 or not value.startswith("0x"):
        raise UnexpectedResponse(f"expected a 32-byte 0x hash, got {value!r}")
    try:
        bytes.fromhex(value[2:])
    except ValueError:
        raise UnexpectedResponse(f"expected a 32-byte 0x hash, got {value!r}") from None
    return value.lower()


def _address(value: object, what: str) -> str:
    """The EIP-55 form of a 20-byte address the node printed (in any case)."""
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        try:
            return checksum_encode(bytes.fromhex(value[2:]))
        except ValueError:
            pass
    raise UnexpectedResponse(f"{what}: expected a 20-byte 0x address, got {value!r}")


def _topic_address(topic: object) -> str | None:
    """An indexed address parameter: 12 zero bytes then the address; None if not that."""
    if not isinstance(topic, str) or len(topic) != 2 + _WORD_HEX or not topic.startswith("0x"):
        return None
    try:
        word = bytes.fromhex(topic[2:])
    except ValueError:
        return None
    if any(word[:12]):
        return None
    return checksum_encode(word[12:])


def _word(data: object) -> int | None:
    """The uint256 of a log's data, if the data is exactly one 32-byte word."""
    if not isinstance(data, str) or len(data) != 2 + _WORD_HEX or not data.startswith("0x"):
        return None
    try:
        return int.from_bytes(bytes.fromhex(data[2:]), "big")
    except ValueError:
        return None


def _dict(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnexpectedResponse(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise UnexpectedResponse(f"{what}: expected a list, got {type(value).__name__}")
    return value
