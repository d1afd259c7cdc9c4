"""The watcher's logic on both databases, against the in-memory `FakeChain` (a fake of our own
`ChainScanner` port): matching, dust and fakes, finality, rate locks, crediting exactly once,
crash replays and reorgs. The same watcher runs against the real local chains elsewhere."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from kassa.accounts import service as accounts
from kassa.chains.hd import parse_account_key
from kassa.chains.network import BtcNetwork, Chain, EthNetwork
from kassa.chains.scanning import ChainBlock, ChainHead
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.derive import HdDeriver
from kassa.deposits.fake import FakeChain
from kassa.deposits.model import NATIVE_POSITION, ChainTransfer, DepositStatus, SenderKind
from kassa.deposits.tables import deposit_address
from kassa.deposits.watcher import (
    Checkpoint,
    DeepReorg,
    Watcher,
    WatcherBusy,
    WatcherConfig,
    watcher_status,
)
from kassa.disputes import service as disputes
from kassa.disputes.model import Outcome, Subject
from kassa.ledger import house
from kassa.ledger.accounts import get_balance
from kassa.ledger.transfers import transfer
from kassa.money import BTC, ETH, USD, USDT_ERC20, Money
from kassa.policy import Policy
from kassa.pricing.locks import get_lock
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.devkeys import dev_account_xpub

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory

MNEMONIC = "abandon " * 11 + "about"
BTC_KEY = parse_account_key(dev_account_xpub(MNEMONIC, BtcNetwork.REGTEST), BtcNetwork.REGTEST)
ETH_KEY = parse_account_key(dev_account_xpub(MNEMONIC, EthNetwork(1337)), EthNetwork(1337))


@dataclass
class World:
    db: Database
    clock: ManualClock
    chain: FakeChain
    pricing: PricingService
    watcher: Watcher
    address: str
    customer: accounts.CustomerAccount

    def pay(
        self,
        sats: int,
        *,
        txid: str = "aa" * 32,
        vout: int = 0,
        to: str | None = None,
        sender: str | None = "bcrt1qsender",
        **extra: object,
    ) -> ChainTransfer:
        values: dict[str, object] = {
            "chain": Chain.BTC,
            "asset": "BTC",
            "txid": txid,
            "position": vout,
            "to_address": to or self.address,
            "amount": sats,
            "sender": sender,
            "sender_kind": SenderKind.KNOWN if sender else SenderKind.AMBIGUOUS,
            "success": True,
        }
        values.update(extra)
        return ChainTransfer(**values)  # type: ignore[arg-type]

    def deposits(self) -> list[records.Deposit]:
        with self.db.transaction() as conn:
            return records.for_account(conn, self.customer.id)

    def one(self) -> records.Deposit:
        [only] = self.deposits()
        return only

    def usd(self) -> Money:
        with self.db.transaction() as conn:
            return get_balance(conn, self.customer.ledger_account_id).posted

    def refresh_rate(self, btc: str) -> None:
        settings = PricingSettings(static_rates={Symbol.BTC: Decimal(btc)})
        PricingService(self.db, self.clock, settings).refresh([Symbol.BTC])


def make_world(db: Database, clock: ManualClock, *, final_depth: int = 3) -> World:
    chain = FakeChain(Chain.BTC, clock.now() - timedelta(hours=1), final_depth=final_depth)
    pricing = PricingService(db, clock, PricingSettings(history_tolerance_seconds=3600))
    with db.transaction() as conn:
        customer = accounts.create(conn, external_id="user-42", now=clock.now(), request=None)
        address, _ = addresses.get_or_create(conn, customer.id, HdDeriver(BTC_KEY), clock.now())
    watcher = Watcher(
        db, clock, chain, pricing, WatcherConfig(Chain.BTC, dust={"BTC": 546}, reorg_window=20)
    )
    world = World(db, clock, chain, pricing, watcher, address.address, customer)
    world.refresh_rate("60000")
    return world


@pytest.fixture
def world(db: Database, clock: ManualClock) -> World:
    return make_world(db, clock)


def test_deposit_is_credited_at_the_payment_time_rate_once_final(world: World) -> None:
    block = world.chain.mine([world.pay(100_000)])
    report = world.watcher.tick()
    assert report.recorded == 1 and not report.credited
    seen = world.one()
    assert seen.status is DepositStatus.CONFIRMING
    assert seen.confirmations == 1
    assert seen.first_seen_at == block.time
    assert seen.sender == "bcrt1qsender"

    # The price moves before the deposit is final; the payment-time rate still applies.
    world.clock.advance(timedelta(minutes=30))
    world.refresh_rate("50000")
    world.chain.mine_empty(2)
    report = world.watcher.tick()
    credited = world.one()
    assert report.credited == [credited.id]
    assert credited.status is DepositStatus.CREDITED
    assert credited.usd_amount == Money.parse("60", USD).amount  # docs/domain.md §7 worked example
    assert world.usd() == Money.parse("60", USD)
    with world.db.transaction() as conn:
        assert credited.rate_lock_id is not None
        lock = get_lock(conn, credited.rate_lock_id)
        assert lock.rate == Decimal(60000) and lock.priced_at == block.time
        wallet = get_balance(conn, house.wallet(conn, "btc-deposits", BTC, world.clock.now()).id)
        assert wallet.posted == Money(100_000, BTC)
        fx_native = get_balance(conn, house.fx(conn, BTC, BTC, world.clock.now()).id)
        fx_usd = get_balance(conn, house.fx(conn, BTC, USD, world.clock.now()).id)
        assert fx_native.posted == Money(-100_000, BTC)
        assert fx_usd.posted == Money.parse("60", USD)
        history = records.events(conn, credited.id)
    assert [to for _from, to, _why in history] == ["seen", "confirming", "credited"]

    # Ticking again changes nothing.
    world.chain.mine_empty(3)
    assert world.watcher.tick().credited == []
    assert world.usd() == Money.parse("60", USD)


def test_only_watched_addresses_are_recorded(world: World) -> None:
    world.chain.mine([world.pay(50_000, to="bcrt1qsomeoneelse0000000000000000000000000")])
    assert world.watcher.tick().recorded == 0
    assert world.deposits() == []


def test_dust_failed_and_fake_token_transfers_are_ignored(world: World) -> None:
    world.chain.mine(
        [
            world.pay(545, txid="01" * 32),
            world.pay(10_000, txid="02" * 32, success=False),
            world.pay(10_000, txid="03" * 32, canonical=False, token_contract="0xfake"),
        ]
    )
    world.chain.mine_empty(3)
    world.watcher.tick()
    by_txid = {d.txid: d for d in world.deposits()}
    assert {d.status for d in by_txid.values()} == {DepositStatus.IGNORED}
    assert "dust threshold of 0.00000546 BTC" in (by_txid["01" * 32].status_reason or "")
    assert "failed" in (by_txid["02" * 32].status_reason or "")
    assert "not the canonical" in (by_txid["03" * 32].status_reason or "")
    assert world.usd() == Money(0, USD)


def test_several_outputs_of_one_transaction_are_separate_deposits(world: World) -> None:
    world.chain.mine([world.pay(20_000, vout=0), world.pay(30_000, vout=3)])
    world.chain.mine_empty(2)
    world.watcher.tick()
    assert sorted(d.position for d in world.deposits()) == [0, 3]
    assert world.usd() == Money.parse("30", USD)  # 0.0005 BTC at 60 000


def test_no_rate_waits_then_credits_at_the_payment_time_rate(
    db: Database, clock: ManualClock
) -> None:
    world = make_world(db, clock)
    world.chain.mine([world.pay(100_000)], seconds=3 * 3600)  # paid long after the last sample
    world.chain.mine_empty(2)
    report = world.watcher.tick()
    assert report.waiting_for_rate == 1
    waiting = world.one()
    assert waiting.status is DepositStatus.CONFIRMING
    assert "waiting for a rate" in (waiting.status_reason or "")
    assert world.usd() == Money(0, USD)

    # A rate sampled near the payment time arrives (the refresher, or a candle source).
    clock.set(waiting.first_seen_at + timedelta(seconds=30))
    world.refresh_rate("61000")
    world.watcher.tick()
    assert world.one().status is DepositStatus.CREDITED
    assert world.usd() == Money.parse("61", USD)


def test_a_crash_between_blocks_replays_without_doubling(world: World) -> None:
    world.chain.mine([world.pay(100_000)])
    world.chain.mine_empty(2)
    world.watcher.tick()
    # A restarted watcher (new process, same checkpoint) sees the same chain.
    fresh = Watcher(world.db, world.clock, world.chain, world.pricing, world.watcher.config)
    world.watcher.release()
    world.chain.mine_empty(1)
    fresh.tick()
    assert len(world.deposits()) == 1
    assert world.usd() == Money.parse("60", USD)


def test_reorg_before_credit_goes_back_to_seen_and_credits_once_reincluded(
    world: World,
) -> None:
    payment = world.pay(100_000)
    world.chain.mine([payment])
    world.watcher.tick()
    world.chain.reorg(1)
    world.chain.mine_empty(2)  # the competing branch is longer and lacks the payment
    report = world.watcher.tick()
    assert report.rewound_to == 0
    orphaned = world.one()
    assert orphaned.status is DepositStatus.SEEN and orphaned.block_hash is None

    world.chain.include_again([payment])
    world.chain.mine_empty(2)
    world.watcher.tick()
    credited = world.one()
    assert credited.status is DepositStatus.CREDITED and credited.credit_count == 1
    assert world.usd() == Money.parse("60", USD)


def test_reorg_after_credit_reverses_and_freezes_a_spent_balance_then_recredits_once(
    world: World,
) -> None:
    payment = world.pay(100_000)
    world.chain.mine([payment])
    world.chain.mine_empty(2)
    world.watcher.tick()
    assert world.usd() == Money.parse("60", USD)
    # The customer spends $50 of it.
    with world.db.transaction() as conn:
        transfer(
            conn,
            debit_account_id=world.customer.ledger_account_id,
            credit_account_id=house.revenue(conn, USD, world.clock.now()).id,
            amount=Money.parse("50", USD),
            now=world.clock.now(),
            request=None,
        )

    world.chain.reorg(3)
    world.chain.mine_empty(4)
    report = world.watcher.tick()
    assert report.rewound_to == 0
    reversed_ = world.one()
    assert reversed_.status is DepositStatus.REVERSED
    assert reversed_.reversal_transaction_id is not None
    with world.db.transaction() as conn:
        balance = get_balance(conn, world.customer.ledger_account_id)
    assert balance.posted == Money.parse("-50", USD, allow_negative=True)
    assert balance.frozen

    world.chain.include_again([payment])
    world.chain.mine_empty(2)
    world.watcher.tick()
    again = world.one()
    assert again.status is DepositStatus.CREDITED
    assert again.credit_count == 2
    assert again.rate_lock_id == reversed_.rate_lock_id  # valued once, at payment time
    assert world.usd() == Money.parse("10", USD)
    world.chain.mine_empty(5)
    world.watcher.tick()
    assert world.usd() == Money.parse("10", USD)


def test_a_reorg_after_a_chargeback_takes_back_only_the_coins_and_remining_credits_nothing(
    world: World,
) -> None:
    """A charged-back top-up whose transaction then leaves the chain: the customer already
    paid the USD back, so the reversal mirrors only the coins; mined again, the coins are
    booked and the customer is not credited a second time."""
    payment = world.pay(100_000)
    world.chain.mine([payment])
    world.chain.mine_empty(2)
    world.watcher.tick()
    credited = world.one()
    policy = Policy()
    with world.db.transaction() as conn:
        opened = disputes.open_dispute(
            conn,
            account=world.customer,
            subject=Subject.DEPOSIT,
            subject_id=credited.id,
            reason="card-funded purchase charged back",
            actor="operator:test",
            policy=policy,
            now=world.clock.now(),
        )
        disputes.resolve(
            conn,
            opened.id,
            outcome=Outcome.CHARGEBACK,
            note="processor case 1",
            actor="operator:test",
            policy=policy,
            now=world.clock.now(),
            request=None,
        )
    assert world.usd() == Money.parse("0", USD)

    def coins_booked() -> Money:
        with world.db.transaction() as conn:
            wallet = house.wallet(conn, "btc-deposits", BTC, world.clock.now())
            return get_balance(conn, wallet.id).posted

    assert coins_booked() == Money(100_000, BTC)

    world.chain.reorg(3)
    world.chain.mine_empty(4)
    world.watcher.tick()
    reversed_ = world.one()
    assert reversed_.status is DepositStatus.REVERSED
    assert world.usd() == Money.parse("0", USD)  # not −$60: the USD went back once
    assert coins_booked() == Money(0, BTC)
    with world.db.transaction() as conn:
        assert not get_balance(conn, world.customer.ledger_account_id).frozen

    world.chain.include_again([payment])
    world.chain.mine_empty(2)
    world.watcher.tick()
    again = world.one()
    assert again.status is DepositStatus.CREDITED and again.credit_count == 2
    assert "after its chargeback" in (again.status_reason or "")
    assert world.usd() == Money.parse("0", USD)
    assert coins_booked() == Money(100_000, BTC)


def test_a_reorg_deeper_than_the_window_stops_the_watcher(world: World) -> None:
    world.chain.mine_empty(30)
    world.watcher.tick()
    world.chain.reorg(25)
    world.chain.mine_empty(26)
    with pytest.raises(DeepReorg, match="an operator must check the node"):
        world.watcher.tick()


def test_a_second_watcher_of_the_same_chain_is_refused(world: World) -> None:
    world.watcher.tick()
    other = Watcher(world.db, world.clock, world.chain, world.pricing, world.watcher.config)
    with pytest.raises(WatcherBusy):
        other.tick()
    world.clock.advance(timedelta(seconds=61))  # the first watcher died: its lease runs out
    other.tick()


def test_token_and_native_transfers_on_one_address(db: Database, clock: ManualClock) -> None:
    chain = FakeChain(Chain.ETH, clock.now(), final_depth=1)
    settings = PricingSettings(history_tolerance_seconds=7200)
    pricing = PricingService(db, clock, settings)
    pricing.refresh()
    with db.transaction() as conn:
        customer = accounts.create(conn, external_id="eth-user", now=clock.now(), request=None)
        address, _ = addresses.get_or_create(conn, customer.id, HdDeriver(ETH_KEY), clock.now())
    watcher = Watcher(db, clock, chain, pricing, WatcherConfig(Chain.ETH))
    common = {"chain": Chain.ETH, "txid": "0x" + "ab" * 32, "sender": "0x" + "11" * 20}
    chain.mine(
        [
            ChainTransfer(
                asset="ETH",
                position=NATIVE_POSITION,
                to_address=address.address.lower(),
                amount=Money.parse("0.01", ETH).amount,
                sender_kind=SenderKind.KNOWN,
                success=True,
                **common,  # type: ignore[arg-type]
            ),
            ChainTransfer(
                asset="USDT-ERC20",
                position=4,
                to_address=address.address,
                amount=Money.parse("25.5", USDT_ERC20).amount,
                sender_kind=SenderKind.KNOWN,
                success=True,
                token_contract="0xusdt",
                **common,  # type: ignore[arg-type]
            ),
        ],
        seconds=60,
    )
    watcher.tick()
    with db.transaction() as conn:
        found = {d.asset: d for d in records.for_account(conn, customer.id)}
        balance = get_balance(conn, customer.ledger_account_id).posted
    assert {a: d.status for a, d in found.items()} == {
        "ETH": DepositStatus.CREDITED,
        "USDT-ERC20": DepositStatus.CREDITED,
    }
    assert balance == Money.parse("55.5", USD)  # 0.01 ETH at 3000 + 25.5 USDT at par


def test_one_address_per_account_and_chain(db: Database, clock: ManualClock) -> None:
    deriver = HdDeriver(BTC_KEY)
    with db.transaction() as conn:
        a = accounts.create(conn, external_id="a", now=clock.now(), request=None)
        b = accounts.create(conn, external_id="b", now=clock.now(), request=None)
        first, created = addresses.get_or_create(conn, a.id, deriver, clock.now())
        again, created_again = addresses.get_or_create(conn, a.id, deriver, clock.now())
        other, _ = addresses.get_or_create(conn, b.id, deriver, clock.now())
    assert created and not created_again and again == first
    assert (first.derivation_index, other.derivation_index) == (0, 1)
    assert first.address == str(BTC_KEY.address(0)) and first.address.startswith("bcrt1q")


@pytest.mark.postgres
def test_concurrent_address_requests_leave_no_gaps_or_duplicates(
    pg_databases: DatabaseFactory, clock: ManualClock
) -> None:
    db = pg_databases.new(pool_size=12)
    deriver = HdDeriver(BTC_KEY)
    with db.transaction() as conn:
        customers = [
            accounts.create(conn, external_id=f"c{i}", now=clock.now(), request=None)
            for i in range(20)
        ]
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []

    def request(worker: int) -> None:
        barrier.wait()
        try:
            # Each worker asks for every customer: 10 racing requests per (account, chain).
            for customer in customers[worker % 2 :: 1]:
                with db.transaction() as conn:
                    addresses.get_or_create(conn, customer.id, deriver, clock.now())
        except BaseException as exc:  # pragma: no cover - would be the bug
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with db.transaction() as conn:
        indexes = sorted(conn.execute(select(deposit_address.c.derivation_index)).scalars())
        issued, next_index = addresses.gap(conn, Chain.BTC, deriver.key_id)
        distinct = conn.execute(
            select(func.count(func.distinct(deposit_address.c.customer_account_id)))
        ).scalar_one()
    assert indexes == list(range(20))
    assert (issued, next_index) == (20, 20)
    assert distinct == 20


def test_watcher_status_shows_lag_and_the_last_error(world: World) -> None:
    world.chain.mine_empty(5)
    world.watcher.tick()
    with world.db.transaction() as conn:
        [status] = watcher_status(conn)
    assert (status.chain, status.scanned_height, status.head_height, status.lag) == (
        Chain.BTC,
        5,
        5,
        0,
    )
    assert status.last_error is None and status.last_tick_at == world.clock.now()

    world.chain.mine_empty(3)
    broken = Broken(world.chain)
    failing = Watcher(
        world.db,
        world.clock,
        broken,
        world.pricing,
        world.watcher.config,
        owner=world.watcher.owner,
    )
    stop = threading.Event()
    loop = threading.Thread(target=failing.run_forever, args=(stop, 0.01))
    loop.start()
    broken.failed.wait(5)
    stop.set()
    loop.join(5)
    with world.db.transaction() as conn:
        [status] = watcher_status(conn)
    assert status.head_height == 8 and status.lag == 3
    assert status.last_error == "ConnectionError: node went away"


class Broken:
    """The fake chain whose blocks cannot be fetched (the node died mid-scan)."""

    def __init__(self, chain: FakeChain) -> None:
        self.inner = chain
        self.chain = chain.chain
        self.failed = threading.Event()

    def head(self) -> ChainHead:
        return self.inner.head()

    def block_hash(self, height: int) -> str | None:
        return self.inner.block_hash(height)

    def block(self, height: int, watched: frozenset[str]) -> ChainBlock:
        self.failed.set()
        raise ConnectionError("node went away")


class FailsOnce:
    """The fake chain whose node fails once, when asked for one block (mid-batch)."""

    def __init__(self, chain: FakeChain, height: int) -> None:
        self.inner = chain
        self.chain = chain.chain
        self.height: int | None = height

    def head(self) -> ChainHead:
        return self.inner.head()

    def block_hash(self, height: int) -> str | None:
        return self.inner.block_hash(height)

    def block(self, height: int, watched: frozenset[str]) -> ChainBlock:
        if height == self.height:
            self.height = None
            raise ConnectionError("node went away")
        return self.inner.block(height, watched)


def test_blocks_are_stored_and_deposits_credited_in_batches_and_a_failed_batch_leaves_no_gap(
    world: World,
) -> None:
    """Four blocks per storage transaction and three deposits per credit transaction: a node
    failure in the middle of the second batch of blocks keeps the first batch, whose final
    deposits were credited as soon as it was stored, and drops the second whole (the checkpoint
    stays at the first batch's end); the next tick scans it again, and every deposit ends up
    credited once, each by its own ledger transaction."""
    for k in range(7):
        world.chain.mine([world.pay(100_000 + k, txid=f"{k:02x}" * 32)])
    world.chain.mine_empty(2)
    config = replace(world.watcher.config, store_batch_blocks=4, credit_batch=3)
    flaky = FailsOnce(world.chain, height=6)
    watcher = Watcher(world.db, world.clock, flaky, world.pricing, config)

    with pytest.raises(ConnectionError):
        watcher.tick()
    # Blocks 0…3 were the first batch; 4 and 5 were fetched, then the node failed on 6.
    assert watcher.checkpoint() == Checkpoint(3, world.chain.blocks[3].hash)
    assert sorted(d.block_height or 0 for d in world.deposits()) == [1, 2, 3]
    assert all(d.status is DepositStatus.CREDITED for d in world.deposits())

    report = watcher.tick()
    assert report.scanned == 6 and report.recorded == 4 and len(report.credited) == 4
    deposits = world.deposits()
    assert len(deposits) == 7
    assert all(d.status is DepositStatus.CREDITED and d.credit_count == 1 for d in deposits)
    assert len({d.credit_transaction_id for d in deposits}) == 7
    assert len({d.rate_lock_id for d in deposits}) == 7
    # 100 000 + k satoshi at 60 000 USD/BTC: $60 and 600 micro-dollars per extra satoshi.
    assert world.usd() == Money(7 * 60_000_000 + 600 * sum(range(7)), USD)
    assert watcher.checkpoint() == Checkpoint(9, world.chain.blocks[9].hash)
