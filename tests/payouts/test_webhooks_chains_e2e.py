"""Webhooks end to end on the local chains (issue 15): the real watcher, payout worker and
webhook sender, and a real HTTP receiver that checks every delivery's signature with the
`standardwebhooks` package.

- a deposit on each chain arrives as ``deposit.seen`` … ``deposit.credited``, numbered 1, 2, …
  in the order of its changes (a batch is sent in parallel: receivers order by that number);
- on bitcoin regtest, the deposit's block leaving the chain arrives as ``deposit.reversed``,
  and a withdrawal's events arrive through ``withdrawal.confirmed``.

PostgreSQL only: the outbox and the sender are checked on both databases in tests/webhooks and
tests/api/test_api_events.py; what is new here is the chain underneath.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

import coincurve
import pytest
from tests.webhook_receiver import Received, Receiver

from kassa.chains.btc.keys import p2wpkh_address_for_key
from kassa.chains.network import BtcNetwork, Chain
from kassa.deposits import records
from kassa.deposits.model import DepositStatus
from kassa.deposits.runtime import build_scanner, dust_thresholds
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.money import Money, asset
from kassa.webhooks import endpoints
from kassa.webhooks.sender import Sender
from kassa.webhooks.settings import WebhookSettings
from kassa.webhooks.transport import AddressPolicy
from kassa_dev.bench._payouts_run import close_client

if TYPE_CHECKING:
    from tests.payouts.conftest import Stage

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("databases", ["postgres"], indirect=True),
]

LOOPBACK = WebhookSettings(jitter_percent=0).with_loopback()
TOP_UP = {Chain.BTC: ("BTC", "0.001"), Chain.ETH: ("ETH", "0.02"), Chain.TRON: ("USDT-TRC20", "60")}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@contextmanager
def _listening(stage: Stage, receiver: Receiver) -> Iterator[Sender]:
    """An endpoint for every event at the receiver, and the sender that delivers to it."""
    with stage.db.transaction() as conn:
        _made, secret = endpoints.create(
            conn,
            url=receiver.url("/kassa"),
            event_types=(),
            description="the host service",
            customer_account_id=None,
            actor="test",
            now=stage.clock.now(conn),
            policy=AddressPolicy.of(LOOPBACK),
        )
    receiver.secrets["/kassa"] = [secret]
    sender = Sender(stage.db, stage.clock, LOOPBACK, worker_id="webhooks-e2e")
    try:
        yield sender
    finally:
        sender.close()


def _delivered(sender: Sender, receiver: Receiver, kind: str, subject: uuid.UUID) -> list[str]:
    """Deliver what is due, then the subject's event types in the subject's order, checking every
    signature and that the numbering is 1, 2, 3, … without a gap."""
    while sender.run_once().sent:
        pass
    mine: list[Received] = [
        r
        for r in receiver.received
        if (r.json["subject"]["kind"], r.json["subject"]["id"]) == (kind, str(subject))
    ]
    assert all(r.verified_by for r in mine), "a delivery whose signature does not verify"
    assert len({r.msg_id for r in mine}) == len(mine)  # one delivery per event here
    # A batch is sent in parallel, so arrival order is not the order of the changes: the
    # receiver orders by the subject's sequence number, which has no gap.
    mine.sort(key=lambda r: int(r.json["subject"]["seq"]))
    assert [r.json["subject"]["seq"] for r in mine] == list(range(1, len(mine) + 1))
    return [str(r.json["type"]) for r in mine]


@pytest.mark.usefixtures("db")  # the stage, fetched by name below, is built on it
@pytest.mark.parametrize("chain", [Chain.BTC, Chain.ETH, Chain.TRON], ids=str)
def test_a_deposit_arrives_as_signed_events_in_order(
    request: pytest.FixtureRequest, receiver: Receiver, chain: Chain
) -> None:
    stage: Stage = request.getfixturevalue(f"{chain.value}_stage")
    code, amount = TOP_UP[chain]
    customer = stage.customer(None)
    with _listening(stage, receiver) as sender:
        deposit = stage.top_up(customer, Money.parse(amount, asset(code)))
        types = _delivered(sender, receiver, "deposit", deposit.id)
    assert types[0] == "deposit.seen"
    assert types[-1] == "deposit.credited"
    assert set(types) <= {"deposit.seen", "deposit.confirming", "deposit.credited"}
    [credited] = [r for r in receiver.received if r.json["type"] == "deposit.credited"]
    assert credited.json["data"]["status"] == "credited"
    assert credited.json["account_id"] == str(customer.id)


def test_a_reorg_and_a_withdrawal_arrive_as_signed_events_on_bitcoin(
    btc_stage: Stage, receiver: Receiver
) -> None:
    stage = btc_stage
    with _listening(stage, receiver) as sender:
        _reorg_and_withdraw(stage, receiver, sender)


def _reorg_and_withdraw(stage: Stage, receiver: Receiver, sender: Sender) -> None:
    customer = stage.customer(None)
    deposit = stage.top_up(customer, Money.parse("0.001", asset("BTC")))
    assert _delivered(sender, receiver, "deposit", deposit.id)[-1] == "deposit.credited"

    # The deposit's block leaves the chain: a longer branch without it wins. A watcher of our
    # own notices, once the top-up's watcher's lease has run out.
    stage.clock.advance(timedelta(seconds=61))
    scanner = build_scanner(stage.chains, Chain.BTC)
    watcher = Watcher(
        stage.db,
        stage.clock,
        scanner,
        stage.pricing,
        WatcherConfig(
            Chain.BTC,
            dust=dust_thresholds(stage.chains, Chain.BTC),
            start_height=deposit.block_height or 0,  # it resumes the top-up's checkpoint
        ),
    )
    try:
        rpc = stage.node.rpc()  # type: ignore[union-attr]
        tip = rpc.height()
        assert deposit.block_height is not None
        rpc.call("invalidateblock", deposit.block_hash)
        elsewhere = p2wpkh_address_for_key(coincurve.PrivateKey(), BtcNetwork.REGTEST).text
        rpc.generate(tip - deposit.block_height + 2, elsewhere)  # longer than what it replaced
        assert watcher.tick().rewound_to is not None
    finally:
        close_client(scanner)
    with stage.db.transaction() as conn:
        gone = records.get(conn, deposit.id)
    assert gone is not None and gone.status is DepositStatus.REVERSED
    assert _delivered(sender, receiver, "deposit", deposit.id)[-2:] == [
        "deposit.credited",
        "deposit.reversed",
    ]

    funded = stage.customer("100.00")
    request = stage.withdraw(funded, "25.00", "BTC", stage.fresh_address())
    stage.pay(stage.worker(), request.id)
    assert _delivered(sender, receiver, "withdrawal", request.id) == [
        "withdrawal.requested",
        "withdrawal.approved",
        "withdrawal.broadcast",
        "withdrawal.confirmed",
    ]
    [confirmed] = [r for r in receiver.received if r.json["type"] == "withdrawal.confirmed"]
    assert confirmed.json["data"]["status"] == "confirmed"
    assert confirmed.json["data"]["net_native"]["asset"] == "BTC"
