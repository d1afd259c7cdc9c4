"""Disputes over the API under the default policy (no claim window): open, read, resolve once,
chargeback memos, an accepted activation dispute, and who may see what (issue 14, item 2)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kassa.chains.network import Chain
from kassa.chains.scanning import ChainTransfer, SenderKind
from kassa.deposits.fake import FakeChain
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

if TYPE_CHECKING:
    from tests.api.conftest import Api

SENDER = "bcrt1qte09uhj7te09uhj7te09uhj7te09uhj73k46uj"


def prices(api: Api, btc: str) -> None:
    PricingService(
        api.db, api.clock, PricingSettings(static_rates={Symbol.BTC: Decimal(btc)})
    ).refresh([Symbol.BTC])


def top_up(api: Api, external_id: str, sats: int) -> str:
    """A real watcher credits a BTC top-up, as the deposit flow would; its deposit id."""
    address = api.post(f"/v1/accounts/{external_id}/deposit-addresses", {"chain": "btc"}).json()
    chain = FakeChain(Chain.BTC, api.clock.now() - timedelta(minutes=1), final_depth=1)
    txid = uuid.uuid4().hex * 2
    transfer = ChainTransfer(
        Chain.BTC, "BTC", txid, 0, address["address"], sats, SENDER, SenderKind.KNOWN, True
    )
    chain.mine([transfer], seconds=30)
    pricing = PricingService(api.db, api.clock, PricingSettings(history_tolerance_seconds=3600))
    Watcher(api.db, api.clock, chain, pricing, WatcherConfig(Chain.BTC)).tick()
    listed = api.get(f"/v1/accounts/{external_id}/deposits").json()["deposits"]
    [deposit] = [d for d in listed if d["txid"] == txid]
    assert deposit["status"] == "credited", deposit
    return str(deposit["id"])


def _open(api: Api, external_id: str, subject: str, subject_id: str, **extra: Any) -> Any:
    body = {
        "external_id": external_id,
        "subject": subject,
        "subject_id": subject_id,
        "reason": "customer says it was paid twice",
    }
    return api.post("/v1/admin/disputes", body, **extra)


def _resolve(api: Api, dispute_id: str, outcome: str, note: str = "checked") -> Any:
    return api.post(f"/v1/admin/disputes/{dispute_id}/resolve", {"outcome": outcome, "note": note})


def test_a_dispute_is_opened_read_and_rejected_once_with_nothing_moved(api: Api) -> None:
    api.account("42")
    prices(api, "60000")
    deposit_id = top_up(api, "42", 100_000)  # 0.001 BTC at $60 000 = $60.00

    opened = _open(api, "42", "deposit", deposit_id)
    assert opened.status_code == 201, opened.text
    dispute = opened.json()
    assert (dispute["status"], dispute["amount"], dispute["opened_by"]) == (
        "open",
        {"amount": "60.00", "asset": "USD"},
        dispute["events"][0]["actor"],
    )
    assert [(e["from_status"], e["to_status"]) for e in dispute["events"]] == [(None, "open")]
    assert api.get(f"/v1/admin/disputes/{dispute['id']}").json() == dispute
    listed = api.get("/v1/admin/disputes", params={"status": "open"}).json()["disputes"]
    assert [d["id"] for d in listed] == [dispute["id"]]
    api.problem(_open(api, "42", "deposit", deposit_id), 409, "dispute_already_open")

    rejected = _resolve(api, dispute["id"], "rejected", "the two payments were two top-ups")
    assert rejected.status_code == 200, rejected.text
    body = rejected.json()
    assert (body["status"], body["transaction_id"], body["note"]) == (
        "rejected",
        None,
        "the two payments were two top-ups",
    )
    assert [e["to_status"] for e in body["events"]] == ["open", "rejected"]
    assert api.available("42") == "60.00"
    api.problem(_resolve(api, dispute["id"], "chargeback"), 409, "dispute_already_resolved")


def test_a_chargeback_takes_the_credit_back_with_a_memo_a_support_agent_can_read(
    api: Api,
) -> None:
    api.account("42")
    prices(api, "60000")
    deposit_id = top_up(api, "42", 100_000)
    api.adjust("42", "credit", "5")
    dispute = _open(api, "42", "deposit", deposit_id).json()
    api.problem(_resolve(api, dispute["id"], "accepted"), 422, "dispute_outcome_not_allowed")

    charged = _resolve(api, dispute["id"], "chargeback", "processor chargeback 8812")
    assert charged.status_code == 200, charged.text
    assert charged.json()["status"] == "charged_back"
    assert api.available("42") == "5.00"  # what it was before the payment
    [entry] = [e for e in api.ledger("42") if "chargeback" in (e.get("memo") or "")]
    assert entry["memo"].startswith(f"chargeback of deposit {deposit_id} (0.001 BTC, tx ")
    assert entry["memo"].endswith(": processor chargeback 8812")
    api.problem(_open(api, "42", "deposit", deposit_id), 409, "dispute_already_open")

    # The chargeback gave that payment back: it is not refunded again, whatever the balance.
    api.adjust("42", "credit", "100")
    body = {"external_id": "42", "deposit_id": deposit_id}
    quote = api.post("/v1/refunds/quote", body).json()
    assert quote["allowed"] is False, quote
    api.problem(api.post("/v1/refunds", body), 409, "refund_refused")


def test_an_accepted_activation_dispute_returns_the_price(api: Api) -> None:
    api.account("a", funds="20")
    made = api.post("/v1/accounts/a/activations", {"price": api.usd("4")}).json()
    path = f"/v1/accounts/a/activations/{made['id']}"
    unfulfilled = _open(api, "a", "activation", made["id"])
    api.problem(unfulfilled, 409, "dispute_subject_not_disputable")
    assert api.post(f"{path}/fulfil").json()["status"] == "fulfilled"
    assert api.available("a") == "16.00"

    dispute = _open(api, "a", "activation", made["id"]).json()
    api.problem(_resolve(api, dispute["id"], "chargeback"), 422, "dispute_outcome_not_allowed")
    accepted = _resolve(api, dispute["id"], "accepted", "code never worked").json()
    assert accepted["status"] == "accepted"
    assert api.available("a") == "20.00"
    [entry] = [e for e in api.ledger("a") if "accepted" in (e.get("memo") or "")]
    assert entry["memo"].endswith(f"price of activation {made['id']} returned: code never worked")


def test_bad_requests_get_stable_codes(api: Api) -> None:
    api.account("a", funds="20")
    api.problem(_open(api, "a", "invoice", "x"), 422, "invalid_dispute")
    api.problem(_open(api, "a", "deposit", "not-a-uuid"), 404, "dispute_subject_not_found")
    missing = "00000000-0000-4000-8000-000000000000"
    api.problem(_open(api, "a", "deposit", missing), 404, "dispute_subject_not_found")
    api.problem(_open(api, "nobody", "deposit", missing), 404, "account_not_found")
    api.problem(api.get(f"/v1/admin/disputes/{missing}"), 404, "dispute_not_found")
    api.problem(api.get("/v1/admin/disputes/nope"), 404, "dispute_not_found")
    api.problem(_resolve(api, missing, "rejected"), 404, "dispute_not_found")
    api.problem(_resolve(api, missing, "maybe"), 422, "invalid_dispute")
    listing = api.get("/v1/admin/disputes", params={"status": "closed"})
    api.problem(listing, 422, "invalid_dispute")


def test_a_customer_reads_only_its_own_disputes(api: Api) -> None:
    api.account("a")
    api.account("b")
    prices(api, "60000")
    dispute = _open(api, "a", "deposit", top_up(api, "a", 100_000)).json()
    own = api.key(["accounts:read"], account="a")
    other = api.key(["accounts:read"], account="b")

    mine = api.get("/v1/accounts/a/disputes", own).json()["disputes"]
    assert [d["id"] for d in mine] == [dispute["id"]]
    assert api.get("/v1/accounts/b/disputes", other).json() == {"disputes": []}
    theirs = api.get("/v1/accounts/a/disputes", other)
    nobody = api.get("/v1/accounts/zz/disputes", other)
    assert (theirs.status_code, nobody.status_code) == (404, 404)
    assert theirs.json()["code"] == nobody.json()["code"] == "account_not_found"
    api.problem(api.get(f"/v1/admin/disputes/{dispute['id']}", own), 403, "forbidden")
