"""Signed deliveries to a real receiver: signatures checked with `standardwebhooks`, retries on
the schedule, 410 and long failure disabling the endpoint, secret rotation, filters, replay and
redelivery.

The fan-out, the claim and the record run on both databases; the rules on top of them
(schedule, disabling, rotation, filters) on SQLite alone."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from kassa.events.outbox import body
from kassa.events.tables import event
from kassa.webhooks import deliveries, endpoints
from kassa.webhooks.deliveries import DeliveryStatus
from kassa.webhooks.endpoints import EndpointStatus
from kassa.webhooks.errors import InvalidWebhookEndpoint
from kassa.webhooks.sender import DISABLED_EVENT
from kassa.webhooks.settings import WebhookSettings

if TYPE_CHECKING:
    from tests.webhooks.conftest import Kit

FAST = WebhookSettings(jitter_percent=0, disable_after_failing_seconds=600).with_loopback()


def _deliveries(kit: Kit) -> list[deliveries.Delivery]:
    with kit.db.transaction() as conn:
        return deliveries.listing(conn)


def test_a_delivery_carries_the_event_signed_and_is_logged(kit: Kit) -> None:
    made = kit.endpoint()
    written = kit.event("deposit.credited")
    done = kit.sender().run_once()
    assert (done.dispatched, done.sent, done.succeeded) == (1, 1, 1)

    [got] = kit.receiver.received
    assert got.verified_by == kit.receiver.secrets["/hook"]
    assert got.msg_id == written.public_id
    with kit.db.transaction() as conn:
        row = conn.execute(select(event).where(event.c.public_id == written.public_id)).one()
        assert row.dispatched_at is not None
        assert got.body == body(row)
        [delivery] = deliveries.listing(conn, endpoint_id=made.id)
        _same, [attempt] = deliveries.get(conn, delivery.id)
    assert got.json["type"] == "deposit.credited" and got.json["subject"]["seq"] == 1
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.SUCCEEDED,
        1,
        200,
    )
    assert attempt.succeeded and attempt.status_code == 200 and attempt.address == "127.0.0.1"
    assert attempt.response_snippet == "ok" and attempt.latency_ms >= 0
    # Nothing more to do: the event was fanned out once.
    assert kit.sender().run_once().sent == 0


def test_a_receiver_down_for_three_attempts_gets_the_fourth(kit: Kit) -> None:
    kit.endpoint()
    written = kit.event()
    kit.receiver.down()
    worker = kit.sender(FAST)
    waits = [5, 300, 1800]
    for wait in waits:
        assert worker.run_once().succeeded == 0
        [pending] = _deliveries(kit)
        assert pending.status is DeliveryStatus.PENDING
        assert pending.next_attempt_at == kit.clock.now() + timedelta(seconds=wait)
        assert "ConnectError" in (pending.last_error or "")
        assert worker.run_once().sent == 0  # not due yet
        kit.clock.advance(timedelta(seconds=wait))
    kit.receiver.up()
    assert worker.run_once().succeeded == 1
    [got] = kit.receiver.received
    assert got.msg_id == written.public_id and got.verified_by
    [done] = _deliveries(kit)
    assert (done.status, done.attempts) == (DeliveryStatus.SUCCEEDED, 4)
    with kit.db.transaction() as conn:
        _same, attempts = deliveries.get(conn, done.id)
    assert [a.succeeded for a in attempts] == [False, False, False, True]


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_a_delivery_fails_when_the_schedule_runs_out(kit: Kit) -> None:
    kit.endpoint()
    kit.event()
    kit.receiver.script("/hook", then=500, body=b"x" * 5000)
    settings = WebhookSettings(
        jitter_percent=0, retry_schedule_seconds=(5, 10), snippet_bytes=100
    ).with_loopback()
    worker = kit.sender(settings)
    for wait in (5, 10, 0):
        worker.run_once()
        kit.clock.advance(timedelta(seconds=wait))
    [failed] = _deliveries(kit)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == (
        DeliveryStatus.FAILED,
        3,
        None,
    )
    with kit.db.transaction() as conn:
        _same, attempts = deliveries.get(conn, failed.id)
    assert {len(a.response_snippet or "") for a in attempts} == {100}
    assert len(kit.receiver.received) == 3


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_jitter_moves_each_wait_within_its_share(kit: Kit) -> None:
    worker = kit.sender(WebhookSettings(jitter_percent=10))
    waits = [worker._wait(1) for _ in range(50)]
    assert all(w is not None and 4.5 <= w.total_seconds() <= 5.5 for w in waits)
    assert len({w for w in waits}) > 1
    assert worker._wait(len(worker.settings.retry_schedule_seconds) + 1) is None
    assert sum(worker.settings.retry_schedule_seconds) / 86400 == pytest.approx(2.8, abs=0.1)


def _disabled_events(kit: Kit) -> list[str]:
    with kit.db.transaction() as conn:
        return list(
            conn.execute(select(event.c.subject_id).where(event.c.type == DISABLED_EVENT)).scalars()
        )


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_410_disables_the_endpoint_and_tells_the_operator(kit: Kit) -> None:
    made = kit.endpoint()
    kit.receiver.script("/hook", then=410)
    kit.event()
    kit.event()
    kit.sender(FAST).run_once()
    with kit.db.transaction() as conn:
        after = endpoints.get(conn, made.id)
    assert after.status is EndpointStatus.DISABLED
    assert after.disabled_reason == "the endpoint answered 410 Gone"
    assert _disabled_events(kit) == [str(made.id)]
    # Disabled: the other pending delivery waits, nothing is attempted.
    kit.clock.advance(timedelta(hours=1))
    assert kit.sender(FAST).run_once().sent == 0


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_an_endpoint_failing_for_the_configured_time_is_disabled(kit: Kit) -> None:
    made = kit.endpoint()
    kit.receiver.script("/hook", then=503)
    kit.event()
    worker = kit.sender(FAST)
    worker.run_once()
    kit.clock.advance(timedelta(seconds=5))
    worker.run_once()
    kit.clock.advance(timedelta(seconds=300))
    worker.run_once()
    with kit.db.transaction() as conn:
        assert endpoints.get(conn, made.id).status is EndpointStatus.ENABLED
    kit.clock.advance(timedelta(seconds=1800))  # failing 2 105 s, past the 600 s
    worker.run_once()
    with kit.db.transaction() as conn:
        after = endpoints.get(conn, made.id)
    assert after.status is EndpointStatus.DISABLED
    assert "every attempt failed since" in (after.disabled_reason or "")
    assert _disabled_events(kit) == [str(made.id)]
    # Enabled again: the pending delivery is due at once and succeeds; the operator event is
    # fanned out after the enable, so the endpoint hears of its own disabling too.
    kit.receiver.script("/hook", then=200)
    with kit.db.transaction() as conn:
        endpoints.enable(conn, made.id, now=kit.clock.now())
    worker.run_once()
    delivered = sorted((d.event_type, d.status) for d in _deliveries(kit))
    assert delivered == [
        ("deposit.credited", DeliveryStatus.SUCCEEDED),
        (DISABLED_EVENT, DeliveryStatus.SUCCEEDED),
    ]


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_a_rotated_secret_signs_alongside_the_old_one_during_the_overlap(kit: Kit) -> None:
    made = kit.endpoint()
    [old] = kit.receiver.secrets["/hook"]
    with kit.db.transaction() as conn:
        _rotated, new = endpoints.rotate(conn, made.id, now=kit.clock.now(), overlap_seconds=3600)
    kit.receiver.secrets["/hook"].append(new)
    kit.event()
    kit.sender().run_once()
    kit.clock.advance(timedelta(seconds=3601))
    kit.event()
    kit.sender().run_once()
    during, after = kit.receiver.received
    assert during.verified_by == [old, new]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert after.verified_by == [new]
    assert new.startswith("whsec_") and new != old


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_filters_pick_event_types_and_customer_accounts(kit: Kit) -> None:
    from kassa.accounts import service as accounts

    with kit.db.transaction() as conn:
        x = accounts.create(conn, external_id="cust-x", now=kit.clock.now(), request=None).id
        y = accounts.create(conn, external_id="cust-y", now=kit.clock.now(), request=None).id
    kit.endpoint("/deposits", event_types=["deposit.*"])
    kit.endpoint("/broadcast", event_types=["withdrawal.broadcast"])
    kit.endpoint("/x", account=x)
    kit.endpoint("/all")
    sent = {
        "d-x": kit.event("deposit.credited", account=x),
        "w-y": kit.event("withdrawal.broadcast", account=y),
        "w-x": kit.event("withdrawal.confirmed", account=x),
        "op": kit.event("webhook_endpoint.disabled"),
    }
    kit.sender().run_once()
    got = {
        path: sorted(r.msg_id for r in kit.receiver.at(path))
        for path in ("/deposits", "/broadcast", "/x", "/all")
    }
    ids = {name: recorded.public_id for name, recorded in sent.items()}
    assert got == {
        "/deposits": [ids["d-x"]],
        "/broadcast": [ids["w-y"]],
        "/x": sorted([ids["d-x"], ids["w-x"]]),
        "/all": sorted(ids.values()),
    }
    assert all(r.verified_by for r in kit.receiver.received)
    # Every endpoint gets the event's own account, whether it is bound to one or not.
    accounts_seen = {
        (r.path, r.json["account_id"]) for r in kit.receiver.received if r.msg_id == ids["d-x"]
    }
    assert accounts_seen == {(p, str(x)) for p in ("/deposits", "/x", "/all")}


def test_a_disabled_endpoint_misses_events_until_replayed_since_a_time(kit: Kit) -> None:
    made = kit.endpoint()
    first = kit.event()
    kit.sender().run_once()
    with kit.db.transaction() as conn:
        endpoints.disable(conn, made.id, reason="maintenance", now=kit.clock.now())
    kit.clock.advance(timedelta(minutes=10))
    since = kit.clock.now()
    missed = [kit.event(), kit.event("withdrawal.confirmed")]
    kit.sender().run_once()
    assert [r.msg_id for r in kit.receiver.received] == [first.public_id]
    with kit.db.transaction() as conn:
        endpoints.enable(conn, made.id, now=kit.clock.now())
    assert kit.sender().run_once().sent == 0  # older events are not fanned out again
    with kit.db.transaction() as conn:
        assert deliveries.replay(conn, made.id, since=since, now=kit.clock.now()) == 2
    kit.sender().run_once()
    replayed = sorted(r.msg_id for r in kit.receiver.received[1:])
    assert replayed == sorted(m.public_id for m in missed)
    assert all(r.verified_by for r in kit.receiver.received)
    origins = [d.origin for d in _deliveries(kit)]
    assert sorted(origins) == ["event", "replay", "replay"]


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_redelivering_one_event_sends_it_again_with_its_id(kit: Kit) -> None:
    made = kit.endpoint()
    kit.endpoint("/other")
    written = kit.event()
    kit.sender().run_once()
    with kit.db.transaction() as conn:
        again = deliveries.redeliver(
            conn, written.public_id, now=kit.clock.now(), endpoint_id=made.id
        )
    assert [d.origin for d in again] == ["redeliver"]
    kit.sender().run_once()
    hook = kit.receiver.at("/hook")
    assert [r.msg_id for r in hook] == [written.public_id] * 2
    assert hook[0].body == hook[1].body
    assert len(kit.receiver.at("/other")) == 1


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_a_deleted_endpoint_gets_nothing_and_its_pending_deliveries_fail(kit: Kit) -> None:
    made = kit.endpoint()
    kit.receiver.script("/hook", then=500)
    kit.event()
    kit.sender(FAST).run_once()
    with kit.db.transaction() as conn:
        endpoints.delete(conn, made.id, now=kit.clock.now())
        assert endpoints.listing(conn) == []
    kit.event()
    kit.clock.advance(timedelta(hours=1))
    kit.sender(FAST).run_once()
    assert len(kit.receiver.received) == 1
    [gone] = _deliveries(kit)
    assert (gone.status, gone.last_error) == (DeliveryStatus.FAILED, "endpoint deleted")


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_event_filters_are_checked(kit: Kit) -> None:
    with pytest.raises(InvalidWebhookEndpoint, match="not an event type"):
        kit.endpoint(event_types=["Deposit Credited"])
    assert endpoints.matches(("deposit.*",), "deposit.credited")
    assert not endpoints.matches(("deposit.*",), "deposits.credited")
    assert endpoints.matches((), "anything.at_all")
