"""Metrics of the chain nodes (``chain_node``, written by the watchers; `kassa.deposits.nodes`).

Registered by one line in `kassa.api.metrics`'s state collector; kept here so node failover
stays in one place. Every node of a chain with several ``rpc_urls`` gets its state (one series
per state, 1 for the current one, as Prometheus enums go), tip, last round trip and failures
in a row, labelled by chain, priority and URL (without credentials).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Connection

from kassa.chains.failover import NodeState
from kassa.deposits.nodes import node_status

_LABELS = ("chain", "priority", "url")


def chain_node_metrics(conn: Connection) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "kassa_chain_node_state",
        "1 for the node's current state (active, standby, behind, down)",
        labels=(*_LABELS, "state"),
    )
    height = GaugeMetricFamily(
        "kassa_chain_node_height", "The node's tip when last asked", labels=_LABELS
    )
    latency = GaugeMetricFamily(
        "kassa_chain_node_latency_seconds", "The node's last answer's round trip", labels=_LABELS
    )
    errors = GaugeMetricFamily(
        "kassa_chain_node_errors", "The node's failed requests in a row", labels=_LABELS
    )
    for node in node_status(conn):
        labels = [node.chain.value, str(node.priority), node.url]
        for possible in NodeState:
            state.add_metric([*labels, possible.value], 1.0 if node.state == possible else 0.0)
        errors.add_metric(labels, float(node.errors))
        if node.height is not None:
            height.add_metric(labels, float(node.height))
        if node.latency_ms is not None:
            latency.add_metric(labels, node.latency_ms / 1000)
    yield from (state, height, latency, errors)
