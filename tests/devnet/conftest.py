"""Session-scoped real chain nodes for the devnet tests (see `kassa.devnet.testing`).

Each fixture starts one node on a free 127.0.0.1 port in a session temp dir and stops it by pid
at the end of the session. The TRON fixture skips while the simulator package does not exist yet.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kassa.devnet import tron_node
from kassa.devnet.testing import (
    BitcoinNode,
    GanacheNode,
    TronNode,
    start_bitcoin_node,
    start_ganache_node,
    start_tron_node,
)


@pytest.fixture(scope="session")
def ganache_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GanacheNode]:
    with start_ganache_node(tmp_path_factory.mktemp("ganache")) as node:
        yield node


@pytest.fixture(scope="session")
def bitcoin_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BitcoinNode]:
    with start_bitcoin_node(tmp_path_factory.mktemp("bitcoin")) as node:
        yield node


@pytest.fixture(scope="session")
def tron_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TronNode]:
    if not tron_node.simulator_available():
        pytest.skip("the TRON simulator (kassa.devnet.tron) has not landed yet")
    with start_tron_node(tmp_path_factory.mktemp("tron")) as node:
        yield node
