"""A watcher far behind its node says how far it got, how fast, and how long is left; the
watcher itself logs it (the kill test in test_watch_resilience.py reads it from a real
`kassa watch`). Here the clock is a fake, so the figures are exact."""

from __future__ import annotations

import logging

import pytest

from kassa.chains.network import Chain
from kassa.deposits.progress import Backfill, duration_text


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backfill_lines_show_blocks_rate_and_time_left(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kassa.deposits.progress")
    ticks = Ticks()
    backfill = Backfill(Chain.BTC, start=999, target=10_999, every_seconds=10, monotonic=ticks)

    ticks.now += 5
    assert not backfill.note(1_249, head=10_999)  # the first batch always says so
    ticks.now += 5
    assert not backfill.note(1_499, head=10_999)  # within 10 s of the last line: quiet
    ticks.now += 15
    assert not backfill.note(2_499, head=11_999)  # the node moved on: the target too
    ticks.now += 40
    assert backfill.note(11_999, head=11_999)

    assert [r.getMessage() for r in caplog.records] == [
        "btc backfill: 10000 block(s) behind the node (scanned 999, head 10999)",
        "btc backfill: block 1249 of 10999, 250 of 10000 (2 %), 50.0 blocks/s, about 3m15s left",
        "btc backfill: block 2499 of 11999, 1500 of 11000 (13 %), 60.0 blocks/s, about 2m38s left",
        "btc backfill done: 11000 block(s) in 1m05s",
    ]


def test_durations_read_at_a_glance() -> None:
    assert [duration_text(s) for s in (0, 42.9, 187, 18_120)] == ["0s", "42s", "3m07s", "5h02m"]
