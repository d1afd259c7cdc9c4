"""kassa-dev plugs into the product through entry points: the ``kassa.cli`` command groups (and
the product CLI's loader) and the ``kassa.devnet`` local chains."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType

import pytest
import typer
from typer.testing import CliRunner

from kassa import plugins
from kassa.cli import add_commands
from kassa.cli import app as kassa_app
from kassa.clock import DatabaseClock, MovableClock
from kassa.config import Settings
from kassa.plugins import COMMANDS_GROUP, DEVNET_GROUP
from kassa.wiring import clock_of, with_devnet
from kassa_dev.cli import bench_app, devnet_app
from kassa_dev.devnet.provider import LocalChains


def test_kassa_dev_registers_devnet_and_bench_as_kassa_cli_entry_points() -> None:
    found = {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}
    assert COMMANDS_GROUP == "kassa.cli"
    assert found["devnet"].value == "kassa_dev.cli:devnet_app"
    assert found["bench"].value == "kassa_dev.cli:bench_app"
    assert found["devnet"].load() is devnet_app
    assert found["bench"].load() is bench_app


def _app() -> typer.Typer:
    app = typer.Typer(name="kassa", no_args_is_help=True)

    @app.command()
    def version() -> None:
        """A command of the host app (typer needs one before groups are added)."""

    return app


def test_load_plugins_adds_the_groups_to_a_host_app() -> None:
    app = _app()
    assert {"devnet", "bench"} <= set(add_commands(app))
    runner = CliRunner()
    devnet = runner.invoke(app, ["devnet", "--help"])
    assert devnet.exit_code == 0, devnet.output
    for command in ("up", "status", "down", "fund", "serve"):
        assert command in devnet.output
    bench = runner.invoke(app, ["bench", "--help"])
    assert bench.exit_code == 0, bench.output
    for command in ("ledger", "watchers", "payouts", "scaleout"):
        assert command in bench.output


def test_a_plugin_function_becomes_a_command_and_anything_else_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin = ModuleType("kassa_test_plugin")

    def hello() -> None:
        typer.echo("hello from a plugin")

    plugin.hello = hello  # type: ignore[attr-defined]
    plugin.nothing = 42  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kassa_test_plugin", plugin)

    group = "kassa.cli.test"
    monkeypatch.setattr(
        "kassa.cli.entry_points",
        lambda *, group: [EntryPoint("hello", "kassa_test_plugin:hello", group)],
    )
    app = _app()
    assert add_commands(app, group=group) == ["hello"]
    result = CliRunner().invoke(app, ["hello"])
    assert result.exit_code == 0, result.output
    assert "hello from a plugin" in result.output

    monkeypatch.setattr(
        "kassa.cli.entry_points",
        lambda *, group: [EntryPoint("nothing", "kassa_test_plugin:nothing", group)],
    )
    with pytest.raises(TypeError, match="neither a typer app nor a function"):
        add_commands(_app(), group=group)


def test_the_plugin_bench_hands_its_arguments_over(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[list[str] | None] = []

    def main(argv: list[str] | None = None) -> int:
        received.append(argv)
        return 3

    fake = ModuleType("kassa_dev.bench.watchers")
    fake.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kassa_dev.bench.watchers", fake)
    result = CliRunner().invoke(bench_app, ["watchers", "--chains", "btc", "--help"])
    assert result.exit_code == 3
    assert received == [["--chains", "btc", "--help"]]


def test_kassa_dev_provides_the_devnet_behind_devnet_true() -> None:
    [point] = list(entry_points(group=DEVNET_GROUP))
    assert point.value == "kassa_dev.devnet.provider:LocalChains"
    chains = plugins.devnet()
    assert isinstance(chains, LocalChains)
    # The devnet's clock is the scenario clock an operator may move (POST /v1/admin/clock).
    assert isinstance(chains.clock(), MovableClock)


def test_without_the_dev_tools_a_devnet_setting_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("kassa.plugins.entry_points", lambda *, group: [])
    with pytest.raises(plugins.DevnetUnavailable, match="kassa-dev"):
        plugins.devnet()
    # Real networks need nothing from the dev tools: the database clock, the settings as given.
    settings = Settings(devnet=False, data_dir=tmp_path)
    assert isinstance(clock_of(settings), DatabaseClock)
    assert with_devnet(settings, print, start=True) is settings
    # A command on the devnet ends with the reason instead of a traceback.
    config = tmp_path / "kassa.toml"
    config.write_text(f'data_dir = "{tmp_path}"\ndevnet = true\n')
    result = CliRunner().invoke(kassa_app, ["--config", str(config), "watch", "--chain", "btc"])
    assert result.exit_code == 1
    assert "kassa-dev" in result.stderr
