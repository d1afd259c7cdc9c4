"""Webhook test harness: a real HTTP receiver on loopback that checks every delivery's
signature with the `standardwebhooks` package, and shortcuts to write events and endpoints.

Test modules import `Kit` and `Receiver` under `TYPE_CHECKING` only (several conftest modules
share the name); the `kit` and `receiver` fixtures hand them out.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from kassa.clock import ManualClock
from kassa.db import Database
from kassa.events.outbox import Recorded, record
from kassa.webhooks import endpoints
from kassa.webhooks.endpoints import Endpoint
from kassa.webhooks.sender import Sender
from kassa.webhooks.settings import WebhookSettings
from kassa.webhooks.transport import AddressPolicy

LOOPBACK = WebhookSettings(jitter_percent=0).with_loopback()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified_by: list[str]
    """The secrets (of those registered for the path) whose signature matched."""

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Script:
    """How one path answers: `statuses` in turn, then `then`; `hold` blocks each request until
    it is set."""

    statuses: list[int] = field(default_factory=list)
    then: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hold: threading.Event | None = None


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that records and verifies what it is sent."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self.secrets: dict[str, list[str]] = {}
        self.scripts: dict[str, Script] = {}
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                script = receiver.scripts.get(self.path, Script())
                with receiver._lock:
                    verified = [
                        s
                        for s in receiver.secrets.get(self.path, [])
                        if _verifies(s, body, headers)
                    ]
                    receiver.received.append(Received(self.path, headers, body, verified))
                    status = script.statuses.pop(0) if script.statuses else script.then
                receiver.arrived.set()
                if script.hold is not None:
                    script.hold.wait(30)
                try:
                    self.send_response(status)
                    for name, value in script.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(script.body)))
                    self.end_headers()
                    self.wfile.write(script.body)
                except OSError:
                    pass  # the sender died meanwhile

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._handler = Handler
        self.port = port
        self._start()

    def _start(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def down(self) -> None:
        """Stop listening: connections are refused until `up`."""
        self.server.shutdown()
        self.server.server_close()

    def up(self) -> None:
        self._start()

    def script(self, path: str, **how: Any) -> Script:
        self.scripts[path] = Script(**how)
        return self.scripts[path]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def close(self) -> None:
        self.down()


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


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
