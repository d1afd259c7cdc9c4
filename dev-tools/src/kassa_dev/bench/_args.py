"""Argument types shared by the benchmarks' command lines."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from kassa.chains.network import Chain

CHAINS = (Chain.BTC, Chain.ETH, Chain.TRON)


def at_least(minimum: int) -> Callable[[str], int]:
    """An integer argument of at least ``minimum``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value

    return parse


def chains(text: str) -> tuple[Chain, ...]:
    """A comma-separated list of chains, in Kassa's order (btc, eth, tron)."""
    try:
        chosen = {Chain(name.strip().lower()) for name in text.split(",") if name.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"chains are btc, eth and tron; got {text!r}") from None
    if not chosen:
        raise argparse.ArgumentTypeError("name at least one chain")
    return tuple(chain for chain in CHAINS if chain in chosen)
