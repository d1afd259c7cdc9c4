"""A real webhook receiver for tests: a threaded HTTP server on 127.0.0.1 that records every
delivery and checks its signature with the `standardwebhooks` package.

Shared by the webhook tests and the end-to-end tests on the local chains, as
``tests.webhook_receiver`` (pytest puts the repository root on the path).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


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
