"""Re-pricing at approval, the payouts side (issue 14; the arithmetic is `kassa.policy.repricing`).

Under a policy whose ``refund.pricing`` / ``withdrawal.pricing`` is ``at_approval``, the approval
that makes a request ``approved`` prices it again:

1. outside any transaction, fresh rate locks of the payout coin (and of the fee asset) and the
   chain's fee now are taken (`kassa.payouts.requests.Payouts.approval_locks`: the rate sources
   and the node may be slow, and nothing may wait on them holding a row lock);
2. in the approval's transaction, the committed decision is priced again at those locks
   (`kassa.policy.reprice`: the gross USD and the USD fees stay, the coins, the network fee and
   the net follow the new rate); a re-priced decision the policy refuses (nothing left after
   the fee) refuses the approval with ``payout_repricing_refused`` before anything is written;
3. otherwise `commit` writes the new figures to the request — its ``decision`` record too, so
   the stored decision, the request and, later, the ledger and the chain agree — and the
   ``repriced`` entry of its history (`kassa.payouts.store.reprice`) with the old and new
   figures, the operator and the time; then the approval is recorded as usual.

The ledger: the request's hold reserves the gross USD, which re-pricing never changes, so
nothing moves in the ledger at approval. Settlement books the request's figures as they are
when the coins leave — the re-priced net USD and coins — so the books follow the new split
(`kassa.payouts.worker.settlement`).

`preview` is the same computation at the current market rate (no lock is taken, nothing is
written) for the review queue: what approving now would commit, next to the committed figures.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Connection

from kassa.payouts import store
from kassa.payouts.errors import RepricingRefused
from kassa.payouts.model import PayoutRequest
from kassa.policy import Breakdown, Decision, Repricing
from kassa.policy._support import usd

__all__ = ["commit", "figures", "record", "refuse_unless_allowed"]


def figures(decision: Decision) -> dict[str, Any]:
    """The figures of ``decision`` re-pricing may change, as JSON-ready data (amounts with
    their asset, as the decision record has them)."""
    b = decision.record()["breakdown"]
    return {
        "rate": b["rate"],
        "rate_lock_id": b["rate_lock_id"],
        "network_fee_native": b["network_fee_native"],
        "network_fee_source": b["network_fee_source"],
        "network_fee_charged": b["network_fee_charged_usd"],
        "net": b["net_usd"],
        "net_native": b["net_native"],
    }


def record(repricing: Repricing, actor: str | None = None) -> dict[str, Any]:
    """What a ``repriced`` entry holds (and, without an ``actor``, what a preview shows): the
    committed and the re-priced figures, the gross that stays, when and by whom, and whether
    the policy allows the result."""
    return {
        "pricing": "at_approval",
        "at": repricing.at.isoformat(),
        "actor": actor,
        "gross": {"amount": repricing.old.gross_usd.format(), "asset": "USD"},
        "committed": figures(repricing.committed),
        "repriced": figures(repricing.repriced),
        "changed": repricing.changed,
        "allowed": repricing.allowed,
        "refusal": repricing.refusal(),
    }


def refuse_unless_allowed(request: PayoutRequest, repricing: Repricing) -> None:
    """Refuse the approval (nothing written) when the re-priced request pays nothing."""
    if repricing.allowed:
        return
    new = repricing.new
    raise RepricingRefused(
        f"approving now prices {request.kind.value} {request.id} again at ${new.rate} per "
        f"{request.asset}, and the policy refuses the result: {repricing.refusal()} Nothing "
        "changed; reject the request (its funds return) or approve it when the market allows.",
        record(repricing),
    )


def commit(
    conn: Connection, request: PayoutRequest, repricing: Repricing, *, actor: str
) -> PayoutRequest:
    """Write ``repricing``'s figures to ``request`` (pending review, about to be approved) and
    record its ``repriced`` history entry, in the approval's transaction."""
    refuse_unless_allowed(request, repricing)
    new = repricing.new
    if new.gross_usd != request.gross_usd or new.net_native is None or new.rate_lock_id is None:
        # Re-pricing keeps the gross, which the hold reserves; anything else is a bug.
        raise RuntimeError(f"a re-pricing of {request.id} that changes its gross or has no lock")
    fee = new.network_fee_native
    values = {
        "network_fee_usd": new.network_fee_charged_usd.amount,
        "net_usd": new.net_usd.amount,
        "network_fee_native": None if fee is None else fee.amount,
        "network_fee_asset": None if fee is None else fee.asset.code.value,
        "net_native": new.net_native.amount,
        "rate_lock_id": uuid.UUID(new.rate_lock_id),
        "decision": json.dumps(repricing.repriced.as_record(), default=str),
    }
    return store.reprice(
        conn,
        request.id,
        values,
        actor=actor,
        reason=_said(request, repricing),
        detail=record(repricing, actor),
        now=repricing.at,
    )


def _said(request: PayoutRequest, repricing: Repricing) -> str:
    """The history line: old → new, and why the ledger does not move."""
    old, new = repricing.old, repricing.new
    coin = request.asset

    def fee(b: Breakdown) -> str:
        return "none" if b.network_fee_native is None else str(b.network_fee_native)

    changes = (
        f"rate ${old.rate} → ${new.rate} per {coin}; network fee {fee(old)} → {fee(new)} "
        f"({usd(old.network_fee_charged_usd)} → {usd(new.network_fee_charged_usd)} charged); "
        f"net {usd(old.net_usd)} = {old.net_native} → {usd(new.net_usd)} = {new.net_native}"
    )
    if not repricing.changed:
        changes = f"the figures stand ({changes})"
    return (
        f"re-priced at approval (policy {request.policy}: {request.kind.value}.pricing = "
        f"at_approval): {changes}. The gross {usd(request.gross_usd)} and its hold stand: "
        "re-pricing changes the coins, not the USD owed, so nothing moves in the ledger now; "
        "settlement books the new figures when the coins leave."
    )
