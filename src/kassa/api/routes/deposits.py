"""Deposit addresses and deposits of a customer account.

``POST /v1/accounts/{id}/deposit-addresses {"chain": "btc"}`` gives the account's one static
address on that chain, deriving it on first use (201) and returning the same one afterwards
(200) — idempotent per account and chain whatever the Idempotency-Key. The ETH address also
receives USDT-ERC20, the TRON address USDT-TRC20.

``GET /v1/accounts/{id}/deposits`` lists deposits, newest first, with status, amount, USD value
and the rate lock behind it, confirmations and sender, so the host's wallet page can show
"seen", "confirming (2 of 6)" and "credited $97.12 at 97 120 USD/BTC".
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from kassa.api.auth import Reader, Writer, customer_for
from kassa.api.context import Ctx
from kassa.api.idempotency import Idem, WithStatus
from kassa.api.openapi import problems_for
from kassa.api.schemas import AmountOut
from kassa.assets import ASSETS_OF_CHAIN
from kassa.deposits import addresses, records
from kassa.deposits.addresses import DepositAddress
from kassa.deposits.errors import DepositNotFound
from kassa.deposits.runtime import parse_chain
from kassa.deposits.views import deposit_view
from kassa.ledger.idempotency import Request

router = APIRouter(prefix="/v1/accounts", tags=["deposits"])


class DepositAddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chain: str = Field(examples=["btc", "eth", "tron"])


class DepositAddressOut(BaseModel):
    chain: str
    address: str
    assets: list[str] = Field(description="Assets this address receives")
    derivation_index: int
    created_at: datetime

    @classmethod
    def of(cls, address: DepositAddress) -> DepositAddressOut:
        return cls(
            chain=address.chain.value,
            address=address.address,
            assets=list(ASSETS_OF_CHAIN[address.chain]),
            derivation_index=address.derivation_index,
            created_at=address.created_at,
        )


class DepositAddressListOut(BaseModel):
    addresses: list[DepositAddressOut]


class RateLockOut(BaseModel):
    id: str
    rate: str = Field(description="USD per whole coin")
    side: str
    priced_at: datetime
    sources: list[str]


class DepositOut(BaseModel):
    id: str
    chain: str
    asset: str
    txid: str
    position: int = Field(description="Output index (BTC), log index (tokens), -1 native")
    address: str | None = None
    amount: AmountOut
    usd_value: AmountOut | None = Field(description="Credited USD; null until credited")
    status: str = Field(description="seen, confirming, credited, reversed, ignored or dropped")
    status_reason: str | None
    confirmations: int
    block_height: int | None
    first_seen_at: datetime = Field(description="Payment time: the rate is locked at it")
    sender: str | None
    sender_kind: str = Field(description="known, or ambiguous (several BTC inputs)")
    rate_lock: RateLockOut | None


class DepositListOut(BaseModel):
    deposits: list[DepositOut]


def deposit_out(
    conn: Connection, deposit: records.Deposit, address: str | None = None
) -> DepositOut:
    """The deposit as its events carry it (`kassa.deposits.views`): one view for both."""
    return DepositOut.model_validate(deposit_view(conn, deposit, address=address))


@router.post(
    "/{external_id}/deposit-addresses",
    description=("The account's static deposit address on a chain, derived on first use."),
    status_code=201,
    response_model=DepositAddressOut,
    responses={
        **problems_for("account_not_found", "chain_not_enabled"),
        200: {"description": "The account already had an address on this chain"},
    },
)
def create_deposit_address(
    external_id: str, body: DepositAddressIn, caller: Writer, idem: Idem, ctx: Ctx
) -> Response:
    chain = parse_chain(body.chain, ctx.derivers)
    request = idem.request(
        "deposit_addresses.create", {"external_id": external_id, "chain": chain.value}
    )

    def work(conn: Connection, _claimed: Request) -> WithStatus:
        account = customer_for(conn, caller, external_id)
        address, created = addresses.get_or_create(
            conn, account.id, ctx.derivers[chain], ctx.clock.now(conn)
        )
        return WithStatus(DepositAddressOut.of(address), 201 if created else 200)

    return idem.respond(ctx, request, work, status=201)


@router.get(
    "/{external_id}/deposit-addresses",
    description="The account's deposit addresses, one per chain.",
    responses=problems_for("account_not_found"),
)
def list_deposit_addresses(external_id: str, caller: Reader, ctx: Ctx) -> DepositAddressListOut:
    with ctx.database.transaction() as conn:
        account = customer_for(conn, caller, external_id)
        found = addresses.for_account(conn, account.id)
    return DepositAddressListOut(addresses=[DepositAddressOut.of(a) for a in found])


@router.get(
    "/{external_id}/deposits",
    description=("The account's deposits, newest first, with status, confirmations and USD value."),
    responses=problems_for("account_not_found"),
)
def list_deposits(
    external_id: str,
    caller: Reader,
    ctx: Ctx,
    limit: int = Query(default=100, ge=1, le=500),
) -> DepositListOut:
    with ctx.database.transaction() as conn:
        account = customer_for(conn, caller, external_id)
        found = records.for_account(conn, account.id, limit=limit)
        by_id: dict[int, Any] = {a.id: a.address for a in addresses.for_account(conn, account.id)}
        out = [deposit_out(conn, d, by_id.get(d.deposit_address_id)) for d in found]
    return DepositListOut(deposits=out)


@router.get(
    "/{external_id}/deposits/{deposit_id}",
    description="One deposit of the account: what its `deposit.*` events carry as `data`.",
    responses=problems_for("account_not_found", "deposit_not_found"),
)
def get_deposit(external_id: str, deposit_id: str, caller: Reader, ctx: Ctx) -> DepositOut:
    with ctx.database.transaction() as conn:
        account = customer_for(conn, caller, external_id)
        found = _visible_deposit(conn, account.id, deposit_id)
        return deposit_out(conn, found)


def _visible_deposit(conn: Connection, account_id: uuid.UUID, text: str) -> records.Deposit:
    """The account's deposit; another account's answers exactly as a missing one."""
    missing = DepositNotFound(f"deposit {text} does not exist")
    try:
        wanted = uuid.UUID(text)
    except ValueError:
        raise missing from None
    found = records.get(conn, wanted)
    if found is None or found.customer_account_id != account_id:
        raise missing
    return found
