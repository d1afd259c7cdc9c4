"""Activations (DESIGN §6): "a hold with an expiry window (e.g. 20 minutes). Expired → voided
automatically within a minute or two (funds back to balance); cancelled by the user before
fulfilment → voided at once; fulfilled → posted, no longer refundable."
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from kassa.config import Settings
from kassa.ledger import holds
from kassa.ledger.errors import AccountFrozen, IdempotencyKeyReused, InsufficientFunds
from kassa.ledger.model import HoldStatus
from kassa.money import BTC, USD, Money
from kassa.spending import activations
from kassa.spending.activations import ActivationStatus
from kassa.spending.errors import (
    ActivationCancelled,
    ActivationExpired,
    ActivationFulfilled,
    ActivationNotFound,
    InvalidActivation,
)
from kassa.worker import sweep_expired_holds

if TYPE_CHECKING:
    from tests.spending.conftest import Shop

WINDOW = activations.DEFAULT_WINDOW


def usd(dollars: str) -> Money:
    return Money.parse(dollars, USD)


def test_reserving_holds_the_price_for_twenty_minutes_by_default(shop: Shop) -> None:
    alice = shop.customer("10.00")

    reserved = shop.reserve(alice, "3.00")

    assert reserved.status is ActivationStatus.PENDING
    assert reserved.price == usd("3.00")
    assert reserved.window == timedelta(minutes=20)
    assert reserved.expires_at == shop.now + timedelta(minutes=20)
    assert not reserved.refunded
    hold = shop.hold(reserved.hold_id)
    assert (hold.status, hold.amount, hold.expires_at) == (
        HoldStatus.PENDING,
        usd("3.00"),
        reserved.expires_at,
    )
    balance = shop.balance(alice)
    assert (balance.posted, balance.available) == (usd("10.00"), usd("7.00"))
    assert shop.activation(alice, reserved.id) == reserved


def test_cancel_before_fulfilment_refunds_at_once(shop: Shop) -> None:
    alice = shop.customer("10.00")
    reserved = shop.reserve(alice, "3.00")
    shop.clock.advance(timedelta(minutes=19, seconds=59))

    cancelled = shop.cancel(alice, reserved.id)

    assert cancelled.status is ActivationStatus.CANCELLED
    assert cancelled.refunded
    assert cancelled.resolved_at == shop.now
    assert shop.available(alice) == usd("10.00")
    assert shop.hold(reserved.hold_id).status is HoldStatus.VOIDED
    assert shop.revenue_posted() == usd("0")


def test_fulfilment_charges_the_price_and_is_final(shop: Shop) -> None:
    alice = shop.customer("10.00")
    reserved = shop.reserve(alice, "3.00")

    fulfilled = shop.fulfil(alice, reserved.id)

    assert fulfilled.status is ActivationStatus.FULFILLED
    assert not fulfilled.refunded
    balance = shop.balance(alice)
    assert (balance.posted, balance.available) == (usd("7.00"), usd("7.00"))
    assert shop.revenue_posted() == usd("3.00")
    with pytest.raises(ActivationFulfilled, match="final and not refundable"):
        shop.cancel(alice, reserved.id)
    with pytest.raises(ActivationFulfilled):
        shop.fulfil(alice, reserved.id)
    # Final even after its window: a fulfilled activation never expires.
    shop.clock.advance(WINDOW * 2)
    assert sweep_expired_holds(shop.db, shop.clock) == 0
    assert shop.activation(alice, reserved.id).status is ActivationStatus.FULFILLED
    assert shop.available(alice) == usd("7.00")


def test_a_cancelled_activation_cannot_be_fulfilled(shop: Shop) -> None:
    alice = shop.customer("10.00")
    reserved = shop.reserve(alice, "3.00")
    shop.cancel(alice, reserved.id)

    with pytest.raises(ActivationCancelled):
        shop.fulfil(alice, reserved.id)
    with pytest.raises(ActivationCancelled):
        shop.cancel(alice, reserved.id)
    assert shop.available(alice) == usd("10.00")


def test_fulfil_after_the_window_is_refused_and_refunds_at_once(shop: Shop) -> None:
    alice = shop.customer("10.00")
    reserved = shop.reserve(alice, "3.00")
    shop.clock.advance(WINDOW)

    with pytest.raises(ActivationExpired, match="returned to the balance"):
        shop.fulfil(alice, reserved.id)

    # Refunded by the refusal itself, before any sweep.
    assert shop.available(alice) == usd("10.00")
    assert shop.hold(reserved.hold_id).status is HoldStatus.EXPIRED
    assert shop.stored_status(reserved.id) == "expired"
    after = shop.activation(alice, reserved.id)
    assert (after.status, after.refunded, after.resolved_at) == (
        ActivationStatus.EXPIRED,
        True,
        reserved.expires_at,
    )
    assert shop.revenue_posted() == usd("0")


def test_cancel_after_the_window_is_refused_and_the_sweep_refunds_it(shop: Shop) -> None:
    alice = shop.customer("10.00")
    reserved = shop.reserve(alice, "3.00")
    shop.clock.advance(WINDOW + timedelta(seconds=1))

    with pytest.raises(ActivationExpired):
        shop.cancel(alice, reserved.id)

    assert shop.stored_status(reserved.id) == "expired"
    assert shop.hold(reserved.hold_id).status is HoldStatus.PENDING
    assert sweep_expired_holds(shop.db, shop.clock) == 1
    # Expired, not voided: the ledger records how the money really came back.
    assert shop.hold(reserved.hold_id).status is HoldStatus.EXPIRED
    assert shop.available(alice) == usd("10.00")


def test_the_worker_sweep_refunds_an_activation_whose_window_ended(shop: Shop) -> None:
    alice = shop.customer("10.00")
    reserved = shop.reserve(alice, "3.00")
    later = shop.reserve(alice, "2.00", window=WINDOW * 2)
    shop.clock.advance(WINDOW - timedelta(seconds=1))
    assert sweep_expired_holds(shop.db, shop.clock) == 0
    shop.clock.advance(timedelta(seconds=1))

    # At the end of the window it reads expired at once; the price waits for the sweep.
    read = shop.activation(alice, reserved.id)
    assert (read.status, read.refunded) == (ActivationStatus.EXPIRED, False)
    assert shop.available(alice) == usd("5.00")

    assert sweep_expired_holds(shop.db, shop.clock) == 1

    swept = shop.activation(alice, reserved.id)
    assert (swept.status, swept.refunded, swept.resolved_at) == (
        ActivationStatus.EXPIRED,
        True,
        shop.now,
    )
    assert shop.available(alice) == usd("8.00")
    assert shop.activation(alice, later.id).status is ActivationStatus.PENDING
    # The stored status follows the hold at the next write, whatever it is.
    with pytest.raises(ActivationExpired):
        shop.fulfil(alice, reserved.id)
    assert shop.stored_status(reserved.id) == "expired"
    assert shop.available(alice) == usd("8.00")


def test_the_default_sweep_interval_refunds_well_within_two_minutes() -> None:
    # The worker sweeps every `hold_sweep_interval_seconds`; an expired activation waits at
    # most one interval (plus the sweep itself) for its refund.
    assert Settings().hold_sweep_interval_seconds <= 60


def test_an_activation_follows_its_hold_resolved_through_the_holds_api(shop: Shop) -> None:
    alice = shop.customer("10.00")
    voided = shop.reserve(alice, "1.00")
    captured = shop.reserve(alice, "2.00")
    with shop.db.transaction() as conn:
        holds.void_hold(conn, voided.hold_id, now=shop.now, request=None)
        holds.capture_hold(conn, captured.hold_id, now=shop.now, request=None)

    assert shop.activation(alice, voided.id).status is ActivationStatus.CANCELLED
    assert shop.activation(alice, captured.id).status is ActivationStatus.FULFILLED
    with pytest.raises(ActivationCancelled):
        shop.fulfil(alice, voided.id)
    with pytest.raises(ActivationFulfilled):
        shop.cancel(alice, captured.id)
    assert shop.available(alice) == usd("8.00")


def test_the_worker_sweep_refunds_and_records_expired_activations(shop: Shop) -> None:
    alice = shop.customer("10.00")
    lapsing = shop.reserve(alice, "1.00", window=timedelta(minutes=1))
    open_ = shop.reserve(alice, "1.00")
    shop.clock.advance(timedelta(minutes=1))
    assert sweep_expired_holds(shop.db, shop.clock) == 1
    assert [shop.stored_status(a.id) for a in (lapsing, open_)] == ["expired", "pending"]


def test_settling_stores_what_the_holds_and_windows_imply(shop: Shop) -> None:
    alice = shop.customer("10.00")
    voided = shop.reserve(alice, "1.00")
    swept = shop.reserve(alice, "1.00", window=timedelta(minutes=1))
    ended = shop.reserve(alice, "1.00", window=timedelta(minutes=2))
    open_ = shop.reserve(alice, "1.00")
    with shop.db.transaction() as conn:
        holds.void_hold(conn, voided.hold_id, now=shop.now, request=None)
    shop.clock.advance(timedelta(minutes=1))
    with shop.db.transaction() as conn:
        holds.expire_due_holds(conn, now=shop.now, limit=100)  # the ledger alone, not the worker
    shop.clock.advance(timedelta(minutes=1))
    assert [shop.stored_status(a.id) for a in (voided, swept, ended, open_)] == ["pending"] * 4

    with shop.db.transaction() as conn:
        assert activations.settle_resolved(conn, now=shop.now, limit=2) == 2
    with shop.db.transaction() as conn:
        assert activations.settle_resolved(conn, now=shop.now) == 1

    assert [shop.stored_status(a.id) for a in (voided, swept, ended, open_)] == [
        "cancelled",
        "expired",
        "expired",
        "pending",
    ]
    assert [shop.activation(alice, a.id).resolved_at for a in (voided, swept, ended, open_)] == [
        voided.created_at,  # voided at once
        swept.expires_at,  # the sweep ran right at the end of its window
        ended.expires_at,  # not swept yet: expired by its window
        None,
    ]


def test_an_activation_the_balance_cannot_cover_is_refused_and_changes_nothing(
    shop: Shop,
) -> None:
    alice = shop.customer("2.00")
    before = shop.snapshot()

    with pytest.raises(InsufficientFunds):
        shop.reserve(alice, "2.01")

    assert shop.snapshot() == before


def test_retries_under_one_key_get_the_same_answer(shop: Shop) -> None:
    alice = shop.customer("10.00")
    reserved = shop.reserve(alice, "3.00", key="r1")
    assert shop.reserve(alice, "3.00", key="r1") == reserved
    assert shop.available(alice) == usd("7.00")

    fulfilled = shop.fulfil(alice, reserved.id, key="f1")
    assert shop.fulfil(alice, reserved.id, key="f1") == fulfilled
    assert shop.revenue_posted() == usd("3.00")

    late = shop.reserve(alice, "1.00", key="r2")
    shop.clock.advance(WINDOW)
    with pytest.raises(ActivationExpired):
        shop.fulfil(alice, late.id, key="f2")
    # The refusal is stored (as the ledger's hold_expired) and answered the same way again.
    assert shop.stored_outcome("f2") == "hold_expired"
    with pytest.raises(ActivationExpired):
        shop.fulfil(alice, late.id, key="f2")
    with pytest.raises(IdempotencyKeyReused):
        shop.cancel(alice, late.id, key="f1")


def test_an_unknown_or_another_accounts_activation_is_not_found(shop: Shop) -> None:
    alice, bob = shop.customer("10.00"), shop.customer("10.00")
    reserved = shop.reserve(alice, "1.00")

    with pytest.raises(ActivationNotFound):
        shop.activation(bob, reserved.id)
    with pytest.raises(ActivationNotFound):
        shop.cancel(bob, reserved.id)
    with pytest.raises(ActivationNotFound):
        shop.fulfil(bob, reserved.id)
    assert shop.available(alice) == usd("9.00")


@pytest.mark.parametrize(
    ("price", "window", "message"),
    [
        (Money(0, USD), WINDOW, "positive USD"),
        (Money(1, BTC), WINDOW, "positive USD"),
        (usd("1.00"), timedelta(0), "window"),
        (usd("1.00"), timedelta(seconds=1.5), "window"),
        (usd("1.00"), timedelta(days=1, seconds=1), "window"),
    ],
)
def test_unusable_activations_are_refused(
    shop: Shop, price: Money, window: timedelta, message: str
) -> None:
    alice = shop.customer("10.00")
    with (
        pytest.raises(InvalidActivation, match=message),
        shop.db.transaction() as conn,
    ):
        activations.reserve(conn, alice, price=price, window=window, now=shop.now, request=None)


def test_a_frozen_account_keeps_its_reserved_activation_settleable(shop: Shop) -> None:
    alice = shop.customer()
    top_up = shop.deposit(alice, "10.00")
    reserved = shop.reserve(alice, "3.00")
    shop.reverse(top_up)  # a chargeback: the balance is -3.00 available, frozen

    with pytest.raises(AccountFrozen):
        shop.reserve(alice, "1.00")
    # Settling what was reserved is not new spending.
    assert shop.cancel(alice, reserved.id).status is ActivationStatus.CANCELLED
    assert shop.available(alice) == usd("0")
