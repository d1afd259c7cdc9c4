"""Refusals speak the caller's language (issue 13, item 10 in part): a problem detail names a
customer by its external id, never by the ledger's internal account code (``user:<uuid>:USD``)
or the account's uuid."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from kassa.accounts import service as accounts

if TYPE_CHECKING:
    from tests.api.conftest import Api

INTERNAL = re.compile(r"user:|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def internals(api: Api, external_id: str) -> list[str]:
    with api.db.transaction() as conn:
        account = accounts.get_by_external_id(conn, external_id)
    return ["user:", str(account.id), f"{account.ledger_account_id}"]


def refusals(api: Api) -> list[dict[str, Any]]:
    """The refusals of the money paths: a hold, a usage batch, an activation, a withdrawal."""
    return [
        api.problem(
            api.post("/v1/accounts/acme-42/holds", {"amount": api.usd("25")}),
            409,
            "insufficient_funds",
        ),
        api.problem(
            api.post(
                "/v1/accounts/acme-42/usage",
                {"events": [{"event_id": "e1", "amount": api.usd("25"), "description": "x"}]},
            ),
            409,
            "insufficient_funds",
        ),
        api.problem(
            api.post("/v1/accounts/acme-42/activations", {"price": api.usd("25")}),
            409,
            "insufficient_funds",
        ),
    ]


def test_insufficient_funds_names_the_customer_in_plain_words(api: Api) -> None:
    api.account("acme-42", funds="20")
    for body in refusals(api):
        assert body["detail"] == "account 'acme-42' has 20.00 USD available; this needs 25.00 USD"
        assert not INTERNAL.search(body["detail"]), body


def test_a_refusal_after_an_adjustment_names_the_customer(api: Api) -> None:
    api.account("acme-43", funds="20")
    api.adjust("acme-43", "debit", "5")
    body = api.problem(
        api.post("/v1/accounts/acme-43/holds", {"amount": api.usd("16")}), 409, "insufficient_funds"
    )
    assert body["detail"] == "account 'acme-43' has 15.00 USD available; this needs 16.00 USD"
    for internal in internals(api, "acme-43")[:2]:
        assert internal not in body["detail"]
