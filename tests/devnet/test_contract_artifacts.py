"""The committed contract artifacts are exactly what the committed sources compile to."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from kassa_dev.devnet.ganache import load_artifact
from kassa_dev.devnet.tools import (
    chain_tools_dir,
    contracts_dir,
    ensure_chain_tools,
    node_executable,
)

pytestmark = pytest.mark.chain

SOURCES = sorted(contracts_dir().glob("*.sol"))


def test_every_source_has_an_artifact_recording_its_hash() -> None:
    assert SOURCES, "no contracts/*.sol"
    for source in SOURCES:
        artifact = load_artifact(source.stem)
        assert artifact.contract_name == source.stem
        assert artifact.source_sha256 == hashlib.sha256(source.read_bytes()).hexdigest(), (
            f"{source.name} changed since contracts/build was written; "
            "run `node tools/chains/compile-contracts.js`"
        )
        assert artifact.evm_version == "shanghai"  # ganache 7.9.2 knows nothing newer
        assert artifact.compiler.startswith("0.8.37+")


def test_recompiling_with_the_pinned_solc_gives_identical_artifacts(tmp_path: Path) -> None:
    # Needs node_modules; installs them if missing rather than skipping, so CI always checks.
    ensure_chain_tools()
    script = chain_tools_dir() / "compile-contracts.js"
    compiled = subprocess.run(  # noqa: S603 - fixed command
        [node_executable(), str(script), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stderr
    committed = {
        p.name: json.loads(p.read_text()) for p in (contracts_dir() / "build").glob("*.json")
    }
    rebuilt = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert rebuilt.keys() == committed.keys()
    for name, artifact in rebuilt.items():
        assert artifact["bytecode"] == committed[name]["bytecode"], name
        assert artifact["deployedBytecode"] == committed[name]["deployedBytecode"], name
        assert artifact == committed[name], name
