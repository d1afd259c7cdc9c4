"""`kassa payouts review|list|show|approve|reject|approve-fee` against the `db` fixture's
database (SQLite and PostgreSQL), through typer's CliRunner, as an operator at a shell would use
them.

Requests are made with the real `Payouts` service at the test's manual clock (the CLI itself runs
on the database's clock, as `kassa` does outside the devnet); the operator's name comes from the
OS user (LOGNAME/USER).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from kassa.accounts import service as accounts
from kassa.accounts.service import CustomerAccount
from kassa.cli import app
from kassa.clock import ManualClock
from kassa.config import Settings, load_settings
from kassa.db import Database
from kassa.ledger import transfers
from kassa.ledger.accounts import get_balance
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.money import USD, Money, asset
from kassa.payouts import store
from kassa.payouts.model import FEE_ABOVE_QUOTE, PayoutRequest, RequestStatus
from kassa.payouts.requests import Payouts
from kassa.payouts.tables import payout_request
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the static rate source made a request: {request.url}")


class Shell:
    """A config file on the test database, the payout service, and the `kassa` command."""

    def __init__(self, db: Database, clock: ManualClock, tmp_path: Path, extra: str = "") -> None:
        self.db = db
        self.clock = clock
        self.config = tmp_path / "kassa.toml"
        url = db.engine.url.render_as_string(hide_password=False)
        self.config.write_text(
            f'data_dir = "{tmp_path / "data"}"\n'
            f'database_url = "{url}"\n'
            "devnet = false\n"
            "[payouts.review]\n"
            'threshold_usd = "40.00"\n'
            'dual_approval_usd = "50.00"\n' + extra
        )
        settings: Settings = load_settings(self.config)
        self.payouts = Payouts(
            database=db,
            clock=clock,
            pricing=PricingService(db, clock, settings.pricing),
            policy=settings.policy.load(),
            settings=settings.payouts,
            chains=settings.chains,
        )
        PricingService(
            db,
            clock,
            PricingSettings(static_rates={Symbol.BTC: Decimal("50000")}),
            transport=httpx.MockTransport(_no_network),
        ).refresh([Symbol.BTC])

    def account(self, external_id: str, funds: str) -> CustomerAccount:
        with self.db.transaction() as conn:
            made = accounts.create(
                conn, external_id=external_id, now=self.clock.now(), request=None
            )
            transfers.adjust(
                conn,
                account_id=made.ledger_account_id,
                amount=Money.parse(funds, USD),
                direction="credit",
                reason="test funds",
                actor="test",
                now=self.clock.now(),
                request=None,
            )
        return made

    def available(self, account: CustomerAccount) -> str:
        with self.db.transaction() as conn:
            return get_balance(conn, account.ledger_account_id).available.format()

    def withdraw(self, account: CustomerAccount, usd: str) -> PayoutRequest:
        """A withdrawal one second after the previous step (lists order by creation time)."""
        self.clock.advance(timedelta(seconds=1))
        request = Request.of(IdempotencyKey("test", str(uuid.uuid4())), "test.withdraw", {})
        return self.payouts.request_withdrawal(
            account, Money.parse(usd, USD), asset("BTC"), PAYEE, request=request, actor="shop"
        )

    def run(self, *args: str, user: str = "ann") -> tuple[int, str, str]:
        env = {"LOGNAME": user, "USER": user, "KASSA_DATABASE_URL": None, "KASSA_DATA_DIR": None}
        result = CliRunner().invoke(app, ["--config", str(self.config), *args], env=env)
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def shell(db: Database, clock: ManualClock, tmp_path: Path) -> Shell:
    return Shell(db, clock, tmp_path)


def test_review_queue_approve_show_and_list(shell: Shell) -> None:
    customer = shell.account("acme", funds="200")
    small = shell.withdraw(customer, "30")  # a new destination: one approval
    large = shell.withdraw(customer, "60")  # above $50: two approvals

    code, out, err = shell.run("payouts", "review")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID", "KIND", "STATUS", "ACCOUNT", "GROSS", "USD", "PAYS", "AGE", "APPROVALS",
    ]  # fmt: skip
    row = next(line for line in lines if line.startswith(str(large.id)))
    assert row.split()[1:5] == ["withdrawal", "pending_review", "acme", "60.00"]
    assert row.split()[-1] == "0/2"
    assert f"    - new_destination: nothing was ever paid to {PAYEE} on Bitcoin" in lines
    assert "    - above_threshold: $60.00 is above the $40.00 review threshold" in lines
    assert "2 waiting" in err

    code, out, err = shell.run("payouts", "approve", str(small.id), "--note", "known client")
    assert (code, out.strip()) == (0, "approved"), err
    assert "approved by operator:cli:ann" in err

    code, out, err = shell.run("payouts", "approve", str(large.id))
    assert (code, out.strip()) == (0, "pending_review"), err
    code, out, err = shell.run("payouts", "approve", str(large.id))
    assert code == 1
    assert "operator:cli:ann already approved" in err
    code, out, err = shell.run("payouts", "approve", str(large.id), user="bob")
    assert (code, out.strip()) == (0, "approved"), err

    code, out, err = shell.run("payouts", "show", str(large.id))
    assert code == 0, err
    assert f"withdrawal {large.id}" in out
    assert "  status       approved" in out
    assert "  review       2 of 2 approvals" in out
    assert "approved by operator:cli:ann at" in out
    assert "pending_review → approved by operator:cli:bob: approved by operator:cli:ann and " in out

    code, out, err = shell.run("payouts", "review")
    assert (code, out) == (0, "")
    assert "no refund or withdrawal waits for review" in err

    code, out, err = shell.run("payouts", "list", "--status", "approved", "--account", "acme")
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()[1:]] == [str(large.id), str(small.id)]


def test_reject_returns_the_funds_and_bad_input_is_refused(shell: Shell) -> None:
    customer = shell.account("acme", funds="100")
    made = shell.withdraw(customer, "30")
    assert shell.available(customer) == "70.00"

    code, _out, err = shell.run("payouts", "reject", str(made.id))
    assert code == 2  # --reason is required
    assert "--reason" in err
    code, out, err = shell.run("payouts", "reject", str(made.id), "--reason", "sanctioned")
    assert (code, out.strip()) == (0, "rejected"), err
    assert shell.available(customer) == "100.00"
    code, _out, err = shell.run("payouts", "approve", str(made.id))
    assert code == 1
    assert "only requests pending review can be approved" in err

    code, _out, err = shell.run("payouts", "show", "not-an-id")
    assert code == 2
    assert "is not a request id" in err
    code, _out, err = shell.run("payouts", "show", str(uuid.uuid4()))
    assert code == 1
    assert "no refund or withdrawal" in err
    code, _out, err = shell.run("payouts", "list", "--status", "paid")
    assert code == 2
    assert "unknown status 'paid'" in err
    code, _out, err = shell.run("payouts", "list", "--account", "nobody")
    assert code == 1
    assert "no account with external id 'nobody'" in err


def test_approve_fee_lets_the_house_pay_a_fee_above_the_quote(shell: Shell) -> None:
    customer = shell.account("acme", funds="100")
    made = shell.withdraw(customer, "30")
    code, out, err = shell.run("payouts", "approve", str(made.id))
    assert (code, out.strip()) == (0, "approved"), err

    code, _out, err = shell.run("payouts", "approve-fee", str(made.id))
    assert code == 1  # it does not wait on its fee
    assert "not waiting on a network fee above its quote" in err
    # What the payout worker records when the chain asks more than the configured factor of the
    # quoted fee (tests/payouts/test_payouts_quotes_fee_rise.py gets there on the local chains).
    with shell.db.transaction() as conn:
        conn.execute(
            update(payout_request)
            .where(payout_request.c.id == made.id)
            .values(wait_reason=f"{FEE_ABOVE_QUOTE}: the chain asks 0.0001 BTC")
        )

    code, out, err = shell.run("payouts", "approve-fee", str(made.id), "--note", "fee spike")
    assert (code, out.strip()) == (0, "approved"), err
    assert "operator:cli:ann lets the house pay the network fee above the quote" in err
    assert f"sends {made.net_native.format()} BTC as committed" in err
    with shell.db.transaction() as conn:
        done = store.get(conn, made.id)
    assert (done.status, done.wait_reason) == (RequestStatus.APPROVED, None)
    assert done.fee_approved_by == "operator:cli:ann"
    assert done.net_native == made.net_native
    code, out, err = shell.run("payouts", "show", str(made.id))
    assert code == 0, err
    assert (
        "approved → approved by operator:cli:ann: the network fee above the quote is paid by "
        "the house: fee spike" in out
    )
    assert "waiting" not in out

    code, _out, err = shell.run("payouts", "approve-fee", str(made.id), user="bob")
    assert code == 1  # approved once: nothing waits any more
    code, _out, err = shell.run("payouts", "approve-fee", str(uuid.uuid4()))
    assert code == 1
    assert "no refund or withdrawal" in err


def test_review_shows_and_approve_commits_a_repricing_at_approval(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    """Under ``withdrawal.pricing = "at_approval"`` the queue shows what approving now would
    commit, and the approval prints the figures it re-priced the request at. $30.00 less the $5
    flat fee = $25.00: at $50 000, 50 000 sat − 2 000 sat fee = 48 000 sat ($24.00); the CLI
    runs on the database's clock, where BTC is at $40 000: 62 500 − 2 000 = 60 500 sat ($24.20)."""
    extra = '[policy]\npreset = "default"\n[policy.overrides.withdrawal]\npricing = "at_approval"\n'
    shell = Shell(db, clock, tmp_path, extra)
    made = shell.withdraw(shell.account("acme", funds="100"), "30")
    PricingService(
        db,
        ManualClock(datetime.now(UTC)),
        PricingSettings(static_rates={Symbol.BTC: Decimal("40000")}),
        transport=httpx.MockTransport(_no_network),
    ).refresh([Symbol.BTC])

    code, out, err = shell.run("payouts", "review")
    assert code == 0, err
    lines = out.splitlines()
    assert "    re-priced now (approving commits): the gross $30.00 stays" in lines
    assert "      committed  $50000/BTC, fee 0.00002 BTC, net $24.00 = 0.00048 BTC" in lines
    assert "      re-priced  $40000/BTC, fee 0.00002 BTC, net $24.20 = 0.000605 BTC" in lines
    code, out, err = shell.run("payouts", "show", str(made.id))
    assert "    re-priced  $40000/BTC, fee 0.00002 BTC, net $24.20 = 0.000605 BTC" in out

    code, out, err = shell.run("payouts", "approve", str(made.id))
    assert (code, out.strip()) == (0, "approved"), err
    assert "  re-priced  $40000/BTC, fee 0.00002 BTC, net $24.20 = 0.000605 BTC" in err
    code, out, err = shell.run("payouts", "show", str(made.id))
    assert "  net          24.20 USD = 0.000605 BTC" in out
    assert "pending_review → pending_review by operator:cli:ann: re-priced at approval" in out
