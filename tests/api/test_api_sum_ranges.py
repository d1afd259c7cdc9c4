"""Admin credits cannot take a balance or a house total beyond the largest amount (issue 13,
item 2), through the real app on SQLite and PostgreSQL.

The audit's case: a credit of 2**256-1 micro-USD stored the house total over the limit on
PostgreSQL, after which a `+1.00` credit was posted yet answered 422 and the balance could no
longer be read; SQLite answered 500. Now such a credit is refused with `amount_out_of_range`,
nothing is written, the balance still reads, and a retry with the same key is refused the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kassa.money import MAX_AMOUNT, USD, Money

if TYPE_CHECKING:
    import httpx2
    from tests.api.conftest import Api

LARGEST = Money(MAX_AMOUNT, USD).format()


def _credit(api: Api, external_id: str, amount: str, key: str) -> httpx2.Response:
    body = {
        "external_id": external_id,
        "direction": "credit",
        "amount": api.usd(amount),
        "reason": "audit",
    }
    return api.post("/v1/admin/adjustments", body, key=key)


def _refused_twice(api: Api, external_id: str, amount: str, key: str) -> dict[str, Any]:
    """Refused with amount_out_of_range, the same again with the same key, nothing written."""
    balance, ledger = api.balance(external_id), api.ledger(external_id)
    first = api.problem(_credit(api, external_id, amount, key), 422, "amount_out_of_range")
    again = api.problem(_credit(api, external_id, amount, key), 422, "amount_out_of_range")
    assert again["detail"] == first["detail"]
    assert api.balance(external_id) == balance
    assert api.ledger(external_id) == ledger
    return first


def test_the_largest_credit_on_top_of_a_balance_is_refused(api: Api) -> None:
    api.account("cust-1", funds="10.00")
    _refused_twice(api, "cust-1", LARGEST, "huge")
    assert api.available("cust-1") == "10.00"


def test_a_credit_past_the_house_total_is_refused_and_the_books_stay_readable(api: Api) -> None:
    api.account("cust-1")
    api.account("cust-2")
    # The very largest credit fits once: every sum is then exactly at the limit.
    assert _credit(api, "cust-1", LARGEST, "huge").status_code == 201
    assert api.available("cust-1") == LARGEST
    # Any further credit would take the customer's credits, or the house adjustments' debits,
    # beyond the limit: both refused, nothing written, both balances still readable.
    _refused_twice(api, "cust-1", "1.00", "one-more")
    _refused_twice(api, "cust-2", "1.00", "other")
    assert api.available("cust-1") == LARGEST
    assert api.available("cust-2") == "0.00"
    # A debit brings the customer back into room... but the house total only ever grows.
    api.adjust("cust-1", "debit", "5.00")
    _refused_twice(api, "cust-2", "1.00", "still-full")
