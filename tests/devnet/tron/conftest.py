"""Harness for the TRON simulator tests: tronpy itself drives the simulator.

Two ways in, both through the real HTTP API:
- `run_devnet(scenario)`: a fresh app in-process, `AsyncTron` over `httpx.ASGITransport` (no
  socket, no lifespan, so blocks come only from `/debug/mine`). pytest-asyncio is not installed,
  so each test runs its `async def scenario(devnet)` with `asyncio.run`.
- `serve_devnet(config)`: the app under uvicorn on a free 127.0.0.1 port in a thread, for the
  sync `Tron(HTTPProvider(...))` and the block timer; tests using it are marked `chain`.

Test modules import the helper classes under `TYPE_CHECKING` only (pytest imports conftest
modules itself, and several share that name).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tronpy import AsyncTron, Tron
from tronpy.async_contract import AsyncContract
from tronpy.keys import PrivateKey
from tronpy.providers import HTTPProvider
from tronpy.providers.async_http import AsyncHTTPProvider

from kassa_dev.devnet.tron import DEFAULT_GENESIS_KEY_HEX, DevnetConfig, create_app
from kassa_dev.devnet.tron.chain import TronChain

GENESIS_KEY = PrivateKey(bytes.fromhex(DEFAULT_GENESIS_KEY_HEX))
GENESIS = GENESIS_KEY.public_key.to_base58check_address()

# Only the functions the tests call; the devnet serves the full ABI through getcontract.
TRC20_ABI: list[dict[str, Any]] = [
    {
        "name": "transfer",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "name": "balanceOf",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "who", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]


def account_key(label: str) -> Any:
    """A deterministic tronpy PrivateKey for a named test account."""
    return PrivateKey(hashlib.sha256(f"kassa-tron-test:{label}".encode()).digest())


def address_of(key: Any) -> str:
    return str(key.public_key.to_base58check_address())


class Accounts:
    """Keys for the tests: the genesis account (all TRX and USDT at block 0) and named others."""

    genesis_key: Any = GENESIS_KEY
    genesis: str = GENESIS

    @staticmethod
    def key(label: str) -> Any:
        return account_key(label)

    @staticmethod
    def address(key: Any) -> str:
        return address_of(key)

    def new(self, label: str) -> tuple[Any, str]:
        key = account_key(label)
        return key, address_of(key)


@pytest.fixture
def accounts() -> Accounts:
    return Accounts()


def quiet_config(**overrides: Any) -> DevnetConfig:
    """Blocks only on demand (tests decide when a block happens)."""
    return DevnetConfig(block_interval=0, **overrides)


class AsyncDevnet:
    """An in-process simulator with an `AsyncTron` client and shortcuts for common steps."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.tron = AsyncTron(AsyncHTTPProvider("http://tron-devnet/", client=client))
        chain: TronChain = app.state.chain
        self.chain = chain
        self.usdt_address = chain.usdt.address.hex()

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.client.post(path, json=body or {})
        response.raise_for_status()
        return response.json()

    async def info(self) -> dict[str, Any]:
        response = await self.client.get("/debug/info")
        response.raise_for_status()
        info: dict[str, Any] = response.json()
        return info

    async def mine(self, blocks: int = 1, advance_seconds: float = 0) -> dict[str, Any]:
        answer: dict[str, Any] = await self.post(
            "/debug/mine", {"blocks": blocks, "advance_seconds": advance_seconds}
        )
        return answer

    async def usdt(self) -> AsyncContract:
        """The contract as tronpy loads it from the node (`getcontract`)."""
        return await self.tron.get_contract(self.usdt_address)

    async def sign_trx(self, key: Any, to: str, amount: int) -> Any:
        """An online-built, signed TRX transfer (not yet broadcast)."""
        built = await self.tron.trx.transfer(address_of(key), to, amount).build()
        return built.sign(key)

    async def sign_usdt(self, key: Any, to: str, amount: int, fee_limit: int = 40_000_000) -> Any:
        usdt = await self.usdt()
        builder = await usdt.functions.transfer(to, amount)
        built = await builder.with_owner(address_of(key)).fee_limit(fee_limit).build()
        return built.sign(key)

    async def settle(self, signed: Any) -> dict[str, Any]:
        """Broadcast, mine one block, return the transaction info."""
        sent = await signed.broadcast()
        await self.mine()
        info: dict[str, Any] = await sent.wait(timeout=2, interval=0.01)
        return info

    async def fund(self, to: str, *, sun: int = 0, usdt: int = 0) -> None:
        """Pay `to` from the genesis account with signed transactions, then mine."""
        if sun:
            await (await self.sign_trx(GENESIS_KEY, to, sun)).broadcast()
        if usdt:
            await (await self.sign_usdt(GENESIS_KEY, to, usdt)).broadcast()
        await self.mine()

    async def balance(self, address: str) -> int:
        """TRX balance in sun (0 for an account that does not exist)."""
        account = await self.post("/wallet/getaccount", {"address": address, "visible": True})
        return int(account.get("balance", 0))

    async def usdt_balance(self, address: str) -> int:
        usdt = await self.usdt()
        return int(await usdt.functions.balanceOf(address))


DevnetRunner = Callable[..., None]


@pytest.fixture
def run_devnet() -> DevnetRunner:
    def run(
        scenario: Callable[[AsyncDevnet], Awaitable[None]], config: DevnetConfig | None = None
    ) -> None:
        async def main() -> None:
            app = create_app(config or quiet_config())
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://tron-devnet") as c:
                await scenario(AsyncDevnet(app, c))

        asyncio.run(main())

    return run


@dataclass
class ServedDevnet:
    """The simulator under uvicorn, with a sync tronpy client."""

    url: str
    app: FastAPI
    tron: Any
    http: httpx.Client = field(repr=False)

    def mine(self, blocks: int = 1, advance_seconds: float = 0) -> dict[str, Any]:
        response = self.http.post(
            "/debug/mine", json={"blocks": blocks, "advance_seconds": advance_seconds}
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def info(self) -> dict[str, Any]:
        response = self.http.get("/debug/info")
        response.raise_for_status()
        info: dict[str, Any] = response.json()
        return info


@pytest.fixture
def serve_devnet() -> Iterator[Callable[[DevnetConfig], ServedDevnet]]:
    stops: list[Callable[[], None]] = []

    def serve(config: DevnetConfig) -> ServedDevnet:
        app = create_app(config)
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose `proto` says
        # TCP, and without it every request waits ~40 ms for a delayed ACK.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", ws="none", lifespan="on", access_log=False)
        )
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, name="tron-devnet", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the simulator did not start")
            time.sleep(0.01)
        url = f"http://127.0.0.1:{port}"
        tron = Tron(HTTPProvider(url + "/"))
        http = httpx.Client(base_url=url)

        def stop() -> None:
            tron.provider.sess.close()
            http.close()
            server.should_exit = True
            thread.join(timeout=10)
            listener.close()

        stops.append(stop)
        return ServedDevnet(url=url, app=app, tron=tron, http=http)

    yield serve
    for stop in reversed(stops):
        stop()
