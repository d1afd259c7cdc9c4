"""Issue 14: "Only a chain reorg can reverse a credit today, and the reversal shows in the
customer's ledger with no memo." A reorg reversal now names the transaction that left the chain
and its height, in the ledger entry the customer and support read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kassa.chains.network import Chain

if TYPE_CHECKING:
    from tests.policy_api.conftest import World


def test_a_reorg_reversal_names_the_transaction_that_left_the_chain(world: World) -> None:
    world.prices(btc="60000")
    api = world.app("default")
    api.account("r")
    api.top_up("r", "0.001")  # $60.00, block 1
    gone = api.top_up("r", "0.0005")  # $30.00, block 2
    height = world.chains[Chain.BTC].blocks[-1].height

    world.reorg(Chain.BTC, 1)  # block 2 leaves the chain

    entries = api.ok(api.get("/v1/accounts/r/ledger"))["entries"]
    reversal = entries[0]
    assert (reversal["kind"], reversal["amount"]) == (
        "reversal",
        {"amount": "-30.00", "asset": "USD"},
    )
    assert reversal["memo"] == (
        f"reversed: 0.0005 BTC deposit, BTC transaction {gone['txid']}:{gone['position']} "
        f"left the chain at height {height} (reorganisation above block {height - 1})"
    )
    assert api.available("r") == "60.00"
