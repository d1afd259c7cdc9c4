"""`kassa devnet rates set BTC 50000` (issue 14): the devnet market moves while Kassa runs. The
rate is written to Kassa's database at once, and the refresher's static source keeps serving it;
off the devnet the command refuses and writes nothing."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from kassa.cli import app as kassa_app
from kassa.db import Database
from kassa.pricing import history
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa.pricing.tables import rate_sample
from kassa_dev.scenario import ScenarioClock


def kassa(db: Database, devnet: bool, *args: str) -> Result:
    env = {
        "KASSA_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        "KASSA_DEVNET": "true" if devnet else "false",
    }
    return CliRunner().invoke(kassa_app, ["devnet", "rates", *args], env=env)


def latest_btc(db: Database) -> Decimal:
    with db.transaction() as conn:
        sample = history.latest(conn, Symbol.BTC)
    assert sample is not None
    return sample.ask


def test_rates_set_moves_the_market_now_and_the_refresher_keeps_it(db: Database) -> None:
    pricing = PricingService(db, ScenarioClock(), PricingSettings())  # static BTC $60 000
    pricing.refresh()
    assert latest_btc(db) == Decimal("60000")

    result = kassa(db, True, "set", "btc", "50000")

    assert result.exit_code == 0, result.output
    assert "BTC is now 50000 USD" in result.output
    assert latest_btc(db) == Decimal("50000")
    pricing.refresh()
    assert latest_btc(db) == Decimal("50000")


def test_off_the_devnet_or_with_bad_input_nothing_is_written(db: Database) -> None:
    def samples() -> int:
        with db.transaction() as conn:
            count: int = conn.execute(select(func.count()).select_from(rate_sample)).scalar_one()
            return count

    refused = kassa(db, False, "set", "BTC", "50000")
    bad_symbol = kassa(db, True, "set", "DOGE", "1")
    bad_rate = kassa(db, True, "set", "BTC", "-5")

    assert refused.exit_code == 1
    assert "only be moved on the devnet" in refused.output
    assert bad_symbol.exit_code == 1 and "expected a symbol" in bad_symbol.output
    assert bad_rate.exit_code != 0
    assert samples() == 0
