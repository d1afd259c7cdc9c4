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
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml  # type: ignore[import-untyped]  # PyYAML (via schemathesis), no stubs
from pydantic import BaseModel
from typer.core import TyperGroup
from typer.testing import CliRunner

from kassa.cli import app
from kassa.config import Settings

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
    assert set(services) == KASSA_SERVICES | {"postgres"}
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
    assert {services[f"watch-{chain}"]["command"][-1] for chain in ("btc", "eth", "tron")} == {
        "btc",
        "eth",
        "tron",
    }


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
    # The worker roles have no HTTP port: the image's /healthz check is switched off for them.
    for name in KASSA_SERVICES - {"api"}:
        assert services[name]["healthcheck"]["test"] == ["NONE"], name
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
