"""The TRON adapter of the `ChainScanner` port, over java-tron's HTTP API (`TronApi`).

Design:
* ``head``: the tip is the newest block's header (``wallet/getblock`` without ``detail``);
  the final height is TRON's solidified block, from ``walletsolidity/getblock`` or, for a node
  whose solidity API is not reachable, from ``wallet/getnodeinfo`` (`SoliditySource`). It never
  exceeds the tip read just before it. ``block_hash(h)`` reads block h's header alike. Headers
  only: ``getnowblock`` answers the whole block, and a mainnet block is hundreds of kilobytes
  of JSON to decode three times a tick (a node without ``getblock`` is still asked for it).
* ``block(h)``: ``wallet/getblockbynum`` gives the TRX transfers; the receipts of the block's
  smart-contract calls come from ``wallet/gettransactioninfobyblocknum`` (only requested when
  the block has such calls). The two are separate requests, so the receipts are checked against
  the block (same transactions, same block timestamp) and both are read again if the chain moved
  in between; after `attempts` tries `TronChainMoved` is raised and the watcher's next tick
  sorts the reorganisation out. A height the node has no block at raises `TronBlockNotFound`.
* TRX: each ``TransferContract`` is one transfer at `NATIVE_POSITION`, sender its owner, amount
  in sun, successful only when the transaction's ``contractRet`` is ``SUCCESS``.
* TRC-20: every log with three topics, the first being ``Transfer(address,address,uint256)``,
  and a 32-byte amount is a transfer: ``from`` and ``to`` are the last 20 bytes of topics 1
  and 2 behind the 0x41 prefix, ``token_contract`` the emitting contract, ``canonical`` whether
  that is the configured USDT contract, success the receipt's ``result == "SUCCESS"``. Every
  such transfer is reported with asset ``USDT-TRC20``; the watcher ignores non-canonical ones.
* Position of a log: its index among its own transaction's logs (Transfer or not), starting
  at 0. A transaction re-mined in another block after a reorg keeps its logs, so the same
  transfer keeps its ``(txid, position)`` deposit key and is recognised, not recorded twice.
* A reverted or out-of-energy call leaves no logs. So that a customer's failed payment is still
  visible (recorded as ignored, never credited), a failed call of ``transfer(to, amount)`` or
  ``transferFrom(from, to, amount)`` is reported from its call data with ``success=False`` at
  position 0, where its log would have been.
Only transfers to watched addresses are returned, and only their transactions and receipts
are decoded strictly (`kassa.chains.tron.api_decode`); the rest of the block's JSON is walked
once, looking up each TRX recipient as printed and each Transfer log's recipient after one
Base58Check encoding.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from kassa.chains._base58 import b58check_encode
from kassa.chains.network import Chain
from kassa.chains.scanning import NATIVE_POSITION, ChainBlock, ChainHead, ChainTransfer, SenderKind
from kassa.chains.tron.address import TronAddress, parse_tron_address
from kassa.chains.tron.api import (
    TransferContract,
    TriggerSmartContract,
    TronApi,
    TronApiError,
    TronTransaction,
    TronTransactionInfo,
    TronUnexpectedAnswer,
)
from kassa.chains.tron.api_decode import Reader, decode_transaction, decode_transaction_info
from kassa.money import AssetCode

__all__ = [
    "TRANSFER_EVENT_TOPIC",
    "SoliditySource",
    "TronBlockNotFound",
    "TronChainMoved",
    "TronScanner",
]

TRANSFER_EVENT_TOPIC = bytes.fromhex(
    "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
)
"""keccak256("Transfer(address,address,uint256)")."""
TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")
"""transfer(address,uint256)."""
TRANSFER_FROM_SELECTOR = bytes.fromhex("23b872dd")
"""transferFrom(address,address,uint256)."""
SUCCESS = "SUCCESS"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WORD = 32


class SoliditySource(StrEnum):
    """Where `TronScanner.head` reads the solidified block number from."""

    SOLIDITY_API = "walletsolidity"
    """``walletsolidity/getblock`` (the solidity port of a self-hosted node, 8091)."""
    NODE_INFO = "getnodeinfo"
    """``wallet/getnodeinfo``'s ``solidityBlock`` (the full-node port only)."""


class TronChainMoved(TronApiError):
    """A block changed or vanished while it was being read (a reorganisation in progress)."""

    code = "tron_chain_moved"
    title = "TRON chain changed during the scan"


class TronBlockNotFound(TronChainMoved, LookupError):
    """No block at that height on the node's chain (above the tip, or rolled back)."""

    code = "tron_block_not_found"
    title = "No TRON block at that height"


def _block_time(timestamp_ms: int) -> datetime:
    # Exact: no float division of milliseconds.
    return _EPOCH + timedelta(milliseconds=timestamp_ms)


def _address_word(word: bytes) -> TronAddress:
    # The last 20 bytes: event topics are zero-padded, and TRON wallets sometimes put the 0x41
    # prefix into the ABI word of call data, which the TVM masks off too.
    return TronAddress.from_bytes(word[-20:])


class TronScanner:
    """`ChainScanner` for TRON: TRX and TRC-20 (USDT) transfers, solidified-block finality."""

    def __init__(
        self,
        api: TronApi,
        *,
        usdt_contract: str,
        solidity: SoliditySource = SoliditySource.SOLIDITY_API,
        attempts: int = 3,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.api = api
        self.usdt_contract = parse_tron_address(usdt_contract)
        self.solidity = solidity
        self.attempts = attempts

    @property
    def chain(self) -> Chain:
        return Chain.TRON

    # -- ChainScanner --------------------------------------------------------------------------

    def head(self) -> ChainHead:
        tip = self.api.now_block()
        if self.solidity is SoliditySource.SOLIDITY_API:
            final = self.api.solid_now_block().number
        else:
            final = self.api.node_info().solid_number
        # The tip was read first; blocks produced since then are not part of this head.
        return ChainHead(tip.number, tip.block_id, min(final, tip.number))

    def block_hash(self, height: int) -> str | None:
        if height < 0:
            return None
        header = self.api.block_header(height)
        return None if header is None else header.block_id

    def block(self, height: int, watched: frozenset[str]) -> ChainBlock:
        for _ in range(self.attempts):
            header = self._read_block(height)
            if header is None:
                raise TronBlockNotFound(f"the node has no block {height}", path=_BLOCK_PATH)
            scan = _scan_transactions(header.reader, watched)
            infos = self._receipts(header, scan, watched)
            if infos is not None:
                return ChainBlock(
                    height=header.number,
                    hash=header.block_id,
                    parent_hash=header.parent_id,
                    time=_block_time(header.timestamp_ms),
                    transfers=tuple(self._transfers(scan, infos, watched)),
                )
        raise TronChainMoved(
            f"block {height} and its receipts disagreed {self.attempts} times in a row",
            path=_INFOS_PATH,
        )

    # -- reading a block -----------------------------------------------------------------------
    #
    # A block holds hundreds of transfers and Kassa watches few of them: the JSON is walked
    # once, and only a transaction that pays a watched address (or a failed contract call,
    # reported from its call data) is decoded strictly into `TronTransaction` and
    # `TronTransactionInfo`. The others cost a few dictionary reads, and one Base58Check
    # encoding per Transfer log (its recipient is hex; watched addresses are T…).

    def _read_block(self, height: int) -> _Header | None:
        """``wallet/getblockbynum``'s header; None when the node has no such block."""
        reader = Reader(self.api.post(_BLOCK_PATH, {"num": height}), _BLOCK_PATH, "answer")
        if not reader.data:
            return None
        header = reader.child("block_header").child("raw_data")
        number = header.integer("number", 0)
        if number != height:
            raise TronUnexpectedAnswer(f"asked for block {height}, got {number}", path=_BLOCK_PATH)
        return _Header(
            reader=reader,
            number=number,
            block_id=reader.block_id("blockID"),
            parent_id=header.block_id("parentHash"),
            timestamp_ms=header.integer("timestamp", 0),
        )

    def _receipts(
        self, header: _Header, scan: _Scan, watched: frozenset[str]
    ) -> dict[str, TronTransactionInfo] | None:
        """The decoded receipts, by txid, of the block's contract calls that may pay a watched
        address (a Transfer log to one, or a failed call); None if the receipts belong to
        another block at the same height (the chain moved between the two requests)."""
        if not scan.calls:
            return {}
        data = self.api.post(_INFOS_PATH, {"num": header.number})
        if isinstance(data, Mapping) and not data:
            data = []
        if not isinstance(data, list):
            raise TronUnexpectedAnswer(
                "the answer is not a list of transaction infos", path=_INFOS_PATH
            )
        ids: set[str] = set()
        same_block = True
        wanted: dict[str, TronTransactionInfo] = {}
        for index, info in enumerate(data):
            where = f"answer[{index}]"
            if type(info) is not dict:
                raise TronUnexpectedAnswer(f"{where} is not a JSON object", path=_INFOS_PATH)
            txid = _txid(info, "id", _INFOS_PATH, where)
            number = _integer(info, "blockNumber", _INFOS_PATH, where)
            if number != header.number:
                raise TronUnexpectedAnswer(
                    f"asked for block {header.number}, got the receipt of {txid} in block {number}",
                    path=_INFOS_PATH,
                )
            ids.add(txid)
            if _integer(info, "blockTimeStamp", _INFOS_PATH, where) != header.timestamp_ms:
                same_block = False
            if _may_pay(info, txid in scan.calls, watched):
                wanted[txid] = decode_transaction_info(Reader(info, _INFOS_PATH, where))
        if not (scan.calls.keys() <= ids <= scan.txids and same_block):
            return None
        return wanted

    def _transfers(
        self, scan: _Scan, infos: Mapping[str, TronTransactionInfo], watched: frozenset[str]
    ) -> Iterator[ChainTransfer]:
        for txid, raw, where in scan.decode:
            info = infos.get(txid)
            if info is None and txid not in scan.paid:
                continue
            tx = decode_transaction(Reader(raw, _BLOCK_PATH, where))
            if txid in scan.paid:
                yield from self._trx_transfers(tx, watched)
            if info is not None:
                yield from self._token_transfers(tx, info, watched)

    def _token_transfers(
        self, tx: TronTransaction, info: TronTransactionInfo, watched: frozenset[str]
    ) -> Iterator[ChainTransfer]:
        success = info.receipt_result == SUCCESS and not info.failed
        reported = False
        for position, log in enumerate(info.logs):
            if len(log.topics) != 3 or log.topics[0] != TRANSFER_EVENT_TOPIC:
                continue
            if len(log.data) != _WORD or any(len(topic) != _WORD for topic in log.topics):
                continue  # not the standard TRC-20 event, whatever its topic says
            reported = True
            to = _address_word(log.topics[2])
            if to.text not in watched:
                continue
            yield self._token_transfer(
                tx,
                position,
                contract=log.address,
                sender=_address_word(log.topics[1]),
                to=to,
                amount=int.from_bytes(log.data, "big"),
                success=success,
            )
        if not success and not reported:
            failed = self._failed_token_call(tx, 0)
            if failed is not None and failed.to_address in watched:
                yield failed

    def _trx_transfers(
        self, tx: TronTransaction, watched: frozenset[str]
    ) -> Iterator[ChainTransfer]:
        transfers = [c for c in tx.contracts if isinstance(c, TransferContract)]
        if len(transfers) > 1:
            # java-tron accepts one contract per transaction; two could not both be keyed
            # (txid, NATIVE_POSITION).
            raise TronUnexpectedAnswer(
                f"transaction {tx.txid} holds {len(transfers)} TRX transfers",
                path="wallet/getblockbynum",
            )
        for transfer in transfers:
            if transfer.to.text not in watched:
                continue
            yield ChainTransfer(
                chain=Chain.TRON,
                asset=AssetCode.TRX.value,
                txid=tx.txid,
                position=NATIVE_POSITION,
                to_address=transfer.to.text,
                amount=transfer.amount,
                sender=transfer.owner.text,
                sender_kind=SenderKind.KNOWN,
                success=tx.contract_ret == SUCCESS,
            )

    def _failed_token_call(self, tx: TronTransaction, position: int) -> ChainTransfer | None:
        for call in tx.contracts:
            if not isinstance(call, TriggerSmartContract):
                continue
            selector, args = call.data[:4], call.data[4:]
            if selector == TRANSFER_SELECTOR and len(args) >= 2 * _WORD:
                sender, to, amount = call.owner, args[:_WORD], args[_WORD : 2 * _WORD]
            elif selector == TRANSFER_FROM_SELECTOR and len(args) >= 3 * _WORD:
                sender = _address_word(args[:_WORD])
                to, amount = args[_WORD : 2 * _WORD], args[2 * _WORD : 3 * _WORD]
            else:
                continue
            return self._token_transfer(
                tx,
                position,
                contract=call.contract,
                sender=sender,
                to=_address_word(to),
                amount=int.from_bytes(amount, "big"),
                success=False,
            )
        return None

    def _token_transfer(
        self,
        tx: TronTransaction,
        position: int,
        *,
        contract: TronAddress,
        sender: TronAddress,
        to: TronAddress,
        amount: int,
        success: bool,
    ) -> ChainTransfer:
        return ChainTransfer(
            chain=Chain.TRON,
            asset=AssetCode.USDT_TRC20.value,
            txid=tx.txid,
            position=position,
            to_address=to.text,
            amount=amount,
            sender=sender.text,
            sender_kind=SenderKind.KNOWN,
            success=success,
            token_contract=contract.text,
            canonical=contract.raw == self.usdt_contract.raw,
        )


# --------------------------------------------------------------------------- the JSON walk

_BLOCK_PATH = "wallet/getblockbynum"
_INFOS_PATH = "wallet/gettransactioninfobyblocknum"
_TRANSFER_TOPIC_HEX = TRANSFER_EVENT_TOPIC.hex()
_TRON_PREFIX = b"\x41"


@dataclass(frozen=True, slots=True)
class _Header:
    reader: Reader
    number: int
    block_id: str
    parent_id: str
    timestamp_ms: int


@dataclass(slots=True)
class _Scan:
    """What one walk over a block's transactions found."""

    txids: set[str] = field(default_factory=set)
    calls: dict[str, int] = field(default_factory=dict)
    """Transactions with a contract call (their receipts are read), by txid."""
    paid: set[str] = field(default_factory=set)
    """Transactions with a TRX transfer to a watched address."""
    decode: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    """Every transaction, in block order (txid, JSON, where): decoded in full only if it
    pays a watched address."""


def _scan_transactions(reader: Reader, watched: frozenset[str]) -> _Scan:
    items = reader.data.get("transactions", [])
    if not isinstance(items, list):
        raise reader.problem("transactions", "a list")
    scan = _Scan()
    for index, tx in enumerate(items):
        where = f"answer.transactions[{index}]"
        if type(tx) is not dict:
            raise TronUnexpectedAnswer(f"{where} is not a JSON object", path=_BLOCK_PATH)
        txid = _txid(tx, "txID", _BLOCK_PATH, where)
        scan.txids.add(txid)
        raw = tx.get("raw_data")
        contracts = raw.get("contract", []) if type(raw) is dict else None
        if type(contracts) is not list:
            decode_transaction(Reader(tx, _BLOCK_PATH, where))  # raises, saying what is wrong
            continue
        natives = 0
        for contract in contracts:
            kind = contract.get("type") if type(contract) is dict else None
            if kind == "TransferContract":
                natives += 1
                if _pays_watched(contract, watched):
                    scan.paid.add(txid)
            elif kind == "TriggerSmartContract":
                scan.calls[txid] = index
            elif type(kind) is not str:
                decode_transaction(Reader(tx, _BLOCK_PATH, where))  # raises
        if natives > 1:
            # java-tron accepts one contract per transaction; two could not both be keyed
            # (txid, NATIVE_POSITION).
            raise TronUnexpectedAnswer(
                f"transaction {txid} holds {natives} TRX transfers", path=_BLOCK_PATH
            )
        scan.decode.append((txid, tx, where))
    return scan


def _pays_watched(contract: dict[str, Any], watched: frozenset[str]) -> bool:
    """Whether a TransferContract's recipient may be watched: True for a watched ``T…``
    address, and for a malformed contract too (the strict decoder then says what is wrong)."""
    parameter = contract.get("parameter")
    value = parameter.get("value") if type(parameter) is dict else None
    to = value.get("to_address") if type(value) is dict else None
    if type(to) is not str:
        return True
    if to in watched:
        return True
    if len(to) == 42 and to.startswith("41"):  # the hex form, without ``visible``
        try:
            return b58check_encode(bytes.fromhex(to)) in watched
        except ValueError:
            return True
    return False


def _may_pay(info: dict[str, Any], call: bool, watched: frozenset[str]) -> bool:
    """Whether a receipt may hold a transfer to a watched address: a standard Transfer log to
    one, or a failed contract call (reported from its call data). True for a malformed log
    too, so that the strict decoder says what is wrong."""
    if call:
        receipt = info.get("receipt")
        result = receipt.get("result") if type(receipt) is dict else None
        if result != SUCCESS or info.get("result") == "FAILED":
            return True
    logs = info.get("log", [])
    if type(logs) is not list:
        return True
    for log in logs:
        topics = log.get("topics") if type(log) is dict else None
        if type(topics) is not list:
            return True
        if len(topics) != 3:
            continue
        first, to = topics[0], topics[2]
        if type(first) is not str or type(to) is not str:
            return True
        if first.lower() != _TRANSFER_TOPIC_HEX or len(to) != 2 * _WORD:
            continue
        try:
            text = b58check_encode(_TRON_PREFIX + bytes.fromhex(to[24:]))
        except ValueError:
            return True
        if text in watched:
            return True
    return False


def _txid(data: dict[str, Any], key: str, path: str, where: str) -> str:
    """A txid as a set key. Its hex digits are checked where the transaction is decoded in
    full (it pays a watched address); a txid of another shape is refused here."""
    value = data.get(key)
    if type(value) is str and len(value) == 64:
        return value.lower()
    return Reader(data, path, where).hex_bytes(key, length=32).hex()  # raises the error


def _integer(data: dict[str, Any], key: str, path: str, where: str) -> int:
    value = data.get(key)
    if type(value) is int:
        return value
    return Reader(data, path, where).integer(key, 0)
