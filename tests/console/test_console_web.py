"""The console over real HTTP (FastAPI's TestClient) on the real app and database: sessions
(sign-in with a key, cookie flags, expiry, sign-out, revoked keys), who may sign in, CSRF on
every form, the security headers, the scopes of decisions, the time zone, and every page.

The browser tests (tests/payouts/test_console_browser.py) drive the same pages in Chromium on
the devnet; these cover the rules quickly, without a browser or a chain."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kassa.accounts import service as accounts
from kassa.api import create_app
from kassa.api.console.sessions import SESSION_LIFETIME
from kassa.api.console.throttle import SignInThrottle, subjects
from kassa.apikeys import service as apikeys
from kassa.apikeys.tables import console_session
from kassa.clock import ManualClock
from kassa.config import Settings
from kassa.db import Database
from kassa.disputes import service as disputes
from kassa.disputes.model import DisputeStatus
from kassa.events import outbox
from kassa.ledger.transfers import adjust
from kassa.money import USD, Money
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa.spending import activations
from kassa.webhooks import deliveries, endpoints
from kassa.webhooks.settings import WebhookSettings
from kassa.webhooks.transport import AddressPolicy

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SQLITE = pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
"""Most rules here do not depend on the database; sessions themselves run on both."""


class Console:
    def __init__(self, client: TestClient, db: Database, clock: ManualClock) -> None:
        self.client = client
        self.db = db
        self.clock = clock

    def key(self, *scopes: str, name: str = "ops", account: str | None = None) -> str:
        with self.db.transaction() as conn:
            bound = None if account is None else accounts.get_by_external_id(conn, account).id
            _key, token = apikeys.create_key(
                conn, name=name, scopes=scopes, customer_account_id=bound, now=self.clock.now()
            )
        return token

    def sign_in(self, token: str, zone: str = "Europe/Berlin") -> TestClient:
        page = self.client.get("/console/sign-in")
        found = CSRF.search(page.text)
        assert found is not None
        answer = self.client.post(
            "/console/sign-in",
            data={"csrf": found.group(1), "api_key": token, "time_zone": zone},
        )
        assert answer.status_code == 303, answer.text
        return self.client

    def csrf(self, path: str = "/console/") -> str:
        found = CSRF.search(self.client.get(path).text)
        assert found is not None
        return found.group(1)

    def sessions(self) -> int:
        with self.db.transaction() as conn:
            return int(conn.execute(select(func.count()).select_from(console_session)).scalar_one())


@pytest.fixture
def console(db: Database, clock: ManualClock) -> Iterator[Console]:
    app = create_app(Settings(), database=db, clock=clock)
    with TestClient(app, follow_redirects=False) as client:
        yield Console(client, db, clock)


def test_sign_in_sets_a_strict_http_only_cookie_and_stores_only_its_hash(console: Console) -> None:
    assert console.client.get("/console/").headers["location"] == "/console/sign-in"
    console.sign_in(console.key("console:read"))
    cookie = console.client.cookies.get("kassa_console")
    assert cookie
    with console.db.transaction() as conn:
        stored = conn.execute(select(console_session)).one()
    assert cookie not in (stored.token_sha256, stored.csrf_token)
    assert stored.time_zone == "Europe/Berlin"
    page = console.client.get("/console/")
    assert page.status_code == 200 and "Europe/Berlin" in page.text


@SQLITE
def test_cookie_flags_and_security_headers(db: Database, clock: ManualClock) -> None:
    app = create_app(Settings(), database=db, clock=clock)
    with TestClient(app, base_url="https://kassa.example", follow_redirects=False) as client:
        console = Console(client, db, clock)
        page = client.get("/console/sign-in")
        headers = page.headers
        assert headers["content-security-policy"].startswith(
            "default-src 'self'; script-src 'self'; style-src 'self'"
        )
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
        assert "<script>" not in page.text and "style=" not in page.text
        found = CSRF.search(page.text)
        assert found is not None
        answer = client.post(
            "/console/sign-in",
            data={"csrf": found.group(1), "api_key": console.key("admin"), "time_zone": "UTC"},
        )
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
        assert "path=/console" in cookie


@SQLITE
def test_wrong_revoked_bound_and_scopeless_keys_do_not_sign_in(console: Console) -> None:
    def refused(token: str) -> int:
        page = console.client.get("/console/sign-in")
        found = CSRF.search(page.text)
        assert found is not None
        answer = console.client.post(
            "/console/sign-in", data={"csrf": found.group(1), "api_key": token, "time_zone": ""}
        )
        assert "kassa_console=" not in answer.headers.get("set-cookie", "")
        return answer.status_code

    assert refused("kassa_nothing_like_a_key") == 401
    assert refused(console.key("accounts:read", "reports:read")) == 403
    with console.db.transaction() as conn:
        accounts.create(conn, external_id="7", now=console.clock.now(), request=None)
    assert refused(console.key("console:read", account="7")) == 403
    revoked = console.key("admin", name="gone")
    with console.db.transaction() as conn:
        apikeys.revoke_key(conn, revoked.split("_")[1], console.clock.now())
    assert refused(revoked) == 401
    assert console.sessions() == 0


@SQLITE
def test_sign_in_form_needs_its_csrf_token(console: Console) -> None:
    console.client.get("/console/sign-in")
    answer = console.client.post(
        "/console/sign-in", data={"api_key": console.key("admin"), "time_zone": "UTC"}
    )
    assert answer.status_code == 403 and console.sessions() == 0


def test_a_session_expires_and_sign_out_deletes_it(console: Console) -> None:
    console.sign_in(console.key("console:read"))
    console.clock.advance(SESSION_LIFETIME - timedelta(seconds=1))
    assert console.client.get("/console/").status_code == 200
    console.clock.advance(timedelta(seconds=1))
    assert console.client.get("/console/").headers["location"] == "/console/sign-in"

    console.sign_in(console.key("console:read", name="again"))
    csrf = console.csrf()
    assert console.client.post("/console/sign-out", data={}).status_code == 403
    answer = console.client.post("/console/sign-out", data={"csrf": csrf})
    assert answer.status_code == 303
    assert console.client.get("/console/").headers["location"] == "/console/sign-in"
    # The expired one was swept at the second sign-in; sign-out deleted the second.
    assert console.sessions() == 0


@SQLITE
def test_revoking_the_key_ends_its_sessions(console: Console) -> None:
    token = console.key("admin", name="leaver")
    console.sign_in(token)
    with console.db.transaction() as conn:
        apikeys.revoke_key(conn, token.split("_")[1], console.clock.now())
    assert console.client.get("/console/").headers["location"] == "/console/sign-in"


@SQLITE
def test_account_state_change_is_audited_and_needs_the_decision_scope(console: Console) -> None:
    with console.db.transaction() as conn:
        accounts.create(conn, external_id="42", now=console.clock.now(), request=None)
    console.sign_in(console.key("console:read", name="reader"))
    page = console.client.get("/console/accounts/42")
    assert page.status_code == 200 and "Change state" not in page.text
    form = {"csrf": console.csrf(), "state": "suspended", "reason_code": "violation", "reason": "x"}
    forbidden = console.client.post("/console/accounts/42/state", data=form)
    # A signed-in operator's refusal is a page in the layout, with the sidebar to go on from.
    assert forbidden.status_code == 403 and 'class="sidebar"' in forbidden.text
    assert "Signed in as <strong>reader</strong>" in forbidden.text

    console.client.cookies.clear()
    console.sign_in(console.key("payouts:approve", name="carol"))
    form["csrf"] = "not-the-token"
    assert console.client.post("/console/accounts/42/state", data=form).status_code == 403
    form["csrf"] = console.csrf()
    answer = console.client.post("/console/accounts/42/state", data=form)
    assert answer.headers["location"] == "/console/accounts/42?done=state"
    shown = console.client.get("/console/accounts/42").text
    assert "active → suspended" in shown and "api-key:carol" in shown
    claim = {"csrf": form["csrf"], "subject": "deposit", "subject_id": str(uuid.uuid4())}
    claim["reason"] = "never arrived"
    missing = console.client.post("/console/accounts/42/disputes", data=claim)
    assert missing.status_code == 404 and 'role="alert"' in missing.text
    form["state"] = "no-such-state"
    refused = console.client.post("/console/accounts/42/state", data=form)
    assert refused.status_code == 422 and 'role="alert"' in refused.text


@SQLITE
def test_every_page_renders_in_the_operator_time_zone(console: Console) -> None:
    with console.db.transaction() as conn:
        accounts.create(conn, external_id="42", now=console.clock.now(), request=None)
    console.sign_in(console.key("admin"), zone="Asia/Tokyo")
    for path in (
        "/console/",
        "/console/review",
        "/console/payouts?status=confirmed",
        "/console/deposits?q=42",
        "/console/accounts?q=4",
        "/console/accounts/42",
        "/console/reconciliation?all=true",
        "/console/reports",
        "/console/webhooks",
        "/console/rates",
        "/console/time-zone",
    ):
        page = console.client.get(path)
        assert page.status_code == 200, path
        assert "Asia/Tokyo" in page.text, path
    assert "JST" in console.client.get("/console/accounts/42").text
    statement = console.client.get("/console/accounts/42/statement.csv?period=2026-11")
    assert statement.status_code == 200 and statement.headers["content-type"].startswith("text/csv")
    assert console.client.get("/console/reports/fees.csv?period=2026-11").status_code == 200
    reports = console.client.get("/console/reports?period=2026-11").text
    assert 'id="chart-solvency"' in reports and "solvency-data" in reports
    assert "/console/reports/trial-balance.csv?period=2026-11" in reports
    for name, header in (("solvency", "day,owed_usd,held_usd"), ("trial-balance", "")):
        download = console.client.get(f"/console/reports/{name}.csv?period=2026-11")
        assert download.status_code == 200 and header in download.text, name
    assert console.client.get("/console/reports/fees.csv?period=bogus").status_code == 422
    assert console.client.get("/console/payouts?status=bogus").status_code == 422
    nobody = console.client.get("/console/accounts/nobody")
    assert nobody.status_code == 404 and 'class="sidebar"' in nobody.text
    assert console.client.get("/console/payouts/not-an-id").status_code == 404


@SQLITE
def test_the_time_zone_can_be_changed_and_unknown_zones_fall_back_to_utc(
    console: Console,
) -> None:
    console.sign_in(console.key("console:read"), zone="Mars/Olympus_Mons")
    assert 'Times in <a href="/console/time-zone">UTC</a>' in console.client.get("/console/").text
    answer = console.client.post(
        "/console/time-zone",
        data={"csrf": console.csrf(), "time_zone": "America/Sao_Paulo", "back": "//evil.example"},
    )
    assert answer.headers["location"] == "/console/"
    assert "America/Sao_Paulo" in console.client.get("/console/").text


@SQLITE
def test_a_request_priced_at_approval_shows_its_preview_and_is_repriced_by_the_approval(
    db: Database, clock: ManualClock
) -> None:
    """Under ``withdrawal.pricing = "at_approval"`` the review page shows what approving now
    would commit; the console's approval takes fresh rate locks and re-prices it, as the API's."""
    settings = Settings.model_validate(
        {
            "payouts": {"review": {"threshold_usd": "10.00"}},
            "policy": {"overrides": {"withdrawal": {"pricing": "at_approval"}}},
        }
    )
    PricingService(db, clock, PricingSettings(static_rates={Symbol.BTC: Decimal("50000")})).refresh(
        [Symbol.BTC]
    )
    with TestClient(create_app(settings, database=db, clock=clock), follow_redirects=False) as c:
        console = Console(c, db, clock)
        admin = console.key("admin", name="dora")
        auth = {"Authorization": f"Bearer {admin}"}

        def post(path: str, body: dict[str, object]) -> dict[str, object]:
            answer = c.post(path, json=body, headers={**auth, "Idempotency-Key": path})
            assert answer.status_code == 201, answer.text
            found: dict[str, object] = answer.json()
            return found

        usd = {"amount": "100.00", "asset": "USD"}
        post("/v1/accounts", {"external_id": "9"})
        post(
            "/v1/admin/adjustments",
            {"external_id": "9", "direction": "credit", "amount": usd, "reason": "t"},
        )
        made = post(
            "/v1/withdrawals",
            {
                "external_id": "9",
                "asset": "BTC",
                "address": "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh",
                "amount": {"amount": "25.00", "asset": "USD"},
            },
        )
        console.sign_in(admin)
        page = f"/console/payouts/{made['id']}"
        assert "Approving now would re-price it" in c.get(page).text
        answer = c.post(f"{page}/approve", data={"csrf": console.csrf(page), "note": ""})
        assert answer.status_code == 303, answer.text
        shown = c.get(page).text
        assert "Re-priced at approval" in shown and ">approved<" in shown


@SQLITE
def test_webhook_deliveries_are_listed_and_an_event_redelivered(console: Console) -> None:
    with console.db.transaction() as conn:
        endpoint, _secret = endpoints.create(
            conn,
            url="http://127.0.0.1:9/hook",
            event_types=(),
            description="finance hook",
            customer_account_id=None,
            actor="test",
            now=console.clock.now(),
            policy=AddressPolicy.of(WebhookSettings().with_loopback()),
        )
        subject = uuid.uuid4()
        sent = outbox.record(
            conn,
            type="deposit.credited",
            subject_kind="deposit",
            subject_id=subject,
            data={"id": str(subject), "status": "credited"},
            at=console.clock.now(),
        )
        deliveries.dispatch(conn, now=console.clock.now(), limit=10)
    console.sign_in(console.key("console:read", name="reader"))
    listed = console.client.get(f"/console/webhooks?endpoint={endpoint.id}").text
    assert "finance hook" in listed and sent.public_id in listed and "Redeliver" not in listed
    form = {"csrf": console.csrf(), "event_id": sent.public_id, "endpoint_id": str(endpoint.id)}
    assert console.client.post("/console/webhooks/redeliver", data=form).status_code == 403

    console.client.cookies.clear()
    console.sign_in(console.key("payouts:approve", name="erin"))
    form["csrf"] = console.csrf()
    answer = console.client.post("/console/webhooks/redeliver", data=form)
    assert answer.status_code == 303
    with console.db.transaction() as conn:
        origins = [d.origin for d in deliveries.listing(conn, event_id=sent.public_id)]
    assert sorted(origins) == ["event", "redeliver"]
    form["event_id"] = "evt_nothing"
    assert console.client.post("/console/webhooks/redeliver", data=form).status_code == 422


class _Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@SQLITE
def test_failed_sign_ins_are_throttled_per_address_with_retry_after(console: Console) -> None:
    ticks = _Ticks()
    app = console.client.app
    app.state.console_throttle = SignInThrottle(clock=ticks)  # type: ignore[attr-defined]
    good = console.key("admin")

    def attempt(token: str) -> tuple[int, str | None]:
        found = CSRF.search(console.client.get("/console/sign-in").text)
        assert found is not None
        answer = console.client.post(
            "/console/sign-in", data={"csrf": found.group(1), "api_key": token, "time_zone": ""}
        )
        return answer.status_code, answer.headers.get("retry-after")

    for n in range(10):
        assert attempt(f"kassa_guess{n:07d}_wrong") == (401, None)
        ticks.now += 10
    # The eleventh from this address is not heard, even with a valid key: no session.
    status, retry = attempt(good)
    assert status == 429 and retry is not None and 1 <= int(retry) <= 300
    assert console.sessions() == 0
    ticks.now += int(retry)
    assert attempt(good)[0] == 303 and console.sessions() == 1


def test_the_throttle_counts_each_key_prefix_across_addresses() -> None:
    ticks = _Ticks()
    throttle = SignInThrottle(limit=3, window=60, clock=ticks)
    for n in range(3):
        assert throttle.retry_after(subjects(f"10.0.0.{n}", "kassa_TARGET000001_x")) is None
        throttle.failed(subjects(f"10.0.0.{n}", "kassa_TARGET000001_x"))
    assert throttle.retry_after(subjects("10.0.0.9", "kassa_TARGET000001_y")) == 60
    assert throttle.retry_after(subjects("10.0.0.9", "kassa_OTHERKEY0001_y")) is None
    ticks.now += 59.5
    assert throttle.retry_after(subjects("10.0.0.9", "kassa_TARGET000001_y")) == 1
    ticks.now += 0.5
    assert throttle.retry_after(subjects("10.0.0.9", "kassa_TARGET000001_y")) is None
    assert subjects(None, "not a key") == ["addr:unknown"]


RESOLVE_FORM = re.compile(r'action="(/console/accounts/d1/disputes/[^/"]+/resolve)"')


@SQLITE
def test_a_dispute_is_opened_and_resolved_through_the_account_page(console: Console) -> None:
    now = console.clock.now()
    with console.db.transaction() as conn:
        account = accounts.create(conn, external_id="d1", now=now, request=None)
        adjust(
            conn,
            account_id=account.ledger_account_id,
            amount=Money.parse("10", USD),
            direction="credit",
            reason="test funds",
            actor="test",
            now=now,
            request=None,
        )
        made = activations.reserve(
            conn, account, price=Money.parse("4", USD), now=now, request=None
        )
        activations.fulfil(conn, account, made.id, now=now, request=None)
    console.sign_in(console.key("payouts:approve", name="carol"))
    claim = {"subject": "activation", "subject_id": str(made.id), "reason": "never arrived"}
    opened = console.client.post(
        "/console/accounts/d1/disputes", data={"csrf": console.csrf(), **claim}
    )
    assert opened.status_code == 303, opened.text
    page = console.client.get("/console/accounts/d1").text
    action = RESOLVE_FORM.search(page)
    assert action is not None and 'value="rejected"' in page
    # Without the session's token: refused, and the dispute stays open.
    forged = {"csrf": "forged", "outcome": "rejected", "note": "delivered"}
    assert console.client.post(action.group(1), data=forged).status_code == 403
    unknown = {"csrf": console.csrf(), "outcome": "shrug", "note": "delivered"}
    wrong = console.client.post(action.group(1), data=unknown)
    assert wrong.status_code == 422 and 'role="alert"' in wrong.text
    with console.db.transaction() as conn:
        assert disputes.has_open(conn, account.id)
    # An operator's note may hold brackets of any depth: the form is no JSON.
    note = "[" * 40 + " delivered, see the log"
    done = console.client.post(
        action.group(1), data={"csrf": console.csrf(), "outcome": "rejected", "note": note}
    )
    assert done.status_code == 303 and done.headers["location"].endswith("?done=resolved")
    with console.db.transaction() as conn:
        assert not disputes.has_open(conn, account.id)
        [resolved] = disputes.listing(conn, account_id=account.id)
    assert resolved.status is DisputeStatus.REJECTED and resolved.note == note
    assert resolved.resolved_by == "api-key:carol"
    shown = console.client.get("/console/accounts/d1").text
    assert "api-key:carol at" in shown and RESOLVE_FORM.search(shown) is None
    again = console.client.post(
        action.group(1), data={"csrf": console.csrf(), "outcome": "accepted", "note": "x"}
    )
    assert again.status_code == 409 and 'class="sidebar"' in again.text
