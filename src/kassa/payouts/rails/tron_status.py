"""Following a TRON payout transaction on chain: where it is, and whether it paid.

``status`` reads ``gettransactioninfobyid``: in a block it is ``MINED`` until the solidified
(irreversible) chain has it too (``/walletsolidity``), then ``FINAL`` or ``FAILED``; a TRC-20
payout is final only with receipt ``SUCCESS`` *and* the token contract's ``Transfer`` log from the
hot address to the destination for the exact amount. ``fee_paid`` is the receipt's ``fee`` (all
sun burned). A transaction in no block is ``DEAD`` only once the *solidified* block's time has
reached its expiration and the solidified chain does not hold it: no later block can include it
and no fork can bring back one that did (stricter than the head block, which a fork may still
replace). Before that it is ``PENDING`` while the node's pool holds it
(``gettransactionfrompending``) and ``UNKNOWN`` otherwise (the worker sends the same JSON
again).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from eth_hash.auto import keccak

from kassa.chains.tron.address import TronAddress, parse_tron_address
from kassa.chains.tron.api import TronApi, TronApiError, TronReceipt, TronTransportError
from kassa.money import TRX, USDT_TRC20, Money
from kassa.payouts.rails.base import RailUnavailable, StoredTx, TxState, TxStatus

__all__ = ["TRANSFER_TOPIC", "TronTxWatcher", "time_of"]

TRANSFER_TOPIC = keccak(b"Transfer(address,address,uint256)")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_of(ms: int) -> datetime:
    """The time of a TRON timestamp or expiration (milliseconds since the epoch)."""
    return _EPOCH + timedelta(milliseconds=ms)


class TronTxWatcher:
    """Reads the status of the hot address's (``hot``) payout transactions from ``api``;
    ``token`` names the TRC-20 contract whose Transfer log proves a USDT payout paid."""

    def __init__(
        self,
        api: TronApi,
        *,
        hot: Callable[[], TronAddress],
        token: Callable[[], TronAddress],
    ) -> None:
        self.api = api
        self._hot = hot
        self._token = token

    def status(self, tx: StoredTx) -> TxStatus:
        """What the chain says of ``tx`` now (see the module docstring); raises
        `RailUnavailable` when the node cannot be asked."""
        try:
            return self._status(tx)
        except TronApiError as error:
            raise RailUnavailable(f"TRON node: {error}") from None

    def _status(self, tx: StoredTx) -> TxStatus:
        receipt = self.api.transaction_info(tx.txid)
        if receipt is not None and receipt.info.block_number > 0:
            return self._included(tx, receipt, self.api.transaction_info(tx.txid, solid=True))
        expiration_ms = int(tx.spend["expiration_ms"])
        # The solidified block first, then the solidified chain's answer: whatever it says
        # was true at that block or later, and no block after it can include the transaction.
        solid = self.api.solid_now_block()
        if solid.timestamp_ms >= expiration_ms:
            final = self.api.transaction_info(tx.txid, solid=True)
            if final is None:
                return TxStatus(
                    TxState.DEAD,
                    f"expired at {time_of(expiration_ms).isoformat()} and in no block up to the "
                    f"solidified block {solid.number} of {time_of(solid.timestamp_ms).isoformat()}",
                )
            return self._included(tx, final, final)
        if self._in_pool(tx.txid):
            return TxStatus(TxState.PENDING, "in the node's pool")
        return TxStatus(TxState.UNKNOWN, "the node does not know it")

    def _in_pool(self, txid: str) -> bool:
        try:
            return self.api.pending_transaction(txid) is not None
        except TronTransportError as error:
            if error.status_code == 404:  # a node older than gettransactionfrompending
                return False
            raise

    def _included(self, tx: StoredTx, receipt: TronReceipt, final: TronReceipt | None) -> TxStatus:
        number = receipt.info.block_number
        head = self.api.now_block()
        block = self.api.block_header(number)
        block_hash = block.block_id if block is not None else None
        confirmations = max(0, head.number - number + 1)
        if final is None:
            return TxStatus(
                TxState.MINED,
                "in a block, not yet solidified",
                block_number=number,
                block_hash=block_hash,
                confirmations=confirmations,
            )
        problem = self._problem(tx, final)
        return TxStatus(
            TxState.FAILED if problem else TxState.FINAL,
            problem or "solidified",
            block_number=number,
            block_hash=block_hash,
            confirmations=confirmations,
            fee_paid=Money(final.fee, TRX),
        )

    def _problem(self, tx: StoredTx, receipt: TronReceipt) -> str:
        """Why a solidified transaction did not pay, or "" when it did."""
        info = receipt.info
        line = tx.lines[0]
        if info.failed or (info.receipt_result not in (None, "SUCCESS")):
            reason = receipt.result_message or info.receipt_result or "FAILED"
            return f"the transaction failed on chain: {reason}"
        if line.amount.asset != USDT_TRC20:
            return ""
        token, hot = self._token(), self._hot()
        destination = parse_tron_address(line.destination)
        expected = (
            TRANSFER_TOPIC,
            bytes(12) + hot.evm_bytes,
            bytes(12) + destination.evm_bytes,
        )
        paid = any(
            log.address == token
            and log.topics == expected
            and log.data == line.amount.amount.to_bytes(32, "big")
            for log in info.logs
        )
        if not paid:
            return (
                f"receipt SUCCESS but no Transfer event of {line.amount} from {hot.text} to "
                f"{destination.text} by {token.text}"
            )
        return ""
