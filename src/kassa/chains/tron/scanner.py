"""The TRON adapter of the `ChainScanner` port, over java-tron's HTTP API (`TronApi`).

Design:
* ``head``: the tip is ``wallet/getnowblock``; the final height is TRON's solidified block,
  from ``walletsolidity/getnowblock`` or, for a node whose solidity API is not reachable, from
  ``wallet/getnodeinfo`` (`SoliditySource`). It never exceeds the tip read just before it.
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
Every transfer of the block is returned; ``watched`` is not needed to keep that cheap.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from kassa.chains.network import Chain
from kassa.chains.scanning import NATIVE_POSITION, ChainBlock, ChainHead, ChainTransfer, SenderKind
from kassa.chains.tron.address import TronAddress, parse_tron_address
from kassa.chains.tron.api import (
    TransferContract,
    TriggerSmartContract,
    TronApi,
    TronApiError,
    TronBlock,
    TronTransaction,
    TronTransactionInfo,
    TronUnexpectedAnswer,
)
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
    """``walletsolidity/getnowblock`` (the solidity port of a self-hosted node, 8091)."""
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
        block = self.api.block_by_num(height)
        return None if block is None else block.block_id

    def block(self, height: int, watched: frozenset[str]) -> ChainBlock:
        for _ in range(self.attempts):
            block = self.api.block_by_num(height)
            if block is None:
                raise TronBlockNotFound(
                    f"the node has no block {height}", path="wallet/getblockbynum"
                )
            infos = self._receipts(block)
            if infos is not None:
                return ChainBlock(
                    height=block.number,
                    hash=block.block_id,
                    parent_hash=block.parent_id,
                    time=_block_time(block.timestamp_ms),
                    transfers=tuple(self._transfers(block, infos)),
                )
        raise TronChainMoved(
            f"block {height} and its receipts disagreed {self.attempts} times in a row",
            path="wallet/gettransactioninfobyblocknum",
        )

    # -- reading a block -----------------------------------------------------------------------

    def _receipts(self, block: TronBlock) -> dict[str, TronTransactionInfo] | None:
        """The receipts of the block's contract calls by txid; None if they belong to another
        block at the same height (the chain moved between the two requests)."""
        calls = {
            tx.txid
            for tx in block.transactions
            if any(isinstance(c, TriggerSmartContract) for c in tx.contracts)
        }
        if not calls:
            return {}
        infos = {info.txid: info for info in self.api.transaction_infos_by_block_num(block.number)}
        txids = {tx.txid for tx in block.transactions}
        same = calls <= infos.keys() <= txids and all(
            info.block_timestamp_ms == block.timestamp_ms for info in infos.values()
        )
        return infos if same else None

    def _transfers(
        self, block: TronBlock, infos: Mapping[str, TronTransactionInfo]
    ) -> Iterator[ChainTransfer]:
        for tx in block.transactions:
            yield from self._trx_transfers(tx)
            info = infos.get(tx.txid)
            if info is None:
                continue
            success = info.receipt_result == SUCCESS and not info.failed
            reported = False
            for position, log in enumerate(info.logs):
                if len(log.topics) != 3 or log.topics[0] != TRANSFER_EVENT_TOPIC:
                    continue
                if len(log.data) != _WORD or any(len(topic) != _WORD for topic in log.topics):
                    continue  # not the standard TRC-20 event, whatever its topic says
                reported = True
                yield self._token_transfer(
                    tx,
                    position,
                    contract=log.address,
                    sender=_address_word(log.topics[1]),
                    to=_address_word(log.topics[2]),
                    amount=int.from_bytes(log.data, "big"),
                    success=success,
                )
            if not success and not reported:
                failed = self._failed_token_call(tx, 0)
                if failed is not None:
                    yield failed

    def _trx_transfers(self, tx: TronTransaction) -> Iterator[ChainTransfer]:
        transfers = [c for c in tx.contracts if isinstance(c, TransferContract)]
        if len(transfers) > 1:
            # java-tron accepts one contract per transaction; two could not both be keyed
            # (txid, NATIVE_POSITION).
            raise TronUnexpectedAnswer(
                f"transaction {tx.txid} holds {len(transfers)} TRX transfers",
                path="wallet/getblockbynum",
            )
        for transfer in transfers:
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
