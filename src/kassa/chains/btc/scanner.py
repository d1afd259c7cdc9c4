"""The Bitcoin adapter of the `ChainScanner` port, over a node's JSON-RPC (`BtcRpc`).

Design:
* `head` reads tip height and hash in one ``getblockchaininfo`` (two calls could straddle a
  new block); a block is final with ``confirmations`` confirmations, so
  ``final_height = tip - confirmations + 1``.
* `block` is ``getblockhash`` then ``getblock <hash> 2`` (every transaction decoded; the bcoin
  launcher maps Core's integer verbosity). Only outputs paying a *watched* address become
  transfers (asset ``BTC``, ``position`` = vout, an exact satoshi amount): for the thousands of
  others only the address text is read and looked up, no amount parsed and nothing kept.
  Outputs without an address (OP_RETURN, bare multisig) are never transfers. The address is
  read from Core's ``scriptPubKey.address`` or bcoin's (pre-v22 Core) ``addresses: [one]``.
* The sender (docs/domain.md §4, "originating wallet") of each transaction paying a watched
  address: all inputs spending from one address → `SenderKind.KNOWN`; several addresses, an
  input script without an address, or a coinbase → `SenderKind.AMBIGUOUS` with no sender.
  The spent outputs come from the same block when it holds the previous transaction, else
  from ``getrawtransaction`` (the node needs ``-txindex`` / bcoin ``--index-tx``), all of a
  block's in one JSON-RPC batch (one round trip). Decoded previous outputs are cached by
  txid: a txid commits to its outputs, so a reorg can never make a cached entry wrong.
* Matching uses the watcher's match key (bech32 lower-cased, base58 as is), duplicated here in
  `match_key` because `kassa.chains` sits below `kassa.deposits` in the import layers.
* `fee_rate` (for payouts) asks ``estimatesmartfee`` and falls back to a configured rate when
  the node has none (always on regtest), never below the 1 sat/vB relay floor.
Block times are the header's ``time`` (UTC). Heights are never assumed: a block's reported
height is checked against the height asked for.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING
from enum import StrEnum
from typing import Any

from kassa.chains.btc.rpc import (
    BLOCK_HEIGHT_OUT_OF_RANGE,
    SATOSHI_PER_BTC,
    BtcNodeError,
    BtcRpc,
    RpcError,
    UnexpectedResponse,
    satoshi,
)
from kassa.chains.network import BtcNetwork, Chain
from kassa.chains.scanning import ChainBlock, ChainHead, ChainTransfer, SenderKind
from kassa.money import AssetCode

__all__ = [
    "MIN_RELAY_FEE_RATE",
    "BlockNotFound",
    "BtcScanner",
    "FeeEstimate",
    "FeeSource",
    "match_key",
]

MIN_RELAY_FEE_RATE = 1_000
"""Sat per 1000 vbytes: Bitcoin Core's default minimum relay fee (1 sat/vB)."""

_BECH32_PREFIXES = ("bc1", "tb1", "bcrt1")
_GENESIS_PARENT = "0" * 64


class BlockNotFound(BtcNodeError, LookupError):
    """No block at that height on the node's best chain (above the tip)."""


def match_key(address: str) -> str:
    """The watcher's match key of a BTC address (`kassa.deposits.addresses.match_key`):
    native segwit is case-insensitive and compared lower-cased; base58 is case-sensitive."""
    if address.lower().startswith(_BECH32_PREFIXES):
        return address.lower()
    return address


class FeeSource(StrEnum):
    NODE = "node"
    """The node's ``estimatesmartfee``."""
    FALLBACK = "fallback"
    """The configured rate: the node had no estimate (regtest, a freshly started node)."""


@dataclass(frozen=True, slots=True)
class FeeEstimate:
    sat_per_kvb: int
    """Satoshi per 1000 virtual bytes (`kassa.chains.btc.tx.fee_for_vsize`'s unit)."""
    source: FeeSource
    target_blocks: int


@dataclass(frozen=True, slots=True)
class _Output:
    position: int
    address: str | None
    amount: int
    """Satoshi."""


class BtcScanner:
    """`ChainScanner` for Bitcoin. ``confirmations`` ≥ 1 makes a block final (1 on regtest,
    6 in production); ``fallback_fee_rate`` is sat per 1000 vB when the node cannot estimate."""

    def __init__(
        self,
        rpc: BtcRpc,
        network: BtcNetwork,
        *,
        confirmations: int,
        fallback_fee_rate: int = 10 * MIN_RELAY_FEE_RATE,
        prevout_cache_size: int = 4096,
    ) -> None:
        if type(confirmations) is not int or confirmations < 1:
            raise ValueError(f"confirmations must be a positive int, got {confirmations!r}")
        if type(fallback_fee_rate) is not int or fallback_fee_rate < MIN_RELAY_FEE_RATE:
            raise ValueError(
                f"fallback_fee_rate is sat per 1000 vB, at least {MIN_RELAY_FEE_RATE}; "
                f"got {fallback_fee_rate!r}"
            )
        self.rpc = rpc
        self.network = network
        self.confirmations = confirmations
        self.fallback_fee_rate = fallback_fee_rate
        self._prevouts: OrderedDict[str, tuple[str | None, ...]] = OrderedDict()
        self._cache_size = prevout_cache_size

    @property
    def chain(self) -> Chain:
        return Chain.BTC

    # ------------------------------------------------------------------ the port

    def head(self) -> ChainHead:
        info = self.rpc.get_blockchain_info()
        tip = _int(info.get("blocks"), "getblockchaininfo.blocks")
        tip_hash = _str(info.get("bestblockhash"), "getblockchaininfo.bestblockhash")
        return ChainHead(tip, tip_hash, tip - self.confirmations + 1)

    def block_hash(self, height: int) -> str | None:
        if height < 0:
            return None
        try:
            return self.rpc.get_block_hash(height)
        except RpcError as error:
            # bcoin and Core answer a height above the tip with an error, not a null.
            if error.code == BLOCK_HEIGHT_OUT_OF_RANGE:
                return None
            raise

    def block(self, height: int, watched: frozenset[str]) -> ChainBlock:
        block_hash = self.block_hash(height)
        if block_hash is None:
            raise BlockNotFound(f"no Bitcoin block at height {height} (above the tip)")
        raw = self.rpc.get_block(block_hash)
        reported = _int(raw.get("height"), "getblock.height")
        if reported != height or raw.get("hash") != block_hash:
            raise UnexpectedResponse(
                f"asked for block {height} ({block_hash}), the node sent {reported} "
                f"({raw.get('hash')})"
            )
        txs = _list(raw.get("tx"), "getblock.tx")
        paid = []
        for item in txs:
            tx = _dict(item, "getblock.tx[]")
            outputs = _watched_outputs(tx, watched)
            if outputs:
                paid.append((tx, outputs))
        senders = self._senders([tx for tx, _ in paid], txs)
        transfers = [
            transfer
            for (tx, outputs), sender in zip(paid, senders, strict=True)
            for transfer in _transfers(tx, outputs, sender)
        ]
        return ChainBlock(
            height=height,
            hash=block_hash,
            parent_hash=_str(raw.get("previousblockhash") or _GENESIS_PARENT, "previousblockhash"),
            time=datetime.fromtimestamp(_int(raw.get("time"), "getblock.time"), UTC),
            transfers=tuple(transfers),
        )

    # ------------------------------------------------------------------ fees

    def fee_rate(self, target_blocks: int = 6) -> FeeEstimate:
        """The fee rate to confirm within `target_blocks`, in sat per 1000 vB."""
        btc_per_kvb = self.rpc.estimate_smart_fee(target_blocks)
        if btc_per_kvb is None:
            return FeeEstimate(self.fallback_fee_rate, FeeSource.FALLBACK, target_blocks)
        sats = btc_per_kvb * SATOSHI_PER_BTC
        # Round up: a fee below the estimated rate may not confirm in time.
        rate = int(sats.to_integral_value(rounding=ROUND_CEILING))
        return FeeEstimate(max(rate, MIN_RELAY_FEE_RATE), FeeSource.NODE, target_blocks)

    # ------------------------------------------------------------------ transactions

    def transfers_of(self, tx: dict[str, Any], watched: frozenset[str]) -> list[ChainTransfer]:
        """The transfers of one decoded transaction (of the mempool) to ``watched`` addresses."""
        outputs = _watched_outputs(tx, watched)
        if not outputs:
            return []
        [sender] = self._senders([tx], [])
        return _transfers(tx, outputs, sender)

    def _senders(self, txs: list[dict[str, Any]], block_txs: list[Any]) -> list[str | None]:
        """For each of ``txs``, the one address every input spends from, or None (several,
        none, coinbase). The previous transactions come from the cache, from ``block_txs``
        (a block may spend its own outputs), or from one batch of ``getrawtransaction``."""
        spends: list[list[tuple[str, int]] | None] = []
        for tx in txs:
            outpoints: list[tuple[str, int]] = []
            coinbase = False
            for item in _list(tx.get("vin"), "tx.vin"):
                vin = _dict(item, "tx.vin[]")
                if "coinbase" in vin:
                    coinbase = True  # newly mined coins have no sender
                    break
                prev = (_str(vin.get("txid"), "vin.txid"), _int(vin.get("vout"), "vin.vout"))
                outpoints.append(prev)
            spends.append(None if coinbase else outpoints)
        known: dict[str, tuple[str | None, ...]] = {}
        missing: list[str] = []
        wanted: set[str] = set()
        in_block: dict[object, Any] | None = None
        for spend in spends:
            for prev_txid, _ in spend or ():
                if prev_txid in known or prev_txid in wanted:
                    continue
                cached = self._prevouts.get(prev_txid)
                if cached is not None:
                    self._prevouts.move_to_end(prev_txid)
                    known[prev_txid] = cached
                    continue
                if in_block is None:
                    in_block = {
                        item.get("txid"): item for item in block_txs if isinstance(item, dict)
                    }
                spent = in_block.get(prev_txid)
                if spent is None:
                    missing.append(prev_txid)
                    wanted.add(prev_txid)
                else:
                    known[prev_txid] = self._remember(prev_txid, _addresses(spent))
        if missing:
            fetched = self.rpc.batch([("getrawtransaction", (txid, 1)) for txid in missing])
            for txid, tx in zip(missing, fetched, strict=True):
                known[txid] = self._remember(txid, _addresses(_dict(tx, "getrawtransaction")))
        return [None if spend is None else _sender(spend, known) for spend in spends]

    def _remember(self, txid: str, addresses: tuple[str | None, ...]) -> tuple[str | None, ...]:
        self._prevouts[txid] = addresses
        self._prevouts.move_to_end(txid)
        while len(self._prevouts) > self._cache_size:
            self._prevouts.popitem(last=False)
        return addresses


# --------------------------------------------------------------------------- decoding


def _watched_outputs(tx: Mapping[str, Any], watched: frozenset[str]) -> list[_Output]:
    """The outputs of ``tx`` that pay a watched address. Only the address text is read for
    the others: no amount, no record (a block holds thousands of outputs)."""
    found = []
    for item in _list(tx.get("vout"), "tx.vout"):
        script = item.get("scriptPubKey") if type(item) is dict else None
        if type(script) is not dict:
            _dict(item, "tx.vout[]")
            raise UnexpectedResponse(f"vout.scriptPubKey: expected an object, got {script!r}")
        address = script.get("address")  # Bitcoin Core >= 22
        if address is None:
            many = script.get("addresses")  # bcoin, Core < 22
            # Several addresses means bare multisig: no single owner to credit.
            if type(many) is not list or len(many) != 1:
                continue
            address = many[0]
        if type(address) is not str:
            raise UnexpectedResponse(f"scriptPubKey.address: expected a string, got {address!r}")
        # Nodes print bech32 in lower case, its match key; upper case (B…, T…) is legal.
        if address not in watched and (
            address[:1] not in ("B", "T") or match_key(address) not in watched
        ):
            continue
        found.append(
            _Output(
                position=_int(item.get("n"), "vout.n"),
                address=match_key(address),
                amount=satoshi(item.get("value")),
            )
        )
    return found


def _transfers(
    tx: Mapping[str, Any], outputs: list[_Output], sender: str | None
) -> list[ChainTransfer]:
    txid = _str(tx.get("txid"), "tx.txid")
    kind = SenderKind.KNOWN if sender is not None else SenderKind.AMBIGUOUS
    return [
        ChainTransfer(
            chain=Chain.BTC,
            asset=AssetCode.BTC.value,
            txid=txid,
            position=o.position,
            to_address=o.address,
            amount=o.amount,
            sender=sender,
            sender_kind=kind,
            success=True,  # a Bitcoin transaction in a block never "fails"
        )
        for o in outputs
        if o.address is not None
    ]


def _sender(
    outpoints: list[tuple[str, int]], addresses: Mapping[str, tuple[str | None, ...]]
) -> str | None:
    senders: set[str] = set()
    for prev_txid, prev_vout in outpoints:
        spent = addresses[prev_txid]
        if prev_vout >= len(spent):
            raise UnexpectedResponse(f"{prev_txid} has no output {prev_vout}")
        address = spent[prev_vout]
        if address is None:
            return None  # a script without an address: the origin is not one wallet
        senders.add(address)
        if len(senders) > 1:
            return None
    return next(iter(senders), None)


def _addresses(tx: Mapping[str, Any]) -> tuple[str | None, ...]:
    """The address (match key) each output of ``tx`` pays, by position."""
    by_position: dict[int, str | None] = {}
    for item in _list(tx.get("vout"), "tx.vout"):
        vout = _dict(item, "tx.vout[]")
        script = _dict(vout.get("scriptPubKey"), "vout.scriptPubKey")
        by_position[_int(vout.get("n"), "vout.n")] = _script_address(script)
    positions: list[str | None] = [None] * (max(by_position, default=-1) + 1)
    for position, address in by_position.items():
        positions[position] = address
    return tuple(positions)


def _single_address(script: Mapping[str, Any]) -> str | None:
    many = script.get("addresses")  # bcoin, Core < 22
    # Several addresses means bare multisig: no single owner to credit.
    if isinstance(many, list) and len(many) == 1:
        return _str(many[0], "scriptPubKey.addresses[]")
    return None


def _script_address(script: Mapping[str, Any]) -> str | None:
    """The single address an output script pays, in canonical case; None if it has none."""
    address = script.get("address")  # Bitcoin Core >= 22
    if address is None:
        address = _single_address(script)
    if address is None:
        return None
    return match_key(_str(address, "scriptPubKey.address"))


def _int(value: object, what: str) -> int:
    if type(value) is not int:
        raise UnexpectedResponse(f"{what}: expected an integer, got {value!r}")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise UnexpectedResponse(f"{what}: expected a string, got {value!r}")
    return value


def _dict(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnexpectedResponse(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise UnexpectedResponse(f"{what}: expected a list, got {type(value).__name__}")
    return value
