"""Pricing at execution: the fee the chain asks now, and whether the committed payout still goes.

A request commits its figures when it is made (issue 14, binding quotes): the rate, the network
fee charged, the net USD and the **net coins**. The worker never re-prices them: the destination
receives exactly ``net_native``. What the chain asks now is this payout's share of the rail's
estimate, valued at a payout-time rate lock of the fee asset; the house pays it, and settlement
books the difference between the fee charged and the fee paid on ``house:network-fees:USD``.

A fee that rose past ``[payouts.quotes] fee_wait_percent`` of the quoted fee (compared in the fee
asset, so a moving rate does not trigger it) is not paid silently: the payout waits with that
reason until an operator approves paying it at the house's cost (``fee_approved_by``) or rejects
the request (the funds return). It is tried again every ``retry_seconds`` meanwhile, so a spike
that passes lets it go without anyone.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from kassa.assets import fee_asset_of
from kassa.money import Asset, Money
from kassa.payouts.model import FEE_ABOVE_QUOTE
from kassa.payouts.rails.base import FeeEstimate
from kassa.payouts.worker.claims import Job
from kassa.payouts.worker.context import WorkerContext
from kassa.pricing.locks import RateLock
from kassa.pricing.locks import Side as RateSide
from kassa.pricing.service import PricingService


@dataclass(frozen=True, slots=True)
class Priced:
    """A job with the fee measured at execution; its payout is the committed one."""

    job: Job
    fee_share: Money
    """This payout's share of the fee the chain asks now (fee asset)."""
    fee_usd: Money
    """That share at the payout-time rate: what the house pays."""
    execution_lock: RateLock

    @property
    def net_native(self) -> Money:
        return self.job.net_native


def price(
    ctx: WorkerContext,
    pricing: PricingService,
    jobs: Sequence[Job],
    estimate: FeeEstimate,
    coin: Asset,
) -> tuple[list[Priced], dict[uuid.UUID, str]]:
    """Each job with its share of the estimated fee at a payout-time rate; and, for the jobs
    whose fee rose past the configured factor without an operator's approval, why they wait."""
    fee_asset = fee_asset_of(coin)
    shares = [estimate.share(i, len(jobs)) for i in range(len(jobs))]
    with ctx.unit() as conn:
        now = ctx.clock.now(conn)
    # A lock per attempt and ten minutes: a payout that waited (hot wallet short, node
    # down) is priced at a rate of now, not of its first try, without a new lock per retry.
    bucket = now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0)
    priced: list[Priced] = []
    waiting: dict[uuid.UUID, str] = {}
    for job, share in zip(jobs, shares, strict=True):
        reason = fee_wait_reason(job, share, ctx.settings.quotes.fee_wait_percent)
        if reason is not None:
            waiting[job.id] = reason
            continue
        execution_lock = pricing.lock(
            purpose=f"payout:{job.id}:execution:{job.attempts + 1}:{bucket:%Y%m%dT%H%M}",
            asset=fee_asset.code,
            side=RateSide.ASK,
            at=now,
        )
        fee_usd = execution_lock.usd_charge_for(share)
        priced.append(Priced(job, share, fee_usd, execution_lock))
    return priced, waiting


def fee_wait_reason(job: Job, share: Money, percent: int) -> str | None:
    """Why ``job`` may not pay ``share`` without an operator, or None when it may."""
    if job.fee_approved_by is not None:
        return None
    return fee_wait_reason_for(job.quoted_fee, share, percent)


def fee_wait_reason_for(quoted: Money | None, share: Money, percent: int) -> str | None:
    """Why a payout quoted at ``quoted`` may not pay ``share`` without an operator (more than
    ``percent`` % of the quote), or None when it may."""
    if quoted is None:
        return None
    if share.amount * 100 <= quoted.amount * percent:
        return None
    code = share.asset.code
    return (
        f"{FEE_ABOVE_QUOTE}: the chain asks {share.format()} {code}, more than {percent}% of "
        f"the quoted {quoted.format()} {code}; an operator may approve paying it at the "
        "house's cost, or reject the request (the funds return)"
    )
