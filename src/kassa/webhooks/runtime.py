"""The delivery loops `kassa worker` and `kassa up` run: one sender per process by default."""

from __future__ import annotations

import threading

from kassa.clock import Clock
from kassa.db import Database
from kassa.webhooks.sender import Sender
from kassa.webhooks.settings import WebhookSettings


def start_senders(
    database: Database, clock: Clock, settings: WebhookSettings, stop: threading.Event
) -> list[threading.Thread]:
    """Start the webhook sender (fan-out included) in a thread until `stop`; nothing when
    ``[webhooks] enabled = false``."""
    if not settings.enabled:
        return []
    sender = Sender(database, clock, settings)
    thread = threading.Thread(
        target=sender.run_forever, args=(stop,), name="kassa-webhooks", daemon=True
    )
    thread.start()
    return [thread]
