"""The log formats of `kassa.telemetry.logs`: context fields, redaction, both formats."""

from __future__ import annotations

import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context

import pytest

from kassa.api.request_id import request_id_of
from kassa.telemetry.logs import JsonFormatter, TextFormatter, bound, redact, request_bound


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = sys.exc_info() if exc else None
    return logging.LogRecord("kassa.test", logging.INFO, __file__, 1, message, args, info)


def test_json_line_has_the_bound_ids_also_in_a_thread_pool_thread() -> None:
    scope = {"path_params": {"external_id": "acct-1"}}
    # Starlette runs a synchronous endpoint in a thread with a copy of the context.
    with request_bound("req-1", scope), bound(payout="p-9"), ThreadPoolExecutor(1) as pool:
        text = pool.submit(copy_context().run, JsonFormatter().format, _record("hi")).result()
    line = json.loads(text)
    assert line["request_id"] == "req-1"
    assert line["account"] == "acct-1"
    assert line["payout"] == "p-9"
    assert line["message"] == "hi"
    # Outside the blocks the context is gone.
    assert "request_id" not in json.loads(JsonFormatter().format(_record("after")))


def test_secrets_are_masked_in_messages_and_tracebacks() -> None:
    token = "kassa_AbCdEfGhIjKl_s3cr3t-value_xyz"  # noqa: S105 - a made-up key
    assert redact(f"key {token}") == "key kassa_***"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert redact("postgresql+psycopg://kassa:hunter2@db/kassa") == (
        "postgresql+psycopg://kassa:***@db/kassa"
    )
    try:
        raise RuntimeError(f"could not reach postgresql://kassa:hunter2@db/kassa with {token}")
    except RuntimeError:
        record = _record("failed %s", token, exc=True)
    for formatter in (JsonFormatter(), TextFormatter()):
        text = formatter.format(record)
        assert "hunter2" not in text and "s3cr3t" not in text


def test_text_line_appends_the_context() -> None:
    with bound(deposit="d-1", account=None):
        text = TextFormatter().format(_record("credited"))
    assert text.endswith("credited [deposit=d-1]")


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        (b"abc-123", True),
        (b"trace.id:7_x", True),
        (b"x" * 64, True),
        (b"x" * 65, False),
        (b"", False),
        (b"a b", False),
        (b'a"b', False),
        (b"a\x00b", False),
        ("é".encode(), False),
        (None, False),
    ],
)
def test_only_a_sane_incoming_request_id_is_kept(raw: bytes | None, kept: bool) -> None:
    chosen = request_id_of(raw)
    assert (chosen == (raw or b"").decode(errors="replace")) is kept
    if not kept:
        assert len(chosen) == 32 and chosen.isalnum()
