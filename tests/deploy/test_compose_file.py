"""docker-compose.yml, the Dockerfile and .env.example: what a compose implementation accepts
and what the deployment promises (docs/operations.md).

No Docker daemon or image registry is reachable here, so the file is checked by Debian's
docker-compose (`config`, installed by `./dev setup`; the test fails without it) and its
contents by these tests: every Kassa service runs a real `kassa` command, the start order, the
health checks, and only the payout worker sees the signer's secrets.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import typer.main
import yaml  # type: ignore[import-untyped]  # PyYAML (via schemathesis), no stubs
from pydantic import BaseModel
from typer.core import TyperGroup
from typer.testing import CliRunner

from kassa.cli import app
from kassa.config import Settings
from kassa.payouts.signer import create_key_file
from kassa_dev.devnet.testing import BitcoinNode, GanacheNode, TronNode, free_port

ROOT = Path(__file__).resolve().parents[2]
KASSA_SERVICES = {
    "migrate",
    "api",
    "worker",
    "watch-btc",
    "watch-eth",
    "watch-tron",
    "payout-worker",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The file as docker-compose resolves it (anchors merged, .env.example interpolated)."""
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is missing: run ./dev setup (apt-get install docker-compose)")
    command = [tool, "--env-file", ".env.example", "-f", "docker-compose.yml", "config"]
    env = {**os.environ, "ENV_FILE": ".env.example"}
    done = subprocess.run(  # noqa: S603
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    resolved: dict[str, Any] = yaml.safe_load(done.stdout)
    return resolved


def test_the_services_and_their_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    # docker-compose 1.29's `config` lists every profile's services; the devnet profile's are
    # checked below.
    always = {name for name, service in services.items() if "profiles" not in service}
    assert always == KASSA_SERVICES | {"postgres"}
    assert {name for name in services if name not in always} == DEVNET_SERVICES | {"prometheus"}
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    for name in KASSA_SERVICES:
        args = [str(arg) for arg in services[name]["command"]]
        sub = root.commands.get(args[0])
        assert sub is not None, f"{name}: kassa {args[0]} is no command"
        # The arguments parse (options exist, values are valid) without running the command.
        sub.make_context(args[0], list(args[1:]))
        shown = CliRunner().invoke(app, [args[0], "--help"])
        assert shown.exit_code == 0, shown.output
        assert services[name]["image"] == "kassa:local"
    assert services["api"]["command"][1:3] == ["--host", "0.0.0.0"]  # noqa: S104
    watched = (services[f"watch-{chain}"]["command"] for chain in ("btc", "eth", "tron"))
    assert {command[command.index("--chain") + 1] for command in watched} == {
        "btc",
        "eth",
        "tron",
    }


def test_monitoring_profile(compose: dict[str, Any]) -> None:
    """Prometheus, in the `monitoring` profile only, scrapes the API replicas and every worker
    role's metrics port with Kassa's alert rules; `promtool check config` accepts its file."""
    services = compose["services"]
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert all("profiles" not in services[name] for name in KASSA_SERVICES | {"postgres"})
    binds = [str(volume).split(":") for volume in prometheus["volumes"]]
    mounts = {
        Path(source).relative_to(ROOT): target
        for source, target, *_mode in binds
        if source.startswith("/")
    }
    assert mounts == {
        Path("deploy/prometheus/prometheus.yml"): "/etc/prometheus/prometheus.yml",
        Path("deploy/prometheus/alerts.yml"): "/etc/prometheus/alerts.yml",
    }
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    # Each worker role serves its metrics on the port the scrape job asks, inside the network.
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job["dns_sd_configs"][0] for job in config["scrape_configs"]}
    assert jobs["kassa-api"]["names"] == ["api"] and jobs["kassa-api"]["port"] == 8000
    workers = jobs["kassa-workers"]
    assert set(workers["names"]) == KASSA_SERVICES - {"api", "migrate"}
    for name in workers["names"]:
        command = [str(arg) for arg in services[name]["command"]]
        assert command[command.index("--metrics-port") + 1] == str(workers["port"]), name
        assert services[name]["expose"] == [str(workers["port"])], name
        assert "ports" not in services[name], name
    assert config["rule_files"] == ["alerts.yml"]
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: ./dev setup installs it (apt-get install prometheus)"
    checked = subprocess.run(  # noqa: S603 - a fixed tool and our own file
        [promtool, "check", "config", "prometheus.yml"],
        cwd=ROOT / "deploy" / "prometheus",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The profile's own command line is accepted too.
    tool = shutil.which("docker-compose")
    assert tool is not None
    listed = subprocess.run(  # noqa: S603
        [tool, "--env-file", ".env.example", "--profile", "monitoring", "config", "--services"],
        cwd=ROOT,
        env={**os.environ, "ENV_FILE": ".env.example"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "prometheus" in listed.stdout.split()


def test_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in KASSA_SERVICES - {"migrate"}:
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }, name
        assert services[name]["restart"] == "unless-stopped", name


def test_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert any("pgdata" in volume for volume in services["postgres"]["volumes"])
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    # The worker roles have no HTTP port: each checks itself with `kassa health --role …`
    # (tests/api/test_cli_health.py); the one-shot migrate has no check.
    assert services["migrate"]["healthcheck"]["test"] == ["NONE"]
    for name in KASSA_SERVICES - {"api", "migrate"}:
        check = services[name]["healthcheck"]["test"]
        role = "watch" if name.startswith("watch-") else name
        assert check[:5] == ["CMD", "kassa", "health", "--role", role], name
        if role == "watch":
            assert check[5:] == ["--chain", name.removeprefix("watch-")], name
        # The arguments parse as `kassa health` options (without running it).
        health = typer.main.get_command(app).commands["health"]  # type: ignore[attr-defined]
        health.make_context("health", list(check[3:]))
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", dockerfile, re.MULTILINE)
    assert "uv sync --frozen --no-dev" in dockerfile
    assert re.search(r"^USER kassa$", dockerfile, re.MULTILINE)


def test_only_the_payout_worker_sees_the_signers_secrets(compose: dict[str, Any]) -> None:
    services = compose["services"]
    holders = {name for name, service in services.items() if service.get("secrets")}
    assert holders == {"payout-worker"}
    signer_env = {
        name
        for name, service in services.items()
        if any(key.startswith("KASSA_SIGNER") for key in service.get("environment", {}))
    }
    assert signer_env == {"payout-worker"}
    payout = services["payout-worker"]["environment"]
    assert payout["KASSA_SIGNER__KEY_DIR"] == "/run/secrets/signer_keys"
    assert payout["KASSA_SIGNER__PASSWORD_FILE"] == "/run/secrets/signer_password"  # noqa: S105
    # The shared env_file holds no signer setting, not even commented out.
    assert not re.search(
        r"^#? ?KASSA_SIGNER[A-Z_]*=",
        (ROOT / ".env.example").read_text(encoding="utf-8"),
        re.MULTILINE,
    )


def test_env_example_names_real_settings() -> None:
    """Every KASSA_* name in .env.example (set or commented out) is a setting of Settings."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    names = set(re.findall(r"^#? ?(KASSA_[A-Z0-9_]+)=", text, re.MULTILINE))
    names.discard("KASSA_API_PUBLISH")  # docker-compose.yml's own, not Kassa's
    assert len(names) > 10
    for name in names:
        model: type[BaseModel] = Settings
        for part in name.removeprefix("KASSA_").lower().split("__"):
            assert part in model.model_fields, name
            annotation = model.model_fields[part].annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                model = annotation


# --------------------------------------------------------------------------- as processes

KASSA = Path(sys.executable).with_name("kassa")
PG_ADMIN_URL = os.environ.get("KASSA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
HEALTHY_WITHIN_SECONDS = 90  # a deadline, not a speed claim: six processes start at once


@dataclass
class Service:
    """One compose service's command line, run here as a process; its output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.output()}")


def _pg_admin(statement: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement.encode())


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    """An empty PostgreSQL database (no schema: the migrate service makes it)."""
    name = f"kassa_compose_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _environment(
    service: dict[str, Any], overrides: dict[str, str], secrets: dict[str, Path]
) -> dict[str, str]:
    """The service's resolved environment (env_file merged in by compose), what only a
    container has replaced by this machine's (database, chain nodes, data directory), and the
    compose secrets' mount points by the files they mount."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KASSA_")}
    for key, value in (service.get("environment") or {}).items():
        text = str(value)
        for secret, path in secrets.items():
            text = text.replace(f"/run/secrets/{secret}", str(path))
        env[key] = text
    return {**env, **overrides}


@pytest.mark.slow(seconds=25)
@pytest.mark.chain
@pytest.mark.postgres
def test_every_service_runs_from_its_command_line_and_becomes_healthy(
    compose: dict[str, Any],
    fresh_pg: str,
    ganache_node: GanacheNode,
    bitcoin_node: BitcoinNode,
    tron_sim: TronNode,
    tmp_path: Path,
) -> None:
    services = compose["services"]
    # The payout worker's secrets: an encrypted key file and its password file.
    keys = tmp_path / "secrets" / "signer"
    password = tmp_path / "secrets" / "signer-password"
    create_key_file(keys / "eth.json", "compose-test", iterations=2)
    password.write_text("compose-test\n")
    secrets = {"signer_keys": keys, "signer_password": password}
    overrides = {
        "KASSA_DATABASE_URL": fresh_pg,
        "KASSA_DATA_DIR": str(tmp_path / "data"),
        "KASSA_CHAINS__BTC__RPC_URL": bitcoin_node.url,
        "KASSA_CHAINS__BTC__RPC_API_KEY": bitcoin_node.api_key,
        "KASSA_CHAINS__ETH__RPC_URL": ganache_node.url,
        "KASSA_CHAINS__ETH__USDT_CONTRACT": ganache_node.usdt_address,
        "KASSA_CHAINS__TRON__API_URL": tron_sim.url,
        "KASSA_CHAINS__TRON__USDT_CONTRACT": tron_sim.usdt_contract,
    }
    for chain in ("BTC", "ETH", "TRON"):
        overrides[f"KASSA_CHAINS__{chain}__POLL_INTERVAL_SECONDS"] = "0.2"

    def argv(name: str) -> list[str]:
        return [str(KASSA), *(str(arg) for arg in services[name]["command"])]

    # migrate first (service_completed_successfully for the others).
    migrated = subprocess.run(  # noqa: S603 - our own console script, the compose file's argv
        argv("migrate"),
        env=_environment(services["migrate"], overrides, secrets),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    # The API publishes the container's port 8000: here, a free port on this machine.
    port = free_port()
    started: list[Service] = []
    metrics_ports: dict[str, int] = {}
    try:
        for name in sorted(KASSA_SERVICES - {"migrate"}):
            command = argv(name)
            if name == "api":
                command[command.index("--port") + 1] = str(port)
            else:  # each container's 9100: a free port here
                metrics_ports[name] = free_port()
                command[command.index("--metrics-port") + 1] = str(metrics_ports[name])
            log = tmp_path / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(  # noqa: S603 - our own console script
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=_environment(services[name], overrides, secrets),
                )
            started.append(Service(name, process, log))
        _wait_healthy(started, fresh_pg, port)
        _wait_scraped(started, metrics_ports)
        for service in started:
            service.check_alive()
            assert "Traceback" not in service.output(), service.output()
    finally:
        for service in started:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in started:
            try:
                service.process.wait(15)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait(5)
    # SIGTERM (what `docker compose stop` sends) ends every role cleanly; uvicorn re-raises the
    # signal once it has shut down.
    codes = {service.name: service.process.returncode for service in started}
    assert codes == {**dict.fromkeys(codes, 0), "api": codes["api"]}
    assert codes["api"] in (0, -signal.SIGTERM)
    api = next(service for service in started if service.name == "api")
    assert "Finished server process" in api.output()


def _wait_scraped(started: list[Service], ports: dict[str, int]) -> None:
    """Each worker role's metrics listener answers with the rounds of its loop."""
    deadline = time.monotonic() + HEALTHY_WITHIN_SECONDS
    missing = set(ports)
    while missing and time.monotonic() < deadline:
        for name in sorted(missing):
            try:
                text = httpx.get(f"http://127.0.0.1:{ports[name]}/metrics", timeout=2).text
            except httpx.HTTPError:
                continue
            if "kassa_worker_round_duration_seconds_count{" in text:
                missing.discard(name)
        time.sleep(0.2)
    logs = "\n".join(f"--- {service.name}\n{service.output()}" for service in started)
    assert not missing, f"no metrics from {missing}\n{logs}"


def _wait_healthy(started: list[Service], db_url: str, port: int) -> None:
    """The API answers /healthz and /readyz, and every watcher has ticked without an error."""
    libpq = db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    deadline = time.monotonic() + HEALTHY_WITHIN_SECONDS
    missing: list[str] = ["api", "watch-btc", "watch-eth", "watch-tron"]
    while time.monotonic() < deadline:
        for service in started:
            service.check_alive()
        missing = []
        for probe in ("healthz", "readyz"):
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/{probe}", timeout=2)
            except httpx.HTTPError:
                answer = None
            if answer is None or answer.status_code != 200:
                missing.append(f"api /{probe}")
        with psycopg.connect(libpq) as conn:
            ticked = {
                str(chain)
                for chain, error in conn.execute(
                    "SELECT chain, last_error FROM watcher_checkpoint"
                    " WHERE last_tick_at IS NOT NULL"
                )
                if error is None
            }
        missing += [f"watch-{chain}" for chain in ("btc", "eth", "tron") if chain not in ticked]
        if not missing:
            return
        time.sleep(0.2)
    logs = "\n".join(f"--- {service.name}\n{service.output()}" for service in started)
    pytest.fail(f"not healthy within {HEALTHY_WITHIN_SECONDS} s: {missing}\n{logs}")


# --------------------------------------------------------------------------- devnet profile

DEVNET_SERVICES = {"devnet-btc", "devnet-eth", "devnet-tron"}
DEVNET_CHAINS = {"devnet-btc": "btc", "devnet-eth": "eth", "devnet-tron": "tron"}


def _env_file(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


@pytest.fixture(scope="module")
def devnet_compose() -> dict[str, Any]:
    """The file with the `devnet` profile on and .env.devnet as its env file (README)."""
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is missing: run ./dev setup (apt-get install docker-compose)")
    command = [tool, "--env-file", ".env.devnet", "-f", "docker-compose.yml"]
    command += ["--profile", "devnet", "config"]
    env = {**os.environ, "ENV_FILE": ".env.devnet"}
    done = subprocess.run(  # noqa: S603
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    resolved: dict[str, Any] = yaml.safe_load(done.stdout)
    return resolved


def _serve_argv(service: dict[str, Any]) -> list[str]:
    return [str(arg) for arg in service["command"]]


def test_the_devnet_profile_adds_the_local_chains(devnet_compose: dict[str, Any]) -> None:
    services = devnet_compose["services"]
    assert set(services) == KASSA_SERVICES | {"postgres", "prometheus"} | DEVNET_SERVICES
    devnet_group = typer.main.get_command(app).commands["devnet"]  # type: ignore[attr-defined]
    serve = devnet_group.commands["serve"]
    for name, chain in DEVNET_CHAINS.items():
        service = services[name]
        assert service["profiles"] == ["devnet"], name
        assert service["build"]["dockerfile"] == "deploy/devnet/Dockerfile", name
        assert service["image"] == "kassa-devnet:local", name
        argv = _serve_argv(service)
        assert argv[:2] == ["devnet", "serve"], name
        serve.make_context("serve", argv[2:])  # the options parse
        assert argv[argv.index("--chain") + 1] == chain
        assert argv[argv.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - other containers
    for name in KASSA_SERVICES:
        assert "profiles" not in services[name], name
    # Kassa's services reach each chain by its service name and port.
    env = services["watch-btc"]["environment"]
    for key, name in (
        ("KASSA_CHAINS__BTC__RPC_URL", "devnet-btc"),
        ("KASSA_CHAINS__ETH__RPC_URL", "devnet-eth"),
        ("KASSA_CHAINS__TRON__API_URL", "devnet-tron"),
    ):
        argv = _serve_argv(services[name])
        assert env[key] == f"http://{name}:{argv[argv.index('--port') + 1]}", key
    key = services["devnet-btc"]["environment"]["KASSA_CHAINS__BTC__RPC_API_KEY"]
    assert key == env["KASSA_CHAINS__BTC__RPC_API_KEY"]
    dockerfile = (ROOT / "deploy" / "devnet" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM node:20", dockerfile, re.MULTILINE)
    assert "npm ci" in dockerfile
    assert "uv sync --frozen --no-dev --package kassa-dev" in dockerfile


def test_env_devnet_names_real_settings() -> None:
    names = set(_env_file(ROOT / ".env.devnet")) - {"POSTGRES_PASSWORD"}
    assert names
    for name in names:
        model: type[BaseModel] = Settings
        for part in name.removeprefix("KASSA_").lower().split("__"):
            assert part in model.model_fields, name
            annotation = model.model_fields[part].annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                model = annotation


@pytest.mark.slow(seconds=30)
@pytest.mark.chain
def test_the_devnet_services_run_from_their_command_lines(
    devnet_compose: dict[str, Any], tmp_path: Path
) -> None:
    """Each devnet service's command as a local process (loopback, a free port, a temporary
    state directory): the chains answer as .env.devnet tells Kassa they will."""
    from kassa_dev.devnet import bitcoin, ganache, tron_node

    services = devnet_compose["services"]
    promised = _env_file(ROOT / ".env.devnet")
    ports: dict[str, int] = {}
    started: list[Service] = []
    try:
        for name in sorted(DEVNET_SERVICES):
            argv = [str(KASSA), *_serve_argv(services[name])]
            argv[argv.index("--host") + 1] = "127.0.0.1"
            ports[name] = free_port()
            argv[argv.index("--port") + 1] = str(ports[name])
            argv[argv.index("--state-dir") + 1] = str(tmp_path / name)
            log = tmp_path / f"{name}.log"
            env = {key: value for key, value in os.environ.items() if not key.startswith("KASSA_")}
            env |= {key: str(value) for key, value in services[name].get("environment", {}).items()}
            with log.open("wb") as out:
                process = subprocess.Popen(  # noqa: S603 - our own console script
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
                )
            started.append(Service(name, process, log))
        deadline = time.monotonic() + 120
        while not all("ready on" in service.output() for service in started):
            for service in started:
                service.check_alive()
            assert time.monotonic() < deadline, [s.output()[-2000:] for s in started]
            time.sleep(0.5)
        eth = ganache.web3_for(f"http://127.0.0.1:{ports['devnet-eth']}")
        assert eth.eth.get_code(promised["KASSA_CHAINS__ETH__USDT_CONTRACT"])  # type: ignore[arg-type]
        tron = tron_node.debug_info(f"http://127.0.0.1:{ports['devnet-tron']}")
        assert tron.usdt_contract == promised["KASSA_CHAINS__TRON__USDT_CONTRACT"]
        btc = bitcoin.BitcoinRpc(
            f"http://127.0.0.1:{ports['devnet-btc']}", promised["KASSA_CHAINS__BTC__RPC_API_KEY"]
        )
        assert btc.height() >= bitcoin.SETUP_BLOCKS  # the faucet's coins, through the relay
    finally:
        for service in started:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in started:
            try:
                service.process.wait(30)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait(5)
    assert {s.name: s.process.returncode for s in started} == dict.fromkeys(DEVNET_SERVICES, 0)
