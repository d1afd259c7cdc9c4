"""Leg 3: the ledger and the records against the chains, at each chain's final height.

Read in three steps so that no database transaction is held across a node call: `gather`
(one transaction) collects what Kassa says; `observe` asks the nodes; `compare` turns the two
into breaks.

- Per deposit address (ETH, TRON): the coins it holds at the height the watcher has checked
  (the lower of the final height and its checkpoint) against the deposits Kassa recorded there.
  More on chain is a deposit the watcher missed; less is a recorded deposit no longer on chain.
  Deposit addresses never send, so what they hold is what they received.
- Per BTC deposit (a Bitcoin node has no address index): its output is still unspent on chain.
- Per hot wallet and asset: the node's balance (BTC: Kassa's hot coins the node still has
  unspent) against the ledger's ``wallet:<chain>-hot:<asset>``. A difference is a transfer made
  outside Kassa (or hot-wallet funding not booked, see `funding`).
- Per confirmed payout: the transfer in its recorded block pays its destination its amount.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from kassa.chains.network import Chain
from kassa.chains.scanning import ChainTransfer
from kassa.deposits.addresses import match_key
from kassa.deposits.tables import deposit, deposit_address, watcher_checkpoint
from kassa.ledger.tables import ledger_account
from kassa.payouts.tables import (
    btc_hot_utxo,
    payout_nonce,
    payout_request,
    payout_tx,
    payout_tx_line,
)
from kassa.reports.reconciliation.chain_reader import ChainReader
from kassa.reports.reconciliation.model import Break, BreakClass, Findings, Leg, Progress, quiet

log = logging.getLogger(__name__)

_BATCH = 10_000

ASSETS: Mapping[Chain, tuple[str, ...]] = {
    Chain.BTC: ("BTC",),
    Chain.ETH: ("ETH", "USDT-ERC20"),
    Chain.TRON: ("TRX", "USDT-TRC20"),
}

_NOT_ON_CHAIN = ("the transaction failed on chain", "token contract ")
"""Ignored deposits that moved no coins of the canonical asset (their reasons begin so)."""


@dataclass(slots=True)
class ChainView:
    """What Kassa says about one chain, gathered in one transaction."""

    chain: Chain
    final_height: int
    height: int
    """What deposits are compared at: the final height, or the watcher's checkpoint if lower."""
    addresses: dict[str, dict[str, int]] = field(default_factory=dict)
    """Deposit address -> asset -> coins recorded at or below `height`."""
    btc_outputs: list[tuple[str, int, str, int]] = field(default_factory=list)
    """BTC deposits: txid, vout, address, satoshi."""
    hot_ledger: dict[str, int] = field(default_factory=dict)
    hot_addresses: list[str] = field(default_factory=list)
    hot_utxos: list[tuple[str, int, int]] = field(default_factory=list)
    payouts: list[tuple[str, str, str, int, int, str, str]] = field(default_factory=list)
    """Confirmed payout lines: request id, txid, asset, amount, block, block hash, destination."""


@dataclass(slots=True)
class ChainSeen:
    """What the node says."""

    addresses: dict[str, dict[str, int]] = field(default_factory=dict)
    btc_unspent: dict[tuple[str, int], int | None] = field(default_factory=dict)
    hot: dict[str, int] = field(default_factory=dict)
    payouts: dict[tuple[str, str], list[ChainTransfer] | None] = field(default_factory=dict)
    """(request id, txid) -> the transfers of its recorded block to its destination."""

    def deposit_coins(self) -> dict[str, int]:
        """Coins on the deposit addresses, per asset."""
        total: dict[str, int] = defaultdict(int)
        for held in self.addresses.values():
            for code, amount in held.items():
                total[code] += amount
        for (_, _), value in self.btc_unspent.items():
            total["BTC"] += value or 0
        return dict(total)


def gather(
    conn: Connection, chain: Chain, final_height: int, hot_addresses: Mapping[Chain, str]
) -> ChainView:
    checkpoint = conn.execute(
        select(watcher_checkpoint.c.height).where(watcher_checkpoint.c.chain == chain.value)
    ).scalar_one_or_none()
    height = final_height if checkpoint is None else min(final_height, int(checkpoint))
    view = ChainView(chain, final_height, height)
    for row in conn.execution_options(yield_per=_BATCH).execute(
        select(deposit_address.c.address).where(deposit_address.c.chain == chain.value)
    ):
        view.addresses[row.address] = dict.fromkeys(ASSETS[chain], 0)
    deposits = (
        select(
            deposit_address.c.address,
            deposit.c.asset,
            deposit.c.amount,
            deposit.c.txid,
            deposit.c.position,
            deposit.c.status,
            deposit.c.status_reason,
        )
        .select_from(deposit.join(deposit_address))
        .where(
            deposit.c.chain == chain.value,
            deposit.c.block_height.is_not(None),
            deposit.c.block_height <= height,
        )
    )
    for row in conn.execution_options(yield_per=_BATCH).execute(deposits):
        if row.status == "ignored" and (row.status_reason or "").startswith(_NOT_ON_CHAIN):
            continue
        held = view.addresses.setdefault(row.address, dict.fromkeys(ASSETS[chain], 0))
        held[row.asset] = held.get(row.asset, 0) + int(row.amount)
        if chain is Chain.BTC:
            view.btc_outputs.append((row.txid, row.position, row.address, int(row.amount)))
    for code in ASSETS[chain]:
        account = conn.execute(
            select(ledger_account.c.debits_posted, ledger_account.c.credits_posted).where(
                ledger_account.c.code == f"wallet:{chain.value}-hot:{code}"
            )
        ).first()
        view.hot_ledger[code] = (
            0 if account is None else int(account.debits_posted) - int(account.credits_posted)
        )
    known = {hot_addresses[chain]} if chain in hot_addresses else set()
    known |= set(
        conn.execute(
            select(payout_nonce.c.address).where(payout_nonce.c.chain == chain.value)
        ).scalars()
    )
    by_key = {match_key(chain, address): address for address in sorted(known)}
    view.hot_addresses = sorted(by_key.values())
    if chain is Chain.BTC:
        view.hot_utxos = [
            (row.txid, row.vout, int(row.value))
            for row in conn.execute(
                select(btc_hot_utxo.c.txid, btc_hot_utxo.c.vout, btc_hot_utxo.c.value).where(
                    btc_hot_utxo.c.status.in_(("available", "reserved"))
                )
            )
        ]
    lines = (
        select(
            payout_request.c.id,
            payout_tx.c.txid,
            payout_request.c.asset,
            payout_tx_line.c.amount_native,
            payout_tx.c.block_number,
            payout_tx.c.block_hash,
            payout_tx_line.c.destination,
        )
        .select_from(
            payout_tx_line.join(payout_tx, payout_tx.c.id == payout_tx_line.c.tx_id).join(
                payout_request, payout_request.c.id == payout_tx_line.c.request_id
            )
        )
        .where(
            payout_tx.c.chain == chain.value,
            payout_tx.c.status == "confirmed",
            payout_request.c.status == "confirmed",
        )
    )
    for row in conn.execution_options(yield_per=_BATCH).execute(lines):
        view.payouts.append(
            (
                str(row.id),
                row.txid,
                row.asset,
                int(row.amount_native),
                int(row.block_number or -1),
                row.block_hash or "",
                row.destination,
            )
        )
    return view


def observe(reader: ChainReader, view: ChainView, progress: Progress = quiet) -> ChainSeen:
    seen = ChainSeen()
    chain = view.chain
    progress(f"chains: {chain.value}: {len(view.addresses)} deposit addresses")
    if chain is Chain.BTC:
        for txid, vout, _address, _amount in view.btc_outputs:
            seen.btc_unspent[(txid, vout)] = reader.unspent(txid, vout)
        seen.hot["BTC"] = sum(
            reader.unspent(txid, vout) or 0 for txid, vout, _value in view.hot_utxos
        )
    else:
        for count, address in enumerate(view.addresses, 1):
            held = reader.holdings(address, ASSETS[chain], view.height)
            if held is not None:
                seen.addresses[address] = held
            if count % 1000 == 0:
                progress(f"chains: {chain.value}: {count:,} addresses read")
        for address in view.hot_addresses:
            held = reader.holdings(address, ASSETS[chain], view.final_height)
            for code, amount in (held or {}).items():
                seen.hot[code] = seen.hot.get(code, 0) + amount
    blocks: dict[int, list[ChainTransfer] | None] = {}
    for request_id, txid, _asset, _amount, height, block_hash, destination in view.payouts:
        if height not in blocks:
            watched = frozenset(match_key(chain, p[6]) for p in view.payouts if p[4] == height)
            blocks[height] = reader.transfers(height, block_hash, watched)
        found = blocks[height]
        seen.payouts[(request_id, txid)] = (
            None
            if found is None
            else [
                t
                for t in found
                if _same_tx(t.txid, txid)
                and match_key(chain, t.to_address) == match_key(chain, destination)
            ]
        )
    return seen


def _same_tx(a: str, b: str) -> bool:
    return a.lower().removeprefix("0x") == b.lower().removeprefix("0x")


def compare(view: ChainView, seen: ChainSeen, found: Findings) -> None:
    chain = view.chain.value
    for address, recorded in sorted(view.addresses.items()):
        on_chain = seen.addresses.get(address)
        if on_chain is None:
            continue
        for code, expected in sorted(recorded.items()):
            actual = on_chain.get(code, 0)
            if actual == expected:
                continue
            cls = (
                BreakClass.DEPOSIT_MISSED if actual > expected else BreakClass.DEPOSIT_NOT_ON_CHAIN
            )
            found.add(
                Break(
                    cls,
                    address,
                    f"deposit address {address} holds {actual} {code} minor units at height "
                    f"{view.height}; Kassa recorded deposits of {expected} there",
                    chain=chain,
                    asset=code,
                    expected=expected,
                    actual=actual,
                )
            )
    for txid, vout, address, amount in view.btc_outputs:
        value = seen.btc_unspent.get((txid, vout))
        if value != amount:
            found.add(
                Break(
                    BreakClass.DEPOSIT_NOT_ON_CHAIN,
                    f"{txid}:{vout}",
                    f"BTC deposit {txid}:{vout} to {address} of {amount} sat is "
                    + ("not an unspent output on chain" if value is None else f"{value} sat"),
                    chain=chain,
                    asset="BTC",
                    expected=amount,
                    actual=value or 0,
                )
            )
    if view.hot_addresses or view.hot_utxos:
        for code, expected in sorted(view.hot_ledger.items()):
            actual = seen.hot.get(code, 0)
            if actual != expected:
                found.add(
                    Break(
                        BreakClass.HOT_WALLET_MISMATCH,
                        ",".join(view.hot_addresses) or f"{chain}-hot",
                        f"the {chain} hot wallet holds {actual} {code} minor units on chain; the "
                        f"ledger's wallet:{chain}-hot:{code} says {expected}",
                        chain=chain,
                        asset=code,
                        expected=expected,
                        actual=actual,
                    )
                )
    for request_id, txid, code, amount, height, _hash, destination in view.payouts:
        transfers = seen.payouts.get((request_id, txid))
        paid = sum(t.amount for t in transfers or () if t.asset == code and t.success)
        if not transfers:
            found.add(
                Break(
                    BreakClass.PAYOUT_NOT_ON_CHAIN,
                    request_id,
                    f"confirmed payout {request_id}: transaction {txid} paying {destination} is "
                    f"not in block {height} of the chain",
                    chain=chain,
                    asset=code,
                    expected=amount,
                    actual=0,
                )
            )
        elif paid != amount:
            found.add(
                Break(
                    BreakClass.PAYOUT_MISMATCH,
                    request_id,
                    f"confirmed payout {request_id}: transaction {txid} paid {paid} {code} minor "
                    f"units to {destination}; the record says {amount}",
                    chain=chain,
                    asset=code,
                    expected=amount,
                    actual=paid,
                )
            )
    found.checked.add((Leg.CHAINS, chain))
