"""The measured block range: which watched addresses get paid, in which blocks, and the funding.

Layout of `blocks` blocks after the tip found at the start: every other block (offsets 0, 2, 4,
…) carries `per_block` deposits, the others are empty; then, where the chain's finality needs
it (TRON's solidified block trails the head by 19), more empty blocks until the last deposit
is final. The watcher and the raw fetch both read exactly this range, start to end.

The paid addresses are a seeded random sample of all watched ones, each paid once, and the
amounts are seeded random integers in minor units; assets rotate through the chain's own
(BTC; ETH and USDT-ERC20; TRX and USDT-TRC20).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kassa.chains.network import Chain
from kassa.money import Money
from kassa_dev.bench._progress import Heartbeat, Progress
from kassa_dev.bench._watch_model import PaidDeposit, Payment, WatchBenchError
from kassa_dev.bench._watch_nodes import AMOUNT_RANGES, ASSETS, LocalChain


@dataclass(frozen=True, slots=True)
class FundedRange:
    start: int
    """First block of the range (the tip at the start plus one)."""
    end: int
    """Last block: the tip once every deposit is final."""
    deposits: tuple[PaidDeposit, ...]
    funded_blocks: int
    seconds: float

    @property
    def blocks(self) -> int:
        return self.end - self.start + 1


def funded_offsets(blocks: int) -> list[int]:
    """Offsets (from the range start) of the blocks that carry deposits."""
    return list(range(0, blocks, 2))


def plan(
    chain: Chain, addresses: Sequence[str], blocks: int, per_block: int, seed: int
) -> list[list[Payment]]:
    """Per block offset, the payments it carries (an empty list for an empty block)."""
    funded = funded_offsets(blocks)
    count = len(funded) * per_block
    if count > len(addresses):
        raise WatchBenchError(
            f"{count:,} deposits need as many watched addresses; there are {len(addresses):,}"
        )
    rng = random.Random(f"{seed}-{chain.value}")  # noqa: S311 - a load plan, not security
    paid = rng.sample(range(len(addresses)), count)
    assets = ASSETS[chain]
    layout: list[list[Payment]] = [[] for _ in range(blocks)]
    for number, index in enumerate(paid):
        coin = assets[number % len(assets)]
        low, high = AMOUNT_RANGES[coin.code]
        payment = Payment(addresses[index], Money(rng.randint(low, high), coin))
        layout[funded[number // per_block]].append(payment)
    return layout


def fund(
    node: LocalChain,
    layout: Sequence[Sequence[Payment]],
    final_height: Callable[[], int],
    progress: Progress,
    *,
    filler: int = 0,
    seed: int = 1,
) -> FundedRange:
    """Mine the planned blocks (plus empty ones until the last deposit is final); with
    `filler`, each planned block also carries that many unrelated transfers."""
    rng = random.Random(f"{seed}-{node.chain.value}-filler")  # noqa: S311 - random traffic
    heartbeat = Heartbeat()
    started = progress.elapsed_seconds
    node.prepare(sum(len(payments) for payments in layout))
    start = node.tip() + 1
    paid: list[PaidDeposit] = []
    for offset, payments in enumerate(layout):
        if filler:
            node.fill(filler, rng)
        if payments:
            landed = node.pay_block(payments)
            if {deposit.height for deposit in landed} != {start + offset}:
                raise WatchBenchError(
                    f"{node.chain}: block {start + offset} was expected to hold the payments; "
                    f"they landed in {sorted({d.height for d in landed})} (is something else "
                    "mining on this node?)"
                )
            paid += landed
        else:
            node.mine_empty(1)
        if heartbeat.due():
            progress.heartbeat(
                f"{node.chain}: mined {offset + 1}/{len(layout)} blocks, {len(paid):,} deposits"
            )
    last = max((deposit.height for deposit in paid), default=start)
    while (final := final_height()) < last:
        node.mine_empty(last - final)
    end = node.tip()
    return FundedRange(
        start=start,
        end=end,
        deposits=tuple(paid),
        funded_blocks=sum(1 for payments in layout if payments),
        seconds=progress.elapsed_seconds - started,
    )
