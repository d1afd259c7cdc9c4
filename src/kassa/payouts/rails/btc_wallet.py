"""The BTC hot wallet's coins, kept by Kassa itself (tables ``btc_hot_utxo``, ``btc_hot_sync``).

Why Kassa keeps its own coin list instead of asking a node wallet: the node runs without a
wallet (the signer holds the key, the node never sees it), bcoin's address index answers
nothing on a persistent chain (see `kassa_dev.devnet.bitcoin`), and Bitcoin Core has no cheap
"coins of this address" call without a wallet. More importantly, the payout worker must
*reserve* coins in the same database transaction that stores the signed bytes, so the coin list
has to live in the database anyway.

How the list is kept:

* `HotWallet.sync` reads final blocks only (``tip - confirmations + 1``, like the deposit
  watcher), from where it stopped (``btc_hot_sync``; the first time from ``scan_from_height``),
  with ``getblock <hash> 2``. Every output paying the hot address's script becomes a coin
  (status ``available``, with its height); every input of any transaction that spends a known
  coin marks it ``spent`` with ``spent_by_txid``. Coinbase outputs are skipped: a hot wallet is
  not mined to, and the table has no column for the 100-block maturity they would need.
* Because only final blocks are read, a reorg can only undo what the sync saw if it is deeper
  than the ``confirmations`` setting. The last scanned block's hash is kept and compared with
  the chain on every sync; if it no longer matches, `HotWalletReorg` is raised rather than
  guessing which coins survived. An operator must look.
* A sync with nothing new costs two RPC calls (the tip, and the hash at the stored height), so
  `BtcRail.check_funds` can run it every time. The sync row is locked while scanning, so two
  workers do not scan the same blocks; every write is idempotent anyway (insert-if-absent,
  "mark spent"), so a redundant scan changes nothing. When ``check_funds`` then finds the
  wallet short, it raises `ShortAfterSync`, a *recorded* refusal, so the unit of work commits
  the scan's progress instead of rolling it back.
* Kassa's own payouts reserve coins (``reserved``, ``reserved_for`` = the spend key of the
  transaction), and once final (`BtcRail.settle`) mark them spent and add their change as a new
  coin with its block height. Whichever of the sync and the settle gets there first records it;
  the other finds it recorded.
* Coin selection locks candidate rows with ``SELECT … FOR UPDATE SKIP LOCKED`` one at a time,
  largest first, until the payment and its fee are covered, so concurrent workers on
  PostgreSQL never pick the same coin and never wait on each other. SQLite has one writer at a
  time (``BEGIN IMMEDIATE``), which gives the same guarantee.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kassa.chains.btc.rpc import BtcNodeError, BtcRpc, RpcError, UnexpectedResponse, satoshi
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.btc.tx import Coin, OutPoint, dust_threshold, estimate_vsize, fee_for_vsize
from kassa.payouts.rails.base import HotWalletShort, RailUnavailable
from kassa.payouts.tables import btc_hot_sync, btc_hot_utxo

__all__ = [
    "AVAILABLE",
    "RESERVED",
    "SPENT",
    "CoinSelection",
    "HotCoin",
    "HotWallet",
    "HotWalletReorg",
    "ShortAfterSync",
    "SyncResult",
    "WalletSummary",
    "select_coins",
    "shortfall_reason",
]

AVAILABLE = "available"
RESERVED = "reserved"
SPENT = "spent"

MAX_BYTES_PER_SYNC = 64_000_000
"""Block bytes one sync reads at most (it stops after the block that crosses it; at least one
block is read): some 40 mainnet blocks, half a minute or so of decoding, or a whole regtest
chain. A first scan over a long stretch of chain is split over several calls, each one database
transaction; payouts see the coins found so far, and the shortfall reason says how far the scan
got. Set ``scan_from_height`` near the hot wallet's creation."""


class HotWalletReorg(RailUnavailable):
    """The chain no longer contains a block the coin scan already read as final: a reorg
    deeper than the ``confirmations`` setting. Coins found in the lost blocks may be gone, so
    nothing is paid until an operator has looked."""

    code = "btc_hot_wallet_reorg"
    title = "Bitcoin reorg deeper than the finality setting"


class ShortAfterSync(HotWalletShort):
    """`HotWalletShort` from ``check_funds``, raised after the coin scan wrote what it read:
    the unit of work (`kassa.db.Database.transaction`) commits that instead of rolling it back,
    so a scan that finds the wallet short still moves forward."""

    always_recorded = True


@dataclass(frozen=True, slots=True)
class HotCoin:
    """One row of ``btc_hot_utxo``."""

    txid: str
    vout: int
    value: int
    """Satoshi."""
    script_pubkey: bytes
    height: int | None
    status: str
    reserved_for: str | None
    spent_by_txid: str | None

    @property
    def outpoint(self) -> OutPoint:
        return OutPoint(self.txid, self.vout)

    def coin(self) -> Coin:
        return Coin(self.outpoint, self.value, self.script_pubkey)


@dataclass(frozen=True, slots=True)
class SyncResult:
    scanned: int
    """Blocks read by this call."""
    found: int
    """New coins paying the hot address."""
    spent: int
    """Known coins seen spent."""
    height: int
    """The last block scanned so far (``scan_from_height - 1`` before the first)."""
    final_height: int
    """The last final block of the chain now."""

    @property
    def complete(self) -> bool:
        return self.height >= self.final_height


@dataclass(frozen=True, slots=True)
class WalletSummary:
    """What the hot wallet holds now, for ``check_funds`` and its shortfall reason."""

    spendable: tuple[HotCoin, ...]
    """Available with enough confirmations, largest first."""
    waiting: tuple[HotCoin, ...]
    """Available but without enough confirmations to be spent yet."""
    reserved_value: int
    reserved_count: int
    reserved_spends: int
    """Distinct transactions (spend keys) holding the reserved coins."""


@dataclass(frozen=True, slots=True)
class CoinSelection:
    coins: tuple[HotCoin, ...]
    fee: int
    """Satoshi: exact once the transaction is built this way."""
    change: int
    """Satoshi returned to the hot address; 0 when the remainder is dust and goes to the fee."""
    vsize: int


def select_coins(
    coins: Iterable[HotCoin],
    *,
    pay: int,
    payment_scripts: Sequence[bytes],
    change_script: bytes,
    sat_per_kvb: int,
) -> CoinSelection | None:
    """Take ``coins`` in the order given until they pay ``pay`` satoshi plus the fee of the
    transaction at ``sat_per_kvb``; None if they never do.

    The fee is sized with a change output; if the change would be dust, it is left to the fee
    (the transaction without the change output is smaller, so the rate still holds).
    """
    chosen: list[HotCoin] = []
    total = 0
    for coin in coins:
        chosen.append(coin)
        total += coin.value
        with_change = estimate_vsize(len(chosen), [*payment_scripts, change_script])
        fee = fee_for_vsize(with_change, sat_per_kvb)
        if total < pay + fee:
            continue
        change = total - pay - fee
        if change >= dust_threshold(change_script):
            return CoinSelection(tuple(chosen), fee, change, with_change)
        without = estimate_vsize(len(chosen), payment_scripts)
        return CoinSelection(tuple(chosen), total - pay, 0, without)
    return None


def _insert_ignore(conn: Connection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def _coin(row: Any) -> HotCoin:
    return HotCoin(
        txid=row.txid,
        vout=row.vout,
        value=int(row.value),
        script_pubkey=bytes.fromhex(row.script_pubkey),
        height=row.height,
        status=row.status,
        reserved_for=row.reserved_for,
        spent_by_txid=row.spent_by_txid,
    )


def _key(outpoint: OutPoint) -> Any:
    return and_(btc_hot_utxo.c.txid == outpoint.txid, btc_hot_utxo.c.vout == outpoint.vout)


class HotWallet:
    """The coins of one hot address (see the module docstring)."""

    def __init__(
        self,
        rpc: BtcRpc,
        scanner: BtcScanner,
        *,
        address: str,
        script_pubkey: bytes,
        scan_from_height: int,
        max_bytes: int = MAX_BYTES_PER_SYNC,
    ) -> None:
        if type(scan_from_height) is not int or scan_from_height < 0:
            raise ValueError(f"scan_from_height must be a height, got {scan_from_height!r}")
        self.rpc = rpc
        self.scanner = scanner
        self.address = address
        self.script_pubkey = script_pubkey
        self.scan_from_height = scan_from_height
        self.max_bytes = max_bytes
        self._script_hex = script_pubkey.hex()

    # ------------------------------------------------------------------ sync

    def sync(self, conn: Connection, *, now: datetime) -> SyncResult:
        """Read the final blocks not read yet (about `MAX_BYTES_PER_SYNC` of them); raise
        `HotWalletReorg` if the last one read is no longer in the chain, `RailUnavailable`
        if the node cannot be asked."""
        try:
            return self._sync(conn, now)
        except BtcNodeError as error:
            raise RailUnavailable(f"Bitcoin node: {error}") from error

    def _sync(self, conn: Connection, now: datetime) -> SyncResult:
        final = self.scanner.head().final_height
        row = self._sync_row(conn, lock=False)
        if row is not None and row.height >= final:
            # The cheap path: nothing final is new; still make sure what was read stands.
            self._check_on_chain(row.height, row.block_hash)
            return SyncResult(0, 0, 0, row.height, final)
        if row is not None:
            # Something to read: one scanner at a time (the others wait, then find it done).
            row = self._sync_row(conn, lock=True)  # rows are never deleted
            self._check_on_chain(row.height, row.block_hash)
            start, previous = row.height + 1, row.block_hash
        else:
            start, previous = self.scan_from_height, None
        if final < start:
            return SyncResult(0, 0, 0, start - 1, final)
        known = self._unsettled_outpoints(conn)
        found = spent = read = 0
        block_hash = ""
        end = start - 1
        for height in range(start, final + 1):
            block_hash = self.rpc.get_block_hash(height)
            block = self.rpc.get_block(block_hash)
            if block.get("height") != height or block.get("hash") != block_hash:
                raise UnexpectedResponse(
                    f"asked for block {height} ({block_hash}), the node sent "
                    f"{block.get('height')} ({block.get('hash')})"
                )
            if previous is not None and block.get("previousblockhash") != previous:
                raise HotWalletReorg(
                    f"block {height} of the Bitcoin chain does not follow block {height - 1} "
                    f"({previous}) that the hot wallet scan read as final: the chain was "
                    "reorganised deeper than the confirmations setting; check the node and "
                    "the hot wallet's coins before paying out again"
                )
            block_found, block_spent = self._read_block(conn, block, height, known, now)
            found += block_found
            spent += block_spent
            previous, end = block_hash, height
            size = block.get("size")
            read += size if type(size) is int else 0
            if read >= self.max_bytes:
                break
        self._store_progress(conn, end, block_hash, now)
        return SyncResult(end - start + 1, found, spent, end, final)

    def _sync_row(self, conn: Connection, *, lock: bool) -> Any:
        statement = select(btc_hot_sync).where(btc_hot_sync.c.address == self.address)
        if lock:
            statement = statement.with_for_update()
        return conn.execute(statement).first()

    def _check_on_chain(self, height: int, block_hash: str) -> None:
        try:
            current = self.scanner.block_hash(height)
        except RpcError as error:
            raise RailUnavailable(f"Bitcoin node: {error}") from error
        if current != block_hash:
            now_there = "no block" if current is None else f"block {current}"
            raise HotWalletReorg(
                f"the hot wallet scan read block {height} ({block_hash}) as final, but the "
                f"Bitcoin node now has {now_there} at that height: a reorg deeper than the "
                "confirmations setting; check the node and the hot wallet's coins before "
                "paying out again"
            )

    def _unsettled_outpoints(self, conn: Connection) -> set[tuple[str, int]]:
        """Coins whose spender the sync may still have to record."""
        rows = conn.execute(
            select(btc_hot_utxo.c.txid, btc_hot_utxo.c.vout).where(
                btc_hot_utxo.c.address == self.address, btc_hot_utxo.c.spent_by_txid.is_(None)
            )
        ).all()
        return {(row.txid, row.vout) for row in rows}

    def _read_block(
        self,
        conn: Connection,
        block: dict[str, Any],
        height: int,
        known: set[tuple[str, int]],
        now: datetime,
    ) -> tuple[int, int]:
        found = spent = 0
        transactions = block.get("tx")
        if not isinstance(transactions, list):
            raise UnexpectedResponse(f"getblock {height}: no decoded transactions")
        for tx in transactions:
            txid = str(tx["txid"])
            coinbase = False
            for vin in tx.get("vin", ()):
                if "coinbase" in vin:
                    coinbase = True
                    continue
                key = (str(vin["txid"]), int(vin["vout"]))
                if key in known:
                    self.mark_spent(conn, [OutPoint(*key)], txid, now=now)
                    known.discard(key)
                    spent += 1
            if coinbase:
                continue
            for vout in tx.get("vout", ()):
                script = vout.get("scriptPubKey") or {}
                if script.get("hex") != self._script_hex:
                    continue
                position = int(vout["n"])
                if self.add_coin(
                    conn, txid, position, satoshi(vout.get("value")), height=height, now=now
                ):
                    found += 1
                    known.add((txid, position))
        return found, spent

    def _store_progress(
        self, conn: Connection, height: int, block_hash: str, now: datetime
    ) -> None:
        conn.execute(
            _insert_ignore(conn)(btc_hot_sync)
            .values(address=self.address, height=height, block_hash=block_hash, updated_at=now)
            .on_conflict_do_nothing(index_elements=["address"])
        )
        conn.execute(
            update(btc_hot_sync)
            .where(btc_hot_sync.c.address == self.address, btc_hot_sync.c.height < height)
            .values(height=height, block_hash=block_hash, updated_at=now)
        )

    # ------------------------------------------------------------------ records

    def add_coin(
        self, conn: Connection, txid: str, vout: int, value: int, *, height: int, now: datetime
    ) -> bool:
        """Record an output paying the hot address, found in block ``height``; True if it was
        new. A coin already recorded keeps its status (it may be reserved or spent by now)."""
        inserted = conn.execute(
            _insert_ignore(conn)(btc_hot_utxo)
            .values(
                txid=txid,
                vout=vout,
                address=self.address,
                value=value,
                script_pubkey=self._script_hex,
                height=height,
                status=AVAILABLE,
                reserved_for=None,
                spent_by_txid=None,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["txid", "vout"])
        ).rowcount
        if inserted:
            return True
        conn.execute(
            update(btc_hot_utxo)
            .where(_key(OutPoint(txid, vout)), btc_hot_utxo.c.height.is_(None))
            .values(height=height, updated_at=now)
        )
        return False

    def mark_spent(
        self, conn: Connection, outpoints: Iterable[OutPoint], txid: str | None, *, now: datetime
    ) -> None:
        """Mark coins spent; by ``txid`` when known (None keeps whatever spender is recorded,
        for coins proven spent by a transaction not identified yet: the sync fills it in)."""
        for outpoint in outpoints:
            values: dict[str, Any] = {"status": SPENT, "updated_at": now}
            if txid is not None:
                values["spent_by_txid"] = txid
            conn.execute(update(btc_hot_utxo).where(_key(outpoint)).values(**values))

    def release(
        self, conn: Connection, outpoints: Iterable[OutPoint], spend_key: str, *, now: datetime
    ) -> int:
        """Return coins reserved for ``spend_key`` to available; how many were."""
        released = 0
        for outpoint in outpoints:
            released += conn.execute(
                update(btc_hot_utxo)
                .where(
                    _key(outpoint),
                    btc_hot_utxo.c.status == RESERVED,
                    btc_hot_utxo.c.reserved_for == spend_key,
                )
                .values(status=AVAILABLE, reserved_for=None, updated_at=now)
            ).rowcount
        return released

    def reserve(
        self, conn: Connection, coins: Iterable[HotCoin], spend_key: str, *, now: datetime
    ) -> None:
        """Reserve coins this transaction has locked (see `lock_available`)."""
        for coin in coins:
            reserved = conn.execute(
                update(btc_hot_utxo)
                .where(_key(coin.outpoint), btc_hot_utxo.c.status == AVAILABLE)
                .values(status=RESERVED, reserved_for=spend_key, updated_at=now)
            ).rowcount
            if reserved != 1:  # pragma: no cover - the row is locked by this transaction
                raise RuntimeError(f"coin {coin.outpoint} changed under its lock")

    def coins(self, conn: Connection, outpoints: Iterable[OutPoint]) -> list[HotCoin | None]:
        """The rows of ``outpoints`` (None where Kassa has no such coin)."""
        found = []
        for outpoint in outpoints:
            row = conn.execute(select(btc_hot_utxo).where(_key(outpoint))).first()
            found.append(None if row is None else _coin(row))
        return found

    # ------------------------------------------------------------------ spending

    def summary(self, conn: Connection, *, tip: int, min_confirmations: int) -> WalletSummary:
        rows = conn.execute(
            select(btc_hot_utxo).where(
                btc_hot_utxo.c.address == self.address, btc_hot_utxo.c.status == AVAILABLE
            )
        ).all()
        coins = [_coin(row) for row in rows]
        ready = [c for c in coins if self._confirmed(c, tip, min_confirmations)]
        reserved = conn.execute(
            select(btc_hot_utxo.c.value, btc_hot_utxo.c.reserved_for).where(
                btc_hot_utxo.c.address == self.address, btc_hot_utxo.c.status == RESERVED
            )
        ).all()
        return WalletSummary(
            spendable=tuple(_largest_first(ready)),
            waiting=tuple(c for c in coins if c not in ready),
            reserved_value=sum(int(r.value) for r in reserved),
            reserved_count=len(reserved),
            reserved_spends=len({r.reserved_for for r in reserved}),
        )

    def lock_available(self, conn: Connection, candidates: Iterable[HotCoin]) -> Iterable[HotCoin]:
        """Lock ``candidates`` one by one, skipping any another transaction holds or has
        taken since they were read; yields the ones this transaction now holds, in order."""
        for candidate in candidates:
            row = conn.execute(
                select(btc_hot_utxo)
                .where(_key(candidate.outpoint), btc_hot_utxo.c.status == AVAILABLE)
                .with_for_update(skip_locked=True)
            ).first()
            if row is not None:
                yield _coin(row)

    @staticmethod
    def _confirmed(coin: HotCoin, tip: int, min_confirmations: int) -> bool:
        return coin.height is not None and tip - coin.height + 1 >= min_confirmations


def _largest_first(coins: Iterable[HotCoin]) -> list[HotCoin]:
    # Fewest inputs (smallest transaction, lowest fee); ties in a fixed order.
    return sorted(coins, key=lambda c: (-c.value, c.txid, c.vout))


def shortfall_reason(
    summary: WalletSummary,
    *,
    address: str,
    needed: int,
    incoming: tuple[int, int] | None,
    sync: SyncResult | None,
    min_confirmations: int,
) -> HotWalletShort:
    """A `HotWalletShort` saying what the hot wallet has, what is needed, and what will come."""
    spendable = sum(c.value for c in summary.spendable)
    parts = [
        f"the BTC hot wallet {address} has {spendable} sat spendable in "
        f"{len(summary.spendable)} coins; {needed} sat are needed (payouts plus fee)"
    ]
    if summary.reserved_count:
        parts.append(
            f"{summary.reserved_value} sat in {summary.reserved_count} coins are reserved by "
            f"{summary.reserved_spends} payout transactions in flight (their change comes back "
            "once they are final)"
        )
    if summary.waiting:
        parts.append(
            f"{len(summary.waiting)} coins ({sum(c.value for c in summary.waiting)} sat) wait "
            f"for {min_confirmations} confirmations"
        )
    if incoming is not None and incoming[0]:
        parts.append(
            f"{incoming[0]} coins ({incoming[1]} sat) paying it are in blocks not final yet"
        )
    elif incoming is not None:
        parts.append("no coins paying it are in blocks waiting to become final")
    if sync is not None and not sync.complete:
        parts.append(
            f"the coin scan has read the chain up to block {sync.height} of {sync.final_height}"
        )
    reason = "; ".join(parts)
    return HotWalletShort(reason) if sync is None else ShortAfterSync(reason)
