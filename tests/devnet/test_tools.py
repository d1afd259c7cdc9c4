"""`ensure_chain_tools()`: `npm ci` when node_modules is missing or stale, clear errors otherwise.

These run npm on a scratch project with one local dependency, so they are quick and offline; the
real tools/chains install is exercised by the contract artifact test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kassa_dev.devnet.tools import ChainToolsError, ensure_chain_tools


@pytest.fixture
def scratch_tools(tmp_path: Path) -> Path:
    """A tools dir whose only dependency is a local folder: `npm ci` works with no registry."""
    if shutil.which("npm") is None:
        pytest.skip("needs npm")
    tools = tmp_path / "tools"
    (tools / "dep").mkdir(parents=True)
    (tools / "dep" / "package.json").write_text(json.dumps({"name": "dep", "version": "1.0.0"}))
    (tools / "package.json").write_text(
        json.dumps({"name": "scratch", "version": "0.0.0", "dependencies": {"dep": "file:dep"}})
    )
    subprocess.run(  # noqa: S603 - fixed command
        [str(shutil.which("npm")), "install", "--package-lock-only", "--no-audit", "--no-fund"],
        cwd=tools,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return tools


def test_installs_when_missing_then_only_when_the_lockfile_is_newer(scratch_tools: Path) -> None:
    said: list[str] = []
    ensure_chain_tools(echo=said.append, tools_dir=scratch_tools)
    stamp = scratch_tools / "node_modules" / ".package-lock.json"
    assert stamp.is_file()
    assert any("npm ci" in line for line in said)
    assert any("installed" in line for line in said)

    said.clear()
    ensure_chain_tools(echo=said.append, tools_dir=scratch_tools)
    assert said == []  # up to date: nothing to do

    lock = scratch_tools / "package-lock.json"
    newer = stamp.stat().st_mtime + 10
    os.utime(lock, (newer, newer))
    ensure_chain_tools(echo=said.append, tools_dir=scratch_tools)
    assert any("npm ci" in line for line in said)


def test_without_node_on_path_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "package.json").write_text("{}")
    (tools / "package-lock.json").write_text("{}")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ChainToolsError, match=r"Node\.js is not installed"):
        ensure_chain_tools(echo=lambda _: None, tools_dir=tools)


def test_a_failing_npm_ci_reports_its_output(scratch_tools: Path) -> None:
    # A lockfile that does not match package.json makes `npm ci` refuse (before any download).
    (scratch_tools / "package.json").write_text(
        json.dumps({"name": "scratch", "version": "0.0.0", "dependencies": {"left-pad": "1.3.0"}})
    )
    with pytest.raises(ChainToolsError, match="npm ci failed") as failed:
        ensure_chain_tools(echo=lambda _: None, tools_dir=scratch_tools)
    assert "in sync" in str(failed.value)
