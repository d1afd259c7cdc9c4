"""Review and approval of refunds and withdrawals, and the daily limits (kassa.payouts.review),
on the real `Payouts` service, SQLite and PostgreSQL.

What stands in for the outside world:

* rates: the ``static`` source at 50 000 USD/BTC, 2 500 USD/ETH, 1 USD/USDT, recorded again
  whenever the clock moves (a rate is only usable for 300 s);
* top-ups: an in-memory `FakeChain` (BTC) scanned and credited by the real `Watcher`, as in the
  other request tests — only the refund's facts (amount, sender) matter here;
* the payout worker: `Desk.settle` marks a request ``confirmed`` or ``signed`` directly, as the
  worker would once the coins left. That is how a destination becomes "paid before" here.

Default settings unless a test says otherwise: review above $1 000 and of never-paid
destinations, two approvals above $10 000, at most 10 requests and $5 000 per account per day;
the default policy (withdrawals: $20 minimum, $5 flat fee, the network fee deducted).
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select, update

from kassa.accounts import service as accounts
from kassa.accounts import states
from kassa.accounts.service import CustomerAccount
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainTransfer, SenderKind
from kassa.clock import ManualClock
from kassa.config import Settings
from kassa.db import Database
from kassa.deposits import addresses
from kassa.deposits.fake import FakeChain
from kassa.deposits.runtime import derivers
from kassa.deposits.tables import deposit
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.ledger import holds, transfers
from kassa.ledger.accounts import get_balance
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.model import HoldStatus
from kassa.money import USD, Money, asset
from kassa.payouts import review, store
from kassa.payouts.errors import (
    AlreadyApproved,
    DestinationIsOwnAddress,
    PayoutLimitExceeded,
    PayoutRequestNotFound,
    ReviewReasonRequired,
)
from kassa.payouts.model import (
    IllegalRequestTransition,
    PayoutRequest,
    RequestStatus,
    ReviewCode,
)
from kassa.payouts.requests import Payouts
from kassa.payouts.tables import payout_request
from kassa.policy import FeeCharge
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory

PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"
"""A wallet outside Kassa that withdrawals pay."""
NEW_PAYEE = "bcrt1qte09uhj7te09uhj7te09uhj7te09uhj73k46uj"
"""Another wallet outside Kassa, never paid unless a test pays it."""
ETH_PAYEE = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
"""An ETH wallet, in lower case (EIP-55 case is only a checksum; Kassa stores the checksummed
form)."""

RATES = {Symbol.BTC: Decimal("50000"), Symbol.ETH: Decimal("2500"), Symbol.USDT: Decimal("1")}


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the static rate source made a request: {request.url}")


class Desk:
    """The payout service under given settings, with the steps the review tests share."""

    def __init__(self, db: Database, clock: ManualClock, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.payouts = Payouts(
            database=db,
            clock=clock,
            pricing=PricingService(db, clock, settings.pricing),
            policy=settings.policy.load(),
            settings=settings.payouts,
            chains=settings.chains,
        )
        self._derivers = derivers(settings.chains)
        self._btc: tuple[FakeChain, Watcher] | None = None
        self.record_rates()

    def with_settings(self, **sections: Any) -> Desk:
        """Another desk on the same database and clock, e.g. ``payouts={"review": {…}}``."""
        return Desk(self.db, self.clock, Settings.model_validate(sections))

    # -- time and rates -------------------------------------------------------------

    def record_rates(self) -> None:
        pricing = PricingService(
            self.db,
            self.clock,
            PricingSettings(static_rates=RATES),
            transport=httpx.MockTransport(_no_network),
        )
        assert not pricing.refresh(list(RATES)).missing

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        self.record_rates()

    # -- accounts -------------------------------------------------------------------

    def account(self, external_id: str, funds: str | None = None) -> CustomerAccount:
        with self.db.transaction() as conn:
            made = accounts.create(
                conn, external_id=external_id, now=self.clock.now(), request=None
            )
            if funds is not None:
                transfers.adjust(
                    conn,
                    account_id=made.ledger_account_id,
                    amount=Money.parse(funds, USD),
                    direction="credit",
                    reason="test funds",
                    actor="test",
                    now=self.clock.now(),
                    request=None,
                )
        return made

    def available(self, account: CustomerAccount) -> str:
        with self.db.transaction() as conn:
            return get_balance(conn, account.ledger_account_id).available.format()

    def requests_of(self, account: CustomerAccount) -> list[PayoutRequest]:
        with self.db.transaction() as conn:
            return store.for_account(conn, account.id)

    def get(self, request_id: uuid.UUID) -> PayoutRequest:
        with self.db.transaction() as conn:
            return store.get(conn, request_id)

    def events(self, request_id: uuid.UUID) -> list[dict[str, Any]]:
        with self.db.transaction() as conn:
            return store.events(conn, request_id)

    # -- requests -------------------------------------------------------------------

    @staticmethod
    def key(key: str | None = None) -> IdempotencyKey:
        return IdempotencyKey("test", key or str(uuid.uuid4()))

    def withdraw(
        self,
        account: CustomerAccount,
        usd: str,
        address: str = PAYEE,
        coin: str = "BTC",
        *,
        key: str | None = None,
    ) -> PayoutRequest:
        amount = Money.parse(usd, USD)
        request = Request.of(
            self.key(key),
            "test.withdraw",
            {"account": str(account.id), "usd": amount.amount, "asset": coin, "to": address},
        )
        return self.payouts.request_withdrawal(
            account, amount, asset(coin), address, request=request, actor="api-key:shop"
        )

    def refund(
        self, account: CustomerAccount, deposit_id: uuid.UUID, *, key: str | None = None
    ) -> PayoutRequest:
        request = Request.of(
            self.key(key), "test.refund", {"account": str(account.id), "topup": str(deposit_id)}
        )
        return self.payouts.request_refund(
            account, deposit_id, request=request, actor="api-key:shop"
        )

    def settle(self, request_id: uuid.UUID, status: RequestStatus) -> None:
        """Stand in for the payout worker: the request is now ``status`` (signed, confirmed)."""
        with self.db.transaction() as conn:
            conn.execute(
                update(payout_request)
                .where(payout_request.c.id == request_id)
                .values(status=status.value, updated_at=self.clock.now())
            )

    def paid_before(self, address: str, coin: str = "BTC") -> None:
        """A confirmed payout to ``address`` from another account: it is a known destination."""
        payer = self.account(f"earlier-{uuid.uuid4().hex[:8]}", funds="100")
        made = self.with_settings(payouts={"review": {"new_destinations": False}}).withdraw(
            payer, "30", address, coin
        )
        self.settle(made.id, RequestStatus.CONFIRMED)

    # -- top-ups --------------------------------------------------------------------

    def deposit_address(self, account: CustomerAccount) -> str:
        with self.db.transaction() as conn:
            found, _created = addresses.get_or_create(
                conn, account.id, self._derivers[Chain.BTC], self.clock.now()
            )
        return found.address

    def top_up(self, account: CustomerAccount, sats: int, sender: str) -> uuid.UUID:
        """A BTC top-up from ``sender``, credited by the real watcher at the current rate."""
        if self._btc is None:
            fake = FakeChain(Chain.BTC, self.clock.now() - timedelta(hours=1), final_depth=1)
            pricing = PricingService(self.db, self.clock, PricingSettings())
            self._btc = fake, Watcher(self.db, self.clock, fake, pricing, WatcherConfig(Chain.BTC))
        fake, watcher = self._btc
        txid = uuid.uuid4().hex * 2
        to = self.deposit_address(account)
        transfer = ChainTransfer(
            Chain.BTC, "BTC", txid, 0, to, sats, sender, SenderKind.KNOWN, True
        )
        gap = self.clock.now() - fake.blocks[-1].time
        fake.mine([transfer], seconds=int(gap.total_seconds()))
        watcher.tick()
        with self.db.transaction() as conn:
            row = conn.execute(
                select(deposit.c.id, deposit.c.status).where(deposit.c.txid == txid)
            ).one()
        assert row.status == "credited", row
        deposit_id: uuid.UUID = row.id
        return deposit_id


@pytest.fixture
def desk(db: Database, clock: ManualClock) -> Desk:
    """Default settings: review above $1 000 and of never-paid destinations, two approvals above
    $10 000, at most 10 requests and $5 000 per account per day."""
    return Desk(db, clock, Settings())


def usd(text: str) -> Money:
    return Money.parse(text, USD)


# --------------------------------------------------------------------------- screening


def test_small_withdrawal_to_a_paid_destination_is_approved_at_once(desk: Desk) -> None:
    desk.paid_before(PAYEE)
    customer = desk.account("c", funds="100")

    made = desk.withdraw(customer, "30")

    assert made.status is RequestStatus.APPROVED
    assert (made.review_reasons, made.needs_review, made.approvals_required) == ((), False, 1)
    # Kept for the worker to price the real network fee the policy's way.
    assert (made.fee_charge, made.flat_fee_usd) == (FeeCharge.ALL, usd("5.00"))
    assert desk.available(customer) == "70.00"
    [created] = desk.events(made.id)
    assert (created["from"], created["to"]) == (None, "approved")


def test_a_paid_eth_address_is_known_to_usdt_erc20_whatever_its_case(desk: Desk) -> None:
    """ETH and USDT-ERC20 share one chain; EIP-55 case is only a checksum."""
    desk.paid_before(ETH_PAYEE, "ETH")
    customer = desk.account("c", funds="100")

    made = desk.withdraw(customer, "30", ETH_PAYEE.upper().replace("0X", "0x"), "USDT-ERC20")

    assert made.status is RequestStatus.APPROVED, made.review_reasons
    assert made.destination == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55
    assert made.net_native == Money.parse("21.75", asset("USDT-ERC20"))  # $30 − $5 − $3.25 fee


def test_a_never_paid_destination_waits_until_an_operator_approves(desk: Desk) -> None:
    desk.paid_before(PAYEE)  # PAYEE was paid; NEW_PAYEE never was
    customer = desk.account("c", funds="100")

    made = desk.withdraw(customer, "30", NEW_PAYEE)

    assert made.status is RequestStatus.PENDING_REVIEW
    assert made.needs_review is True
    assert [(r.code, r.detail) for r in made.review_reasons] == [
        (ReviewCode.NEW_DESTINATION, f"nothing was ever paid to {NEW_PAYEE} on Bitcoin")
    ]
    assert desk.available(customer) == "70.00"  # reserved while it waits
    with desk.db.transaction() as conn:
        assert [item.id for item in review.pending(conn)] == [made.id]
        approved = desk.payouts.approve(conn, made.id, actor="operator:ann", note="known client")

    assert approved.status is RequestStatus.APPROVED
    history = desk.events(made.id)
    assert [(e["from"], e["to"], e["actor"]) for e in history] == [
        (None, "pending_review", "api-key:shop"),
        ("pending_review", "approved", "operator:ann"),
    ]
    assert history[1]["reason"] == "approved by operator:ann: known client"
    with desk.db.transaction() as conn:
        [approval] = review.approvals(conn, [made.id])[made.id]
        assert review.pending(conn) == []
    assert (approval.actor, approval.note, approval.at) == (
        "operator:ann",
        "known client",
        desk.clock.now(),
    )
    assert desk.available(customer) == "70.00"  # still reserved: the worker pays it
    # Approved is not paid: until a payout there is confirmed, the address stays new.
    again = desk.withdraw(customer, "30", NEW_PAYEE)
    assert [r.code for r in again.review_reasons] == [ReviewCode.NEW_DESTINATION]


def test_a_large_or_policy_flagged_request_waits_with_every_reason(desk: Desk) -> None:
    strict = desk.with_settings(
        policy={"preset": "default", "overrides": {"withdrawal": {"review_required": True}}},
        payouts={"review": {"threshold_usd": "100.00"}},
    )
    strict.paid_before(PAYEE)
    customer = strict.account("c", funds="500")

    small = strict.withdraw(customer, "100")  # at the threshold, not above it
    large = strict.withdraw(customer, "100.01")

    flagged = "policy default has every withdrawal reviewed by an operator"
    assert [(r.code, r.detail) for r in small.review_reasons] == [(ReviewCode.POLICY, flagged)]
    assert [(r.code, r.detail) for r in large.review_reasons] == [
        (ReviewCode.POLICY, flagged),
        (ReviewCode.ABOVE_THRESHOLD, "$100.01 is above the $100.00 review threshold"),
    ]
    assert {small.status, large.status} == {RequestStatus.PENDING_REVIEW}
    above = desk.with_settings(payouts={"review": {"threshold_usd": "100.00"}})
    plain = above.withdraw(customer, "100.01")  # the same without the policy's review
    assert [r.code for r in plain.review_reasons] == [ReviewCode.ABOVE_THRESHOLD]


def test_the_account_states_review_is_the_policys_reason(desk: Desk) -> None:
    desk.paid_before(PAYEE)
    customer = desk.account("t", funds="100")
    with desk.db.transaction() as conn:
        states.change_state(
            conn,
            customer.id,
            to=states.AccountState.TERMINATED,
            reason_code=states.ReasonCode("customer_request"),
            reason="closed by the customer",
            actor="operator:ann",
            now=desk.clock.now(),
            request=None,
        )
        customer = accounts.get(conn, customer.id)  # as the API reads it for each request

    made = desk.withdraw(customer, "30")

    [reason] = made.review_reasons
    assert reason.code is ReviewCode.POLICY
    assert "an operator reviews the request" in reason.detail


# --------------------------------------------------------------------------- approvals


def test_above_the_dual_threshold_two_different_operators_must_approve(desk: Desk) -> None:
    dual = desk.with_settings(
        payouts={"review": {"threshold_usd": "100.00", "dual_approval_usd": "500.00"}}
    )
    dual.paid_before(PAYEE)
    customer = dual.account("c", funds="2000")
    single = dual.withdraw(customer, "500")
    double = dual.withdraw(customer, "500.01")
    assert (single.approvals_required, double.approvals_required) == (1, 2)

    with dual.db.transaction() as conn:
        first = dual.payouts.approve(conn, double.id, actor="operator:ann")
    assert first.status is RequestStatus.PENDING_REVIEW
    with (
        pytest.raises(AlreadyApproved, match="operator:ann already approved"),
        dual.db.transaction() as conn,
    ):
        dual.payouts.approve(conn, double.id, actor="operator:ann")
    with dual.db.transaction() as conn:
        assert len(review.approvals(conn, [double.id])[double.id]) == 1  # nothing recorded
        second = dual.payouts.approve(conn, double.id, actor="operator:bob", note="called them")

    assert second.status is RequestStatus.APPROVED
    history = dual.events(double.id)
    assert [(e["to"], e["actor"]) for e in history] == [
        ("pending_review", "api-key:shop"),
        ("pending_review", "operator:ann"),
        ("approved", "operator:bob"),
    ]
    assert history[1]["reason"] == (
        "approval 1 of 2 by operator:ann; another operator must approve"
    )
    assert history[2]["reason"] == "approved by operator:ann and operator:bob: called them"
    with (
        pytest.raises(IllegalRequestTransition, match="only requests pending review"),
        dual.db.transaction() as conn,
    ):
        dual.payouts.approve(conn, double.id, actor="operator:cid")
    assert dual.get(double.id).status is RequestStatus.APPROVED


def test_under_at_approval_only_the_approval_that_approves_reprices(desk: Desk) -> None:
    """Dual approval under ``withdrawal.pricing = "at_approval"``: the first approval records
    itself only; the second prices the request again, then approves it. $600 less the $5 flat
    fee = $595: at $50 000, 1 190 000 − 2 000 = 1 188 000 sat; at $40 000, 1 487 500 − 2 000 =
    1 485 500 sat."""
    dual = desk.with_settings(
        payouts={"review": {"threshold_usd": "100.00", "dual_approval_usd": "500.00"}},
        policy={"overrides": {"withdrawal": {"pricing": "at_approval"}}},
    )
    made = dual.withdraw(dual.account("c", funds="1000"), "600")
    assert made.net_native == Money(1_188_000, asset("BTC"))
    dual.clock.advance(timedelta(days=1))
    PricingService(
        dual.db,
        dual.clock,
        PricingSettings(static_rates={**RATES, Symbol.BTC: Decimal("40000")}),
        transport=httpx.MockTransport(_no_network),
    ).refresh([Symbol.BTC])

    for operator in ("operator:ann", "operator:bob"):
        locks = dual.payouts.approval_locks(made.id)
        with dual.db.transaction() as conn:
            dual.payouts.approve(conn, made.id, actor=operator, locks=locks)
        if operator == "operator:ann":
            assert dual.get(made.id).net_native == made.net_native

    done = dual.get(made.id)
    assert (done.status, done.net_native) == (
        RequestStatus.APPROVED,
        Money(1_485_500, asset("BTC")),
    )
    assert [(e["kind"], e["to"], e["actor"]) for e in dual.events(made.id)] == [
        ("status", "pending_review", "api-key:shop"),
        ("status", "pending_review", "operator:ann"),
        ("repriced", "pending_review", "operator:bob"),
        ("status", "approved", "operator:bob"),
    ]


# --------------------------------------------------------------------------- rejection


def test_reject_voids_the_hold_and_the_balance_returns_in_full(desk: Desk) -> None:
    customer = desk.account("c", funds="100")
    made = desk.withdraw(customer, "30", NEW_PAYEE)
    assert desk.available(customer) == "70.00"

    with pytest.raises(ReviewReasonRequired), desk.db.transaction() as conn:
        desk.payouts.reject(conn, made.id, actor="operator:ann", reason="  ")
    assert desk.get(made.id).status is RequestStatus.PENDING_REVIEW

    with desk.db.transaction() as conn:
        rejected = desk.payouts.reject(
            conn, made.id, actor="operator:ann", reason="address on a sanctions list"
        )

    assert rejected.status is RequestStatus.REJECTED
    assert desk.available(customer) == "100.00"
    with desk.db.transaction() as conn:
        assert holds.get_hold(conn, made.hold_id).status is HoldStatus.VOIDED
    last = desk.events(made.id)[-1]
    assert (last["from"], last["to"], last["actor"], last["reason"]) == (
        "pending_review",
        "rejected",
        "operator:ann",
        "address on a sanctions list",
    )
    for again in ("reject", "approve"):
        with pytest.raises(IllegalRequestTransition), desk.db.transaction() as conn:
            if again == "reject":
                desk.payouts.reject(conn, made.id, actor="operator:bob", reason="twice")
            else:
                desk.payouts.approve(conn, made.id, actor="operator:bob")
    assert desk.available(customer) == "100.00"  # voided once


def test_reject_or_cancel_after_approval_but_not_once_signed(desk: Desk) -> None:
    desk.paid_before(PAYEE)
    customer = desk.account("c", funds="100")
    first, second, third = (desk.withdraw(customer, "30") for _ in range(3))
    assert {first.status, second.status, third.status} == {RequestStatus.APPROVED}
    assert desk.available(customer) == "10.00"

    with desk.db.transaction() as conn:
        desk.payouts.reject(conn, first.id, actor="operator:ann", reason="customer called")
        desk.payouts.cancel(conn, second.id, actor="api-key:shop", reason="changed my mind")
    assert desk.available(customer) == "70.00"

    desk.settle(third.id, RequestStatus.SIGNED)  # the worker signed it: coins may be leaving
    with (
        pytest.raises(IllegalRequestTransition, match="not yet signed"),
        desk.db.transaction() as conn,
    ):
        desk.payouts.reject(conn, third.id, actor="operator:ann", reason="too late")
    with pytest.raises(IllegalRequestTransition), desk.db.transaction() as conn:
        desk.payouts.cancel(conn, third.id, actor="api-key:shop", reason="too late")
    assert desk.get(third.id).status is RequestStatus.SIGNED
    assert desk.available(customer) == "70.00"


def test_unknown_request_is_not_found(desk: Desk) -> None:
    with pytest.raises(PayoutRequestNotFound), desk.db.transaction() as conn:
        desk.payouts.approve(conn, uuid.uuid4(), actor="operator:ann")


# --------------------------------------------------------------------------- daily limits


def test_daily_count_limit_refuses_changes_nothing_and_replays(desk: Desk) -> None:
    limited = desk.with_settings(
        payouts={"review": {"max_count_per_day": 2, "new_destinations": False}}
    )
    customer = limited.account("c", funds="200")
    first = limited.withdraw(customer, "30")
    limited.withdraw(customer, "30")

    with pytest.raises(PayoutLimitExceeded) as refused:
        limited.withdraw(customer, "30", key="third")

    assert "already made 2 refund or withdrawal requests in the last 24 hours" in str(refused.value)
    assert refused.value.limits is not None
    assert (refused.value.limits["requests"], refused.value.limits["max_requests"]) == (2, 2)
    assert limited.available(customer) == "140.00"
    assert len(limited.requests_of(customer)) == 2

    # Cancelled requests do not count; but the key keeps its answer.
    with limited.db.transaction() as conn:
        limited.payouts.cancel(conn, first.id, actor="api-key:shop", reason="oops")
    with pytest.raises(PayoutLimitExceeded) as replayed:
        limited.withdraw(customer, "30", key="third")
    assert replayed.value.detail == refused.value.detail
    assert replayed.value.limits == refused.value.limits
    assert limited.withdraw(customer, "30", key="fourth").status is RequestStatus.APPROVED

    with pytest.raises(PayoutLimitExceeded):
        limited.withdraw(customer, "30")
    limited.advance(timedelta(days=1))  # the window is the 24 hours before now
    assert limited.withdraw(customer, "30").status is RequestStatus.APPROVED


def test_daily_usd_limit_counts_gross_amounts(desk: Desk) -> None:
    limited = desk.with_settings(
        payouts={"review": {"max_usd_per_day": "100.00", "new_destinations": False}}
    )
    customer = limited.account("c", funds="500")
    limited.withdraw(customer, "60")

    with pytest.raises(PayoutLimitExceeded) as refused:
        limited.withdraw(customer, "40.01", key="over")

    assert str(refused.value) == (
        "Refused: $40.01 on top of $60.00 requested in the last 24 hours exceeds the $100.00 "
        "daily limit ($40.00 left)."
    )
    assert refused.value.limits is not None
    assert refused.value.limits["requested_usd"] == {"amount": "60.00", "asset": "USD"}
    assert limited.available(customer) == "440.00"
    with pytest.raises(PayoutLimitExceeded):
        limited.withdraw(customer, "40.01", key="over")
    assert limited.withdraw(customer, "40").status is RequestStatus.APPROVED
    assert limited.available(customer) == "400.00"


# --------------------------------------------------------------------------- refunds


def test_refunds_go_to_a_checked_sender_and_a_new_one_is_reviewed(desk: Desk) -> None:
    other = desk.account("other")
    own = desk.deposit_address(other)  # Kassa's own deposit address (another customer's)
    customer = desk.account("c")
    looped = desk.top_up(customer, 100_000, sender=own)  # $50.00
    outside = desk.top_up(customer, 100_000, sender=NEW_PAYEE.upper())
    assert desk.available(customer) == "100.00"

    with pytest.raises(DestinationIsOwnAddress):
        desk.payouts.quote_refund(customer, looped)
    for _ in range(2):  # nothing was stored under the key: the same answer again
        with pytest.raises(DestinationIsOwnAddress, match="cannot be refunded there"):
            desk.refund(customer, looped, key="loop")
    assert desk.requests_of(customer) == []
    assert desk.available(customer) == "100.00"

    made = desk.refund(customer, outside)

    assert made.destination == NEW_PAYEE  # canonical (bech32 in lower case)
    assert made.status is RequestStatus.PENDING_REVIEW
    assert [r.code for r in made.review_reasons] == [ReviewCode.NEW_DESTINATION]
    assert made.fee_charge is FeeCharge.ALL  # the default policy deducts the network fee
    assert desk.available(customer) == "50.00"


def test_a_request_from_before_review_reasons_still_reads_and_approves(desk: Desk) -> None:
    """Rows made before migration 0006 have no reasons stored (NULL) and need one approval."""
    customer = desk.account("c", funds="100")
    made = desk.withdraw(customer, "30", NEW_PAYEE)
    with desk.db.transaction() as conn:
        conn.execute(
            update(payout_request)
            .where(payout_request.c.id == made.id)
            .values(review_reasons=None, approvals_required=1)
        )

    old = desk.get(made.id)

    assert [r.code for r in old.review_reasons] == [ReviewCode.POLICY]
    with desk.db.transaction() as conn:
        assert desk.payouts.approve(conn, made.id, actor="operator:ann").status is (
            RequestStatus.APPROVED
        )


def test_concurrent_requests_of_one_account_respect_the_daily_count(
    pg_databases: DatabaseFactory, clock: ManualClock
) -> None:
    """PostgreSQL: five requests at once under a limit of two — the account's row lock makes
    them count one after the other, so exactly two get through."""
    db = pg_databases.new()
    desk = Desk(
        db,
        clock,
        Settings.model_validate(
            {"payouts": {"review": {"max_count_per_day": 2, "new_destinations": False}}}
        ),
    )
    customer = desk.account("c", funds="500")
    start = threading.Barrier(5)
    outcomes: list[str] = []

    def attempt() -> None:
        start.wait()
        try:
            desk.withdraw(customer, "30")
            outcomes.append("made")
        except PayoutLimitExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["made", "made", "refused", "refused", "refused"]
    assert len(desk.requests_of(customer)) == 2
    assert desk.available(customer) == "440.00"
