"""Deposit rows: recording transfers once, moving them through the lifecycle, and the ledger
side of crediting and reversing.

Every state change goes through `_move`, which checks the transition table and appends a
`deposit_event`, so a deposit's history reads like a statement. Crediting is one ledger
transaction with the native and the USD legs (docs/domain.md §3):

    Dr wallet:<chain>-deposits:<asset>  native     Cr fx:<asset>:<asset>  native
    Dr fx:<asset>:USD                   USD        Cr user:<id>:USD       USD

under the idempotency key ``deposit:<id>:credit:<n>`` — n counts credits, so a crash and
retry posts nothing twice, while a deposit reversed by a reorg and mined again is credited
exactly once more.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from kassa.accounts import service as accounts
from kassa.accounts import views as account_views
from kassa.accounts.states import AccountState, effective_state
from kassa.chains.network import Chain
from kassa.deposits.model import (
    ChainBlock,
    ChainTransfer,
    DepositStatus,
    SenderKind,
    check_transition,
)
from kassa.deposits.tables import deposit, deposit_address, deposit_event
from kassa.events import outbox
from kassa.ledger import house
from kassa.ledger.accounts import lock_balances
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.model import AccountId, TransactionKind
from kassa.ledger.transfers import Leg, NewTransaction, post_many, reverse, reverse_asset
from kassa.money import USD, Asset, Money, asset
from kassa.pricing.locks import RateLock


@dataclass(frozen=True, slots=True)
class Deposit:
    id: uuid.UUID
    chain: Chain
    asset: str
    txid: str
    position: int
    deposit_address_id: int
    customer_account_id: uuid.UUID
    amount: int
    """Minor units of `asset`."""
    sender: str | None
    sender_kind: SenderKind
    token_contract: str | None
    block_height: int | None
    block_hash: str | None
    block_time: datetime | None
    first_seen_at: datetime
    confirmations: int
    status: DepositStatus
    status_reason: str | None
    rate_lock_id: uuid.UUID | None
    usd_amount: int | None
    """Credited micro-USD."""
    credit_count: int
    credit_transaction_id: uuid.UUID | None
    reversal_transaction_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    chargeback_transaction_id: uuid.UUID | None = None
    """The chargeback that took the USD credit back: a reorg then reverses only the coins."""

    @property
    def money(self) -> Money:
        return Money(self.amount, asset(self.asset))

    @property
    def purpose(self) -> str:
        """The rate-lock purpose: a deposit is valued once, at payment time."""
        return f"deposit:{self.chain}:{self.txid}:{self.position}"


def _deposit(row: Any) -> Deposit:
    """A deposit from its row (or anything with the row's columns as attributes)."""
    return Deposit(
        id=row.id,
        chain=Chain(row.chain),
        asset=row.asset,
        txid=row.txid,
        position=row.position,
        deposit_address_id=row.deposit_address_id,
        customer_account_id=row.customer_account_id,
        amount=row.amount,
        sender=row.sender,
        sender_kind=SenderKind(row.sender_kind),
        token_contract=row.token_contract,
        block_height=row.block_height,
        block_hash=row.block_hash,
        block_time=row.block_time,
        first_seen_at=row.first_seen_at,
        confirmations=row.confirmations,
        status=DepositStatus(row.status),
        status_reason=row.status_reason,
        rate_lock_id=row.rate_lock_id,
        usd_amount=row.usd_amount,
        credit_count=row.credit_count,
        credit_transaction_id=row.credit_transaction_id,
        reversal_transaction_id=row.reversal_transaction_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        chargeback_transaction_id=row.chargeback_transaction_id,
    )


_NULL_ROW: dict[str, Any] = {column.name: None for column in deposit.c}
"""A deposit row's columns, none set: what a new row leaves out is null."""


def _new_row(
    transfer: ChainTransfer,
    *,
    deposit_address_id: int,
    customer_account_id: uuid.UUID,
    status: DepositStatus,
    reason: str,
    first_seen_at: datetime,
    now: datetime,
    block: ChainBlock | None,
) -> dict[str, Any]:
    """Every column of a new deposit's row (in `block`, else seen in a mempool), as inserted."""
    return {
        **_NULL_ROW,
        "id": uuid.uuid4(),
        "chain": transfer.chain.value,
        "asset": transfer.asset,
        "txid": transfer.txid,
        "position": transfer.position,
        "deposit_address_id": deposit_address_id,
        "customer_account_id": customer_account_id,
        "amount": transfer.amount,
        "sender": transfer.sender,
        "sender_kind": transfer.sender_kind.value,
        "token_contract": transfer.token_contract,
        "first_seen_at": first_seen_at,
        "confirmations": 0,
        "status": status.value,
        "status_reason": reason,
        "credit_count": 0,
        "created_at": now,
        "updated_at": now,
        **({} if block is None else _in_block(block)),
    }


def _in_block(block: ChainBlock) -> dict[str, Any]:
    """The columns that place a deposit in `block`."""
    return {
        "block_height": block.height,
        "block_hash": block.hash,
        "block_time": block.time,
        "confirmations": 1,
    }


def get(conn: Connection, deposit_id: uuid.UUID, *, for_update: bool = False) -> Deposit | None:
    query = select(deposit).where(deposit.c.id == deposit_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _deposit(row)


def find(conn: Connection, chain: Chain, txid: str, position: int) -> Deposit | None:
    row = conn.execute(
        select(deposit).where(
            deposit.c.chain == chain.value, deposit.c.txid == txid, deposit.c.position == position
        )
    ).first()
    return None if row is None else _deposit(row)


def find_many(
    conn: Connection, chain: Chain, keys: Collection[tuple[str, int]]
) -> dict[tuple[str, int], Deposit]:
    """The known deposits among ``keys`` (txid, position), in one query: a batch of blocks
    looks up its matched transfers at once instead of one `find` each."""
    if not keys:
        return {}
    txids = sorted({txid for txid, _ in keys})
    rows = conn.execute(
        select(deposit).where(deposit.c.chain == chain.value, deposit.c.txid.in_(txids))
    ).all()
    wanted = set(keys)
    found = (_deposit(row) for row in rows)
    return {(d.txid, d.position): d for d in found if (d.txid, d.position) in wanted}


def for_account(
    conn: Connection, customer_account_id: uuid.UUID, *, limit: int = 100
) -> list[Deposit]:
    rows = conn.execute(
        select(deposit)
        .where(deposit.c.customer_account_id == customer_account_id)
        .order_by(deposit.c.first_seen_at.desc(), deposit.c.id)
        .limit(limit)
    ).all()
    return [_deposit(row) for row in rows]


def unsettled(conn: Connection, chain: Chain) -> list[Deposit]:
    """Deposits in the best chain that are not credited yet."""
    rows = conn.execute(
        select(deposit)
        .where(
            deposit.c.chain == chain.value,
            deposit.c.status.in_([DepositStatus.SEEN.value, DepositStatus.CONFIRMING.value]),
            deposit.c.block_height.is_not(None),
        )
        .order_by(deposit.c.block_height, deposit.c.txid, deposit.c.position)
    ).all()
    return [_deposit(row) for row in rows]


def above(conn: Connection, chain: Chain, height: int) -> list[Deposit]:
    rows = conn.execute(
        select(deposit)
        .where(deposit.c.chain == chain.value, deposit.c.block_height > height)
        .order_by(deposit.c.block_height)
        .with_for_update()
    ).all()
    return [_deposit(row) for row in rows]


class Deferred:
    """Writes of a batch of deposits held back and sent together by `flush`, in the order they
    were made: new deposits in one multi-row INSERT, status changes in one executemany per run
    of changes that set the same columns, their history rows in one INSERT and their events in
    one executemany (`kassa.events.outbox.record_all`). On PostgreSQL psycopg sends an
    executemany's rows in a pipeline, so a batch of credits pays one round trip per kind of
    write instead of one per write and deposit.

    Reads see none of it before `flush`: `record` and `credit` flush before they read a
    deposit again or write anything whose order against these writes matters, and the caller
    flushes before its transaction commits (a batch that is never flushed writes nothing)."""

    __slots__ = ("_events", "_history", "_moves", "_new")

    def __init__(self) -> None:
        self._new: list[dict[str, Any]] = []
        self._moves: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self._history: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []

    def add_deposit(self, row: dict[str, Any]) -> None:
        self._new.append(row)

    def add_move(self, deposit_id: uuid.UUID, changes: Mapping[str, Any]) -> None:
        columns = tuple(changes)
        self._moves.append(
            (columns, {"b_id": deposit_id, **{f"b_{name}": changes[name] for name in columns}})
        )

    def add_history(self, row: dict[str, Any]) -> None:
        self._history.append(row)

    def add_event(self, draft: dict[str, Any]) -> None:
        self._events.append(draft)

    def flush(self, conn: Connection) -> None:
        """Write everything held, in dependency order: deposits before their history rows."""
        if self._new:
            conn.execute(insert(deposit), self._new)
        start = 0
        while start < len(self._moves):
            columns = self._moves[start][0]
            end = start
            while end < len(self._moves) and self._moves[end][0] == columns:
                end += 1
            conn.execute(_update_of(columns), [values for _, values in self._moves[start:end]])
            start = end
        if self._history:
            conn.execute(insert(deposit_event), self._history)
        outbox.record_all(conn, self._events)
        self._new, self._moves, self._history, self._events = [], [], [], []


_UPDATES: dict[tuple[str, ...], Any] = {}


def _update_of(columns: tuple[str, ...]) -> Any:
    """``UPDATE deposit SET <columns> WHERE id = …`` with bound parameters for an executemany
    (named ``b_<column>``: SQLAlchemy keeps a column's own name for itself), built once per set
    of columns."""
    statement = _UPDATES.get(columns)
    if statement is None:
        statement = (
            update(deposit)
            .where(deposit.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in columns})
        )
        _UPDATES[columns] = statement
    return statement


def _event(
    conn: Connection,
    deposit_id: uuid.UUID,
    old: DepositStatus | None,
    new: DepositStatus,
    reason: str | None,
    block_hash: str | None,
    now: datetime,
    deferred: Deferred | None = None,
) -> None:
    row = {
        "deposit_id": deposit_id,
        "from_status": None if old is None else old.value,
        "to_status": new.value,
        "reason": reason,
        "block_hash": block_hash,
        "at": now,
    }
    if deferred is None:
        conn.execute(insert(deposit_event), row)
    else:
        deferred.add_history(row)


def _move(
    conn: Connection,
    current: Deposit,
    new: DepositStatus,
    *,
    reason: str | None,
    now: datetime,
    # `str | None` and `RateLock | None`; typed Any so that callers' ``**columns`` type-check.
    view_address: Any = None,
    view_lock: Any = None,
    # `Deferred | None`: with one, the writes wait for its flush.
    deferred: Any = None,
    **values: Any,
) -> None:
    """Change status (checked against the transition table) and any other columns;
    `view_address` and `view_lock`, when known, spare the event's view their lookups."""
    check_transition(current.status, new)
    changes = {"status": new.value, "status_reason": reason, "updated_at": now, **values}
    if deferred is None:
        conn.execute(update(deposit).where(deposit.c.id == current.id).values(changes))
    else:
        deferred.add_move(current.id, changes)
    block_hash = values.get("block_hash", current.block_hash)
    if new is not current.status or reason != current.status_reason:
        _event(conn, current.id, current.status, new, reason, block_hash, now, deferred)
    if new is not current.status:
        # Imported here: the view module reads this one's Deposit.
        from kassa.deposits import views

        moved = dataclasses.replace(
            current, status=new, status_reason=reason, updated_at=now, **values
        )
        if deferred is None:
            views.emit(conn, moved, now, address=view_address, lock=view_lock)
        else:
            deferred.add_event(views.draft(conn, moved, now, address=view_address, lock=view_lock))


def record(
    conn: Connection,
    transfer: ChainTransfer,
    block: ChainBlock,
    *,
    deposit_address_id: int,
    customer_account_id: uuid.UUID,
    dust: int,
    now: datetime,
    seen_at: datetime | None = None,
    known: Mapping[tuple[str, int], Deposit] | None = None,
    address: str | None = None,
    deferred: Deferred | None = None,
) -> Deposit:
    """Record a matched transfer once; a known one re-entering the best chain gets its block.

    ``seen_at`` is the payment time the rate is locked at: the block time, shifted when the
    devnet's scenario clock runs ahead of the chains. ``known``, when given, is what
    `find_many` returned for the whole batch in this transaction (kept up to date by the
    caller): the transfer is looked up there instead of by one more query. ``address``, the
    text of the deposit address when the caller read it, spares the event's view its lookup.
    With `deferred`, a new deposit's writes wait for its flush (a known one flushes it first
    and is written at once: it is read back)."""
    if known is None:
        existing = find(conn, transfer.chain, transfer.txid, transfer.position)
    else:
        existing = known.get((transfer.txid, transfer.position))
    in_block = _in_block(block)
    if existing is not None:
        if existing.block_hash == block.hash:
            return existing  # a replay of a block already processed (e.g. after a crash)
        if deferred is not None:
            deferred.flush(conn)
        if (
            existing.status is DepositStatus.SEEN
            and existing.block_hash is None
            and not (transfer.success)
        ):
            # Seen in a mempool, then mined as a failed transaction.
            _move(
                conn,
                existing,
                DepositStatus.IGNORED,
                reason="the transaction failed on chain",
                now=now,
                **in_block,
            )
        elif existing.status is DepositStatus.IGNORED:
            _move(
                conn,
                existing,
                DepositStatus.IGNORED,
                reason=existing.status_reason,
                now=now,
                **in_block,
            )
        elif existing.status in (DepositStatus.REVERSED, DepositStatus.SEEN, DepositStatus.DROPPED):
            _move(
                conn,
                existing,
                DepositStatus.SEEN,
                reason=f"mined in block {block.height}",
                now=now,
                **in_block,
            )
        else:
            _move(
                conn, existing, existing.status, reason=existing.status_reason, now=now, **in_block
            )
        refreshed = find(conn, transfer.chain, transfer.txid, transfer.position)
        if refreshed is None:
            raise RuntimeError("deposit vanished inside its own transaction")
        return refreshed

    status, reason = DepositStatus.SEEN, f"mined in block {block.height}"
    if not transfer.success:
        status, reason = DepositStatus.IGNORED, "the transaction failed on chain"
    elif not transfer.canonical:
        status, reason = (
            DepositStatus.IGNORED,
            f"token contract {transfer.token_contract} is not the canonical {transfer.asset}",
        )
    elif transfer.amount < dust:
        status, reason = (
            DepositStatus.IGNORED,
            f"below the dust threshold of {Money(dust, asset(transfer.asset)).format()} "
            f"{transfer.asset}",
        )
    values = _new_row(
        transfer,
        deposit_address_id=deposit_address_id,
        customer_account_id=customer_account_id,
        status=status,
        reason=reason,
        first_seen_at=seen_at or block.time,
        now=now,
        block=block,
    )
    # The row as written, without reading it back.
    recorded = _deposit(SimpleNamespace(**values))
    from kassa.deposits import views

    if deferred is None:
        conn.execute(insert(deposit), values)
        _event(conn, recorded.id, None, status, reason, block.hash, now)
        views.emit(conn, recorded, now, address=address)
    else:
        deferred.add_deposit(values)
        _event(conn, recorded.id, None, status, reason, block.hash, now, deferred)
        deferred.add_event(views.draft(conn, recorded, now, address=address))
    return recorded


def set_waiting(
    conn: Connection, current: Deposit, *, confirmations: int, reason: str, now: datetime
) -> None:
    if current.confirmations == confirmations and current.status_reason == reason:
        return
    _move(
        conn,
        current,
        DepositStatus.CONFIRMING,
        reason=reason,
        now=now,
        confirmations=confirmations,
    )


class HouseAccounts:
    """The house accounts deposit credits post to, opened once per unit of work: a batch of
    credits looks each one up once instead of three lookups per credit. Only valid inside the
    transaction it was made in (an account opened there rolls back with it)."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now
        self._ids: dict[tuple[str, str, str], AccountId] = {}

    def wallet(self, name: str, coin: Asset) -> AccountId:
        key = ("wallet", name, coin.code)
        if key not in self._ids:
            self._ids[key] = house.wallet(self._conn, name, coin, self._now).id
        return self._ids[key]

    def fx(self, coin: Asset, leg: Asset) -> AccountId:
        key = ("fx", coin.code, leg.code)
        if key not in self._ids:
            self._ids[key] = house.fx(self._conn, coin, leg, self._now).id
        return self._ids[key]


def _addresses_of(conn: Connection, batch: Sequence[Deposit]) -> dict[int, str]:
    """The addresses the deposits of a batch were paid to, by address id (one query)."""
    ids = {d.deposit_address_id for d in batch}
    if not ids:
        return {}
    found = conn.execute(
        select(deposit_address.c.id, deposit_address.c.address).where(deposit_address.c.id.in_(ids))
    )
    return {row.id: row.address for row in found}


@dataclass(frozen=True, slots=True)
class LockedBatch:
    """A batch of credits' rows as read under their locks (`lock_for_credits`), for `credit`
    to use instead of reading each again: the deposits by id, their owners by id and the
    addresses they were paid to."""

    deposits: Mapping[uuid.UUID, Deposit]
    customers: Mapping[uuid.UUID, accounts.CustomerAccount]
    addresses: Mapping[int, str]
    """The addresses the deposits were paid to, by address id (for their events)."""
    frozen: frozenset[uuid.UUID]
    """The owners whose balance was frozen when the batch was locked."""

    def state_before(self, customer: accounts.CustomerAccount) -> AccountState | None:
        """The state that applies to `customer` before its next credit of this batch, when the
        locks tell it: credits only add to a balance, so an owner not frozen when the batch was
        locked is not frozen before any of its credits. None: read it."""
        if customer.id not in self.customers or customer.id in self.frozen:
            return None
        return effective_state(AccountState(customer.status), False)


def lock_for_credits(
    conn: Connection, batch: Sequence[Deposit], house_accounts: HouseAccounts
) -> LockedBatch:
    """Take the row locks of a batch of credits up front, in the ledger's lock order
    (`kassa.ledger`): the deposits, then every ledger account the batch posts to, in ascending
    id order. One credit after another would otherwise lock a second customer's account while
    holding the first's and the house's, against the ascending order a chargeback or another
    chain's batch takes them in: a deadlock on PostgreSQL. Returns the rows as read under the
    locks (current until this transaction ends)."""
    if not batch:
        return LockedBatch({}, {}, {}, frozenset())
    locked = {
        row.id: _deposit(row)
        for row in conn.execute(
            select(deposit)
            .where(deposit.c.id.in_(sorted(d.id for d in batch)))
            .order_by(deposit.c.id)
            .with_for_update()
        )
    }
    customers = accounts.get_many(conn, {d.customer_account_id for d in batch})
    ledger_ids = {customer.ledger_account_id for customer in customers.values()}
    for current in batch:
        coin = current.money.asset
        ledger_ids |= {
            house_accounts.wallet(f"{current.chain}-deposits", coin),
            house_accounts.fx(coin, coin),
            house_accounts.fx(coin, USD),
        }
    balances = lock_balances(conn, ledger_ids)
    frozen = frozenset(
        customer.id
        for customer in customers.values()
        if customer.ledger_account_id not in balances or balances[customer.ledger_account_id].frozen
    )
    return LockedBatch(locked, customers, _addresses_of(conn, batch), frozen)


@dataclass(frozen=True, slots=True)
class CreditRequest:
    """One credit of a batch (`credit_many`): `credit`'s arguments for one deposit."""

    deposit_id: uuid.UUID
    lock: RateLock
    expected_block_hash: str
    confirmations: int


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A credit checked and priced, its ledger transaction built but not posted yet."""

    current: Deposit
    lock: RateLock
    customer: accounts.CustomerAccount
    before: AccountState
    transaction: NewTransaction
    credited: dict[str, Any]
    reason: str


def credit(
    conn: Connection,
    deposit_id: uuid.UUID,
    lock: RateLock,
    *,
    expected_block_hash: str,
    confirmations: int,
    now: datetime,
    house_accounts: HouseAccounts | None = None,
    locked: LockedBatch | None = None,
    deferred: Deferred | None = None,
) -> Deposit | None:
    """Credit the deposit's USD value at `lock`; None if it changed since it was judged final
    (its block left the chain, or another watcher credited it). A batch passes one
    `HouseAccounts` for all its credits in one transaction, the rows `lock_for_credits`
    read in this transaction (`locked`), and a `Deferred` its deposit writes wait in (the
    ledger entry is posted at once); `credit_many` credits a whole batch."""
    request = CreditRequest(deposit_id, lock, expected_block_hash, confirmations)
    accounts_of = house_accounts or HouseAccounts(conn, now)
    prepared = _prepare(conn, request, now, accounts_of, locked, deferred)
    if prepared is None:
        return None
    (transaction_id,) = post_many(conn, [prepared.transaction], now=now)
    return _finish(conn, prepared, transaction_id, now, locked, deferred)


def credit_many(
    conn: Connection,
    requests: Sequence[CreditRequest],
    *,
    now: datetime,
    house_accounts: HouseAccounts,
    locked: LockedBatch,
    deferred: Deferred,
) -> list[Deposit | None]:
    """`credit` of each request in order, in the caller's transaction, after
    `lock_for_credits` of the same deposits: every deposit is still its own ledger transaction
    under its own key, but the batch's entries go to the database together
    (`kassa.ledger.transfers.post_many`: one round trip on PostgreSQL), then the deposits'
    writes (`deferred`). A batch with an owner frozen at its start is credited one deposit
    after another: each credit's freeze check must see the credits before it."""
    if locked.frozen:
        return [
            credit(
                conn,
                request.deposit_id,
                request.lock,
                expected_block_hash=request.expected_block_hash,
                confirmations=request.confirmations,
                now=now,
                house_accounts=house_accounts,
                locked=locked,
                deferred=deferred,
            )
            for request in requests
        ]
    prepared = [
        _prepare(conn, request, now, house_accounts, locked, deferred) for request in requests
    ]
    ready = [item for item in prepared if item is not None]
    posted = iter(post_many(conn, [item.transaction for item in ready], now=now))
    return [
        None if item is None else _finish(conn, item, next(posted), now, locked, deferred)
        for item in prepared
    ]


def _prepare(
    conn: Connection,
    request: CreditRequest,
    now: datetime,
    house_accounts: HouseAccounts,
    locked: LockedBatch | None,
    deferred: Deferred | None,
) -> _Prepared | None:
    """Check that the deposit can still be credited and build its ledger transaction; None
    when it cannot (a deposit worth less than a micro-dollar is ignored here)."""
    lock = request.lock
    current = locked.deposits.get(request.deposit_id) if locked is not None else None
    if current is None:
        current = get(conn, request.deposit_id, for_update=True)
    if current is None:
        raise RuntimeError(f"deposit {request.deposit_id} does not exist")
    if current.status not in (DepositStatus.SEEN, DepositStatus.CONFIRMING):
        return None
    if current.block_hash != request.expected_block_hash:
        return None
    native = current.money
    usd = lock.to_usd(native)
    if not usd.is_positive:
        _move(
            conn,
            current,
            DepositStatus.IGNORED,
            reason=f"worth less than one micro-dollar at {lock.rate} USD",
            now=now,
            deferred=deferred,
        )
        return None
    customer = locked.customers.get(current.customer_account_id) if locked is not None else None
    if customer is None:
        customer = accounts.get(conn, current.customer_account_id)
    before = locked.state_before(customer) if locked is not None else None
    if before is None:
        before = account_views.effective(conn, customer)
    coin = native.asset
    number = current.credit_count + 1
    key = Request.of(
        IdempotencyKey("system", f"deposit:{current.id}:credit:{number}"),
        "deposits.credit",
        {"deposit": str(current.id), "lock": str(lock.id), "amount": native.amount},
    )
    legs = [
        Leg(house_accounts.wallet(f"{current.chain}-deposits", coin), native),
        Leg(house_accounts.fx(coin, coin), -native),
    ]
    memo = f"{native.format()} {coin.code} deposit at {lock.rate} USD"
    reason = f"credited {usd.format()} USD at {lock.rate} USD/{coin.code}"
    if current.chargeback_transaction_id is None:
        legs += [
            Leg(house_accounts.fx(coin, USD), usd),
            Leg(customer.ledger_account_id, -usd),
        ]
    else:
        # A chargeback already settled this payment with the customer: the coins are on the
        # chain again and are booked, the customer's balance is not credited a second time.
        memo = f"{memo}, mined again after its chargeback: the coins are booked, no USD credit"
        reason = "mined again after its chargeback: coins booked, the customer is not credited"
    transaction = NewTransaction(
        legs,
        kind=TransactionKind.DEPOSIT,
        request=key,
        memo=memo,
        actor=f"watcher:{current.chain}",
        metadata={
            "deposit_id": str(current.id),
            "txid": current.txid,
            "position": current.position,
            "rate_lock_id": str(lock.id),
        },
    )
    credited: dict[str, Any] = {
        "confirmations": request.confirmations,
        "rate_lock_id": lock.id,
        "usd_amount": usd.amount,
        "credit_count": number,
    }
    return _Prepared(current, lock, customer, before, transaction, credited, reason)


def _finish(
    conn: Connection,
    prepared: _Prepared,
    transaction_id: uuid.UUID,
    now: datetime,
    locked: LockedBatch | None,
    deferred: Deferred | None,
) -> Deposit:
    """The deposit's side of a posted credit: its move to credited (and its event), and the
    owner's state change when the credit lifted a freeze."""
    current = prepared.current
    credited = {**prepared.credited, "credit_transaction_id": transaction_id}
    _move(
        conn,
        current,
        DepositStatus.CREDITED,
        reason=prepared.reason,
        now=now,
        view_address=locked.addresses.get(current.deposit_address_id) if locked else None,
        view_lock=prepared.lock,
        deferred=deferred,
        **credited,
    )
    if prepared.before is AccountState.FROZEN:
        # A credit only adds to the customer's balance: it can lift a freeze, never cause one,
        # and it leaves every other state as it was. So only a frozen account is read again
        # (its event after this deposit's, as without deferred writes).
        if deferred is not None:
            deferred.flush(conn)
        account_views.emit_if_changed(conn, prepared.customer, prepared.before, now)
    # The row as just written, without reading it back.
    return dataclasses.replace(
        current,
        status=DepositStatus.CREDITED,
        status_reason=prepared.reason,
        updated_at=now,
        **credited,
    )


def reversal_memo(deposit: Deposit, fork_height: int) -> str:
    """What the customer's ledger says next to a reorg reversal: which transaction left the
    chain, from which block, so support can answer "where did my $60 go?" from the entry."""
    return (
        f"reversed: {deposit.money.format()} {deposit.asset} deposit, "
        f"{deposit.chain.value.upper()} transaction {deposit.txid}:{deposit.position} left the "
        f"chain at height {deposit.block_height} (reorganisation above block {fork_height})"
    )


def orphan(conn: Connection, current: Deposit, *, fork_height: int, now: datetime) -> None:
    """The deposit's block left the best chain: back to `seen`, or reverse a credit."""
    detached = {"block_height": None, "block_hash": None, "block_time": None, "confirmations": 0}
    reason = (
        f"block {current.block_height} left the best chain (reorganisation above {fork_height})"
    )
    if current.status is DepositStatus.CREDITED:
        if current.credit_transaction_id is None:
            raise RuntimeError(f"credited deposit {current.id} has no credit transaction")
        owner = accounts.get(conn, current.customer_account_id)
        before = account_views.effective(conn, owner)
        request = Request.of(
            IdempotencyKey("system", f"deposit:{current.id}:reversal:{current.credit_count}"),
            "deposits.reverse",
            {"deposit": str(current.id), "credit": str(current.credit_transaction_id)},
        )
        if current.chargeback_transaction_id is None:
            reversal = reverse(
                conn,
                current.credit_transaction_id,
                now=now,
                request=request,
                reason=reason,
                actor=f"watcher:{current.chain}",
                memo=reversal_memo(current, fork_height),
            )
        else:
            # The chargeback already mirrored the USD legs: take back only the coins, or the
            # customer would pay for the same payment twice.
            reversal = reverse_asset(
                conn,
                current.credit_transaction_id,
                asset_code=current.money.asset.code,
                now=now,
                request=request,
                memo=f"{reversal_memo(current, fork_height)}; its USD credit was already "
                "taken back by a chargeback",
                reason=reason,
                actor=f"watcher:{current.chain}",
                force=True,
            )
        _move(
            conn,
            current,
            DepositStatus.REVERSED,
            reason=reason,
            now=now,
            reversal_transaction_id=reversal,
            **detached,
        )
        account_views.emit_if_changed(conn, owner, before, now)
    elif current.status is DepositStatus.IGNORED:
        _move(
            conn, current, DepositStatus.IGNORED, reason=current.status_reason, now=now, **detached
        )
    elif current.status is DepositStatus.REVERSED:
        _move(
            conn, current, DepositStatus.REVERSED, reason=current.status_reason, now=now, **detached
        )
    else:
        _move(conn, current, DepositStatus.SEEN, reason=reason, now=now, **detached)


def mark_charged_back(conn: Connection, deposit_id: uuid.UUID, transaction_id: uuid.UUID) -> None:
    """Remember the chargeback that took a credited deposit's USD back (its row is locked by
    the caller), so a later reorg reverses only its coins and a re-mining books no new credit."""
    conn.execute(
        update(deposit)
        .where(deposit.c.id == deposit_id)
        .values(chargeback_transaction_id=transaction_id)
    )


def events(conn: Connection, deposit_id: uuid.UUID) -> list[tuple[str | None, str, str | None]]:
    rows = conn.execute(
        select(deposit_event.c.from_status, deposit_event.c.to_status, deposit_event.c.reason)
        .where(deposit_event.c.deposit_id == deposit_id)
        .order_by(deposit_event.c.id)
    ).all()
    return [(row.from_status, row.to_status, row.reason) for row in rows]


# --------------------------------------------------------------------------- mempool


def record_pending(
    conn: Connection,
    transfer: ChainTransfer,
    *,
    deposit_address_id: int,
    customer_account_id: uuid.UUID,
    now: datetime,
) -> Deposit | None:
    """Record a matched transfer of a mempool transaction as ``seen`` with no block, its
    first-seen time now; None when the deposit is already known (a dropped one that came back
    to the pool is ``seen`` again). Nothing here touches the ledger: only a block credits."""
    existing = find(conn, transfer.chain, transfer.txid, transfer.position)
    if existing is not None:
        if existing.status is DepositStatus.DROPPED:
            _move(conn, existing, DepositStatus.SEEN, reason=PENDING_REASON, now=now)
        return None
    values = _new_row(
        transfer,
        deposit_address_id=deposit_address_id,
        customer_account_id=customer_account_id,
        status=DepositStatus.SEEN,
        reason=PENDING_REASON,
        first_seen_at=now,
        now=now,
        block=None,
    )
    conn.execute(insert(deposit), values)
    recorded = _deposit(SimpleNamespace(**values))
    _event(conn, recorded.id, None, DepositStatus.SEEN, PENDING_REASON, None, now)
    from kassa.deposits import views

    views.emit(conn, recorded, now)
    return recorded


PENDING_REASON = "in the mempool, not mined yet"


def unmined(conn: Connection, chain: Chain) -> list[Deposit]:
    """Seen deposits in no block: from a mempool, or back from a block that left the chain."""
    rows = conn.execute(
        select(deposit).where(
            deposit.c.chain == chain.value,
            deposit.c.status == DepositStatus.SEEN.value,
            deposit.c.block_height.is_(None),
        )
    ).all()
    return [_deposit(row) for row in rows]


def leave_pool(
    conn: Connection, deposit_id: uuid.UUID, new: DepositStatus, *, reason: str, now: datetime
) -> bool:
    """Move a seen, unmined deposit to `new` (``dropped``, or ``ignored`` when mined without
    paying); False when a block got it meanwhile."""
    current = get(conn, deposit_id, for_update=True)
    if current is None or current.status is not DepositStatus.SEEN:
        return False
    if current.block_hash is not None:
        return False
    _move(conn, current, new, reason=reason, now=now)
    return True
