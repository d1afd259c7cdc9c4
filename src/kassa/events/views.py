"""The JSON forms the API's responses and the events' ``data`` share.

Each subject kind has one view function in its own domain package (`kassa.deposits.views`,
`kassa.payouts.views`, …) that returns the object exactly as the API's GET shows it, already in
its JSON form; the API validates its response model from that same dict, so what a webhook
carries and what a GET answers cannot drift apart. The helpers here write the few shared
shapes: times as the API prints them and amounts as ``{"amount": "12.50", "asset": "USD"}``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from kassa.money import Money

JsonObject = dict[str, Any]


def iso(at: datetime | None) -> str | None:
    """A time as the API prints it: UTC, ``Z``, microseconds only when there are any."""
    if at is None:
        return None
    utc = at.astimezone(UTC) if at.tzinfo is not None else at
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def amount(value: Money) -> JsonObject:
    return {"amount": value.format(), "asset": value.asset.code.value}


def text_id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
