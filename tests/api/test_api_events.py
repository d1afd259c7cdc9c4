"""Every state change writes its event in its own transaction, and the event's ``data`` is the
object exactly as the API's GET shows it at that moment (issue 15).

One test per subject kind drives the change through the API (or the worker loop that makes it)
and compares the subject's events — types in ``seq`` order, and the last one's ``data`` — with
the GET of the same object; one test shows that an event rolls back with its change.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from kassa.accounts import service as accounts
from kassa.accounts import states
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainTransfer, SenderKind
from kassa.deposits.fake import FakeChain
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.events.tables import event
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa.spending import activations
from kassa.worker import sweep_expired_holds

if TYPE_CHECKING:
    from tests.api.conftest import Api

SENDER = "bcrt1qte09uhj7te09uhj7te09uhj7te09uhj73k46uj"
PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"


def events(api: Api, kind: str, subject_id: str) -> list[Any]:
    with api.db.transaction() as conn:
        return list(
            conn.execute(
                select(event)
                .where(event.c.subject_kind == kind, event.c.subject_id == subject_id)
                .order_by(event.c.seq)
            ).all()
        )


def types(api: Api, kind: str, subject_id: str) -> list[str]:
    found = events(api, kind, subject_id)
    assert [row.seq for row in found] == list(range(1, len(found) + 1))
    return [row.type for row in found]


def last_data(api: Api, kind: str, subject_id: str) -> Any:
    return json.loads(events(api, kind, subject_id)[-1].data)


def account_uuid(api: Api, external_id: str) -> str:
    return str(api.get(f"/v1/accounts/{external_id}").json()["id"])


class Deposits:
    """A BTC chain and its watcher, as the deposit flow runs them (rates static)."""

    def __init__(self, api: Api, external_id: str) -> None:
        PricingService(
            api.db, api.clock, PricingSettings(static_rates={Symbol.BTC: Decimal("60000")})
        ).refresh([Symbol.BTC])
        address = api.post(f"/v1/accounts/{external_id}/deposit-addresses", {"chain": "btc"})
        self.address = str(address.json()["address"])
        self.chain = FakeChain(Chain.BTC, api.clock.now() - timedelta(minutes=1), final_depth=2)
        pricing = PricingService(api.db, api.clock, PricingSettings(history_tolerance_seconds=3600))
        config = WatcherConfig(Chain.BTC, dust={"BTC": 546})
        self.watcher = Watcher(api.db, api.clock, self.chain, pricing, config)

    def pay(self, sats: int) -> ChainTransfer:
        transfer = ChainTransfer(
            Chain.BTC, "BTC", uuid.uuid4().hex * 2, 0, self.address, sats, SENDER,
            SenderKind.KNOWN, True,
        )  # fmt: skip
        self.chain.mine([transfer], seconds=30)
        self.watcher.tick()
        return transfer


def deposit_id(api: Api, external_id: str, transfer: ChainTransfer) -> str:
    listed = api.get(f"/v1/accounts/{external_id}/deposits").json()["deposits"]
    [found] = [d for d in listed if d["txid"] == transfer.txid]
    return str(found["id"])


def test_deposit_events_follow_its_life_and_carry_its_get(api: Api) -> None:
    api.account("d1")
    chain = Deposits(api, "d1")
    paid = chain.pay(100_000)
    first = deposit_id(api, "d1", paid)
    get = f"/v1/accounts/d1/deposits/{first}"
    assert types(api, "deposit", first) == ["deposit.seen", "deposit.confirming"]
    assert last_data(api, "deposit", first) == api.get(get).json()
    dust = chain.pay(1)  # the next block: the first one is final
    assert types(api, "deposit", first) == [
        "deposit.seen",
        "deposit.confirming",
        "deposit.credited",
    ]
    credited = api.get(get).json()
    assert credited["status"] == "credited"
    assert last_data(api, "deposit", first) == credited
    [ignored] = events(api, "deposit", deposit_id(api, "d1", dust))
    assert ignored.type == "deposit.ignored"
    assert "dust" in json.loads(ignored.data)["status_reason"]

    # Spent below the credit, then reorganised away: reversed, and the account frozen.
    api.post("/v1/accounts/d1/activations", {"price": api.usd("50")})
    chain.chain.reorg(2)
    chain.chain.mine_empty(3)
    chain.watcher.tick()
    assert types(api, "deposit", first)[3:] == ["deposit.reversed"]
    assert last_data(api, "deposit", first) == api.get(get).json()
    account = account_uuid(api, "d1")
    assert types(api, "account", account) == ["account.state_changed"]
    frozen = last_data(api, "account", account)
    assert frozen["status"] == "frozen"
    assert frozen == api.get("/v1/accounts/d1").json()
    with api.db.transaction() as conn:
        owners = conn.execute(
            select(event.c.customer_account_id).where(event.c.subject_id == first)
        ).scalars()
        assert {str(owner) for owner in owners} == {account}


def test_activation_events_carry_its_get_when_cancelled_fulfilled_or_expired(api: Api) -> None:
    api.account("a1", funds="10")
    made = [
        api.post("/v1/accounts/a1/activations", {"price": api.usd("1"), "window_seconds": 60})
        for _ in range(3)
    ]
    cancelled, fulfilled, expired = (str(r.json()["id"]) for r in made)
    api.post(f"/v1/accounts/a1/activations/{cancelled}/cancel")
    api.post(f"/v1/accounts/a1/activations/{fulfilled}/fulfil")
    assert types(api, "activation", expired) == []  # reserving one emits nothing
    api.clock.advance(timedelta(seconds=61))
    sweep_expired_holds(api.db, api.clock)
    for activation_id, wanted in [
        (cancelled, "activation.cancelled"),
        (fulfilled, "activation.fulfilled"),
        (expired, "activation.expired"),
    ]:
        assert types(api, "activation", activation_id) == [wanted]
        shown = api.get(f"/v1/accounts/a1/activations/{activation_id}").json()
        assert last_data(api, "activation", activation_id) == shown
    assert last_data(api, "activation", expired)["refunded"] is True
    # Usage postings and the adjustments that funded the account changed no state: no event.
    api.post(
        "/v1/accounts/a1/usage",
        {"events": [{"event_id": "u1", "amount": api.usd("0.5"), "description": "call"}]},
    )
    assert types(api, "account", account_uuid(api, "a1")) == []


def test_withdrawal_events_carry_its_get_from_request_to_rejection(api: Api) -> None:
    api.account("w1", funds="100")
    PricingService(
        api.db, api.clock, PricingSettings(static_rates={Symbol.BTC: Decimal("60000")})
    ).refresh([Symbol.BTC])
    body = {"external_id": "w1", "asset": "BTC", "address": PAYEE, "amount": api.usd("25")}
    first = api.post("/v1/withdrawals", body)
    assert first.status_code == 201, first.text
    rejected_id = str(first.json()["id"])
    second = api.post("/v1/withdrawals", body).json()
    cancelled_id = str(second["id"])
    assert types(api, "withdrawal", rejected_id) == ["withdrawal.requested"]
    # The creation's response is the object at that moment, as the event carries it.
    assert last_data(api, "withdrawal", cancelled_id) == second

    api.post(f"/v1/admin/payouts/{rejected_id}/reject", {"reason": "unknown payee"})
    api.post(f"/v1/withdrawals/{cancelled_id}/cancel", {"reason": "changed my mind"})
    for request_id, wanted in [
        (rejected_id, "withdrawal.rejected"),
        (cancelled_id, "withdrawal.cancelled"),
    ]:
        assert types(api, "withdrawal", request_id) == ["withdrawal.requested", wanted]
        assert (
            last_data(api, "withdrawal", request_id)
            == api.get(f"/v1/withdrawals/{request_id}").json()
        )


def test_dispute_and_account_events_carry_their_gets(api: Api) -> None:
    api.account("s1")
    chain = Deposits(api, "s1")
    paid = chain.pay(100_000)
    chain.chain.mine_empty(1)
    chain.watcher.tick()
    topup = deposit_id(api, "s1", paid)
    api.post("/v1/accounts/s1/activations", {"price": api.usd("50")})
    opened = api.post(
        "/v1/admin/disputes",
        {"external_id": "s1", "subject": "deposit", "subject_id": topup, "reason": "stolen card"},
    ).json()
    api.post(
        f"/v1/admin/disputes/{opened['id']}/resolve", {"outcome": "chargeback", "note": "lost"}
    )
    assert types(api, "dispute", opened["id"]) == ["dispute.opened", "dispute.charged_back"]
    shown = api.get(f"/v1/admin/disputes/{opened['id']}").json()
    assert last_data(api, "dispute", opened["id"]) == shown

    # The chargeback took the balance below zero (frozen); an operator then suspends it.
    changed = api.post(
        "/v1/admin/accounts/s1/state",
        {"state": "suspended", "reason_code": "violation", "reason": "stolen card"},
    )
    assert changed.status_code == 200, changed.text
    account = account_uuid(api, "s1")
    assert types(api, "account", account) == ["account.state_changed"] * 2
    [frozen, suspended] = [json.loads(r.data) for r in events(api, "account", account)]
    assert frozen["status"] == "frozen"
    assert suspended["status"] == "suspended"
    assert suspended == api.get("/v1/accounts/s1").json()


@pytest.mark.parametrize("fail", [False, True])
def test_an_event_commits_and_rolls_back_with_its_change(api: Api, fail: bool) -> None:
    api.account("r1", funds="5")
    reserved = api.post("/v1/accounts/r1/activations", {"price": api.usd("1")}).json()
    activation_id = uuid.UUID(reserved["id"])
    with api.db.transaction() as conn:
        account = accounts.get_by_external_id(conn, "r1")
    try:
        with api.db.transaction() as conn:
            now = api.clock.now()
            activations.cancel(conn, account, activation_id, now=now, request=None)
            states.change_state(
                conn,
                account.id,
                to=states.AccountState.SUSPENDED,
                reason_code=states.ReasonCode.OTHER,
                reason="test",
                actor="test",
                now=now,
                request=None,
            )
            if fail:
                raise RuntimeError("the unit of work fails after the changes")
    except RuntimeError:
        pass
    status = api.get("/v1/accounts/r1").json()["status"]
    shown = api.get(f"/v1/accounts/r1/activations/{activation_id}").json()["status"]
    written = types(api, "account", str(account.id)) + types(api, "activation", str(activation_id))
    if fail:
        assert (status, shown, written) == ("active", "pending", [])
    else:
        assert (status, shown) == ("suspended", "cancelled")
        assert written == ["account.state_changed", "activation.cancelled"]
