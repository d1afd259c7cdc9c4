"""Usage batches (DESIGN §6 "metered debits, ingested in batches, idempotent per event id"):
one journal entry per batch, replays skipped and reported, conflicting replays and uncovered
batches refused whole with nothing changed, and the last usage time kept per account."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from kassa.ledger.errors import IdempotencyKeyReused, InsufficientFunds
from kassa.money import BTC, USD, Money
from kassa.spending.errors import InvalidUsageBatch, InvalidUsageEvent, UsageEventConflict
from kassa.spending.tables import usage_event
from kassa.spending.usage import MAX_BATCH_EVENTS, EventStatus, UsageEvent

if TYPE_CHECKING:
    from tests.spending.conftest import Shop


def usd(dollars: str) -> Money:
    return Money.parse(dollars, USD, allow_negative=True)


def event(event_id: str, dollars: str, description: str = "GET /v1/search") -> UsageEvent:
    return UsageEvent(event_id, usd(dollars), description)


def events(prefix: str, count: int, dollars: str) -> list[UsageEvent]:
    """`count` distinct events of `dollars` each: prefix-0000, prefix-0001, …"""
    return [event(f"{prefix}-{i:04d}", dollars) for i in range(count)]


def test_a_batch_is_one_journal_entry_from_the_customer_to_revenue(shop: Shop) -> None:
    alice = shop.customer("10.00")

    batch = shop.usage(alice, [event("a", "0.25"), event("b", "0.000001"), event("c", "1.50")])

    assert batch.charged == usd("1.750001")
    assert batch.events == (
        ("a", EventStatus.CHARGED),
        ("b", EventStatus.CHARGED),
        ("c", EventStatus.CHARGED),
    )
    assert batch.transaction_id is not None
    assert shop.usage_transactions() == [2]
    assert shop.available(alice) == usd("8.249999")
    assert shop.revenue_posted() == usd("1.750001")
    assert shop.count(usage_event) == 3


def test_replayed_event_ids_are_skipped_and_reported_as_duplicates(shop: Shop) -> None:
    alice = shop.customer("10.00")
    shop.usage(alice, [event("a", "1.00"), event("b", "2.00")])

    batch = shop.usage(alice, [event("b", "2.00"), event("c", "0.50"), event("a", "1.00")])

    assert batch.events == (
        ("b", EventStatus.DUPLICATE),
        ("c", EventStatus.CHARGED),
        ("a", EventStatus.DUPLICATE),
    )
    assert (batch.charged_events, batch.duplicate_events) == (1, 2)
    assert batch.charged == usd("0.50")
    assert shop.available(alice) == usd("6.50")
    assert shop.usage_transactions() == [2, 2]


def test_a_batch_of_only_replays_charges_nothing_and_posts_nothing(shop: Shop) -> None:
    alice = shop.customer("10.00")
    shop.usage(alice, [event("a", "1.00")])

    batch = shop.usage(alice, [event("a", "1.00")])

    assert batch.transaction_id is None
    assert batch.charged == usd("0")
    assert batch.events == (("a", EventStatus.DUPLICATE),)
    assert shop.usage_transactions() == [2]
    assert shop.available(alice) == usd("9.00")


def test_event_ids_are_per_account(shop: Shop) -> None:
    alice, bob = shop.customer("10.00"), shop.customer("10.00")
    shop.usage(alice, [event("call-1", "1.00")])

    batch = shop.usage(bob, [event("call-1", "1.00")])

    assert batch.events == (("call-1", EventStatus.CHARGED),)
    assert shop.available(bob) == usd("9.00")


@pytest.mark.parametrize(
    "replay",
    [event("a", "1.01"), event("a", "1.00", "another description")],
    ids=["other amount", "other description"],
)
def test_an_event_id_replayed_with_other_content_refuses_the_whole_batch(
    shop: Shop, replay: UsageEvent
) -> None:
    alice = shop.customer("10.00")
    shop.usage(alice, [event("a", "1.00")])
    before = shop.snapshot()

    with pytest.raises(UsageEventConflict, match="'a'"):
        shop.usage(alice, [event("new", "0.10"), replay])

    assert shop.snapshot() == before


def test_a_batch_the_balance_cannot_cover_is_refused_whole_and_changes_nothing(
    shop: Shop,
) -> None:
    alice = shop.customer("1.00")
    shop.usage(alice, [event("old", "0.40")])
    last = shop.last_usage_at(alice)
    shop.clock.advance(timedelta(minutes=5))
    before = shop.snapshot()

    # 0.60 is left: the new events need 0.61 (the replayed one is not charged again).
    with pytest.raises(InsufficientFunds):
        shop.usage(alice, [event("old", "0.40"), event("x", "0.30"), event("y", "0.31")])

    assert shop.snapshot() == before
    assert shop.last_usage_at(alice) == last


def test_a_batch_exactly_covered_by_the_available_balance_goes_through(shop: Shop) -> None:
    alice = shop.customer("1.00")
    shop.reserve(alice, "0.25")

    shop.usage(alice, [event("x", "0.50"), event("y", "0.25")])

    assert shop.available(alice) == usd("0")


def test_insufficient_funds_is_stored_under_the_key_and_replayed(shop: Shop) -> None:
    alice = shop.customer("1.00")
    batch = [event("x", "2.00")]
    with pytest.raises(InsufficientFunds):
        shop.usage(alice, batch, key="k1")
    shop.deposit(alice, "5.00")

    # Same key, same request: the same answer, as for every keyed ledger operation.
    with pytest.raises(InsufficientFunds):
        shop.usage(alice, batch, key="k1")
    assert shop.stored_outcome("k1") == InsufficientFunds.code
    # A new key is a new attempt, and now it is covered.
    assert shop.usage(alice, batch, key="k2").charged == usd("2.00")


def test_the_same_key_and_batch_returns_the_stored_batch_as_it_was(shop: Shop) -> None:
    alice = shop.customer("10.00")
    shop.usage(alice, [event("a", "1.00")])
    batch = [event("a", "1.00"), event("b", "2.00")]

    first = shop.usage(alice, batch, key="k1")
    again = shop.usage(alice, batch, key="k1")

    assert again == first
    assert again.events == (("a", EventStatus.DUPLICATE), ("b", EventStatus.CHARGED))
    assert shop.available(alice) == usd("7.00")


def test_the_same_key_with_another_batch_is_refused(shop: Shop) -> None:
    alice = shop.customer("10.00")
    shop.usage(alice, [event("a", "1.00")], key="k1")

    with pytest.raises(IdempotencyKeyReused):
        shop.usage(alice, [event("b", "1.00")], key="k1")


def test_last_usage_at_is_kept_per_account_and_moves_only_when_something_is_charged(
    shop: Shop,
) -> None:
    alice, bob = shop.customer("10.00"), shop.customer("10.00")
    assert shop.last_usage_at(alice) is None

    shop.usage(alice, [event("a", "1.00")])
    first = shop.now
    shop.clock.advance(timedelta(hours=1))
    shop.usage(alice, [event("a", "1.00")])  # a replay only: nothing charged

    assert shop.last_usage_at(alice) == first
    assert shop.last_usage_at(bob) is None
    shop.usage(alice, [event("b", "1.00")])
    assert shop.last_usage_at(alice) == shop.now


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (UsageEvent("a", Money(0, USD), "x"), "greater than zero"),
        (UsageEvent("a", usd("-1.00"), "x"), "greater than zero"),
        (UsageEvent("a", Money(1, BTC), "x"), "in USD"),
        (UsageEvent("a", usd("1000000.000001"), "x"), "exceeds the limit"),
        (UsageEvent("a", usd(str(10**70)), "x"), "exceeds the limit"),
        (UsageEvent("", usd("1"), "x"), "event id"),
        (UsageEvent("has space", usd("1"), "x"), "event id"),
        (UsageEvent("é", usd("1"), "x"), "event id"),
        (UsageEvent("a" * 129, usd("1"), "x"), "event id"),
        (UsageEvent("a", usd("1"), ""), "description"),
        (UsageEvent("a", usd("1"), "   "), "description"),
        (UsageEvent("a", usd("1"), "d" * 501), "description"),
    ],
)
def test_an_unusable_event_refuses_the_batch_before_anything_is_written(
    shop: Shop, bad: UsageEvent, message: str
) -> None:
    alice = shop.customer("10.00")
    before = shop.snapshot()

    with pytest.raises(InvalidUsageEvent, match=message) as refused:
        shop.usage(alice, [event("fine", "0.10"), bad])

    assert refused.value.detail.startswith("events[1]")
    assert shop.snapshot() == before


def test_the_largest_event_is_accepted(shop: Shop) -> None:
    whale = shop.customer("1000000.00")
    shop.usage(whale, [event("big", "1000000.00")])
    assert shop.available(whale) == usd("0")


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([], "at least one event"),
        (events("e", MAX_BATCH_EVENTS + 1, "0.01"), "at most 1000 events"),
        ([event("a", "1.00"), event("b", "1.00"), event("a", "1.00")], "repeated: 'a'"),
    ],
    ids=["empty", "too many", "repeated id"],
)
def test_unusable_batches_are_refused(shop: Shop, batch: list[UsageEvent], message: str) -> None:
    alice = shop.customer("100.00")
    before = shop.snapshot()

    with pytest.raises(InvalidUsageBatch, match=message):
        shop.usage(alice, batch)

    assert shop.snapshot() == before


def test_a_batch_of_1000_events_is_one_journal_entry(shop: Shop) -> None:
    """Also the figure for the issue's "fast enough for batches of 1 000" (run with -s)."""
    alice = shop.customer("100.00")
    shop.usage(alice, events("warm-up", 10, "0.001"))

    started = time.perf_counter()
    batch = shop.usage(alice, events("e", MAX_BATCH_EVENTS, "0.001"), key="big")
    fresh = time.perf_counter() - started
    started = time.perf_counter()
    # Half replays, half new: the replays are looked up and compared.
    mixed = events("e", 500, "0.001") + events("f", 500, "0.001")
    shop.usage(alice, mixed)
    half = time.perf_counter() - started

    print(
        f"\n[{shop.db.dialect}] 1000-event usage batch: {fresh * 1000:.0f} ms new, "
        f"{half * 1000:.0f} ms half replayed"
    )
    assert batch.charged_events == MAX_BATCH_EVENTS
    assert batch.charged == usd("1.00")
    assert shop.usage_transactions() == [2, 2, 2]
    assert shop.available(alice) == usd("98.49")
