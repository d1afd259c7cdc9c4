"""Operator actions (admin scope): manual balance adjustments with a reason."""

from __future__ import annotations

from fastapi import APIRouter

from kassa.accounts import service as accounts
from kassa.api.auth import Admin
from kassa.api.context import Ctx
from kassa.api.idempotency import Idem
from kassa.api.schemas import AdjustmentIn, AdjustmentOut, BalanceOut
from kassa.ledger import transfers
from kassa.ledger.accounts import get_balance
from kassa.money import USD

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post("/adjustments", status_code=201)
def create_adjustment(body: AdjustmentIn, caller: Admin, idem: Idem, ctx: Ctx) -> AdjustmentOut:
    amount = body.amount.to_money(USD)
    request = idem.request(
        "admin.adjust",
        {
            "external_id": body.external_id,
            "direction": body.direction,
            "amount": amount.amount,
            "asset": amount.asset.code.value,
            "reason": body.reason,
        },
    )
    with ctx.database.transaction() as conn:
        account = accounts.get_by_external_id(conn, body.external_id)
        transaction_id = transfers.adjust(
            conn,
            account_id=account.ledger_account_id,
            amount=amount,
            direction=body.direction,
            reason=body.reason,
            actor=caller.actor,
            now=ctx.clock.now(conn),
            request=request,
        )
        balance = get_balance(conn, account.ledger_account_id)
    return AdjustmentOut(
        transaction_id=transaction_id,
        external_id=account.external_id,
        balance=BalanceOut.of(balance),
    )
