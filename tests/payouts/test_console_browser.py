"""The operators' web console in a real browser (Debian's Chromium, headless, driven by
Playwright) against the real server on the devnet's Ethereum chain (ganache).

A withdrawal to an address never paid before waits for review; an operator signs in with the
key, opens it from the review queue, sees its rules and money, and approves it with the
keyboard; the real payout worker pays it and the payouts page shows it confirmed with its
transaction id, which the test reads back from the chain. Dual approval refuses the same
operator twice; a read-only operator sees no approve button and gets 403 posting the form
anyway; a form without its CSRF token is refused. Every request the browser makes is recorded:
none leaves the server. Every page's form controls have labels. Screenshots of the pages go to
``test-artifacts/console/`` (``KASSA_CONSOLE_SCREENSHOTS`` overrides).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import uvicorn

from kassa.api import create_app
from kassa.apikeys import service as apikeys
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.network import Chain
from kassa.config import Settings
from kassa.money import asset
from kassa.payouts.model import RequestStatus
from kassa.wiring import Services
from kassa_dev.devnet.testing import GanacheNode

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page
    from tests.payouts.conftest import Stage

    from kassa.db import Database

CHROMIUM = Path(os.environ.get("KASSA_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("KASSA_CONSOLE_SCREENSHOTS", ROOT / "test-artifacts" / "console"))

# Review above $10 (and every first payout to an address), two operators above $30.
REVIEW = {
    "review": {"new_destinations": True, "threshold_usd": "10.00", "dual_approval_usd": "30.00"}
}

T = TypeVar("T")

# A browser and a console each, about 13 s a test: slow, so that they start early under xdist.
pytestmark = [
    pytest.mark.slow(seconds=13),
    pytest.mark.parametrize("databases", ["sqlite"], indirect=True),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module; each test opens its own context (cookies)."""
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing: ./dev setup installs it (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(missing)  # CI must run the browser tests, never skip them
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Console:
    """The server on a free port, the stage behind it, and what the browser asked for."""

    url: str
    stage: Stage
    requests: list[str] = field(default_factory=list)

    def key(self, name: str, *scopes: str) -> str:
        with self.stage.db.transaction() as conn:
            _key, token = apikeys.create_key(
                conn, name=name, scopes=scopes, customer_account_id=None, now=self.stage.clock.now()
            )
        return token

    def open(self, browser: Browser) -> tuple[BrowserContext, Page]:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.on("request", lambda request: self.requests.append(request.url))
        return context, context.new_page()

    def sign_in(self, page: Page, token: str) -> None:
        page.goto(f"{self.url}/console/")
        assert page.url.endswith("/console/sign-in")
        page.get_by_label("API key").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{self.url}/console/")

    def outside(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(self.url + "/")]


def off_loop(work: Callable[..., T], *args: Any) -> T:
    """Run `work` in another thread: Playwright's sync API keeps an event loop running in this
    one, and the stage's rate refresh and worker start their own with ``asyncio.run``."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work, *args).result()


def _serve(app: Any) -> Iterator[str]:
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", ws="none", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@pytest.fixture
def console(
    db: Database, ganache_node: GanacheNode, make_stage: Callable[..., Stage]
) -> Iterator[Console]:
    stage = off_loop(lambda: make_stage(db, Chain.ETH, ganache_node, payout_overrides=REVIEW))
    services = Services(Settings(), db, stage.clock, pricing=stage.pricing)
    services.payouts = stage.payouts  # the stage's policy, review settings and chains
    for url in _serve(create_app(Settings(), services=services)):
        yield Console(url, stage)


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _unlabelled(page: Page) -> list[str]:
    """Visible form controls without a label (a <label for>, a wrapping label or aria-label)."""
    found: list[str] = page.evaluate(
        """() => Array.from(document.querySelectorAll('input, select, textarea'))
            .filter(el => el.type !== 'hidden')
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map(el => el.outerHTML)"""
    )
    return found


def _check_page(page: Page, name: str) -> None:
    assert _unlabelled(page) == [], name
    _shot(page, name)


def _visit_every_other_page(page: Page, external_id: str) -> None:
    """Each section from the sidebar: labelled controls, a screenshot, and the report chart
    drawn by the vendored Chart.js."""
    for link, name in (
        ("Deposits", "deposits"),
        ("Accounts", "accounts"),
        ("Reconciliation", "reconciliation"),
        ("Reports", "reports"),
        ("Webhooks", "webhooks"),
        ("Rates", "rates"),
    ):
        page.get_by_role("navigation", name="Console sections").get_by_role(
            "link", name=link
        ).click()
        if name == "reports":
            # Once loaded (the charts are drawn at DOMContentLoaded), read the flag once: a
            # polled string predicate is eval, which the console's CSP refuses.
            page.wait_for_url("**/console/reports**", wait_until="load")
            assert page.evaluate("window.kassaChartsReady") is True
        _check_page(page, name)
    page.get_by_role("link", name="Accounts").click()
    page.get_by_role("link", name=external_id).click()
    assert "25.00 USD" in page.inner_text("main")  # the withdrawal in the ledger
    _check_page(page, "account")


def test_operator_approves_a_withdrawal_that_is_then_paid(
    console: Console, browser: Browser
) -> None:
    stage = console.stage
    customer = off_loop(stage.customer, "100.00")
    destination = stage.fresh_address()
    request = off_loop(stage.withdraw, customer, "25.00", "ETH", destination)
    assert request.status is RequestStatus.PENDING_REVIEW

    context, page = console.open(browser)
    page.goto(f"{console.url}/console/sign-in")
    _check_page(page, "sign-in")
    console.sign_in(page, console.key("alice", "admin"))
    assert "Review queue" in page.inner_text("main")
    _check_page(page, "overview")

    page.get_by_role("link", name="Review queue").click()
    _check_page(page, "review-queue")
    page.get_by_role("link", name=f"withdrawal {str(request.id)[:8]}").click()
    main = page.inner_text("main")
    assert "pending_review" in main and "new_destination" in main and "above_threshold" in main
    # Every rule of the decision with its reason, and the money.
    for rule in request.decision["rules"]:
        assert rule["reason"] in main
    assert "25.00 USD" in main and "5.00 USD" in main and "ETH" in main
    _check_page(page, "payout-review")

    # With the keyboard: from the note, Tab reaches the approve button; Enter presses it.
    page.get_by_label("Note (optional)").fill("checked with the customer")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "approve"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*\?done=approve$"))
    assert page.inner_text("#request-state") == "approved"
    assert stage.status(request.id) is RequestStatus.APPROVED

    off_loop(stage.pay, stage.worker(), request.id)
    done = stage.request(request.id)
    assert done.status is RequestStatus.CONFIRMED
    (tx,) = stage.txs()

    page.get_by_role("link", name="Payouts").click()
    page.get_by_label("State").select_option("confirmed")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("tr", has_text=str(request.id)[:8])
    assert "confirmed" in row.inner_text() and tx.txid in row.inner_text()
    _check_page(page, "payouts")
    row.get_by_role("link").first.click()
    assert page.inner_text("#request-state") == "confirmed"
    shown = page.inner_text(".txid")
    assert shown == tx.txid
    assert "alice" in page.inner_text("main")  # who approved it, and when
    _check_page(page, "payout-confirmed")
    _visit_every_other_page(page, customer.external_id)
    # The transaction the page shows is on the chain, paying the destination what it says.
    with EthRpc(stage.node.url) as rpc:
        receipt = rpc.get_transaction_receipt(shown)
        assert receipt is not None and int(receipt["status"], 16) == 1
    assert stage.received(destination, asset("ETH")) == done.net_native.amount
    context.close()
    assert console.requests and console.outside() == []


def test_dual_approval_refuses_the_same_operator_twice(console: Console, browser: Browser) -> None:
    stage = console.stage
    customer = off_loop(stage.customer, "100.00")
    request = off_loop(stage.withdraw, customer, "40.00", "ETH", stage.fresh_address())
    assert request.approvals_required == 2
    page_of = f"{console.url}/console/payouts/{request.id}"

    first, page = console.open(browser)
    console.sign_in(page, console.key("alice", "payouts:approve"))
    page.goto(page_of)
    assert "0 of 2 needed" in page.inner_text("main")
    page.get_by_role("button", name="Approve").click()
    assert "1 of 2 needed" in page.inner_text("main")
    page.get_by_role("button", name="Approve").click()  # alice again
    assert "already approved" in page.inner_text("[role=alert]")
    assert stage.status(request.id) is RequestStatus.PENDING_REVIEW
    _shot(page, "dual-approval-refused")
    first.close()

    second, page = console.open(browser)
    console.sign_in(page, console.key("bob", "payouts:approve"))
    page.goto(page_of)
    page.get_by_role("button", name="Approve").click()
    assert page.inner_text("#request-state") == "approved"
    second.close()
    assert stage.status(request.id) is RequestStatus.APPROVED
    assert console.outside() == []


def test_read_only_operator_cannot_decide_and_forms_need_their_token(
    console: Console, browser: Browser
) -> None:
    stage = console.stage
    customer = off_loop(stage.customer, "100.00")
    request = off_loop(stage.withdraw, customer, "25.00", "ETH", stage.fresh_address())
    page_of = f"{console.url}/console/payouts/{request.id}"

    context, page = console.open(browser)
    console.sign_in(page, console.key("reader", "console:read"))
    page.goto(page_of)
    assert page.get_by_role("button", name="Approve").count() == 0
    assert "Read-only" in page.inner_text("main")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    # Posting the form directly, with the session's own token, is refused all the same.
    answer = context.request.post(
        f"{page_of}/approve", form={"csrf": csrf or "", "note": ""}, max_redirects=0
    )
    assert answer.status == 403
    context.close()

    context, page = console.open(browser)
    console.sign_in(page, console.key("alice", "admin"))
    answer = context.request.post(f"{page_of}/approve", form={"note": ""}, max_redirects=0)
    assert answer.status == 403 and "security token" in answer.text()
    answer = context.request.post(
        f"{page_of}/approve", form={"csrf": "forged", "note": ""}, max_redirects=0
    )
    assert answer.status == 403
    context.close()
    assert stage.status(request.id) is RequestStatus.PENDING_REVIEW
    with stage.db.transaction() as conn:
        from kassa.payouts import review

        assert review.approvals(conn, [request.id]) == {}
