"""Following a Bitcoin payout transaction on chain: where it is, proven from blocks where the
node's transaction index cannot tell.

``status`` reads ``getrawtransaction <txid> true``: final with ``confirmations`` confirmations,
mined below that, pending in the mempool. "Not found" proves nothing: a node without a full
transaction index (Core without ``-txindex``, or with its index catching up) says so of mined
transactions too. So when the node does not know it and an input is spent in the chain, the
blocks since the transaction was signed (``spend.final_height_at_signing``, `SIGNED_AFTER`, the
last block final then) are read for the transaction spending it: this very txid → mined or
final from that block; another transaction in a final block (a replacement that won, or anyone
else) → DEAD; in no block since → spent before this one existed, DEAD; in a block not final
yet, or only in the mempool → UNKNOWN (rebroadcast) with the reason. DEAD is never said of a
transaction that may be in the chain. Settling a final one finds its block the same way
(`BtcTxWatcher.mined_at`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kassa.chains.btc.rpc import BtcNodeError, BtcRpc, RpcError
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.btc.tx import OutPoint, Transaction
from kassa.chains.scanning import ChainHead
from kassa.payouts.rails.base import RailUnavailable, StoredTx, TxState, TxStatus

__all__ = ["LEGACY_TIME_MARGIN_SECONDS", "SIGNED_AFTER", "BtcTxWatcher"]

RPC_INVALID_ADDRESS_OR_KEY = -5
"""Core's answer to ``getrawtransaction`` for a transaction it does not know."""

SIGNED_AFTER = "final_height_at_signing"
"""Key of ``spend``: the chain's last final block when the transaction was signed."""

LEGACY_TIME_MARGIN_SECONDS = 4 * 3600
"""For a transaction stored without `SIGNED_AFTER`: blocks stamped this long before it was
signed are the last read for its inputs' spender (block times may be two hours fast)."""


class BtcTxWatcher:
    """Reads the status of payout transactions from ``rpc``; ``scanner`` says which blocks are
    final (``confirmations`` make a block final)."""

    def __init__(self, rpc: BtcRpc, scanner: BtcScanner, *, confirmations: int) -> None:
        self.rpc = rpc
        self.scanner = scanner
        self.confirmations = confirmations

    def status(self, tx: StoredTx) -> TxStatus:
        """What the chain says of ``tx`` now (see the module docstring); raises
        `RailUnavailable` when the node cannot be asked."""
        try:
            return self._status(tx)
        except BtcNodeError as error:
            raise RailUnavailable(f"Bitcoin node: {error}") from error

    def _status(self, tx: StoredTx) -> TxStatus:
        known = self._lookup(tx.txid)
        if known is not None:
            return self._known_status(tx, known)
        inputs = [i.outpoint for i in Transaction.parse(bytes.fromhex(tx.raw)).inputs]
        in_mempool: list[str] = []
        in_chain: list[str] = []
        for outpoint in inputs:
            if self.rpc.get_tx_out(outpoint.txid, outpoint.vout, include_mempool=True) is not None:
                continue
            if self.rpc.get_tx_out(outpoint.txid, outpoint.vout, include_mempool=False) is None:
                in_chain.append(str(outpoint))
            else:
                in_mempool.append(str(outpoint))
        if in_chain:
            # "Not found" is no proof the transaction is not in a block: a node without a full
            # transaction index (Core without -txindex, or its index catching up) says so of
            # mined transactions too. Only the block that spent the input tells.
            head = self.scanner.head()
            spenders, bounded = self._spent_in_chain(tx, inputs, head)
            mine = [o for o in in_chain if o in spenders and spenders[o].txid == tx.txid]
            if mine:
                return self._block_status(tx, spenders[mine[0]], head)
            # Mined meanwhile (relayed from elsewhere)? Then it is not dead after all.
            known = self._lookup(tx.txid)
            if known is not None:
                return self._known_status(tx, known)
            for spent in in_chain:
                spender = spenders.get(spent)
                if spender is not None and spender.height <= head.final_height:
                    return TxStatus(
                        TxState.DEAD,
                        f"input {spent} was spent by a different transaction, "
                        f"{spender.txid}, in final block {spender.height}",
                    )
            for spent in in_chain:
                if spent not in spenders and bounded is not None:
                    return TxStatus(
                        TxState.DEAD,
                        f"input {spent} was spent by a different transaction in a final "
                        f"block at or below {bounded}, before this one was signed",
                    )
            for spent in in_chain:
                spender = spenders.get(spent)
                if spender is not None:
                    return TxStatus(
                        TxState.UNKNOWN,
                        f"input {spent} is spent by transaction {spender.txid} in block "
                        f"{spender.height}, which is not final yet",
                    )
            return TxStatus(
                TxState.UNKNOWN,
                f"input {in_chain[0]} is spent in the chain, but the node does not know this "
                "transaction and the block that spent the input was not found; it may be "
                "this one, so it is not dead",
            )
        if in_mempool:
            return TxStatus(
                TxState.UNKNOWN,
                f"input {in_mempool[0]} is spent by another transaction in the node's mempool",
            )
        return TxStatus(TxState.UNKNOWN, "the node does not know it; its inputs are unspent")

    def _spent_in_chain(
        self, tx: StoredTx, inputs: Sequence[OutPoint], head: ChainHead
    ) -> tuple[dict[str, _Spender], int | None]:
        """Which transaction spends each of ``inputs`` in the blocks since ``tx`` was signed,
        and the last block that was final before it was (None for a transaction stored
        without it: then the blocks back to a while before ``created_at`` are read, and an
        input spent in none of them proves nothing).

        Blocks up to the one final at signing cannot hold ``tx`` or any later version of its
        spend; an input spent in one of them was spent by someone else."""
        outpoints = {str(o) for o in inputs}
        signed_after = tx.spend.get(SIGNED_AFTER)
        if type(signed_after) is int:
            return self._spenders(outpoints, range(max(signed_after + 1, 0), head.height + 1)), (
                signed_after
            )
        # Stored before the height was recorded: read back from the tip to a block stamped
        # well before the transaction was signed (block times may run two hours fast).
        found: dict[str, _Spender] = {}
        oldest = tx.created_at.timestamp() - LEGACY_TIME_MARGIN_SECONDS
        for height in range(head.height, -1, -1):
            block_hash, block = self._block(height)
            for spent, spender in _block_spenders(block, outpoints, height, block_hash).items():
                found.setdefault(spent, spender)
            time = block.get("time")
            if type(time) is not int or time < oldest:
                break
        return found, None

    def _block_status(self, tx: StoredTx, spender: _Spender, head: ChainHead) -> TxStatus:
        """The status of ``tx`` found in the block that spent its inputs."""
        confirmations = head.height - spender.height + 1
        if confirmations >= self.confirmations:
            return TxStatus(
                TxState.FINAL,
                block_number=spender.height,
                block_hash=spender.block_hash,
                confirmations=confirmations,
                fee_paid=tx.fee,
            )
        return TxStatus(
            TxState.MINED,
            f"{confirmations} of {self.confirmations} confirmations",
            block_number=spender.height,
            block_hash=spender.block_hash,
            confirmations=confirmations,
        )

    def mined_at(self, tx: StoredTx, inputs: Sequence[OutPoint]) -> tuple[str, int] | None:
        """(block hash, height) of the block holding ``tx``, None if the node has it in none:
        from its transaction index, else from the block that spent its inputs."""
        found = self._lookup(tx.txid)
        block_hash = None if found is None else found.get("blockhash")
        if block_hash:
            height = self.rpc.get_block_header(str(block_hash)).get("height")
            if type(height) is not int:
                raise RailUnavailable(f"getblockheader {block_hash}: no height")
            return str(block_hash), height
        spenders, _ = self._spent_in_chain(tx, inputs, self.scanner.head())
        for spender in spenders.values():
            if spender.txid == tx.txid:
                return spender.block_hash, spender.height
        return None

    def _lookup(self, txid: str) -> dict[str, Any] | None:
        try:
            return self.rpc.get_raw_transaction(txid)
        except RpcError as error:
            # Core: -5 "No such mempool or blockchain transaction"; bcoin: -1 "not found".
            if error.code == RPC_INVALID_ADDRESS_OR_KEY or "not found" in error.message.lower():
                return None
            raise

    def _known_status(self, tx: StoredTx, found: Mapping[str, Any]) -> TxStatus:
        block_hash = found.get("blockhash")
        confirmations = found.get("confirmations") or 0
        if not block_hash or type(confirmations) is not int or confirmations < 1:
            return TxStatus(TxState.PENDING, "in the node's mempool")
        height = self.rpc.get_block_header(str(block_hash)).get("height")
        block_number = height if type(height) is int else None
        if confirmations >= self.confirmations:
            return TxStatus(
                TxState.FINAL,
                block_number=block_number,
                block_hash=str(block_hash),
                confirmations=confirmations,
                fee_paid=tx.fee,
            )
        return TxStatus(
            TxState.MINED,
            f"{confirmations} of {self.confirmations} confirmations",
            block_number=block_number,
            block_hash=str(block_hash),
            confirmations=confirmations,
        )

    def _spenders(self, outpoints: set[str], heights: range) -> dict[str, _Spender]:
        """Which transaction spends each of ``outpoints`` in the blocks at ``heights``."""
        found: dict[str, _Spender] = {}
        for height in heights:
            block_hash, block = self._block(height)
            found.update(_block_spenders(block, outpoints, height, block_hash))
        return found

    def _block(self, height: int) -> tuple[str, dict[str, Any]]:
        block_hash = self.rpc.get_block_hash(height)
        return block_hash, self.rpc.get_block(block_hash)


@dataclass(frozen=True, slots=True)
class _Spender:
    """The transaction spending an input, and the block it is in."""

    txid: str
    height: int
    block_hash: str


def _block_spenders(
    block: Mapping[str, Any], outpoints: set[str], height: int, block_hash: str
) -> dict[str, _Spender]:
    found: dict[str, _Spender] = {}
    for item in block.get("tx", ()):
        for vin in item.get("vin", ()):
            if "coinbase" in vin:
                continue
            spent = f"{vin['txid']}:{vin['vout']}"
            if spent in outpoints:
                found[spent] = _Spender(str(item["txid"]), height, block_hash)
    return found
