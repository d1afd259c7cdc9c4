"""The event catalog is published as OpenAPI 3.1 webhooks, and the code emits exactly the
catalog's types (issue 15).

Every type has one webhook whose body is the envelope with ``data`` typed as the subject kind's
GET response; every type the domain packages can emit (read from their own tables of statuses
and events) is in the catalog, and every catalogued type is one of them.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kassa.accounts.views import STATE_CHANGED
from kassa.api import create_app
from kassa.clock import ManualClock
from kassa.config import Settings
from kassa.db import Database, make_engine
from kassa.deposits.model import DepositStatus
from kassa.disputes.views import EVENT_OF as DISPUTE_EVENTS
from kassa.events.catalog import CATALOG, CUSTOMER_KINDS, OPERATOR_KINDS
from kassa.payouts.model import RequestKind
from kassa.payouts.views import EVENTS as PAYOUT_EVENTS
from kassa.reports.daily import EVENT_TYPE as REPORT_READY
from kassa.reports.reconciliation.store import EVENT_TYPE as RECONCILED
from kassa.spending.views import EVENT_OF as ACTIVATION_EVENTS
from kassa.webhooks.sender import DISABLED_EVENT

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SRC = Path(__file__).resolve().parents[2] / "src" / "kassa"


@pytest.fixture(scope="module")
def document(sqlite_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    path = tmp_path_factory.mktemp("webhooks") / "kassa.sqlite3"
    shutil.copyfile(sqlite_template, path)
    db = Database(make_engine(f"sqlite:///{path}"))
    with TestClient(create_app(Settings(), database=db, clock=ManualClock(NOW))) as client:
        yield client.get("/openapi.json").json()
    db.dispose()


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def test_every_event_type_is_a_webhook_with_its_envelope_and_data_schema(
    document: dict[str, Any],
) -> None:
    assert document["openapi"].startswith("3.1")
    hooks = document["webhooks"]
    assert set(hooks) == set(CATALOG)
    get_of_kind = {
        "deposit": ("/v1/accounts/{external_id}/deposits/{deposit_id}", "get"),
        "refund": ("/v1/refunds/{request_id}", "get"),
        "withdrawal": ("/v1/withdrawals/{request_id}", "get"),
        "activation": ("/v1/accounts/{external_id}/activations/{activation_id}", "get"),
        "account": ("/v1/accounts/{external_id}", "get"),
        "dispute": ("/v1/admin/disputes/{dispute_id}", "get"),
    }
    for name, entry in CATALOG.items():
        operation = hooks[name]["post"]
        assert operation["description"].startswith(entry.meaning)
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        envelope = _resolve(document, body)
        props = envelope["properties"]
        assert set(props) == {"id", "type", "timestamp", "account_id", "subject", "data"}
        assert props["type"]["const"] == name
        if entry.subject_kind in get_of_kind:
            path, method = get_of_kind[entry.subject_kind]
            answer = document["paths"][path][method]["responses"]["200"]["content"]
            assert props["data"]["$ref"] == answer["application/json"]["schema"]["$ref"], name


def test_the_catalog_holds_exactly_the_types_the_code_emits() -> None:
    emitted = {f"deposit.{status.value}" for status in DepositStatus}
    emitted |= {f"{kind.value}.{event}" for kind in RequestKind for event in PAYOUT_EVENTS}
    emitted |= set(ACTIVATION_EVENTS.values()) | set(DISPUTE_EVENTS.values()) | {STATE_CHANGED}
    # The operator's events are written as literals next to the loop that notices them.
    literal = re.compile(r'"((?:watcher|rate|hot_wallet)\.[a-z_]+)"')
    for module in SRC.rglob("*.py"):
        if module.parent.name != "events":
            emitted |= set(literal.findall(module.read_text()))
    emitted |= {DISABLED_EVENT, RECONCILED, REPORT_READY}  # the webhook sender's, finance's
    assert emitted == set(CATALOG)
    for name, entry in CATALOG.items():
        assert name.split(".")[0] == entry.subject_kind
        assert entry.subject_kind in CUSTOMER_KINDS + OPERATOR_KINDS
        assert entry.meaning.endswith(".") and len(entry.meaning) > 20
