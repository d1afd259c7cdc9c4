"""Leg 2: the records (deposits, payout requests, activations) against the ledger.

- A deposit's net USD credit to its customer — its credit entries minus their reversals and
  chargebacks — is its ``usd_amount`` when it is credited and zero otherwise (reversed, waiting,
  ignored, or charged back: a chargeback takes the credit back by design). Every deposit entry
  names a deposit that exists.
- A confirmed payout has exactly one settlement entry, which clears its gross amount out of
  ``clearing:payouts:USD`` and takes out of the hot wallet its net coins and the network fee
  paid (its fee legs), and its hold is captured for that amount; a failed, cancelled or
  rejected one has its hold released (voided or expired); an open one still holds its funds.
- An activation's stored status is the one its hold's status implies (a pending one may lag a
  resolved hold until the worker settles it).

Entries are linked to records by the ids in their metadata (and reversals by ``reverses_id``);
they are streamed once, keeping one sum per deposit.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict

from sqlalchemy import Connection, select

from kassa.assets import fee_asset_of
from kassa.ledger.tables import ledger_account, ledger_hold, ledger_posting, ledger_transaction
from kassa.reports.reconciliation.ledger_leg import CLEARING_CODE
from kassa.reports.reconciliation.model import Break, BreakClass, Findings, Leg, Progress, quiet

_BATCH = 10_000

_OPEN = ("pending_review", "approved", "signed", "broadcast")
_RELEASED = ("failed", "cancelled", "rejected")
_ACTIVATION_OF_HOLD = {
    "pending": "pending",
    "captured": "fulfilled",
    "voided": "cancelled",
    "expired": "expired",
}


def _meta(text: str | None) -> dict[str, object]:
    if not text:
        return {}
    loaded = json.loads(text)
    return loaded if isinstance(loaded, dict) else {}


def check(conn: Connection, found: Findings, progress: Progress = quiet) -> None:
    progress("records: deposits, payouts and activations against the ledger")
    _deposits(conn, found)
    _payouts(conn, found)
    _activations(conn, found)
    found.checked.add((Leg.RECORDS, None))


def _deposits(conn: Connection, found: Findings) -> None:
    from kassa.deposits.tables import deposit

    credit_of: dict[uuid.UUID, uuid.UUID] = {}
    """Deposit credit entry -> its deposit."""
    net: dict[uuid.UUID, int] = defaultdict(int)
    """Deposit -> micro-USD credited to its customer, net of reversals."""
    credits = (
        select(
            ledger_transaction.c.id,
            ledger_transaction.c.metadata_json,
            ledger_account.c.kind,
            ledger_posting.c.amount,
        )
        .select_from(
            ledger_transaction.join(
                ledger_posting, ledger_posting.c.transaction_id == ledger_transaction.c.id
            ).join(ledger_account, ledger_account.c.id == ledger_posting.c.account_id)
        )
        .where(ledger_transaction.c.kind == "deposit")
    )
    for row in conn.execution_options(yield_per=_BATCH).execute(credits):
        deposit_id = _meta(row.metadata_json).get("deposit_id")
        if not isinstance(deposit_id, str):
            continue
        linked = uuid.UUID(deposit_id)
        credit_of[row.id] = linked
        net[linked] += 0
        if row.kind == "user":
            net[linked] -= int(row.amount)
    reversals = (
        select(
            ledger_transaction.c.reverses_id,
            ledger_transaction.c.metadata_json,
            ledger_posting.c.amount,
        )
        .select_from(
            ledger_transaction.join(
                ledger_posting, ledger_posting.c.transaction_id == ledger_transaction.c.id
            ).join(ledger_account, ledger_account.c.id == ledger_posting.c.account_id)
        )
        .where(ledger_transaction.c.kind == "reversal", ledger_account.c.kind == "user")
    )
    for rev in conn.execution_options(yield_per=_BATCH).execute(reversals):
        original = rev.reverses_id
        if original is None:
            of = _meta(rev.metadata_json).get("reverses_asset_of")
            original = uuid.UUID(of) if isinstance(of, str) else None
        if original is not None and original in credit_of:
            net[credit_of[original]] -= int(rev.amount)

    rows = select(
        deposit.c.id,
        deposit.c.chain,
        deposit.c.asset,
        deposit.c.status,
        deposit.c.usd_amount,
        deposit.c.chargeback_transaction_id,
    ).order_by(deposit.c.id)
    for dep in conn.execution_options(yield_per=_BATCH).execute(rows):
        credited = dep.status == "credited" and dep.chargeback_transaction_id is None
        expected = int(dep.usd_amount or 0) if credited else 0
        actual = net.pop(dep.id, 0)
        if actual != expected:
            found.add(
                Break(
                    BreakClass.DEPOSIT_CREDIT_MISMATCH,
                    str(dep.id),
                    f"{dep.asset} deposit {dep.id} ({dep.status}) should have a net credit of "
                    f"{expected} micro-USD to its customer; its ledger entries credit {actual}",
                    chain=dep.chain,
                    asset="USD",
                    expected=expected,
                    actual=actual,
                )
            )
    for deposit_id, amount in sorted(net.items(), key=str):
        found.add(
            Break(
                BreakClass.CREDIT_WITHOUT_DEPOSIT,
                str(deposit_id),
                f"deposit entries credit {amount} micro-USD for deposit {deposit_id}, which does "
                "not exist",
                asset="USD",
                expected=0,
                actual=amount,
            )
        )


def _payouts(conn: Connection, found: Findings) -> None:
    from kassa.payouts.tables import payout_request

    settled: dict[uuid.UUID, list[int]] = defaultdict(list)
    """Payout request -> what each of its settlement entries took out of the clearing account."""
    hot: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    """Payout request -> what its settlement took out of the hot wallet, per asset."""
    settlements = (
        select(
            ledger_transaction.c.metadata_json,
            ledger_account.c.code,
            ledger_posting.c.asset,
            ledger_posting.c.amount,
        )
        .select_from(
            ledger_transaction.join(
                ledger_posting, ledger_posting.c.transaction_id == ledger_transaction.c.id
            ).join(ledger_account, ledger_account.c.id == ledger_posting.c.account_id)
        )
        .where(
            ledger_transaction.c.kind == "payout",
            (ledger_account.c.code == CLEARING_CODE) | ledger_account.c.code.like("wallet:%-hot:%"),
        )
    )
    for entry in conn.execution_options(yield_per=_BATCH).execute(settlements):
        meta = _meta(entry.metadata_json)
        request_id = meta.get("payout_request_id")
        if not isinstance(request_id, str) or "network_fee_charged_usd" not in meta:
            continue  # not a settlement (a failed payout's burnt fee)
        if entry.code == CLEARING_CODE:
            settled[uuid.UUID(request_id)].append(int(entry.amount))
        else:
            hot[uuid.UUID(request_id)][entry.asset] -= int(entry.amount)

    rows = (
        select(
            payout_request.c.id,
            payout_request.c.kind,
            payout_request.c.asset,
            payout_request.c.status,
            payout_request.c.gross_usd,
            payout_request.c.net_native,
            payout_request.c.network_fee_paid_native,
            ledger_hold.c.status.label("hold_status"),
            ledger_hold.c.captured_amount,
        )
        .select_from(payout_request.join(ledger_hold, ledger_hold.c.id == payout_request.c.hold_id))
        .order_by(payout_request.c.id)
    )
    for row in conn.execution_options(yield_per=_BATCH).execute(rows):
        gross = int(row.gross_usd)
        entries = settled.pop(row.id, [])
        what = f"{row.kind} {row.id} ({row.status})"
        expected_entries = [gross] if row.status == "confirmed" else []
        if entries != expected_entries:
            found.add(
                Break(
                    BreakClass.PAYOUT_SETTLEMENT_MISSING,
                    str(row.id),
                    f"{what} should have {len(expected_entries)} settlement entry clearing "
                    f"{gross} micro-USD; the ledger has {len(entries)} clearing {sum(entries)}",
                    asset="USD",
                    expected=sum(expected_entries),
                    actual=sum(entries),
                )
            )
        if row.status == "confirmed" and entries:
            left = {code: amount for code, amount in hot.pop(row.id, {}).items() if amount}
            owed: dict[str, int] = defaultdict(int)
            owed[row.asset] += int(row.net_native)
            owed[fee_asset_of(row.asset).code] += int(row.network_fee_paid_native or 0)
            owed_left = {code: amount for code, amount in owed.items() if amount}
            if left != owed_left:
                for code in sorted(set(left) | set(owed_left)):
                    if left.get(code, 0) == owed_left.get(code, 0):
                        continue
                    found.add(
                        Break(
                            BreakClass.PAYOUT_FEE_LEGS_MISMATCH,
                            str(row.id),
                            f"{what}: its settlement takes {left.get(code, 0)} {code} minor "
                            f"units out of the hot wallet; the payout and its network fee "
                            f"come to {owed_left.get(code, 0)}",
                            asset=code,
                            expected=owed_left.get(code, 0),
                            actual=left.get(code, 0),
                        )
                    )
        hold = row.hold_status
        captured = int(row.captured_amount or 0)
        if row.status == "confirmed":
            right = hold == "captured" and captured == gross
        elif row.status in _RELEASED:
            right = hold in ("voided", "expired")
        else:
            right = hold == "pending" and row.status in _OPEN
        if not right:
            found.add(
                Break(
                    BreakClass.PAYOUT_HOLD_MISMATCH,
                    str(row.id),
                    f"{what}: its hold is {hold} (captured {captured} micro-USD of {gross})",
                    asset="USD",
                    expected=gross if row.status == "confirmed" else 0,
                    actual=captured,
                )
            )
    for request_id, entries in sorted(settled.items(), key=str):
        found.add(
            Break(
                BreakClass.PAYOUT_SETTLEMENT_MISSING,
                str(request_id),
                f"{len(entries)} settlement entries name payout request {request_id}, which "
                "does not exist",
                asset="USD",
                expected=0,
                actual=sum(entries),
            )
        )


def _activations(conn: Connection, found: Findings) -> None:
    from kassa.spending.tables import activation

    rows = (
        select(
            activation.c.id,
            activation.c.status,
            activation.c.price,
            ledger_hold.c.status.label("hold_status"),
        )
        .select_from(activation.join(ledger_hold, ledger_hold.c.id == activation.c.hold_id))
        .where(activation.c.status != "pending")
        .order_by(activation.c.id)
    )
    for row in conn.execution_options(yield_per=_BATCH).execute(rows):
        implied = _ACTIVATION_OF_HOLD.get(row.hold_status)
        if implied != row.status:
            found.add(
                Break(
                    BreakClass.ACTIVATION_HOLD_MISMATCH,
                    str(row.id),
                    f"activation {row.id} is {row.status} but its hold is {row.hold_status} "
                    f"(which means {implied})",
                    asset="USD",
                )
            )
