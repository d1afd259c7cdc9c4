"""What `kassa bench scaleout` checks once the load has drained and every process stopped:
from the database, from the chain nodes themselves, and with `kassa doctor`."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from kassa.assets import ASSETS_OF_CHAIN
from kassa.chains.network import Chain
from kassa.db import Database
from kassa.deposits.addresses import match_key
from kassa.deposits.settings import ChainsSettings
from kassa.deposits.tables import deposit, deposit_address
from kassa.ledger.tables import ledger_transaction
from kassa.payouts.tables import payout_request
from kassa_dev.bench._fleet import KASSA
from kassa_dev.bench._payouts_run import paid_on_chain
from kassa_dev.bench._scaleout_load import SentDeposit


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def _txid(text: str) -> str:
    return text.lower().removeprefix("0x")


def deposits_credited_once(database: Database, sent: list[SentDeposit]) -> Check:
    """Every faucet transfer is one deposit row, credited once, with one ledger transaction;
    no deposit row exists that the faucet did not send. A transfer whose faucet call never
    returned (no txid) is matched by address, asset and amount, and said so."""
    with database.transaction() as conn:
        rows = conn.execute(
            select(
                deposit.c.txid,
                deposit.c.asset,
                deposit.c.amount,
                deposit.c.status,
                deposit.c.credit_count,
                deposit.c.credit_transaction_id,
                deposit_address.c.address,
            ).join(deposit_address, deposit_address.c.id == deposit.c.deposit_address_id)
        ).all()
        booked = {
            row.id
            for row in conn.execute(
                select(ledger_transaction.c.id).where(ledger_transaction.c.kind == "deposit")
            )
        }
    problems = deposit_problems(sent, rows, booked)
    unknown = sum(item.txid is None for item in sent)
    detail = "; ".join(problems[:5]) or (
        f"{len(sent)} sent, {len(rows)} rows, {len(booked)} ledger credits"
        + (f" ({unknown} faucet call(s) that never returned)" if unknown else "")
    )
    return Check("every deposit credited exactly once", not problems, detail)


def deposit_problems(sent: list[SentDeposit], rows: Sequence[Any], booked: set[Any]) -> list[str]:
    """What is wrong with the deposit rows (txid, asset, amount, status, credit_count,
    credit_transaction_id, address) and the ids of the ``deposit`` ledger transactions, given
    what the faucet sent; nothing when each transfer was credited exactly once."""
    by_tx: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        by_tx.setdefault((_txid(row.txid), row.asset), []).append(row)
    problems = []
    for item in sent:
        if item.txid is not None:
            problems += _credited_once(item, by_tx.pop((_txid(item.txid), item.asset), []))
    for item in sent:
        if item.txid is not None:
            continue
        found = [
            row
            for candidates in by_tx.values()
            for row in candidates
            if row.address == item.address and int(row.amount) == item.amount
        ][:1]
        for row in found:
            by_tx.pop((_txid(row.txid), row.asset), None)
        if found:
            problems += _credited_once(item, found)
    if by_tx:
        problems.append(f"{len(by_tx)} deposit transaction(s) the faucet did not send")
    credits = {row.credit_transaction_id for row in rows}
    if credits != booked or len(booked) != len(rows):
        problems.append(f"{len(booked)} deposit ledger transactions for {len(rows)} deposits")
    return problems


def _credited_once(item: SentDeposit, found: list[Any]) -> list[str]:
    if len(found) != 1:
        return [f"{item.asset} {item.txid}: {len(found)} deposit rows"]
    row = found[0]
    if row.status != "credited" or row.credit_count != 1 or int(row.amount) != item.amount:
        return [
            f"{item.asset} {item.txid}: {row.status}, credited {row.credit_count}x, "
            f"{row.amount} (sent {item.amount})"
        ]
    return []


def payouts_paid_once(
    database: Database,
    chains: ChainsSettings,
    start_heights: dict[Chain, int],
    ids: list[str],
) -> Check:
    """Every withdrawal is confirmed, and the chain (read block by block with the deposit
    scanner, not Kassa's tables) shows exactly one transfer of its net amount to its
    destination."""
    with database.transaction() as conn:
        rows = conn.execute(
            select(
                payout_request.c.id,
                payout_request.c.asset,
                payout_request.c.destination,
                payout_request.c.net_native,
                payout_request.c.status,
            ).where(payout_request.c.id.in_(ids))
        ).all()
    problems = []
    statuses = Counter(str(row.status) for row in rows)
    if statuses.get("confirmed", 0) != len(ids):
        problems.append(f"{len(ids)} requested: {dict(statuses)}")
    for chain in Chain:
        mine = [row for row in rows if row.asset in ASSETS_OF_CHAIN[chain]]
        if mine:
            destinations = [row.destination for row in mine]
            paid = paid_on_chain(chains, chain, start_heights[chain], destinations)
            problems += payout_problems(chain, mine, paid)
    detail = "; ".join(problems[:5]) or f"{len(ids)} confirmed, each once on chain"
    return Check("every payout paid exactly once on chain", not problems, detail)


def payout_problems(
    chain: Chain, rows: Sequence[Any], paid: dict[tuple[str, str], list[int]]
) -> list[str]:
    """Each payout row (id, asset, destination, net_native) against what the chain shows paid
    to its destination: exactly one transfer of the net amount, or a problem."""
    problems = []
    for row in rows:
        amounts = paid.get((match_key(chain, row.destination), row.asset), [])
        if amounts != [int(row.net_native)]:
            problems.append(f"{row.id} ({row.asset}): on chain {amounts}, net {row.net_native}")
    return problems


def doctor(env: dict[str, str]) -> Check:
    done = subprocess.run(  # noqa: S603 - our own console script
        [str(KASSA), "doctor"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    last = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
    return Check("kassa doctor", done.returncode == 0, last[0][:200])
