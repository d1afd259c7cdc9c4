"""The product wheel holds the product only: no devnet, TRON simulator, benchmarks, dev keys or
scenario clock (those are the separate distribution kassa-dev, in dev-tools/).

The wheel is built for real, in process, by the build backend of pyproject.toml (hatchling) —
the same selection `uv build --wheel` makes, in about a second and without network access.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

import pytest
from hatchling.builders.wheel import WheelBuilder

ROOT = Path(__file__).resolve().parents[2]

DEV_PACKAGES = {"kassa_dev", "devnet", "bench", "tron_node"}
DEV_MODULES = {"devkeys", "scenario", "tron_node", "faucet", "ganache", "miner", "hot_wallets"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    builder = WheelBuilder(str(ROOT))
    directory = tmp_path_factory.mktemp("wheel")
    [path] = list(builder.build(directory=str(directory), versions=["standard"]))
    return Path(path)


def test_the_product_wheel_has_no_development_tools(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    modules = [PurePosixPath(name) for name in names if not name.startswith("kassa-")]

    # It is the product: the package, its migrations and its CLI.
    assert {"kassa/__init__.py", "kassa/cli/__init__.py", "kassa/clock.py"} <= set(names)
    assert "kassa/db/clock_offset.py" in names  # the table migration 0005 creates
    assert "kassa/reports/static/chart.umd.js" in names  # the HTML reports inline it
    assert any(name.startswith("kassa/migrations/versions/") for name in names)
    assert {path.parts[0] for path in modules} == {"kassa"}

    leaked = [
        str(path)
        for path in modules
        if DEV_PACKAGES & set(path.parts[:-1]) or path.stem in DEV_MODULES | DEV_PACKAGES
    ]
    assert leaked == []
    # No TRON simulator under any name (its modules are the java-tron HTTP API stand-in).
    assert not [name for name in names if "simulator" in name or "/tron/wire" in name]


def test_the_product_wheel_does_not_require_the_development_tools(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        [metadata_name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires  # the product's own dependencies are there …
    assert not [line for line in requires if "kassa-dev" in line or "kassa_dev" in line]
