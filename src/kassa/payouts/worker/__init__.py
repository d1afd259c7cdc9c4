"""The payout worker, one module per stage of a payout: `loop` (the round; start there),
`claims`, `execution` (claim, price, check funds, sign, broadcast a batch), `pricing`,
`signing`, `broadcast`, `inflight`, `settlement`, and what they share (`context`,
`transactions`, `report`)."""

from kassa.payouts.worker.context import CRASH_ENV, CRASH_POINTS, WorkerConflict
from kassa.payouts.worker.loop import PayoutWorker
from kassa.payouts.worker.report import RoundReport

__all__ = ["CRASH_ENV", "CRASH_POINTS", "PayoutWorker", "RoundReport", "WorkerConflict"]
