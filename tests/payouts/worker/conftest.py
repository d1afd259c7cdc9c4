"""Harness of the payout worker's fast tests: the real worker, database, ledger, policy and
rates, with an in-memory chain (`FakeRail`) standing in for a node. The real rails have their
own tests on the local chains (tests/payouts/rails) and the worker runs end to end on them in
tests/payouts/test_payouts_e2e.py; this fake only lets every branch of the worker (dead,
failed, stuck, short, crash between steps) be driven on purpose and quickly.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import Connection, select

from kassa.accounts import service as accounts
from kassa.accounts.service import CustomerAccount
from kassa.chains.network import Chain
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits.settings import ChainsSettings
from kassa.ledger.accounts import get_balance
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.tables import ledger_account
from kassa.ledger.transfers import adjust
from kassa.money import USD, Asset, Money, asset
from kassa.payouts.rails.base import (
    Broadcast,
    BroadcastOutcome,
    FeeEstimate,
    HotWalletShort,
    PayoutLine,
    Rail,
    SignedTx,
    StoredTx,
    TxState,
    TxStatus,
)
from kassa.payouts.requests import PayoutRequest, Payouts
from kassa.payouts.settings import PayoutSettings
from kassa.payouts.worker import PayoutWorker
from kassa.policy.settings import PolicySettings
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

ETH = asset("ETH")
PAYEE = "0x" + "11" * 20
GWEI = 10**9


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the static rate source made a request: {request.url}")


@dataclass
class FakeTx:
    signed: SignedTx
    nonce: int
    state: TxState = TxState.UNKNOWN
    confirmations: int = 0


@dataclass
class FakeRail:
    """An in-memory Ethereum-like chain: nonces, a mempool, blocks on demand."""

    fee_per_tx: int = 420_000 * GWEI  # 21 000 gas at 20 gwei
    balance: int = 10 * 10**18
    confirmations_needed: int = 2
    fee_paid_ratio: Decimal = Decimal("0.9")
    txs: dict[str, FakeTx] = field(default_factory=dict)
    broadcasts: list[str] = field(default_factory=list)
    settled: list[tuple[str, TxState]] = field(default_factory=list)
    next_nonce: int = 0
    broadcast_answer: BroadcastOutcome = BroadcastOutcome.ACCEPTED
    too_cheap: set[str] = field(default_factory=set)
    """Txids the node refuses as underpriced (a full mempool evicted them)."""
    before_estimate: Callable[[], object] | None = None
    """Called as an estimate starts: lets a test make a round slow (move the clock)."""
    after_status_read: Callable[[], object] | None = None
    """Called once, after `status` read the state and before it answers: lets a test run
    another worker in between (the answer is then stale, as a real one can be)."""

    chain: Chain = Chain.ETH
    fee_asset: Asset = ETH

    @property
    def assets(self) -> tuple[Asset, ...]:
        return (ETH,)

    def hot_address(self) -> str:
        return "0x" + "ab" * 20

    def dust_limit(self, coin: Asset, destination: str) -> Money:
        return Money(1, coin)

    def estimate(self, coin: Asset, lines: Sequence[PayoutLine]) -> FeeEstimate:
        if self.before_estimate is not None:
            self.before_estimate()
        return FeeEstimate(Money(self.fee_per_tx, ETH), {"gas": 21_000}, "fake")

    def _pending(self) -> int:
        return sum(
            sum(line.amount.amount for line in self._lines(tx)) + tx.signed.fee.amount
            for tx in self.txs.values()
            if tx.state in (TxState.UNKNOWN, TxState.PENDING, TxState.MINED)
        )

    @staticmethod
    def _lines(tx: FakeTx) -> list[PayoutLine]:
        return list(tx.signed.spend["lines"])

    def check_funds(self, conn: Connection, coin: Asset, lines: Sequence[PayoutLine]) -> None:
        needed = sum(line.amount.amount for line in lines) + self.fee_per_tx
        if self.balance - self._pending() < needed:
            raise HotWalletShort(
                f"hot wallet holds {self.balance - self._pending()} wei, {needed} needed"
            )

    def _signed(self, nonce: int, lines: Sequence[PayoutLine], fee: int) -> SignedTx:
        digest = hashlib.sha256(f"{nonce}:{lines}:{fee}".encode()).hexdigest()
        return SignedTx(
            txid="0x" + digest,
            raw=digest * 2,
            spend_key=f"eth:fake:{nonce}",
            spend={"nonce": nonce, "lines": list(lines)},
            fee=Money(fee, ETH),
        )

    def sign(
        self,
        conn: Connection,
        coin: Asset,
        lines: Sequence[PayoutLine],
        estimate: FeeEstimate,
        *,
        now: datetime,
    ) -> SignedTx:
        self.check_funds(conn, coin, lines)
        signed = self._signed(self.next_nonce, lines, estimate.total.amount)
        self.txs[signed.txid] = FakeTx(signed, self.next_nonce)
        self.next_nonce += 1
        return signed

    def broadcast(self, tx: StoredTx) -> Broadcast:
        if self.broadcast_answer is not BroadcastOutcome.ACCEPTED:
            return Broadcast(self.broadcast_answer, "node says no")
        if tx.txid in self.too_cheap:
            return Broadcast(BroadcastOutcome.REJECTED, "transaction underpriced")
        self.broadcasts.append(tx.raw)
        fake = self.txs[tx.txid]
        if fake.state is TxState.UNKNOWN:
            fake.state = TxState.PENDING
        return Broadcast(BroadcastOutcome.ACCEPTED)

    def status(self, tx: StoredTx) -> TxStatus:
        fake = self.txs[tx.txid]
        if fake.state in (TxState.FINAL, TxState.FAILED):
            paid = int(fake.signed.fee.amount * self.fee_paid_ratio)
            answer = TxStatus(fake.state, "", 7, "0xblock", fake.confirmations, Money(paid, ETH))
        else:
            answer = TxStatus(fake.state)
        hook, self.after_status_read = self.after_status_read, None
        if hook is not None:
            hook()
        return answer

    def replacement(
        self, conn: Connection, tx: StoredTx, *, bump_percent: int, now: datetime
    ) -> SignedTx | None:
        fake = self.txs[tx.txid]
        fee = tx.fee.amount * (100 + bump_percent) // 100
        signed = self._signed(fake.nonce, tx.lines, fee)
        self.txs[signed.txid] = FakeTx(signed, fake.nonce)
        return signed

    def settle(self, conn: Connection, tx: StoredTx, state: TxState) -> None:
        self.settled.append((tx.txid, state))

    # -- what the chain does ---------------------------------------------------------

    def mine(self, confirmations: int | None = None) -> None:
        """Mine every pending transaction (one per nonce: the first broadcast wins) to final."""
        mined_nonces = {t.nonce for t in self.txs.values() if t.state is TxState.FINAL}
        for fake in self.txs.values():
            if fake.state is TxState.PENDING and fake.nonce not in mined_nonces:
                fake.confirmations = confirmations or self.confirmations_needed
                fake.state = TxState.FINAL
                mined_nonces.add(fake.nonce)
                self.balance -= sum(line.amount.amount for line in self._lines(fake))
                self.balance -= int(fake.signed.fee.amount * self.fee_paid_ratio)
        for fake in self.txs.values():
            if fake.state is not TxState.FINAL and fake.nonce in mined_nonces:
                fake.state = TxState.DEAD

    def paid(self, destination: str) -> int:
        return sum(
            line.amount.amount
            for fake in self.txs.values()
            if fake.state is TxState.FINAL
            for line in self._lines(fake)
            if line.destination == destination
        )


class Bench:
    """One database, clock, rates at ETH = 3 000 USD, a payouts service and workers."""

    def __init__(self, db: Database, clock: ManualClock) -> None:
        self.db = db
        self.clock = clock
        self.pricing = PricingService(
            db,
            clock,
            PricingSettings(static_rates={Symbol.ETH: Decimal("3000"), Symbol.USDT: Decimal(1)}),
            transport=httpx.MockTransport(_no_network),
        )
        self.record_rates()
        self.settings = PayoutSettings.model_validate(
            {"review": {"new_destinations": False}, "worker": {"stuck_after_seconds": 600}}
        )
        self.payouts = Payouts(
            database=db,
            clock=clock,
            pricing=self.pricing,
            policy=PolicySettings().load(),
            settings=self.settings,
            chains=ChainsSettings(),
        )
        self.rail = FakeRail()

    def record_rates(self) -> None:
        result = self.pricing.refresh([Symbol.ETH, Symbol.USDT])
        assert not result.missing, result.missing

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        self.record_rates()

    def worker(self, name: str = "w1", rails: Mapping[Chain, Rail] | None = None) -> PayoutWorker:
        return PayoutWorker(
            database=self.db,
            clock=self.clock,
            pricing=self.pricing,
            settings=self.settings,
            rails={Chain.ETH: self.rail} if rails is None else rails,
            worker_id=f"payout-worker:{name}",
            crash_at=None,
        )

    def customer(self, funds: str = "100.00") -> CustomerAccount:
        with self.db.transaction() as conn:
            now = self.clock.now(conn)
            account = accounts.create(
                conn, external_id=f"cust-{uuid.uuid4().hex[:8]}", now=now, request=None
            )
            adjust(
                conn,
                account_id=account.ledger_account_id,
                amount=Money.parse(funds, USD),
                direction="credit",
                reason="test funds",
                actor="test",
                now=now,
                request=None,
            )
            return account

    def withdraw(self, account: CustomerAccount, usd: str = "25.00") -> PayoutRequest:
        return self.payouts.request_withdrawal(
            account,
            Money.parse(usd, USD),
            ETH,
            PAYEE,
            request=Request.of(
                IdempotencyKey("test", uuid.uuid4().hex), "payouts.withdraw", {"usd": usd}
            ),
            actor="test",
        )

    def available(self, account: CustomerAccount) -> Money:
        with self.db.transaction() as conn:
            return get_balance(conn, account.ledger_account_id).available

    def account_balance(self, code: str) -> int:
        with self.db.transaction() as conn:
            row = conn.execute(
                select(ledger_account.c.id).where(ledger_account.c.code == code)
            ).first()
            if row is None:
                return 0
            return get_balance(conn, row.id).posted.amount


@pytest.fixture
def bench(db: Database, clock: ManualClock) -> Bench:
    return Bench(db, clock)
