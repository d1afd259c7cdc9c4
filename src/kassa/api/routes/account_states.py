"""Account states (admin scope): set an account active, suspended, terminated or frozen, with a
machine-readable reason code and the operator's reason; read the state and its history.

`POST /v1/admin/accounts/{id}/state {"state", "reason_code", "reason"}` records who (the API
key), when, why, and from → to. Terminated is final; an illegal move answers 409
`illegal_account_state_transition`. The effective state also shows as `status` on
`GET /v1/accounts/{id}`, where an account a reversal took below zero reads `frozen`.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from kassa.accounts import service as accounts
from kassa.accounts import states
from kassa.accounts.service import CustomerAccount
from kassa.accounts.states import AccountState, StateChange
from kassa.api.auth import Admin
from kassa.api.context import Ctx
from kassa.api.idempotency import Idem
from kassa.api.openapi import problems_for
from kassa.api.threads import DatabaseRoute
from kassa.ledger.accounts import get_balance
from kassa.ledger.idempotency import Request

router = APIRouter(prefix="/v1/admin/accounts", tags=["admin"], route_class=DatabaseRoute)


class AccountStateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: str = Field(
        description="active, suspended, terminated or frozen", examples=["suspended"]
    )
    reason_code: str = Field(
        description="Machine-readable, read by policies: "
        + ", ".join(code.value for code in states.ReasonCode),
        examples=["violation"],
    )
    reason: str = Field(
        min_length=1,
        max_length=states.MAX_REASON_LENGTH,
        description="The operator's words",
        examples=["repeated scraping after two warnings"],
    )


class StateChangeOut(BaseModel):
    id: int
    from_state: str
    to_state: str
    reason_code: str
    reason: str
    actor: str
    changed_at: datetime

    @classmethod
    def of(cls, change: StateChange) -> StateChangeOut:
        return cls(
            id=change.id,
            from_state=change.from_state.value,
            to_state=change.to_state.value,
            reason_code=change.reason_code.value,
            reason=change.reason,
            actor=change.actor,
            changed_at=change.changed_at,
        )


class AccountStateOut(BaseModel):
    external_id: str
    state: str = Field(description="As set by an operator")
    effective_state: str = Field(
        description=(
            "What applies: `state`, or frozen while a reversal keeps the balance below zero"
        )
    )
    history: list[StateChangeOut] = Field(description="Changes, newest first (at most 100)")


def _state_out(conn: Connection, account: CustomerAccount) -> AccountStateOut:
    stored = AccountState(account.status)
    frozen = get_balance(conn, account.ledger_account_id).frozen
    return AccountStateOut(
        external_id=account.external_id,
        state=stored.value,
        effective_state=states.effective_state(stored, frozen).value,
        history=[StateChangeOut.of(c) for c in states.history(conn, account.id)],
    )


@router.post(
    "/{external_id}/state",
    description=("Set an account active, suspended, terminated or frozen, with a reason (admin)."),
    responses=problems_for(
        "account_not_found",
        "illegal_account_state_transition",
        "invalid_account_state",
        "invalid_reason_code",
        "invalid_state_reason",
    ),
    response_model=AccountStateOut,
)
def change_account_state(
    external_id: str, body: AccountStateIn, caller: Admin, idem: Idem, ctx: Ctx
) -> Response:
    to = states.parse_state(body.state)
    reason_code = states.parse_reason_code(body.reason_code)
    request = idem.request(
        "accounts.change_state",
        {
            "external_id": external_id,
            "state": to.value,
            "reason_code": reason_code.value,
            "reason": body.reason,
        },
    )

    def work(conn: Connection, claimed: Request) -> AccountStateOut:
        account = accounts.get_by_external_id(conn, external_id)
        states.change_state(
            conn,
            account.id,
            to=to,
            reason_code=reason_code,
            reason=body.reason,
            actor=caller.actor,
            now=ctx.clock.now(conn),
            request=claimed,
        )
        return _state_out(conn, accounts.get(conn, account.id))

    return idem.respond(ctx, request, work)


@router.get(
    "/{external_id}/state",
    description=("An account's operator-set state, its effective state and its history (admin)."),
    responses=problems_for("account_not_found"),
)
def get_account_state(external_id: str, caller: Admin, ctx: Ctx) -> AccountStateOut:
    with ctx.database.transaction() as conn:
        return _state_out(conn, accounts.get_by_external_id(conn, external_id))
