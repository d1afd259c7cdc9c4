"""The devnet's scenario clock: an operator moves Kassa's time ahead (15 days, say) to try a
refund window; elsewhere the endpoint does not exist."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient

from kassa.accounts import service as accounts
from kassa.api import create_app
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainTransfer, SenderKind
from kassa.config import Settings
from kassa.deposits import records
from kassa.deposits.fake import FakeChain
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.scenario import ScenarioClock

if TYPE_CHECKING:
    from tests.api.conftest import Api


def test_the_scenario_clock_moves_forward_on_the_devnet_only(api: Api) -> None:
    api.problem(
        api.post("/v1/admin/clock", {"advance_seconds": 60}), 404, "scenario_clock_disabled"
    )

    clock = ScenarioClock()
    with TestClient(create_app(Settings(), database=api.db, clock=clock)) as client:
        devnet = type(api)(client, api.db, api.clock)
        with api.db.transaction() as conn:
            before = clock.now(conn)
        moved = devnet.post("/v1/admin/clock", {"advance_seconds": 15 * 86400})
        assert moved.status_code == 200, moved.text
        assert moved.json()["offset_seconds"] == 15 * 86400
        with api.db.transaction() as conn:
            after = clock.now(conn)
        assert timedelta(days=15) <= after - before < timedelta(days=15, minutes=5)
        devnet.problem(
            devnet.post("/v1/admin/clock", {"advance_seconds": -5}), 422, "validation_error"
        )
        reader = devnet.key(["accounts:read"])
        devnet.problem(
            devnet.post("/v1/admin/clock", {"advance_seconds": 5}, token=reader), 403, "forbidden"
        )

        # A deposit's payment time follows the scenario clock: the chain's block time plus
        # the offset, so its rate is locked at a time Kassa has rates for.
        devnet.account("s")
        address = devnet.post("/v1/accounts/s/deposit-addresses", {"chain": "btc"}).json()
        pricing = PricingService(api.db, clock, PricingSettings())
        pricing.refresh()
        # The chain runs on real time: 15 days behind Kassa's clock now.
        chain = FakeChain(Chain.BTC, after - timedelta(days=15), final_depth=1)
        block = chain.mine(
            [
                ChainTransfer(
                    Chain.BTC,
                    "BTC",
                    "ef" * 32,
                    0,
                    address["address"],
                    50_000,
                    None,
                    SenderKind.AMBIGUOUS,
                    True,
                )
            ],
            seconds=1,
        )
        Watcher(api.db, clock, chain, pricing, WatcherConfig(Chain.BTC)).tick()
        with api.db.transaction() as conn:
            customer = accounts.get_by_external_id(conn, "s")
            [deposit] = records.for_account(conn, customer.id)
        assert deposit.first_seen_at == block.time + timedelta(days=15)
        assert deposit.status.value == "credited"
