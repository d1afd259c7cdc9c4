"""A usage batch locks the house revenue account only with its last write (issue 17).

Every batch credits the one revenue account, so on PostgreSQL the time a batch holds that
row's lock is time every other batch waits. The batch's journal entry is therefore its last
write: while the events, the batch row and the last usage time are written, another
transaction can still lock the revenue row at once; from the entry on it cannot, and nothing
but the savepoint's release and the key's completion follows before COMMIT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
from fastapi.testclient import TestClient
from psycopg import errors
from sqlalchemy import event

from kassa.api import create_app
from kassa.apikeys import service as apikeys
from kassa.clock import ManualClock
from kassa.config import Settings
from kassa.money import USD, Money
from kassa.spending import usage
from kassa.spending.usage import UsageEvent

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory
    from tests.spending.conftest import Shop


_POSTS = "kassa_post_"
"""The ledger's posting functions: `kassa_post_pair` (two lines) or `kassa_post_entry`."""


def revenue_free(url: str, revenue_id: int) -> bool:
    """Whether another transaction can lock the revenue row right now (NOWAIT)."""
    with psycopg.connect(url, autocommit=True) as other:
        try:
            other.execute(
                "SELECT 1 FROM ledger_account WHERE id = %s FOR UPDATE NOWAIT", [revenue_id]
            )
        except errors.LockNotAvailable:
            return False
    return True


def test_the_revenue_row_is_locked_from_the_batch_entry_to_commit_only(
    pg_databases: DatabaseFactory, shop_class: type[Shop], clock: ManualClock
) -> None:
    shop = shop_class(pg_databases.new(), clock)
    alice = shop.customer("10.00")
    url = shop.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    seen: list[tuple[str, bool]] = []  # (statement, revenue free before it ran)
    posted: list[str] = []  # statements after the entry

    def before(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        words = " ".join(statement.split())
        if posted or (seen and _POSTS in seen[-1][0]):
            posted.append(words)
        seen.append((words, revenue_free(url, shop.revenue)))

    batch = [
        UsageEvent("e-1", Money(1_500_000, USD), "GET /a"),
        UsageEvent("e-2", Money(1, USD), "GET /b"),
    ]
    request = shop.key("k-lock", "usage", account=str(alice.id))
    with shop.db.transaction() as conn:
        event.listen(conn, "before_cursor_execute", before)
        charged = usage.record_usage(
            conn, shop.fresh_in(conn, alice), batch, now=shop.now, request=request
        )
        event.remove(conn, "before_cursor_execute", before)

    assert charged.charged == Money(1_500_001, USD)
    entry = next(i for i, (words, _free) in enumerate(seen) if _POSTS in words)
    before_entry = " | ".join(words for words, _free in seen[:entry])
    # Every write of the batch came before its entry, with the revenue row free.
    for table in ("usage_event", "usage_batch", "account_usage"):
        assert f"INSERT INTO {table}" in before_entry, before_entry
    assert all(free for _words, free in seen[: entry + 1]), seen
    # After it: locked until COMMIT, and only the savepoint and the key's record are touched.
    assert [free for _words, free in seen[entry + 1 :]] == [False] * len(posted)
    assert [words.split()[0] for words in posted] == ["RELEASE", "UPDATE"], posted
    assert "idempotency_record" in posted[1]
    assert revenue_free(url, shop.revenue)
    assert shop.available(alice) == usd_of(10_000_000 - 1_500_001)


def usd_of(micro: int) -> Money:
    return Money(micro, USD)


def test_the_usage_post_locks_the_revenue_row_only_for_its_answer(
    pg_databases: DatabaseFactory, shop_class: type[Shop], clock: ManualClock
) -> None:
    """The same through the API: after the entry, only the balance read, the savepoint's
    release and the stored answer."""
    shop = shop_class(pg_databases.new(), clock)
    alice = shop.customer("10.00")
    url = shop.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with shop.db.transaction() as conn:
        _key, token = apikeys.create_key(
            conn, name="t", scopes=["accounts:write"], customer_account_id=None, now=shop.now
        )
    seen: list[tuple[str, bool]] = []

    def before(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        seen.append((" ".join(statement.split()), revenue_free(url, shop.revenue)))

    body = {
        "events": [
            {
                "event_id": "e-1",
                "amount": {"amount": "1.5", "asset": "USD"},
                "description": "GET /a",
            }
        ]
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "k-api"}
    with TestClient(create_app(Settings(), database=shop.db, clock=clock)) as client:
        event.listen(shop.db.engine, "before_cursor_execute", before)
        answered = client.post(
            f"/v1/accounts/{alice.external_id}/usage", json=body, headers=headers
        )
        event.remove(shop.db.engine, "before_cursor_execute", before)

    assert answered.status_code == 200, answered.text
    assert answered.json()["balance"]["available"]["amount"] == "8.50"
    entry = next(i for i, (words, _free) in enumerate(seen) if _POSTS in words)
    assert all(free for _words, free in seen[: entry + 1]), seen
    after = [words for words, _free in seen[entry + 1 :]]
    assert [words.split()[0] for words in after] == ["SELECT", "RELEASE", "UPDATE"], after
    assert "idempotency_record" in after[2]
    assert not any(free for _words, free in seen[entry + 1 :])
