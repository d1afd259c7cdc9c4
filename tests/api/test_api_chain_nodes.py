"""Each node of a chain with several (issue 18) in GET /v1/health and in the metrics: a real
`NodeSet` over two scanners — one answering, one failing — records its health through the
watcher's `NodeRecorder`, and the API shows it without credentials."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tests.api.test_api_metrics import scrape, value

from kassa.chains.failover import ChainNode, NodeSet
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainBlock, ChainHead
from kassa.deposits.nodes import NodeRecorder

if TYPE_CHECKING:
    from tests.api.conftest import Api


class Answering:
    chain = Chain.BTC

    def head(self) -> ChainHead:
        return ChainHead(120, "ab" * 32, 120)

    def block_hash(self, height: int) -> str | None:
        return "ab" * 32

    def block(self, height: int, watched: frozenset[str]) -> ChainBlock:
        return ChainBlock(height, "ab" * 32, "cd" * 32, datetime.now(UTC), ())


class Refusing(Answering):
    def head(self) -> ChainHead:
        raise ConnectionError("connection refused")


def test_health_and_metrics_show_each_node(api: Api) -> None:
    nodes = NodeSet(
        Chain.BTC,
        [
            ChainNode("http://kassa:s3cret@primary.example:8332/", Refusing()),
            ChainNode("http://secondary.example:8332/", Answering()),
        ],
        floor=lambda: 100,
        on_health=NodeRecorder(api.db, Chain.BTC),
    )
    assert nodes.head().height == 120

    body = api.get("/v1/health").json()
    primary, secondary = body["nodes"]
    assert {k: primary[k] for k in ("chain", "priority", "url", "state", "errors")} == {
        "chain": "btc",
        "priority": 0,
        "url": "http://primary.example:8332/",
        "state": "down",
        "errors": 1,
    }
    assert primary["last_error"] == "ConnectionError: connection refused"
    assert (secondary["state"], secondary["height"], secondary["errors"]) == ("active", 120, 0)
    assert "s3cret" not in str(body)

    series = scrape(api.client)
    labels = {"chain": "btc", "priority": "0", "url": "http://primary.example:8332/"}
    assert value(series, "kassa_chain_node_state", **labels, state="down") == 1
    assert value(series, "kassa_chain_node_state", **labels, state="active") == 0
    assert value(series, "kassa_chain_node_errors", **labels) == 1
    second = {**labels, "priority": "1", "url": "http://secondary.example:8332/"}
    assert value(series, "kassa_chain_node_height", **second) == 120
    assert value(series, "kassa_chain_node_state", **second, state="active") == 1


class QuotingTheUrl(Answering):
    def head(self) -> ChainHead:
        raise ConnectionError("cannot reach http://kassa:s3cret@primary.example:8332/")


def test_a_node_error_quoting_its_url_shows_no_credentials() -> None:
    nodes = NodeSet(
        Chain.BTC,
        [
            ChainNode("http://kassa:s3cret@primary.example:8332/", QuotingTheUrl()),
            ChainNode("http://secondary.example:8332/", Answering()),
        ],
        floor=lambda: 100,
    )
    nodes.head()
    [down, _] = nodes.health()
    assert down.last_error == "ConnectionError: cannot reach http://primary.example:8332/"
