"""What the product offers to tools installed beside it, and how it finds them.

Kassa's development tools (the local chains, their faucet, the scenario clock, the benchmarks)
are a separate distribution, ``kassa-dev`` (``dev-tools/`` in the repository), that depends on
Kassa and never the other way round. The product finds them through two entry-point groups:

* ``kassa.cli`` — each entry point is a typer app, added as the command group ``kassa <name>``,
  or a function, added as the command ``kassa <name>`` (``kassa-dev`` adds the groups ``devnet``
  and ``bench``; `kassa.cli.add_commands` loads them);
* ``kassa.devnet`` — one entry point, a zero-argument factory of a `Devnet`: what
  ``devnet = true`` needs (start the local chains, fill their endpoints and development keys into
  the settings, fund the payout hot wallets, the scenario clock).

Without ``kassa-dev`` installed the product still runs on real networks (``devnet = false``); a
devnet setting then fails at start-up with `DevnetUnavailable`, saying what to install.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from kassa.clock import Clock
    from kassa.config import Settings

COMMANDS_GROUP = "kassa.cli"
DEVNET_GROUP = "kassa.devnet"

Echo = Callable[[str], None]


class DevnetUnavailable(RuntimeError):
    """``devnet = true`` but the local chains cannot be had: the development tools are not
    installed, or the chains did not start (the message says which, and why)."""


class Devnet(Protocol):
    """The local chains as the product sees them."""

    def up(self, settings: Settings, echo: Echo) -> None:
        """Start the local chains if they are not running (installing their tools the first
        time); raise `DevnetUnavailable` with the reason when they do not start."""
        ...

    def connect(self, settings: Settings, echo: Echo, *, hot_wallets: bool = False) -> Settings:
        """`settings` with the running chains' node URLs, token contracts and development
        deposit keys filled in wherever nothing is configured; with ``hot_wallets``, also the
        payout hot wallets (created and funded from the faucet on the first run) unlocked."""
        ...

    def clock(self) -> Clock:
        """The scenario clock: the database clock plus an offset an operator may move."""
        ...


def devnet() -> Devnet:
    """The installed development tools' `Devnet`, or `DevnetUnavailable` saying what to do."""
    found = list(entry_points(group=DEVNET_GROUP))
    if not found:
        raise DevnetUnavailable(
            "devnet = true needs Kassa's development tools (the kassa-dev package in this "
            "repository's dev-tools/, installed by ./dev setup); on real networks set "
            "devnet = false (KASSA_DEVNET=false)"
        )
    if len(found) > 1:
        names = ", ".join(sorted(f"{point.name} ({point.value})" for point in found))
        raise DevnetUnavailable(f"more than one devnet is installed: {names}")
    factory: Callable[[], Devnet] = found[0].load()
    return factory()
