"""Where the chain tools live, and `ensure_chain_tools()` to install them with `npm ci`.

The local nodes (ganache, bcoin) and the Solidity compiler are npm packages pinned in
`tools/chains/package-lock.json`; `node_modules` is never committed. `ensure_chain_tools()`
runs `npm ci` when `node_modules` is missing or older than the lockfile, under a file lock so
parallel test sessions or commands do not install over each other. It needs `node` (20+) and `npm`
on PATH and the npm registry; it fails with a clear message otherwise.

Paths are found from this file's place in the source tree (`dev-tools/src/kassa_dev/devnet/`,
kassa-dev being a uv workspace member installed editable): the tools and contracts belong to a
checkout of the repository, not to an installed wheel.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "ChainToolsError",
    "chain_tools_dir",
    "contracts_dir",
    "ensure_chain_tools",
    "ganache_bin",
    "node_executable",
    "repo_root",
]

MIN_NODE_MAJOR = 18
"""Oldest Node.js the pinned tools run on (checked on 20)."""

_HEARTBEAT_SECONDS = 10.0


class ChainToolsError(RuntimeError):
    """The chain tools are missing and cannot be installed (no node/npm, npm failed, …)."""


def repo_root() -> Path:
    """The repository checkout this package runs from (above `dev-tools/src/kassa_dev/devnet`)."""
    root = Path(__file__).resolve().parents[4]
    if not (root / "tools" / "chains" / "package.json").is_file():
        raise ChainToolsError(
            f"no tools/chains/package.json under {root}: the local chains need a checkout of the "
            "Kassa repository, not an installed package"
        )
    return root


def chain_tools_dir() -> Path:
    return repo_root() / "tools" / "chains"


def contracts_dir() -> Path:
    return repo_root() / "contracts"


def ganache_bin() -> Path:
    """ganache's own script (a node shebang), run directly: `npx` would add two parent processes."""
    return chain_tools_dir() / "node_modules" / ".bin" / "ganache"


def node_executable() -> str:
    """Absolute path of `node`, checked to be new enough."""
    node = shutil.which("node")
    if node is None:
        raise ChainToolsError(
            "Node.js is not installed (no `node` on PATH); the local chains need Node.js "
            f"{MIN_NODE_MAJOR}+ and npm, e.g. `apt-get install nodejs npm`"
        )
    version = subprocess.run(  # noqa: S603 - fixed arguments, absolute path from which()
        [node, "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.strip()
    try:
        major = int(version.lstrip("v").split(".", 1)[0])
    except ValueError:
        raise ChainToolsError(f"could not read the Node.js version from {version!r}") from None
    if major < MIN_NODE_MAJOR:
        raise ChainToolsError(f"Node.js {version} is too old; {MIN_NODE_MAJOR}+ is required")
    return node


def _install_stamp(tools: Path) -> Path:
    # npm writes this hidden lockfile at the end of every successful install.
    return tools / "node_modules" / ".package-lock.json"


def _needs_install(tools: Path) -> bool:
    stamp = _install_stamp(tools)
    if not stamp.is_file():
        return True
    newest_input = max(
        (tools / "package-lock.json").stat().st_mtime, (tools / "package.json").stat().st_mtime
    )
    return stamp.stat().st_mtime < newest_input


def ensure_chain_tools(
    *, echo: Callable[[str], None] | None = None, tools_dir: Path | None = None
) -> Path:
    """Install the pinned chain tools if needed; return the tools directory.

    Runs `npm ci` in `tools/chains` (or `tools_dir`) when `node_modules` is missing or older
    than `package-lock.json`/`package.json`. Progress goes to `echo` (stderr by default): npm's
    own output line by line, and a heartbeat while npm is quiet (native builds take a while).
    """
    say = echo or _stderr
    tools = tools_dir or chain_tools_dir()
    if not _needs_install(tools):
        return tools
    node_executable()
    npm = shutil.which("npm")
    if npm is None:
        raise ChainToolsError(
            "npm is not installed (no `npm` on PATH); install it with Node.js, "
            "e.g. `apt-get install npm`"
        )
    with (tools / ".npm-ci.lock").open("w") as lock:
        # Another process may be installing right now; wait for it, then re-check.
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _needs_install(tools):
                _npm_ci(npm, tools, say)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return tools


def _npm_ci(npm: str, tools: Path, say: Callable[[str], None]) -> None:
    say(
        f"==> installing the chain tools: npm ci in {tools} "
        "(ganache, solc, bcoin; about 30 s on a fresh machine)"
    )
    started = time.monotonic()
    env = {**os.environ, "npm_config_audit": "false", "npm_config_fund": "false"}
    last_output = [time.monotonic()]
    finished = threading.Event()

    def heartbeat() -> None:
        while not finished.wait(1.0):
            quiet_for = time.monotonic() - last_output[0]
            if quiet_for >= _HEARTBEAT_SECONDS:
                say(f"    … npm ci still running ({time.monotonic() - started:.0f} s)")
                last_output[0] = time.monotonic()

    ticker = threading.Thread(target=heartbeat, name="npm-ci-heartbeat", daemon=True)
    output: list[str] = []
    with subprocess.Popen(  # noqa: S603 - fixed arguments, absolute path from which()
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=tools,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        ticker.start()
        try:
            for line in process.stdout or ():
                last_output[0] = time.monotonic()
                text = line.rstrip()
                if text:
                    say(f"    npm: {text}")
                    output.append(text)
            code = process.wait()
        finally:
            finished.set()
            ticker.join()
            if process.poll() is None:
                process.kill()
    if code != 0:
        # npm prints the cause first and its usage text after; show the error lines.
        errors = [line for line in output if "ERR" in line.upper()][:20] or output[-20:]
        raise ChainToolsError(f"npm ci failed in {tools} (exit {code}):\n" + "\n".join(errors))
    say(f"==> chain tools installed in {time.monotonic() - started:.0f} s")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
