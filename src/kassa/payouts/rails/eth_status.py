"""Following an Ethereum payout transaction on chain: where it is, and whether it paid.

Status follows the deposit side's finality rule (`EthScanner.head`: the ``finalized`` tag, or
confirmations). A USDT payout is final only with receipt status 1 *and* a ``Transfer`` log of
the token contract from the hot address to the destination for the exact amount. A transaction
the node does not know is ``DEAD`` only when the sender's transaction count at a final block
has passed its nonce (another transaction used it, final); otherwise it is ``UNKNOWN`` and the
worker sends the same bytes again. This assumes the node indexes transactions (a node that
cannot find a mined transaction by hash would make it look dead; geth's default index covers
about a year).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kassa.chains.eth.rpc import EthNodeError, EthRpc, quantity
from kassa.chains.eth.scanner import TRANSFER_TOPIC, EthScanner, _hash, _topic_address, _word
from kassa.chains.scanning import ChainHead
from kassa.money import ETH, Money
from kassa.payouts.rails.base import RailUnavailable, StoredTx, TxState, TxStatus

__all__ = ["EthTxWatcher"]


class EthTxWatcher:
    """Reads the status of payout transactions from ``rpc``; ``finality`` is the deposit
    side's scanner, of which only `EthScanner.head` is asked."""

    def __init__(self, rpc: EthRpc, finality: EthScanner) -> None:
        self.rpc = rpc
        self._finality = finality

    def status(self, tx: StoredTx) -> TxStatus:
        """What the chain says of ``tx`` now; raises `RailUnavailable` when the node cannot
        be asked."""
        try:
            receipt = self.rpc.get_transaction_receipt(tx.txid)
            head = self._finality.head()
            if receipt is not None:
                return self._mined(tx, receipt, head)
            if self.rpc.get_transaction_by_hash(tx.txid) is not None:
                return TxStatus(TxState.PENDING, "in the node's mempool")
            return self._unknown(tx, head)
        except EthNodeError as error:
            raise RailUnavailable(f"Ethereum node: {error}") from None

    def _mined(self, tx: StoredTx, receipt: Mapping[str, Any], head: ChainHead) -> TxStatus:
        height = quantity(receipt.get("blockNumber"), "receipt.blockNumber")
        block_hash = _hash(receipt.get("blockHash"))
        confirmations = max(head.height - height + 1, 0)
        if height > head.final_height:
            return TxStatus(
                TxState.MINED,
                f"in block {height}, not final yet",
                block_number=height,
                block_hash=block_hash,
                confirmations=confirmations,
            )
        fee_paid = Money(
            quantity(receipt.get("gasUsed"), "receipt.gasUsed")
            * quantity(receipt.get("effectiveGasPrice"), "receipt.effectiveGasPrice"),
            ETH,
        )
        if quantity(receipt.get("status"), "receipt.status") != 1:
            state, detail = TxState.FAILED, "the transaction reverted"
        elif "token" in tx.spend and not self._paid_tokens(tx, receipt):
            line = tx.lines[0]
            state = TxState.FAILED
            detail = (
                f"no Transfer of {line.amount} from {tx.spend['from']} to {line.destination} "
                f"by {tx.spend['token']} in the receipt"
            )
        else:
            state, detail = TxState.FINAL, "final"
        return TxStatus(
            state,
            detail,
            block_number=height,
            block_hash=block_hash,
            confirmations=confirmations,
            fee_paid=fee_paid,
        )

    @staticmethod
    def _paid_tokens(tx: StoredTx, receipt: Mapping[str, Any]) -> bool:
        """Whether the token contract logged Transfer(hot → destination, exact amount)."""
        line = tx.lines[0]
        token = str(tx.spend["token"]).lower()
        sender = str(tx.spend["from"]).lower()
        destination = line.destination.lower()
        logs = receipt.get("logs")
        for entry in logs if isinstance(logs, list) else []:
            if not isinstance(entry, dict) or entry.get("removed"):
                continue
            topics = entry.get("topics")
            if (
                str(entry.get("address", "")).lower() != token
                or not isinstance(topics, list)
                or len(topics) != 3
                or str(topics[0]).lower() != TRANSFER_TOPIC
            ):
                continue
            source, target = _topic_address(topics[1]), _topic_address(topics[2])
            if (
                source is not None
                and target is not None
                and source.lower() == sender
                and target.lower() == destination
                and _word(entry.get("data")) == line.amount.amount
            ):
                return True
        return False

    def _unknown(self, tx: StoredTx, head: ChainHead) -> TxStatus:
        nonce = int(tx.spend["nonce"])
        sender = str(tx.spend["from"])
        if head.final_height >= 0:
            used = self.rpc.get_transaction_count(sender, head.final_height)
            if used > nonce:
                return TxStatus(
                    TxState.DEAD,
                    f"nonce {nonce} of {sender} was used by another transaction, final by "
                    f"block {head.final_height}",
                )
        return TxStatus(TxState.UNKNOWN, "the node does not know the transaction")
