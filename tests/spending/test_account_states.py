"""Account states (DESIGN §6: "active, suspended, terminated, frozen (negative balance)"): an
operator changes them with a reason code and a reason, every change is kept, and only an active
account spends — usage and new activations are refused with the state's own code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from kassa.accounts import states
from kassa.accounts.errors import (
    AccountSuspended,
    AccountTerminated,
    IllegalAccountStateTransition,
    InvalidAccountState,
    InvalidReasonCode,
    InvalidStateReason,
)
from kassa.accounts.service import CustomerAccount
from kassa.accounts.states import TRANSITIONS, AccountState, ReasonCode, effective_state
from kassa.errors import KassaError
from kassa.ledger.errors import AccountFrozen
from kassa.money import USD, Money
from kassa.policy import model as policy_model
from kassa.spending.activations import ActivationStatus
from kassa.spending.usage import UsageEvent

if TYPE_CHECKING:
    from tests.spending.conftest import Shop

A, S, T, F = (
    AccountState.ACTIVE,
    AccountState.SUSPENDED,
    AccountState.TERMINATED,
    AccountState.FROZEN,
)


def usd(dollars: str) -> Money:
    return Money.parse(dollars, USD)


def call(event_id: str) -> UsageEvent:
    return UsageEvent(event_id, usd("0.10"), "GET /v1/search")


def test_the_transition_table() -> None:
    assert dict(TRANSITIONS) == {
        A: {S, F, T},
        S: {A, F, T},
        F: {A, S, T},
        T: set(),
    }


def test_reason_codes_are_the_policy_engines_vocabulary() -> None:
    # Policies match on the stored code: every code must mean something to them.
    assert {c.value for c in ReasonCode} == {r.value for r in policy_model.StateReason}
    assert {s.value for s in AccountState} == {s.value for s in policy_model.AccountState}


def test_a_change_is_recorded_with_who_when_why_and_from_to(shop: Shop) -> None:
    alice = shop.customer("10.00")

    change = shop.set_state(alice, S, ReasonCode.VIOLATION, "scraping", actor="api-key:ops")

    assert (change.from_state, change.to_state) == (A, S)
    assert (change.reason_code, change.reason, change.actor) == (
        ReasonCode.VIOLATION,
        "scraping",
        "api-key:ops",
    )
    assert change.changed_at == shop.now
    assert shop.fresh(alice).status == "suspended"


def test_the_history_keeps_every_change_newest_first(shop: Shop) -> None:
    alice, bob = shop.customer(), shop.customer()
    shop.set_state(alice, S, ReasonCode.VIOLATION, "first warning")
    shop.set_state(alice, A, ReasonCode.OTHER, "reinstated after review")
    shop.clock.advance(timedelta(days=3))
    shop.set_state(alice, T, ReasonCode.SERIOUS_BREACH, "fraud")

    history = shop.history(alice)

    assert [(c.from_state, c.to_state, c.reason_code) for c in history] == [
        (A, T, ReasonCode.SERIOUS_BREACH),
        (S, A, ReasonCode.OTHER),
        (A, S, ReasonCode.VIOLATION),
    ]
    assert history[0].changed_at == shop.now
    with shop.db.transaction() as conn:
        assert states.latest_change(conn, alice.id) == history[0]
        assert states.latest_change(conn, bob.id) is None


def test_the_history_is_append_only(shop: Shop) -> None:
    alice = shop.customer()
    shop.set_state(alice, S)

    for statement in (
        "UPDATE account_state_change SET reason = 'nothing happened'",
        "DELETE FROM account_state_change",
    ):
        with pytest.raises(DatabaseError, match="append-only"), shop.db.transaction() as conn:
            conn.execute(text(statement))
    assert len(shop.history(alice)) == 1


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], A),
        ([S], S),
        ([F], F),
        ([T], A),
        ([T], S),
        ([T], T),
    ],
)
def test_illegal_moves_are_refused_and_change_nothing(
    shop: Shop, path: list[AccountState], refused: AccountState
) -> None:
    alice = shop.customer()
    for state in path:
        shop.set_state(alice, state)
    status = shop.fresh(alice).status

    with pytest.raises(IllegalAccountStateTransition):
        shop.set_state(alice, refused)

    assert shop.fresh(alice).status == status
    assert len(shop.history(alice)) == len(path)


def test_a_change_without_a_reason_is_refused(shop: Shop) -> None:
    alice = shop.customer()
    with pytest.raises(InvalidStateReason):
        shop.set_state(alice, S, reason="  ")
    with pytest.raises(InvalidStateReason):
        shop.set_state(alice, S, reason="x" * 1001)
    with pytest.raises(InvalidStateReason):
        shop.set_state(alice, S, actor="")
    assert shop.history(alice) == []


def test_unknown_states_and_reason_codes_are_refused() -> None:
    with pytest.raises(InvalidAccountState, match="known: active, suspended"):
        states.parse_state("banned")
    with pytest.raises(InvalidReasonCode, match="known: violation"):
        states.parse_reason_code("because")
    assert states.parse_state("frozen") is F
    assert states.parse_reason_code("geographic") is ReasonCode.GEOGRAPHIC


def test_a_retry_under_one_key_records_one_change(shop: Shop) -> None:
    alice = shop.customer()
    first = shop.set_state(alice, S, key="s1")
    assert shop.set_state(alice, S, key="s1") == first
    assert len(shop.history(alice)) == 1


def test_a_reversal_below_zero_freezes_an_active_account_whatever_is_stored() -> None:
    assert effective_state(A, balance_frozen=True) is F
    assert effective_state(A, balance_frozen=False) is A
    # An operator's state says more than the balance does.
    assert effective_state(S, balance_frozen=True) is S
    assert effective_state(T, balance_frozen=True) is T


Refusal = type[KassaError]


@pytest.mark.parametrize(
    ("state", "refusal"),
    [(S, AccountSuspended), (T, AccountTerminated), (F, AccountFrozen)],
)
def test_only_an_active_account_spends(shop: Shop, state: AccountState, refusal: Refusal) -> None:
    alice = shop.customer("10.00")
    shop.usage(alice, [call("before")])
    before = shop.snapshot()
    shop.set_state(alice, state)

    with pytest.raises(refusal, match="cannot spend"):
        shop.usage(alice, [call("after")])
    with pytest.raises(refusal, match="cannot spend"):
        shop.reserve(alice, "1.00")

    assert shop.snapshot() == before
    # A replay of an event charged before is refused too: the account takes no usage at all.
    with pytest.raises(refusal):
        shop.usage(alice, [call("before")])


def test_a_reinstated_account_spends_again(shop: Shop) -> None:
    alice = shop.customer("10.00")
    shop.set_state(alice, S)
    with pytest.raises(AccountSuspended):
        shop.usage(alice, [call("a")], key="k1")
    shop.set_state(alice, A, ReasonCode.OTHER, "appeal accepted")

    # The suspension was not stored under the key: the retry goes through.
    assert shop.usage(alice, [call("a")], key="k1").charged == usd("0.10")
    assert shop.reserve(alice, "1.00").status is ActivationStatus.PENDING


def test_a_balance_a_reversal_took_below_zero_refuses_spending(shop: Shop) -> None:
    alice = shop.customer()
    top_up = shop.deposit(alice, "10.00")
    shop.usage(alice, [call("a")])
    shop.reverse(top_up)
    assert shop.fresh(alice).status == "active"
    assert shop.balance(alice).frozen

    with pytest.raises(AccountFrozen):
        shop.usage(alice, [call("b")])
    with pytest.raises(AccountFrozen):
        shop.reserve(alice, "0.01")
    shop.deposit(alice, "0.20")  # covers the 0.10 shortfall, and the next call
    assert shop.usage(alice, [call("b")]).charged == usd("0.10")


@pytest.mark.parametrize("settle", ["cancel", "fulfil"])
def test_settling_an_open_activation_is_allowed_in_any_state(shop: Shop, settle: str) -> None:
    alice = shop.customer("10.00")
    reserved = shop.reserve(alice, "3.00")
    shop.set_state(alice, T, ReasonCode.CUSTOMER_REQUEST, "closed by the customer")
    act: Callable[[CustomerAccount, object], object] = getattr(shop, settle)

    act(alice, reserved.id)

    assert shop.available(alice) == usd("10.00" if settle == "cancel" else "7.00")
