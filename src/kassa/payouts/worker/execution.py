"""Executing approved payouts: claim them, measure the fee the chain asks, check the hot
wallet, sign and store, broadcast. The coins sent are the request's committed ``net_native``.

Claimed requests are grouped by asset, and — for BTC with batching — into batches of up to
``max_batch`` paid by one transaction; every other payout is a transaction of its own. For each
batch: renew the lease, estimate the fee from the chain, price it (`pricing.price`; a fee
risen past the configured factor waits for an operator), fail cleanly what is below the
chain's dust limit, check the hot wallet (short: the payout
*waits* with the reason, it never fails for it), then sign and store (`signing.sign_and_store`)
and only then broadcast. A node down or a rate missing makes the batch wait; an unexpected error
is logged and the claim lapses, so the next round tries again.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Mapping

from kassa.assets import Chain, chain_of
from kassa.money import AssetCode
from kassa.payouts.rails.base import (
    HotWalletShort,
    PayoutLine,
    PayoutNotSendable,
    Rail,
    RailUnavailable,
)
from kassa.payouts.worker import claims
from kassa.payouts.worker.broadcast import broadcast
from kassa.payouts.worker.claims import Job
from kassa.payouts.worker.context import WorkerContext
from kassa.payouts.worker.pricing import Priced, price
from kassa.payouts.worker.report import RoundReport
from kassa.payouts.worker.settlement import fail_unsent
from kassa.payouts.worker.signing import sign_and_store
from kassa.pricing.errors import NoRate
from kassa.pricing.service import PricingService
from kassa.telemetry.logs import bound

log = logging.getLogger(__name__)


def execute_approved(
    ctx: WorkerContext,
    pricing: PricingService,
    rails: Mapping[Chain, Rail],
    report: RoundReport,
    stop: threading.Event | None = None,
) -> None:
    """Claim and pay; once ``stop`` is set, start no further batch (their claims stay until
    the worker releases them on its way out)."""
    if stop is not None and stop.is_set():
        return
    jobs = claims.claim(ctx)
    if not jobs:
        return
    groups: dict[AssetCode, list[Job]] = defaultdict(list)
    for job in jobs:
        groups[job.coin.code].append(job)
    for code, group in groups.items():
        rail = rails.get(chain_of(code))
        if rail is None:
            report.waiting |= claims.release(
                ctx, group, f"payouts on {chain_of(code).display_name} are not set up"
            )
            continue
        for batch in _batches(ctx, rail, group):
            if stop is not None and stop.is_set():
                return
            batch = claims.renew(ctx, batch)
            if not batch:
                continue
            try:
                with bound(payout=",".join(str(job.id) for job in batch)):
                    _execute(ctx, pricing, rail, batch, report)
            except Exception as error:  # the claim lapses; the next round tries again
                log.exception("payouts %s could not be executed", [j.id for j in batch])
                report.errors.append(
                    f"{', '.join(str(j.id) for j in batch)}: {type(error).__name__}: {error}"
                )


def _batches(ctx: WorkerContext, rail: Rail, jobs: list[Job]) -> list[list[Job]]:
    btc = ctx.settings.btc
    if rail.chain is Chain.BTC and btc.batching:
        size = btc.max_batch
        return [jobs[i : i + size] for i in range(0, len(jobs), size)]
    return [[job] for job in jobs]


def _execute(
    ctx: WorkerContext,
    pricing: PricingService,
    rail: Rail,
    jobs: list[Job],
    report: RoundReport,
) -> None:
    coin = jobs[0].coin
    provisional = [PayoutLine(job.id, job.destination, job.net_native) for job in jobs]
    try:
        estimate = rail.estimate(coin, provisional)
        priced, waiting = price(ctx, pricing, jobs, estimate, coin)
    except (RailUnavailable, NoRate, HotWalletShort) as error:
        report.waiting |= claims.release(ctx, jobs, str(error))
        return
    except PayoutNotSendable as refused_error:
        for job in jobs:
            fail_unsent(ctx, job.id, refused_error.detail, report)
        return
    for job in jobs:
        if job.id in waiting:
            report.waiting |= claims.release(ctx, [job], waiting[job.id])
    sendable: list[Priced] = []
    for item in priced:
        dust = rail.dust_limit(coin, item.job.destination)
        if item.net_native < dust:
            fail_unsent(
                ctx,
                item.job.id,
                f"the committed {item.net_native.format()} {coin.code} is below the chain's "
                f"dust limit of {dust.format()} {coin.code}",
                report,
            )
        else:
            sendable.append(item)
    if not sendable:
        return
    if len(sendable) != len(jobs):
        # The fee was shared over more payouts than remain: price the rest again.
        _execute(ctx, pricing, rail, [item.job for item in sendable], report)
        return
    lines = [PayoutLine(p.job.id, p.job.destination, p.net_native) for p in sendable]
    try:
        with ctx.unit() as conn:
            rail.check_funds(conn, coin, lines)
    except HotWalletShort as short:
        report.waiting |= claims.release(ctx, jobs, short.detail)
        return
    except RailUnavailable as error:
        report.waiting |= claims.release(ctx, jobs, str(error))
        return
    try:
        stored = sign_and_store(ctx, rail, coin, sendable, lines, estimate)
    except HotWalletShort as short:
        report.waiting |= claims.release(ctx, jobs, short.detail)
        return
    except RailUnavailable as error:
        report.waiting |= claims.release(ctx, jobs, str(error))
        return
    except PayoutNotSendable as refused_error:
        for item in sendable:
            fail_unsent(ctx, item.job.id, refused_error.detail, report)
        return
    if stored is None:  # lost the claim meanwhile (lease lapsed, cancelled): nothing signed
        return
    report.signed.extend(item.job.id for item in sendable)
    ctx.crash("after_sign")
    broadcast(ctx, rail, stored, report)
