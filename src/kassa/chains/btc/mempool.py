"""The Bitcoin `MempoolSource`: transactions in the node's mempool that pay a watched address.

Design:
* One ``getrawmempool`` per pass lists the pool's txids; each txid not met before is decoded once
  with ``getrawtransaction`` (bcoin and Core serve pool transactions without a transaction
  index) and judged against the watched addresses of that moment; the result is kept while
  the transaction stays in the pool. A pass therefore costs one request plus one per new
  transaction. An address first watched after its payment entered the pool is found in the
  block, as without a mempool.
* Transfers are keyed as in a block (``txid:vout``): a txid commits to its outputs, so the
  block scan continues the same deposit.
* `fate` of a transaction gone from the pool: mined (the node knows it in a block), pending
  (still known unmined), or gone — "its input was spent by another transaction" (replaced by
  fee, or double-spent) when a pool transaction spends one of its inputs, or ``gettxout`` no
  longer finds one unspent; else "evicted or expired". The pool's own transactions are
  searched because bcoin's ``gettxout`` ignores mempool spends (Core's does not).
"""

from __future__ import annotations

from dataclasses import dataclass

from kassa.chains.btc.rpc import RpcError, UnexpectedResponse
from kassa.chains.btc.scanner import BtcScanner, match_key
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainTransfer, Fate, PoolSnapshot, TxFate


@dataclass(frozen=True, slots=True)
class _Pooled:
    transfers: tuple[ChainTransfer, ...]
    inputs: frozenset[tuple[str, int]]
    """The outpoints it spends."""


class BtcMempool:
    """`MempoolSource` for Bitcoin over the scanner's node (its RPC and sender resolution)."""

    def __init__(self, scanner: BtcScanner) -> None:
        self.scanner = scanner
        self.rpc = scanner.rpc
        self._pooled: dict[str, _Pooled] = {}
        self._inputs: dict[str, frozenset[tuple[str, int]]] = {}
        """Inputs of watched transactions, kept after they leave the pool until their fate."""

    @property
    def chain(self) -> Chain:
        return Chain.BTC

    def pool(self, watched: frozenset[str]) -> PoolSnapshot:
        listed = self.rpc.call("getrawmempool")
        if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
            raise UnexpectedResponse(f"getrawmempool: expected a list of txids, got {listed!r}")
        txids = frozenset(listed)
        for txid in txids - self._pooled.keys():
            try:
                tx = self.rpc.get_raw_transaction(txid)
            except RpcError:
                continue  # it left the pool between the two requests
            transfers = tuple(
                t
                for t in self.scanner.transfers_of(tx, watched)
                if match_key(t.to_address) in watched
            )
            inputs = _outpoints(tx)
            self._pooled[txid] = _Pooled(transfers, inputs)
            if transfers:
                self._inputs[txid] = inputs
        for txid in self._pooled.keys() - txids:
            del self._pooled[txid]
        return PoolSnapshot(
            txids=txids,
            transfers=tuple(t for pooled in self._pooled.values() for t in pooled.transfers),
        )

    def fate(self, txid: str) -> TxFate:
        try:
            tx = self.rpc.get_raw_transaction(txid)
        except RpcError:
            tx = None  # unknown to the node
        if tx is not None:
            if tx.get("blockhash"):
                self._inputs.pop(txid, None)
                return TxFate(Fate.MINED)
            return TxFate(Fate.PENDING)
        inputs = self._inputs.pop(txid, frozenset())
        for prev_txid, vout in sorted(inputs):
            spent_in_pool = any((prev_txid, vout) in p.inputs for p in self._pooled.values())
            if spent_in_pool or self.rpc.get_tx_out(prev_txid, vout) is None:
                return TxFate(
                    Fate.GONE,
                    f"its input {prev_txid}:{vout} was spent by another transaction "
                    "(replaced by fee, or double-spent)",
                )
        return TxFate(Fate.GONE, "it left the node's mempool unmined (evicted or expired)")


def _outpoints(tx: dict[str, object]) -> frozenset[tuple[str, int]]:
    inputs = tx.get("vin")
    if not isinstance(inputs, list):
        raise UnexpectedResponse("getrawtransaction: vin is not a list")
    found = []
    for vin in inputs:
        if not isinstance(vin, dict) or "coinbase" in vin:
            continue
        prev, vout = vin.get("txid"), vin.get("vout")
        if not isinstance(prev, str) or type(vout) is not int:
            raise UnexpectedResponse(f"getrawtransaction: bad input {vin!r}")
        found.append((prev, vout))
    return frozenset(found)
