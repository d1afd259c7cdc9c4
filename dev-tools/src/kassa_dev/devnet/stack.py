"""The three local chains as one devnet under `<data_dir>/devnet/`: up, status, down, faucet.

Layout of `<data_dir>/devnet/`:

    devnet.json         endpoints, the bcoin API key, contract addresses (mode 0600)
    <name>.pid / .log   one per process: ganache, bitcoin, bitcoin-miner, tron
    ganache-db/         ganache's chain (--database.dbPath)
    bitcoin/            bcoin's chain (--prefix)
    tron-state.json     the TRON simulator's chain

Every chain persists, so deposits made before a `down` are still there after the next `up`.
`up` is idempotent: a chain already running (per its pid file) is left alone and only the missing
pieces are started or deployed. Ports are fixed defaults, overridable; the ports a chain was
started on are in its pid file, so `status`, `down` and the faucet always find it.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from kassa_dev.devnet import bitcoin as btc
from kassa_dev.devnet import ganache, tron_node
from kassa_dev.devnet.faucet import DevnetEndpoints, Faucet
from kassa_dev.devnet.miner import API_KEY_ENV
from kassa_dev.devnet.processes import ProcessManager, ProcessRecord
from kassa_dev.devnet.rpc import JsonRpcError
from kassa_dev.devnet.settings import DevnetSettings
from kassa_dev.devnet.tools import ensure_chain_tools

__all__ = ["CHAINS", "ChainStatus", "Devnet", "DevnetError", "DevnetSettings"]

MINER_PROCESS_NAME = "bitcoin-miner"
STATE_FILE = "devnet.json"

CHAINS = ("ethereum", "bitcoin", "tron")
_PROCESS_OF = {
    "ethereum": ganache.PROCESS_NAME,
    "bitcoin": btc.PROCESS_NAME,
    "tron": tron_node.PROCESS_NAME,
}


class DevnetError(RuntimeError):
    """The devnet cannot do what was asked (inconsistent state, chain not running, …)."""


@dataclass(frozen=True, slots=True)
class ChainStatus:
    chain: str
    running: bool
    pid: int | None = None
    port: int | None = None
    url: str | None = None
    height: int | None = None
    final_height: int | None = None
    """Finalized (ETH) or solidified (TRON) height; Bitcoin has no finality, so None."""
    error: str | None = None
    """Why the node did not answer although its process runs."""


@dataclass
class _State:
    """What `devnet.json` holds."""

    btc_api_key: str
    usdt_erc20: str | None = None
    usdt_trc20: str | None = None
    tron_genesis: str | None = None


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


class Devnet:
    """The local chains of one data directory."""

    def __init__(self, data_dir: Path, *, echo: Callable[[str], None] | None = None) -> None:
        self.data_dir = data_dir
        self.run_dir = data_dir / "devnet"
        self.manager = ProcessManager(self.run_dir)
        self._say = echo or _stderr

    # -- state file ------------------------------------------------------------------------

    def _state_path(self) -> Path:
        return self.run_dir / STATE_FILE

    def _load(self) -> _State | None:
        try:
            data = json.loads(self._state_path().read_text())
        except FileNotFoundError:
            return None
        return _State(
            btc_api_key=str(data["bitcoin"]["api_key"]),
            usdt_erc20=data.get("ethereum", {}).get("usdt"),
            usdt_trc20=data.get("tron", {}).get("usdt"),
            tron_genesis=data.get("tron", {}).get("genesis"),
        )

    def _save(self, state: _State) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        data = {
            "ethereum": {
                "url": self._url_of(ganache.PROCESS_NAME),
                "chain_id": ganache.CHAIN_ID,
                "usdt": state.usdt_erc20,
                "funder": ganache.dev_account(0).address,
            },
            "bitcoin": {
                "url": self._url_of(btc.PROCESS_NAME),
                "api_key": state.btc_api_key,
                "faucet": btc.faucet_key().address,
            },
            "tron": {
                "url": self._url_of(tron_node.PROCESS_NAME),
                "usdt": state.usdt_trc20,
                "genesis": state.tron_genesis,
            },
        }
        path = self._state_path()
        tmp = path.with_suffix(".tmp")
        # The file holds the bcoin API key: readable by the owner only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)

    def _url_of(self, process: str) -> str | None:
        record = self.manager.running(process)
        return None if record is None or record.port is None else _url(record.port)

    # -- up --------------------------------------------------------------------------------

    def up(self, settings: DevnetSettings | None = None) -> DevnetEndpoints:
        """Start whatever is not running, deploy/fund what is missing; return the endpoints."""
        settings = settings or DevnetSettings()
        ensure_chain_tools(echo=self._say)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = self._load()
        if state is None:
            if self.manager.running(btc.PROCESS_NAME) is not None:
                raise DevnetError(
                    f"bitcoin is running but {self._state_path()} (with its API key) is gone; "
                    "run `kassa devnet down` and `up` again"
                )
            state = _State(btc_api_key=secrets.token_urlsafe(24))
        self._save(state)

        eth = self._up_ethereum(settings)
        state.usdt_erc20 = ganache.ensure_test_usdt(
            ganache.web3_for(_url(eth.port or 0)), state.usdt_erc20
        )
        self._save(state)

        self._up_bitcoin(settings, state.btc_api_key)

        if tron_node.simulator_available():
            tron = self._up_tron(settings)
            info = tron_node.debug_info(_url(tron.port or 0))
            state.usdt_trc20 = info.usdt_contract
            state.tron_genesis = info.genesis_address
        else:
            self._say("==> TRON simulator not available yet (kassa_dev.devnet.tron); skipped")
        self._save(state)
        return self.endpoints()

    def _up_ethereum(self, settings: DevnetSettings) -> ProcessRecord:
        record = self.manager.running(ganache.PROCESS_NAME)
        if record is not None:
            self._say(f"==> ethereum already running (pid {record.pid}, port {record.port})")
            return record
        self._say(f"==> starting ganache on 127.0.0.1:{settings.eth_port}")
        return ganache.start_ganache(
            self.manager,
            port=settings.eth_port,
            block_time=settings.eth_block_time or None,
            db_path=self.run_dir / "ganache-db",
            detach=True,
        )

    def _up_bitcoin(self, settings: DevnetSettings, api_key: str) -> None:
        record = self.manager.running(btc.PROCESS_NAME)
        if record is not None:
            self._say(f"==> bitcoin already running (pid {record.pid}, port {record.port})")
        else:
            self._say(f"==> starting bcoin regtest on 127.0.0.1:{settings.btc_port}")
            record = btc.start_bitcoin(
                self.manager,
                api_key=api_key,
                port=settings.btc_port,
                prefix=self.run_dir / "bitcoin",
                detach=True,
            )
        rpc = btc.BitcoinRpc(_url(record.port or 0), api_key)
        height = btc.bootstrap(rpc)
        self._say(f"    bitcoin height {height}; faucet {btc.faucet_key().address}")
        if settings.btc_block_interval > 0 and self.manager.running(MINER_PROCESS_NAME) is None:
            self._say(
                f"==> starting the regtest miner (a block every {settings.btc_block_interval:g} s)"
            )
            self.manager.start(
                MINER_PROCESS_NAME,
                [
                    sys.executable,
                    "-m",
                    "kassa_dev.devnet.miner",
                    "--url",
                    rpc.url,
                    "--address",
                    btc.faucet_key().address,
                    "--interval",
                    f"{settings.btc_block_interval:g}",
                ],
                ready=lambda: True,
                env={**os.environ, API_KEY_ENV: api_key},
                detach=True,
            )

    def _up_tron(self, settings: DevnetSettings) -> ProcessRecord:
        record = self.manager.running(tron_node.PROCESS_NAME)
        if record is not None:
            self._say(f"==> tron already running (pid {record.pid}, port {record.port})")
            return record
        self._say(f"==> starting the TRON simulator on 127.0.0.1:{settings.tron_port}")
        return tron_node.start_tron(
            self.manager,
            port=settings.tron_port,
            state_file=self.run_dir / "tron-state.json",
            block_interval=settings.tron_block_interval,
            detach=True,
        )

    # -- endpoints, faucet -----------------------------------------------------------------

    def endpoints(self) -> DevnetEndpoints:
        state = self._load()
        btc_url = self._url_of(btc.PROCESS_NAME)
        return DevnetEndpoints(
            eth_url=self._url_of(ganache.PROCESS_NAME),
            usdt_erc20=state.usdt_erc20 if state else None,
            btc_url=btc_url,
            btc_api_key=state.btc_api_key if state and btc_url else None,
            tron_url=self._url_of(tron_node.PROCESS_NAME),
        )

    def faucet(self) -> Faucet:
        return Faucet(self.endpoints())

    # -- status ----------------------------------------------------------------------------

    def status(self) -> list[ChainStatus]:
        state = self._load()
        return [self._status_of(chain, state) for chain in CHAINS]

    def _status_of(self, chain: str, state: _State | None) -> ChainStatus:
        record = self.manager.running(_PROCESS_OF[chain])
        if record is None:
            return ChainStatus(chain=chain, running=False)
        url = _url(record.port or 0)
        height: int | None = None
        final: int | None = None
        error: str | None = None
        try:
            if chain == "ethereum":
                w3 = ganache.web3_for(url)
                height = int(w3.eth.block_number)
                final = int(w3.eth.get_block("finalized")["number"])
            elif chain == "bitcoin":
                if state is None:
                    raise DevnetError(f"no {STATE_FILE}, so no API key")
                height = btc.BitcoinRpc(url, state.btc_api_key).height()
            else:
                info = tron_node.debug_info(url, timeout=5.0)
                height, final = info.head, info.solid_head
        except (httpx.HTTPError, JsonRpcError, DevnetError, ValueError, KeyError) as problem:
            error = str(problem) or type(problem).__name__
        return ChainStatus(
            chain=chain,
            running=True,
            pid=record.pid,
            port=record.port,
            url=url,
            height=height,
            final_height=final,
            error=error,
        )

    # -- down ------------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop every devnet process (miner first); return the names that were running."""
        stopped = []
        for name in (
            MINER_PROCESS_NAME,
            ganache.PROCESS_NAME,
            btc.PROCESS_NAME,
            tron_node.PROCESS_NAME,
        ):
            if self.manager.stop(name):
                stopped.append(name)
        return stopped

    def processes(self) -> list[ProcessRecord]:
        """Records of the devnet processes that are running."""
        names = (ganache.PROCESS_NAME, btc.PROCESS_NAME, MINER_PROCESS_NAME, tron_node.PROCESS_NAME)
        return [r for r in (self.manager.running(n) for n in names) if r is not None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
