"""`kassa devnet serve --chain X`: one local chain in the foreground, for a container.

`kassa devnet up` starts all three chains as background processes on this machine's loopback
and remembers them in ``<data_dir>/devnet/``. A container runs one process in the foreground
that other containers reach by name, so the compose file's ``devnet`` profile
(docker-compose.yml, deploy/devnet/Dockerfile) runs each chain with this command instead:

* ``eth``: ganache on ``--host``/``--port`` (chain id 1337, instamine, the deterministic
  development accounts), its chain in ``--state-dir``; TestUSDT is deployed by account 0 as the
  chain's first transaction, so its address is always `TEST_USDT_ERC20` (or reused when the
  chain was kept).
* ``btc``: bcoin regtest. Its launcher (tools/chains/bcoin-regtest.js) listens on loopback only,
  by design; this command runs it on a loopback port and relays ``--host``/``--port`` to it.
  The API key is the one Kassa reads, ``KASSA_CHAINS__BTC__RPC_API_KEY`` (or
  ``BCOIN_REGTEST_API_KEY``), so the two cannot disagree. The faucet's coins are mined at start.
* ``tron``: the TRON simulator, whose USDT contract is derived from its genesis key
  (`TEST_USDT_TRC20` with the default key).

Blocks come every ``--block-interval`` seconds (default: as `kassa devnet up` paces them).
SIGTERM (what `docker compose stop` sends) stops the chain and ends the command with 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from kassa.chains.network import Chain
from kassa_dev.devnet import bitcoin as btc
from kassa_dev.devnet import ganache, tron_node
from kassa_dev.devnet.processes import port_is_open
from kassa_dev.devnet.testing import free_port
from kassa_dev.devnet.tools import ensure_chain_tools

TEST_USDT_ERC20 = "0xe78A0F7E598Cc8b0Bb87894B0F60dD2a88d6a8Ab"
"""TestUSDT's address on a fresh devnet ganache: development account 0's first contract."""
TEST_USDT_TRC20 = "TXU9pPhaWPwnWg1eXmDomKpfcz9V4xDJmC"
"""The TRON simulator's USDT contract with its default genesis key."""
BTC_API_KEY_ENVS = ("KASSA_CHAINS__BTC__RPC_API_KEY", btc.API_KEY_ENV)
READY_SECONDS = 60.0
RELAY_CHUNK = 65536


class ServeError(Exception):
    pass


def serve(
    chain: Chain,
    host: str,
    port: int,
    state_dir: Path,
    echo: Callable[[str], None],
    *,
    block_interval: float,
) -> int:
    """Run `chain` until SIGTERM/SIGINT or until the node ends; the node's exit code.
    `block_interval`: seconds between blocks (0: ganache mines a block per transaction, bcoin
    only when asked)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    if chain is Chain.BTC:
        # Behind the relay, on a port the kernel says is free: a fixed offset from the public
        # port could already be taken, and `_wait_ready` would then take its listener for bcoin.
        inner = free_port()
        child = _start_bitcoin(inner, state_dir)
        _wait_ready(child, inner)
        rpc = btc.BitcoinRpc(f"http://127.0.0.1:{inner}", _btc_api_key())
        btc.bootstrap(rpc)
        stop = threading.Event()
        if block_interval > 0:
            threading.Thread(
                target=btc.mine_forever,
                args=(rpc, btc.faucet_key().address, block_interval, stop),
                daemon=True,
            ).start()
        # "ready" once the relay listens: a client that reads it may connect at once.
        ready = f"bitcoin regtest ready on {host}:{port} (relayed to 127.0.0.1:{inner})"
        try:
            return asyncio.run(_run(child, relay=(host, port, inner), ready=lambda: echo(ready)))
        finally:
            stop.set()
    if chain is Chain.ETH:
        ensure_chain_tools(echo=echo)
        argv = ganache.ganache_argv(
            port, block_time=int(block_interval) or None, db_path=state_dir / "ganache-db"
        )
        argv[argv.index("--host") + 1] = host
        (state_dir / "ganache-db").mkdir(exist_ok=True)
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)  # noqa: S603 - our tools
        _wait_ready(child, port)
        usdt = ganache.ensure_test_usdt(
            ganache.web3_for(f"http://127.0.0.1:{port}"), TEST_USDT_ERC20
        )
        echo(f"ethereum ready on {host}:{port}, chain id {ganache.CHAIN_ID}, USDT-ERC20 {usdt}")
        return asyncio.run(_run(child))
    argv = tron_node.tron_argv(
        port, state_file=state_dir / "tron-state.json", block_interval=block_interval
    )
    argv[argv.index("--host") + 1] = host
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)  # noqa: S603 - our simulator
    _wait_ready(child, port)
    info = tron_node.debug_info(f"http://127.0.0.1:{port}")
    echo(f"tron simulator ready on {host}:{port}, USDT-TRC20 {info.usdt_contract}")
    return asyncio.run(_run(child))


def _btc_api_key() -> str:
    for name in BTC_API_KEY_ENVS:
        value = os.environ.get(name)
        if value:
            return value
    raise ServeError(f"set the bcoin API key in {' or '.join(BTC_API_KEY_ENVS)}")


def _start_bitcoin(port: int, state_dir: Path) -> subprocess.Popen[bytes]:
    ensure_chain_tools()
    prefix = state_dir / "bitcoin"
    prefix.mkdir(exist_ok=True)
    return subprocess.Popen(  # noqa: S603 - our launcher
        btc.bitcoin_argv(port, prefix=prefix),
        stdin=subprocess.DEVNULL,
        env={**os.environ, btc.API_KEY_ENV: _btc_api_key()},
    )


def _wait_ready(child: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while not port_is_open(port):
        if child.poll() is not None:
            raise ServeError(f"the node ended with {child.returncode} before it listened")
        if time.monotonic() > deadline:
            child.terminate()
            raise ServeError(f"the node did not listen on port {port} within {READY_SECONDS} s")
        time.sleep(0.2)


async def _run(
    child: subprocess.Popen[bytes],
    relay: tuple[str, int, int] | None = None,
    ready: Callable[[], None] | None = None,
) -> int:
    """Wait for the node to end or for SIGTERM/SIGINT (then stop it); relay if asked, calling
    `ready` once the relay listens."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    server = None
    if relay is not None:
        host, port, inner = relay
        server = await asyncio.start_server(_relaying(inner), host, port)
    if ready is not None:
        ready()
    while not stopping.is_set() and child.poll() is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=1.0)
    if server is not None:
        server.close()
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
        return 0
    print(f"the node ended with {child.returncode}", file=sys.stderr)
    return child.returncode or 1


def _relaying(
    inner: int,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            node_reader, node_writer = await asyncio.open_connection("127.0.0.1", inner)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            _pump(reader, node_writer), _pump(node_reader, writer), return_exceptions=True
        )

    return handle


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(RELAY_CHUNK):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
