"""Issue 13, item 3: a refusal is its key's outcome, and no key is ever committed without one.

The audit: ten parallel $20 withdrawals on a $50 balance (PostgreSQL). The policy read the
balance before the others committed, so eight passed it and were refused when their hold was
created (`insufficient_funds`); that refusal class was marked "recorded" for every instance, so
the transaction committed the payout's claimed key without an outcome, and every retry with the
same key answered `500 ledger_invariant_broken "… claimed twice"`.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from kassa.cli import app as cli
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.ledger import checks, idempotency
from kassa.ledger.errors import InsufficientFunds
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.tables import idempotency_record
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

if TYPE_CHECKING:
    from tests.api.conftest import Api

PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"


def _records(db: Database) -> list[tuple[str, str | None]]:
    with db.transaction() as conn:
        rows = conn.execute(select(idempotency_record.c.key, idempotency_record.c.outcome))
        return [(row.key, row.outcome) for row in rows]


def test_a_refusal_nobody_stored_rolls_its_claim_back(db: Database, clock: ManualClock) -> None:
    """The root cause: `recorded` belongs to one raised error, never to its class."""
    request = Request.of(IdempotencyKey("scope", "k-1"), "test.op", {})
    with pytest.raises(InsufficientFunds), db.transaction() as conn:
        idempotency.claim(conn, request, clock.now())
        raise InsufficientFunds("raised by an inner step that stored nothing")
    assert _records(db) == []

    with pytest.raises(InsufficientFunds), db.transaction() as conn:
        claimed = idempotency.claim(conn, request, clock.now())
        assert isinstance(claimed, idempotency.Claim)
        refused = InsufficientFunds("stored as the outcome")
        idempotency.complete_refused(conn, claimed, refused)
        raise refused
    assert _records(db) == [("k-1", "insufficient_funds")]


def test_parallel_withdrawals_beyond_the_balance_each_keep_their_answer(api: Api) -> None:
    api.account("a", funds="50")
    PricingService(
        api.db, api.clock, PricingSettings(static_rates={Symbol.BTC: Decimal("50000")})
    ).refresh([Symbol.BTC])
    body = {"external_id": "a", "asset": "BTC", "address": PAYEE, "amount": api.usd("20")}
    keys = [f"w-{i}-{uuid.uuid4()}" for i in range(10)]
    barrier = threading.Barrier(len(keys))
    answers: dict[str, httpx2.Response] = {}

    def withdraw(key: str) -> None:
        barrier.wait(timeout=60)
        answers[key] = api.post("/v1/withdrawals", body, key=key)

    threads = [threading.Thread(target=withdraw, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    statuses = sorted(answers[key].status_code for key in keys)
    assert statuses == [201, 201] + [409] * 8, [answers[k].text for k in keys]
    refusals = {answers[k].json()["code"] for k in keys if answers[k].status_code == 409}
    assert refusals <= {"insufficient_funds", "withdrawal_refused"}
    assert api.available("a") == "10.00"

    for key in keys:  # every retry gets its first answer, none a 500
        again = api.post("/v1/withdrawals", body, key=key)
        assert (again.status_code, again.content) == (
            answers[key].status_code,
            answers[key].content,
        )
    with api.db.transaction() as conn:
        assert checks.outcomeless_keys(conn) == []
        assert checks.everything(conn) == []
    assert {outcome for _key, outcome in _records(api.db)} <= {
        "ok",
        "insufficient_funds",
        "withdrawal_refused",
    }


def test_kassa_doctor_finds_a_key_without_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KASSA_DATA_DIR", "KASSA_DATABASE_URL", "KASSA_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "kassa.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["--config", str(config), *args])

    assert run("migrate").exit_code == 0
    healthy = run("doctor")
    assert healthy.exit_code == 0, healthy.stderr
    assert "the books hold" in healthy.stderr

    database = Database.from_url(f"sqlite:///{tmp_path / 'data' / 'kassa.sqlite3'}")
    try:
        with database.transaction() as conn:
            conn.execute(
                insert(idempotency_record).values(
                    scope="key-1",
                    key="stuck-1",
                    operation="api.withdrawals.create",
                    fingerprint="0" * 64,
                    created_at=datetime.now(UTC),
                )
            )
    finally:
        database.dispose()
    broken = run("doctor")
    assert broken.exit_code == 1
    assert "'stuck-1'" in broken.stdout and "no outcome" in broken.stdout
    assert "1 problem(s) found" in broken.stderr
