"""The Ethereum `MempoolSource`: pending ETH payments and USDT transfers to watched addresses.

Design:
* One ``txpool_content`` per pass (geth, erigon and ganache serve it) lists every pending and
  queued transaction with its fields; a node without it is asked for the ``pending`` block
  instead (fewer transactions: only what the node would mine next).
* Native ETH: a transaction to a watched address with a value, keyed ``txid:-1`` as in a block.
* USDT: a direct call of the canonical contract's ``transfer(to, amount)`` or
  ``transferFrom(from, to, amount)``, decoded from the calldata. Mined, such a call emits one
  Transfer log, whose key in a block is ``txid:0`` (the scanner numbers Transfer logs within
  their transaction, not within the block), so the pending deposit is keyed ``txid:0`` and the
  block scan continues it. Transfers made inside other contracts (routers, multisig wallets)
  are invisible before mining: they show up with their block. Other token contracts are not
  reported here; the block scan records them as ignored.
* `fate` of a transaction gone from the pool: mined (with its block height), pending, or gone —
  "replaced" when another transaction of its sender and nonce is in the pool or was mined,
  else "dropped".
"""

from __future__ import annotations

from typing import Any

from kassa.chains.eth.address import parse_eth_address
from kassa.chains.eth.rpc import EthRpc, RpcError, UnexpectedResponse, quantity
from kassa.chains.eth.scanner import _address, _hash
from kassa.chains.network import Chain
from kassa.chains.scanning import (
    NATIVE_POSITION,
    ChainTransfer,
    Fate,
    PoolSnapshot,
    SenderKind,
    TxFate,
)
from kassa.money import AssetCode

TRANSFER_SELECTOR = "a9059cbb"
"""``transfer(address,uint256)``."""
TRANSFER_FROM_SELECTOR = "23b872dd"
"""``transferFrom(address,address,uint256)``."""
TOKEN_POSITION = 0
"""The key position of a directly called token transfer: its only Transfer log's ordinal."""

_WORD = 64


class EthMempool:
    """`MempoolSource` for Ethereum and the canonical USDT (``usdt_contract``)."""

    def __init__(self, rpc: EthRpc, *, usdt_contract: str) -> None:
        self.rpc = rpc
        self.usdt_contract = parse_eth_address(usdt_contract).text.lower()
        self._senders: dict[str, tuple[str, int]] = {}
        """``(from, nonce)`` of pending transactions that pay a watched address."""
        self._nonces: dict[tuple[str, int], str] = {}
        """``(from, nonce)`` → txid of every transaction in the pool at the last pass."""
        self._txpool: bool | None = None
        """Whether the node serves ``txpool_content``; None until asked."""

    @property
    def chain(self) -> Chain:
        return Chain.ETH

    def pool(self, watched: frozenset[str]) -> PoolSnapshot:
        txids: set[str] = set()
        transfers: list[ChainTransfer] = []
        nonces: dict[tuple[str, int], str] = {}
        for tx in self._pending():
            txid = _hash(tx.get("hash"))
            txids.add(txid)
            sender = (_address(tx.get("from"), "tx.from"), quantity(tx.get("nonce"), "tx.nonce"))
            nonces[sender] = txid
            found = self._transfer(tx, txid, watched)
            if found is not None:
                transfers.append(found)
                self._senders[txid] = sender
        self._nonces = nonces
        return PoolSnapshot(frozenset(txids), tuple(transfers))

    def fate(self, txid: str) -> TxFate:
        tx = self.rpc.get_transaction_by_hash(txid)
        if tx is not None:
            if tx.get("blockNumber") is None:
                return TxFate(Fate.PENDING)
            self._senders.pop(txid, None)
            return TxFate(Fate.MINED, height=quantity(tx.get("blockNumber"), "tx.blockNumber"))
        sender = self._senders.pop(txid, None)
        if sender is not None:
            address, nonce = sender
            replacement = self._nonces.get(sender)
            if replacement is not None and replacement != txid:
                return TxFate(
                    Fate.GONE,
                    f"replaced: nonce {nonce} of {address} is used by transaction {replacement}",
                )
            if self.rpc.get_transaction_count(address, "latest") > nonce:
                return TxFate(
                    Fate.GONE,
                    f"replaced: nonce {nonce} of {address} was used by another transaction",
                )
        return TxFate(Fate.GONE, "it left the node's pool unmined (dropped or expired)")

    # ------------------------------------------------------------------ reading the pool

    def _pending(self) -> list[dict[str, Any]]:
        if self._txpool is not False:
            try:
                content = self.rpc.call("txpool_content")
            except RpcError:
                if self._txpool:
                    raise  # it answered before: a real failure
                self._txpool = False
            else:
                self._txpool = True
                return _pool_transactions(content)
        block = self.rpc.get_block("pending", full=True)
        if block is None:
            return []
        found = block.get("transactions")
        if not isinstance(found, list) or not all(isinstance(t, dict) for t in found):
            raise UnexpectedResponse("pending block: transactions is not a list of objects")
        return found

    def _transfer(
        self, tx: dict[str, Any], txid: str, watched: frozenset[str]
    ) -> ChainTransfer | None:
        to = tx.get("to")
        if to is None:
            return None  # contract creation
        to = _address(to, "tx.to")
        sender = _address(tx.get("from"), "tx.from")
        if to.lower() == self.usdt_contract:
            return self._token(tx, txid, sender, watched)
        value = quantity(tx.get("value"), "tx.value")
        if value == 0 or to.lower() not in watched:
            return None
        return ChainTransfer(
            chain=Chain.ETH,
            asset=AssetCode.ETH.value,
            txid=txid,
            position=NATIVE_POSITION,
            to_address=to,
            amount=value,
            sender=sender,
            sender_kind=SenderKind.KNOWN,
            success=True,
        )

    def _token(
        self, tx: dict[str, Any], txid: str, caller: str, watched: frozenset[str]
    ) -> ChainTransfer | None:
        data = tx.get("input", tx.get("data"))
        if not isinstance(data, str) or not data.startswith("0x"):
            return None
        body = data[2:].lower()
        selector, words = body[:8], body[8:]
        if selector == TRANSFER_SELECTOR and len(words) == 2 * _WORD:
            sender, to_word, amount_word = caller, words[:_WORD], words[_WORD:]
        elif selector == TRANSFER_FROM_SELECTOR and len(words) == 3 * _WORD:
            from_word = words[:_WORD]
            if from_word[:24].strip("0"):
                return None
            sender = _address("0x" + from_word[24:], "transferFrom.from")
            to_word, amount_word = words[_WORD : 2 * _WORD], words[2 * _WORD :]
        else:
            return None
        if to_word[:24].strip("0"):
            return None  # not an ABI-encoded address: the call would revert
        to = _address("0x" + to_word[24:], "transfer.to")
        amount = int(amount_word, 16)
        if amount == 0 or to.lower() not in watched:
            return None
        return ChainTransfer(
            chain=Chain.ETH,
            asset=AssetCode.USDT_ERC20.value,
            txid=txid,
            position=TOKEN_POSITION,
            to_address=to,
            amount=amount,
            sender=sender,
            sender_kind=SenderKind.KNOWN,
            success=True,
            token_contract=_address(tx.get("to"), "tx.to"),
            canonical=True,
        )


def _pool_transactions(content: object) -> list[dict[str, Any]]:
    """Every transaction of ``txpool_content``'s ``pending`` and ``queued`` maps."""
    if not isinstance(content, dict):
        raise UnexpectedResponse(f"txpool_content: expected an object, got {content!r}")
    found = []
    for section in ("pending", "queued"):
        by_sender = content.get(section) or {}
        if not isinstance(by_sender, dict):
            raise UnexpectedResponse(f"txpool_content.{section}: expected an object")
        for by_nonce in by_sender.values():
            if not isinstance(by_nonce, dict):
                raise UnexpectedResponse(f"txpool_content.{section}: expected nonce maps")
            for tx in by_nonce.values():
                if not isinstance(tx, dict):
                    raise UnexpectedResponse(f"txpool_content.{section}: expected transactions")
                found.append(tx)
    return found
