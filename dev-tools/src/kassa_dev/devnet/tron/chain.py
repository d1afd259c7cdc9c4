"""The simulated chain: blocks, the pending pool, the node's checks, rollbacks, the block timer.

One re-entrant lock guards everything; the HTTP handlers (run in a thread pool) and the block
timer thread take it for every read-modify-write, and nothing slow happens under it except the
state-file write after a block.

Broadcast runs java-tron's checks in its order — duplicate, TAPOS (the reference block must be
one of this chain's), expiration (after the head block's time, at most 24 h past it), signature
(one 65-byte signature recovering to the owner) — and then executes the transaction against the
*pending* state (head state plus the pool), so two transfers that together overspend are
caught at the second broadcast. A block re-executes the pool against the head state at the
block's own time, dropping transactions that expired meanwhile.

Time: chain time is the configured clock plus an offset that `mine(advance_ms=…)` grows, so
tests can expire transactions. Block timestamps are chain time, kept strictly increasing, and
are never slot-aligned: blocks mined on demand follow each other by a millisecond rather than
running ahead of the wall clock that tronpy uses for expirations.

Fees: the energy price is a chain parameter that `set_energy_price` changes at run time, as a
passed proposal changes java-tron's `getEnergyFee`: `getchainparameters` reports the new price at
once, the pool is re-checked at it, and blocks from the next one on charge it. Each change is
kept with the first block it applies to, so a restart replays every block at the price it was
charged at.

Finality: the solidified height is `head - solid_lag` and never goes down. The state after each
block from the solidified one up is kept, so `rollback` can drop any unsolidified block and put
its transactions back into the pool (or discard them), and `walletsolidity/getaccount` can read
balances as of the solidified block.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from kassa_dev.devnet.tron import persistence
from kassa_dev.devnet.tron.blocks import Block, IncludedTransaction, make_block
from kassa_dev.devnet.tron.codec import to_base58
from kassa_dev.devnet.tron.config import DevnetConfig, FeeSchedule
from kassa_dev.devnet.tron.execution import Executor, Outcome, Rejected
from kassa_dev.devnet.tron.state import Account, WorldState
from kassa_dev.devnet.tron.transactions import (
    Call,
    RawTransaction,
    SignedTransaction,
    recover_signer,
)
from kassa_dev.devnet.tron.usdt import CallResult, UsdtContract

logger = logging.getLogger(__name__)

SIGERROR = "SIGERROR"
TAPOS_ERROR = "TAPOS_ERROR"
TRANSACTION_EXPIRATION_ERROR = "TRANSACTION_EXPIRATION_ERROR"
DUP_TRANSACTION_ERROR = "DUP_TRANSACTION_ERROR"
TOO_BIG_TRANSACTION_ERROR = "TOO_BIG_TRANSACTION_ERROR"

MAX_EXPIRATION_MS = 86_400_000
"""A transaction may expire at most 24 h after the head block's time."""
MAX_TRANSACTION_BYTES = 500 * 1024
DEFAULT_EXPIRATION_MS = 60_000
"""Transactions the node builds (`createtransaction`, `triggersmartcontract`) live 60 s."""
TAPOS_SLOTS = 65_536
"""`ref_block_bytes` holds the low 16 bits of a block number, so it names one of the last 65 536."""
OWNER_PERMISSION_ID = 0
ACTIVE_PERMISSION_ID = 2


class ChainError(Exception):
    """A debug request the chain cannot honour (for instance a rollback below solidity)."""


@dataclass(frozen=True)
class RollbackResult:
    head: int
    returned_to_pool: tuple[str, ...]
    discarded: tuple[str, ...]


class TronChain:
    def __init__(self, config: DevnetConfig) -> None:
        self.config = config
        self.usdt = UsdtContract(config.usdt_address)
        self.executor = Executor(config.fees, self.usdt)
        self.genesis_address = config.genesis_address
        self._lock = threading.RLock()
        self._clock_offset = 0
        self._last_timestamp = 0
        self._solid_height = 0
        self._energy_prices: list[tuple[int, int]] = []
        """(first block, sun per energy unit) of each change of the configured energy price."""

        genesis_state = self._genesis_state()
        genesis = make_block(0, 0, bytes(32), self.genesis_address, [])
        self._blocks: list[Block] = [genesis]
        self._by_id: dict[bytes, Block] = {genesis.block_id: genesis}
        self._included: dict[str, IncludedTransaction] = {}
        self._states: dict[int, WorldState] = {0: genesis_state}
        self._pool: list[SignedTransaction] = []
        self._pool_ids: set[str] = set()
        self._pool_state = genesis_state.copy()
        self._records: list[str] = []
        """The state-file entry of each block after the genesis (see `persistence`)."""

        state_file = config.state_file
        if state_file is not None and state_file.exists():
            self._restore(persistence.load(state_file))
        else:
            # Produce block 1 at once so the head time is the present: java-tron accepts only
            # transactions expiring within 24 h of the head block, and the genesis is at 0.
            self.mine(1)

    # -- genesis and restore ------------------------------------------------------------------

    def _genesis_state(self) -> WorldState:
        config = self.config
        state = WorldState(usdt_total_supply=config.usdt_supply)
        state.accounts[self.genesis_address] = Account(
            address=self.genesis_address, balance=config.genesis_trx, create_time=0
        )
        state.accounts[self.usdt.address] = Account(
            address=self.usdt.address, balance=0, create_time=0, is_contract=True
        )
        state.usdt_balances[self.genesis_address] = config.usdt_supply
        return state

    def _restore(self, stored: persistence.StoredChain) -> None:
        path = self.config.state_file
        if stored.genesis_address != to_base58(self.genesis_address):
            raise persistence.StateFileError(
                f"{path}: written for genesis {stored.genesis_address}, "
                f"not {to_base58(self.genesis_address)}"
            )
        self._energy_prices = [(block, price) for block, price in stored.energy_prices]
        for stored_block in stored.blocks:
            self._charge_from(self.head.number + 1)
            try:
                self._produce(stored_block.timestamp, list(stored_block.transactions), replay=True)
            except Rejected as error:
                raise persistence.StateFileError(
                    f"{path}: block {self.head.number + 1} does not replay: {error}"
                ) from error
        if self.head.id_hex != stored.head_id:
            raise persistence.StateFileError(
                f"{path}: replay ended at {self.head.id_hex}, the file says {stored.head_id} "
                "(another fee schedule?)"
            )
        self._charge_from(self.head.number + 1)
        self._clock_offset = stored.clock_offset_ms
        self._last_timestamp = max(self._last_timestamp, stored.last_timestamp)
        self._set_solid(max(stored.solid_height, self._solid_height))
        self._pool_state = self._states[self.head.number].copy()
        for tx in stored.pending:
            try:
                self._admit(tx)
            except Rejected as error:
                logger.info("pending transaction %s dropped on restore: %s", tx.txid, error)

    # -- time ----------------------------------------------------------------------------------

    def now(self) -> int:
        """Chain time in milliseconds."""
        return self.config.clock() + self._clock_offset

    def _next_timestamp(self) -> int:
        return max(self.now(), self._last_timestamp + 1)

    # -- fees ----------------------------------------------------------------------------------

    @property
    def fees(self) -> FeeSchedule:
        """What the next block charges (the configured schedule, with any price changes)."""
        return self.executor.fees

    def _energy_price_at(self, number: int) -> int:
        price = self.config.fees.energy_price
        for first, changed in self._energy_prices:
            if first <= number:
                price = changed
        return price

    def _charge_from(self, number: int) -> None:
        """Let the executor charge what block `number` charges."""
        self.executor.fees = replace(self.config.fees, energy_price=self._energy_price_at(number))

    def set_energy_price(self, price: int) -> int:
        """Burn `price` sun per unit of energy from the next block on; returns that block's
        number. Pending transactions are checked again at the new price."""
        if price <= 0:
            raise ChainError("the energy price must be a positive number of sun")
        with self._lock:
            first = self.head.number + 1
            self._energy_prices = [c for c in self._energy_prices if c[0] < first]
            if self._energy_price_at(first) != price:
                self._energy_prices.append((first, price))
            self._charge_from(first)
            self._readmit_pool([])
            self._save()
            return first

    # -- reads ---------------------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @property
    def head(self) -> Block:
        return self._blocks[-1]

    @property
    def solid_height(self) -> int:
        return self._solid_height

    @property
    def solid_block(self) -> Block:
        return self._blocks[self._solid_height]

    @property
    def pool_size(self) -> int:
        return len(self._pool)

    def block_by_number(self, number: int, *, solid: bool = False) -> Block | None:
        with self._lock:
            limit = self._solid_height if solid else self.head.number
            return self._blocks[number] if 0 <= number <= limit else None

    def block_by_id(self, block_id: bytes, *, solid: bool = False) -> Block | None:
        with self._lock:
            block = self._by_id.get(block_id)
            if block is None or (solid and block.number > self._solid_height):
                return None
            return block

    def blocks_in_range(self, start: int, end: int, *, solid: bool = False) -> list[Block]:
        """Blocks with start <= number < end (java-tron's getblockbylimitnext)."""
        with self._lock:
            limit = self._solid_height if solid else self.head.number
            return self._blocks[max(0, start) : max(0, min(end, limit + 1))]

    def transaction(self, txid: str, *, solid: bool = False) -> IncludedTransaction | None:
        with self._lock:
            included = self._included.get(txid)
            if included is None or (solid and included.block_number > self._solid_height):
                return None
            return included

    def pending_transaction(self, txid: str) -> SignedTransaction | None:
        """A transaction waiting in the pool (java-tron's `gettransactionfrompending`)."""
        with self._lock:
            if txid not in self._pool_ids:
                return None
            return next(tx for tx in self._pool if tx.txid == txid)

    def state(self, *, solid: bool = False) -> WorldState:
        """The state after the head (or the solidified) block. Never mutated afterwards."""
        with self._lock:
            return self._states[self._solid_height if solid else self.head.number]

    def account(
        self, address: bytes, *, solid: bool = False, pending: bool = False
    ) -> Account | None:
        """A copy of the account after the head (or solidified) block, or with `pending`
        after the pool too (which is what java-tron's permission lookups see)."""
        with self._lock:
            state = self._pool_state if pending else self.state(solid=solid)
            account = state.accounts.get(address)
            return replace(account) if account else None

    def constant_call(
        self, contract: bytes, caller: bytes, data: bytes, call_value: int = 0
    ) -> CallResult:
        """Run a contract call on the head state without a transaction. Raises `Rejected`."""
        return self.executor.constant_call(self.state(), contract, caller, data, call_value)

    def build(self, call: Call, fee_limit: int = 0) -> RawTransaction:
        """A transaction as java-tron builds it: referencing the solidified block (which no
        rollback can remove) and expiring 60 s after the head block."""
        with self._lock:
            reference = self.solid_block.block_id
            return RawTransaction(
                call=call,
                ref_block_bytes=reference[6:8],
                ref_block_hash=reference[8:16],
                expiration=self.head.timestamp + DEFAULT_EXPIRATION_MS,
                timestamp=self.now(),
                fee_limit=fee_limit,
            )

    def dry_run(self, tx: SignedTransaction) -> Outcome:
        """Execute against a copy of the pending state (validation for transaction builders)."""
        with self._lock:
            return self.executor.apply(self._pool_state.copy(), tx, self._next_timestamp())

    # -- broadcast -----------------------------------------------------------------------------

    def broadcast(self, tx: SignedTransaction, claimed_txid: str | None = None) -> None:
        """Accept `tx` into the pool or raise `Rejected` with java-tron's code."""
        with self._lock:
            txid = tx.txid
            if txid in self._included or txid in self._pool_ids:
                raise Rejected(DUP_TRANSACTION_ERROR, "dup transaction")
            self._admit(tx, claimed_txid)
            # The pool is saved too: a payment broadcast just before a restart is not lost.
            self._save()

    def _admit(self, tx: SignedTransaction, claimed_txid: str | None = None) -> None:
        if tx.serialized_size() > MAX_TRANSACTION_BYTES:
            raise Rejected(TOO_BIG_TRANSACTION_ERROR, "transaction size is too big")
        if not self._tapos_ok(tx.raw):
            raise Rejected(TAPOS_ERROR, "Tapos check error")
        head_time = self.head.timestamp
        if not head_time < tx.raw.expiration <= head_time + MAX_EXPIRATION_MS:
            raise Rejected(
                TRANSACTION_EXPIRATION_ERROR,
                f"transaction expired: expiration {tx.raw.expiration}, head block time {head_time}",
            )
        self._check_signature(tx, claimed_txid)
        self.executor.apply(self._pool_state, tx, self._next_timestamp())
        self._pool.append(tx)
        self._pool_ids.add(tx.txid)

    def _readmit_pool(self, first: list[SignedTransaction]) -> tuple[list[str], list[str]]:
        """Check `first` and then the pool again against the head state, as at broadcast;
        returns the txids kept and those dropped."""
        candidates = first + self._pool
        self._pool = []
        self._pool_ids.clear()
        self._pool_state = self._states[self.head.number].copy()
        kept: list[str] = []
        dropped: list[str] = []
        for tx in candidates:
            try:
                self._admit(tx)
                kept.append(tx.txid)
            except Rejected as error:
                logger.info("transaction %s dropped from the pool: %s", tx.txid, error)
                dropped.append(tx.txid)
        return kept, dropped

    def _tapos_ok(self, raw: RawTransaction) -> bool:
        if len(raw.ref_block_bytes) != 2 or len(raw.ref_block_hash) != 8:
            return False
        low_bits = int.from_bytes(raw.ref_block_bytes, "big")
        head = self.head.number
        # The newest block whose number ends in these 16 bits, as java-tron's recent-block table.
        number = head - (head - low_bits) % TAPOS_SLOTS
        return number >= 0 and self._blocks[number].block_id[8:16] == raw.ref_block_hash

    def _check_signature(self, tx: SignedTransaction, claimed_txid: str | None) -> None:
        if tx.raw.permission_id not in (OWNER_PERMISSION_ID, ACTIVE_PERMISSION_ID):
            raise Rejected(SIGERROR, "permission isn't exit")
        if not tx.signatures:
            raise Rejected(SIGERROR, "miss sig or contract")
        if len(tx.signatures) > 1:
            # Accounts here have one key of weight 1 in every permission.
            raise Rejected(
                SIGERROR,
                f"Signature count is {len(tx.signatures)} more than key counts of permission : 1",
            )
        signature = tx.signatures[0]
        signer = recover_signer(tx.txid_bytes, signature)
        if signer is None:
            raise Rejected(SIGERROR, f"invalid signature {signature.hex()}")
        if signer != tx.raw.owner:
            reason = (
                f"{signature.hex()} is signed by {to_base58(signer)} "
                "but it is not contained of permission."
            )
            if claimed_txid and claimed_txid.lower() != tx.txid:
                reason += (
                    f" (the sender's txID {claimed_txid} is not the sha256 of raw_data, "
                    f"{tx.txid}: raw_data was changed after signing)"
                )
            raise Rejected(SIGERROR, reason)

    # -- blocks --------------------------------------------------------------------------------

    def mine(self, count: int = 1, advance_ms: int = 0) -> list[Block]:
        """Produce `count` blocks now, after moving chain time forward by `advance_ms`."""
        if count < 0 or advance_ms < 0:
            raise ChainError("blocks and advance must not be negative")
        with self._lock:
            self._clock_offset += advance_ms
            produced = []
            for _ in range(count):
                pool, self._pool = self._pool, []
                self._pool_ids.clear()
                produced.append(self._produce(self._next_timestamp(), pool, replay=False))
            if produced:
                self._pool_state = self._states[self.head.number].copy()
            if produced or advance_ms:
                self._save()
            return produced

    def _produce(
        self, timestamp: int, candidates: list[SignedTransaction], *, replay: bool
    ) -> Block:
        parent = self.head
        state = self._states[parent.number]
        if candidates:
            # Stored states are never changed again, so an empty block shares its parent's.
            state = state.copy()
        included: list[tuple[SignedTransaction, Outcome]] = []
        for tx in candidates:
            if not replay and tx.raw.expiration <= timestamp:
                logger.info("transaction %s expired in the pool", tx.txid)
                continue
            try:
                included.append((tx, self.executor.apply(state, tx, timestamp)))
            except Rejected as error:
                if replay:
                    raise
                logger.info("transaction %s dropped from the pool: %s", tx.txid, error)
        block = make_block(parent.number + 1, timestamp, parent.block_id, parent.witness, included)
        self._blocks.append(block)
        self._by_id[block.block_id] = block
        if self.config.state_file is not None:
            self._records.append(
                persistence.block_record(
                    persistence.StoredBlock(
                        timestamp=timestamp,
                        transactions=tuple(item.tx for item in block.transactions),
                    )
                )
            )
        for item in block.transactions:
            self._included[item.tx.txid] = item
        self._states[block.number] = state
        self._last_timestamp = max(self._last_timestamp, timestamp)
        self._set_solid(max(self._solid_height, block.number - self.config.solid_lag))
        return block

    def _set_solid(self, height: int) -> None:
        self._solid_height = height
        # States below the solidified block can no longer be rolled back to: drop them.
        for number in [number for number in self._states if number < height]:
            del self._states[number]

    def rollback(self, to: int, *, discard: bool = False) -> RollbackResult:
        """Drop the blocks above `to`; their transactions go back to the pool (or are discarded
        with `discard`) ahead of those already pending, each re-checked as at broadcast."""
        with self._lock:
            if to < self._solid_height:
                raise ChainError(
                    f"cannot roll back to {to}: block {self._solid_height} is solidified"
                )
            if to >= self.head.number:
                return RollbackResult(head=self.head.number, returned_to_pool=(), discarded=())
            dropped = self._blocks[to + 1 :]
            del self._blocks[to + 1 :]
            del self._records[to:]
            reinserted: list[SignedTransaction] = []
            discarded: list[str] = []
            for block in dropped:
                del self._by_id[block.block_id]
                del self._states[block.number]
                for item in block.transactions:
                    del self._included[item.tx.txid]
                    if discard:
                        discarded.append(item.tx.txid)
                    else:
                        reinserted.append(item.tx)
            # A price set after block `to` stays in force: it now applies from `to + 1`.
            price = self.fees.energy_price
            self._energy_prices = [c for c in self._energy_prices if c[0] <= to]
            if self._energy_price_at(to + 1) != price:
                self._energy_prices.append((to + 1, price))
            returned, dropped_now = self._readmit_pool(reinserted)
            discarded += dropped_now
            self._save()
            return RollbackResult(
                head=to, returned_to_pool=tuple(returned), discarded=tuple(discarded)
            )

    # -- persistence ---------------------------------------------------------------------------

    def _save(self) -> None:
        path: Path | None = self.config.state_file
        if path is None:
            return
        persistence.save(
            path,
            persistence.StoredChain(
                genesis_address=to_base58(self.genesis_address),
                head_id=self.head.id_hex,
                clock_offset_ms=self._clock_offset,
                last_timestamp=self._last_timestamp,
                solid_height=self._solid_height,
                blocks=(),
                pending=tuple(self._pool),
                energy_prices=tuple(self._energy_prices),
            ),
            self._records,
        )


class BlockTimer:
    """Produces a block every `interval` seconds on a daemon thread until stopped."""

    def __init__(self, chain: TronChain, interval: float) -> None:
        self._chain = chain
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tron-devnet-blocks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._chain.mine(1)
            except Exception:  # keep producing blocks; a failed write is logged, not fatal
                logger.exception("block production failed")
