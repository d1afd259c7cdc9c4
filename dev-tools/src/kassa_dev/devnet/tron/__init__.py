"""Kassa's own simulator of a java-tron full node's HTTP API, for tests and the demo.

No java-tron node can run here, so the simulator is a real test peer rather than a mock: it
verifies transactions as a node does (txID = sha256 of the protobuf raw data, the signature
recovers to the owner, TAPOS, expiration, duplicates, balances), charges bandwidth and energy,
runs a built-in TRC-20 USDT contract, produces blocks on a timer or on demand, and serves
java-tron's JSON shapes so tronpy and hand-written httpx clients work against it unchanged.

Modules, bottom up: `codec` (addresses, hashes), `wire` (protobuf encoding), `transactions`
(JSON and protobuf forms, signatures), `state` (accounts, token storage), `usdt` (the
contract), `execution` (validation and fees), `blocks` (blocks, receipts, their JSON), `chain`
(pool, blocks, finality, rollback, timer), `persistence` (the state file), `api` (the FastAPI
app) and `__main__` (the command line).

Run it with `python -m kassa_dev.devnet.tron --port 8090`, or in-process with
`create_app(DevnetConfig(...))` and `httpx.ASGITransport`.
"""

from typing import TYPE_CHECKING

from kassa_dev.devnet.tron.config import DEFAULT_GENESIS_KEY_HEX, DevnetConfig, FeeSchedule

if TYPE_CHECKING:
    from kassa_dev.devnet.tron.api import create_app

__all__ = ["DEFAULT_GENESIS_KEY_HEX", "DevnetConfig", "FeeSchedule", "create_app"]


def __getattr__(name: str) -> object:
    # The app (FastAPI and uvicorn) loads on first use: `kassa devnet` reads the
    # genesis key from `config` and should not pay for the whole server to do so.
    if name == "create_app":
        from kassa_dev.devnet.tron.api import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
