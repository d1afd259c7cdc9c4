"""The Bitcoin adapter of the `ChainScanner` port, over a node's JSON-RPC (`BtcRpc`).

Design:
* `head` reads tip height and hash in one ``getblockchaininfo`` (two calls could straddle a
  new block); a block is final with ``confirmations`` confirmations, so
  ``final_height = tip - confirmations + 1``.
* `block` is ``getblockhash`` then ``getblock <hash> 2`` (every transaction decoded; the bcoin
  launcher maps Core's integer verbosity). Every output that pays an address becomes a transfer
  of asset ``BTC`` with ``position`` = vout and an exact satoshi amount; outputs without an
  address (OP_RETURN, bare multisig) are skipped. The address is read from Core's
  ``scriptPubKey.address`` or bcoin's (pre-v22 Core) ``scriptPubKey.addresses: [one]``.
* The sender (docs/domain.md §4, "originating wallet") is resolved only for transactions paying a
  watched address, because it costs one ``getrawtransaction`` per distinct previous transaction
  (the node needs ``-txindex`` / bcoin ``--index-tx``). All inputs spending from one address →
  `SenderKind.KNOWN`; several addresses, an input script without an address, or a coinbase →
  `SenderKind.AMBIGUOUS` with no sender. Outputs of unwatched transactions are reported with
  sender None / AMBIGUOUS, meaning "not resolved"; the watcher never records them.
  Decoded previous outputs are cached by txid: a txid commits to its outputs, so a reorg
  can never make a cached entry wrong.
* Matching uses the watcher's match key (bech32 lower-cased, base58 as is), duplicated here in
  `match_key` because `kassa.chains` sits below `kassa.deposits` in the import layers.
* `fee_rate` (for payouts) asks ``estimatesmartfee`` and falls back to a configured rate when
  the node has none (always on regtest), never below the 1 sat/vB relay floor.
Block times are the header's ``time`` (UTC). Heights are never assumed: a block's reported
height is checked against the height asked for.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
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
        transfers: list[ChainTransfer] = []
        for tx in _list(raw.get("tx"), "getblock.tx"):
            transfers.extend(self.transfers_of(_dict(tx, "getblock.tx[]"), watched))
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
        """The transfers of one decoded transaction (of a block, or of the mempool)."""
        txid = _str(tx.get("txid"), "tx.txid")
        outputs = _outputs(tx)
        # Later transactions of the same block may spend these outputs: remember them.
        self._remember(txid, _addresses_by_position(outputs))
        paid = [o for o in outputs if o.address is not None]
        if not paid:
            return []
        sender: str | None = None
        kind = SenderKind.AMBIGUOUS
        if any(match_key(o.address) in watched for o in paid if o.address is not None):
            sender = self._sender(_list(tx.get("vin"), "tx.vin"))
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
            for o in paid
            if o.address is not None
        ]

    def _sender(self, inputs: Iterable[object]) -> str | None:
        """The one address every input spends from, or None (several, none, coinbase)."""
        senders: set[str] = set()
        for item in inputs:
            vin = _dict(item, "tx.vin[]")
            if "coinbase" in vin:
                return None  # newly mined coins have no sender
            prev_txid = _str(vin.get("txid"), "vin.txid")
            prev_vout = _int(vin.get("vout"), "vin.vout")
            addresses = self._prevout_addresses(prev_txid)
            if prev_vout >= len(addresses):
                raise UnexpectedResponse(f"{prev_txid} has no output {prev_vout}")
            address = addresses[prev_vout]
            if address is None:
                return None  # a script without an address: the origin is not one wallet
            senders.add(match_key(address))
            if len(senders) > 1:
                return None
        return next(iter(senders), None)

    def _prevout_addresses(self, txid: str) -> tuple[str | None, ...]:
        cached = self._prevouts.get(txid)
        if cached is not None:
            self._prevouts.move_to_end(txid)
            return cached
        tx = self.rpc.get_raw_transaction(txid)
        addresses = _addresses_by_position(_outputs(tx))
        self._remember(txid, addresses)
        return addresses

    def _remember(self, txid: str, addresses: tuple[str | None, ...]) -> None:
        self._prevouts[txid] = addresses
        self._prevouts.move_to_end(txid)
        while len(self._prevouts) > self._cache_size:
            self._prevouts.popitem(last=False)


# --------------------------------------------------------------------------- decoding


def _outputs(tx: Mapping[str, Any]) -> list[_Output]:
    outputs = []
    for item in _list(tx.get("vout"), "tx.vout"):
        vout = _dict(item, "tx.vout[]")
        script = _dict(vout.get("scriptPubKey"), "vout.scriptPubKey")
        outputs.append(
            _Output(
                position=_int(vout.get("n"), "vout.n"),
                address=_script_address(script),
                amount=satoshi(vout.get("value")),
            )
        )
    return outputs


def _addresses_by_position(outputs: list[_Output]) -> tuple[str | None, ...]:
    by_position: list[str | None] = [None] * (max((o.position for o in outputs), default=-1) + 1)
    for output in outputs:
        by_position[output.position] = output.address
    return tuple(by_position)


def _script_address(script: Mapping[str, Any]) -> str | None:
    """The single address an output script pays, in canonical case; None if it has none."""
    address = script.get("address")  # Bitcoin Core >= 22
    if address is None:
        many = script.get("addresses")  # bcoin, Core < 22
        # Several addresses means bare multisig: no single owner to credit.
        if isinstance(many, list) and len(many) == 1:
            address = many[0]
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
