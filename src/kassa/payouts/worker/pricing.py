"""Pricing at execution: the fee the chain asks now, valued at a payout-time rate.

A request was priced when it was made, with a quoted network fee. When the worker pays it, the
rail estimates the real fee (shared over a batch); each payout's share is valued at a payout-time
rate lock of the fee asset and the net amount is re-priced the way the policy charges the fee
(``fee_charge``, ``flat_fee_usd``). A payout the fee would leave with nothing is refused here;
one below the chain's dust limit is refused by the execution that follows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from kassa.assets import fee_asset_of
from kassa.money import Asset, Money
from kassa.payouts.rails.base import FeeEstimate
from kassa.payouts.requests import rate_facts
from kassa.payouts.worker.claims import Job
from kassa.payouts.worker.context import WorkerContext
from kassa.policy import NetworkFee, payout
from kassa.pricing.locks import RateLock, get_lock
from kassa.pricing.locks import Side as RateSide
from kassa.pricing.service import PricingService


@dataclass(frozen=True, slots=True)
class Priced:
    """A job re-priced with the fee measured at execution."""

    job: Job
    fee_share: Money
    fee_usd: Money
    fee_charged_usd: Money
    net_usd: Money
    net_native: Money
    execution_lock: RateLock


def price(
    ctx: WorkerContext,
    pricing: PricingService,
    jobs: Sequence[Job],
    estimate: FeeEstimate,
    coin: Asset,
) -> tuple[list[Priced], dict[uuid.UUID, str]]:
    """Re-price each job with its share of the estimated fee at a payout-time rate; return the
    priced ones and, for the others, why nothing would be left to pay."""
    fee_asset = fee_asset_of(coin)
    shares = [estimate.share(i, len(jobs)) for i in range(len(jobs))]
    priced: list[Priced] = []
    refused: dict[uuid.UUID, str] = {}
    with ctx.unit() as conn:
        now = ctx.clock.now(conn)
        request_locks = {job.id: get_lock(conn, job.rate_lock_id) for job in jobs}
    # A lock per attempt and ten minutes: a payout that waited (hot wallet short, node
    # down) is priced at a rate of now, not of its first try, without a new lock per retry.
    bucket = now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0)
    for job, share in zip(jobs, shares, strict=True):
        execution_lock = pricing.lock(
            purpose=f"payout:{job.id}:execution:{job.attempts + 1}:{bucket:%Y%m%dT%H%M}",
            asset=fee_asset.code,
            side=RateSide.ASK,
            at=now,
        )
        fee = NetworkFee(amount=share, rate=rate_facts(execution_lock, fee_asset))
        paid = payout(
            job.gross_usd - job.fees_usd,
            rate_facts(request_locks[job.id], coin),
            fee,
            job.fee_charge,
            job.flat_fee_usd,
        )
        if not paid.net_native.is_positive:
            refused[job.id] = (
                f"the network fee of {share.format()} {fee_asset.code} "
                f"({paid.network_fee_usd.format()} USD) leaves nothing to pay out"
            )
            continue
        priced.append(
            Priced(
                job=job,
                fee_share=share,
                fee_usd=paid.network_fee_usd,
                fee_charged_usd=paid.network_fee_charged_usd,
                net_usd=paid.net_usd,
                net_native=paid.net_native,
                execution_lock=execution_lock,
            )
        )
    return priced, refused
