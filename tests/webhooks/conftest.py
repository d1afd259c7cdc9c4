"""Webhook test harness: a real HTTP receiver on loopback that checks every delivery's
signature with the `standardwebhooks` package, and shortcuts to write events and endpoints.

Test modules import `Kit` and `Receiver` under `TYPE_CHECKING` only (several conftest modules
share the name); the `kit` and `receiver` fixtures hand them out.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

import pytest
from tests.webhook_receiver import Receiver

from kassa.clock import ManualClock
from kassa.db import Database
from kassa.events.outbox import Recorded, record
from kassa.webhooks import endpoints
from kassa.webhooks.endpoints import Endpoint
from kassa.webhooks.sender import Sender
from kassa.webhooks.settings import WebhookSettings
from kassa.webhooks.transport import AddressPolicy

LOOPBACK = WebhookSettings(jitter_percent=0).with_loopback()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


class Kit:
    """The database, the manual clock and the receiver, with shortcuts for what tests write."""

    def __init__(self, db: Database, clock: ManualClock, receiver: Receiver) -> None:
        self.db = db
        self.clock = clock
        self.receiver = receiver

    def endpoint(
        self,
        path: str = "/hook",
        *,
        event_types: Sequence[str] = (),
        account: uuid.UUID | None = None,
        settings: WebhookSettings = LOOPBACK,
    ) -> Endpoint:
        """An endpoint at `path` of the receiver, whose secret the receiver verifies with."""
        with self.db.transaction() as conn:
            made, secret = endpoints.create(
                conn,
                url=self.receiver.url(path),
                event_types=event_types,
                description=f"test {path}",
                customer_account_id=account,
                actor="test",
                now=self.clock.now(),
                policy=AddressPolicy.of(settings),
            )
        self.receiver.secrets.setdefault(path, []).append(secret)
        return made

    def event(
        self,
        type: str = "deposit.credited",
        *,
        account: uuid.UUID | None = None,
        at: datetime | None = None,
    ) -> Recorded:
        """An event written through the outbox, as a state change writes it."""
        subject = uuid.uuid4()
        with self.db.transaction() as conn:
            return record(
                conn,
                type=type,
                subject_kind=type.split(".")[0],
                subject_id=subject,
                data={"id": str(subject), "status": type.split(".")[-1]},
                at=at or self.clock.now(),
                account_id=account,
            )

    def sender(self, settings: WebhookSettings = LOOPBACK, name: str = "w1") -> Sender:
        return Sender(self.db, self.clock, settings, worker_id=name)


@pytest.fixture
def kit(db: Database, clock: ManualClock, receiver: Receiver) -> Kit:
    return Kit(db, clock, receiver)


@pytest.fixture
def kit_on(clock: ManualClock, receiver: Receiver) -> Callable[[Database], Kit]:
    """A kit on a database the test makes itself (PostgreSQL only, a larger pool)."""
    return lambda database: Kit(database, clock, receiver)
