"""`kassa signer create|addresses`: an operator makes the payout worker's key files on the
signer's host. The file is what the worker opens (same password rules), is private, is never
overwritten, and neither the key nor the password is printed."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kassa.chains.network import BtcNetwork, Chain
from kassa.cli import app
from kassa.config import load_settings
from kassa.payouts.signer import load_local_signer

PASSWORD = "correct horse battery staple"  # noqa: S105 (a test key file)
PASSWORD_ENV = "KASSA_SIGNER_PASSWORD"  # noqa: S105 (a variable name)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("KASSA_DATA_DIR", "KASSA_DATABASE_URL", "KASSA_CONFIG_FILE", PASSWORD_ENV):
        monkeypatch.delenv(name, raising=False)
    for chain in Chain:
        monkeypatch.delenv(f"KASSA_SIGNER_{chain.value.upper()}_KEY", raising=False)
    password_file = tmp_path / "signer-password"
    password_file.write_text(PASSWORD + "\n")
    path = tmp_path / "kassa.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        "[signer]\n"
        f'key_dir = "{tmp_path / "keys"}"\n'
        f'password_file = "{password_file}"\n'
    )
    return path


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--config", str(config), "signer", *args])
    return result.exit_code, result.stdout, result.stderr


def test_create_writes_a_private_key_file_the_payout_worker_opens(
    config: Path, tmp_path: Path
) -> None:
    code, out, err = run(config, "create", "--chain", "btc")
    assert code == 0, err
    path = tmp_path / "keys" / "btc.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["crypto"]["kdf"] == "scrypt"

    settings = load_settings(config)
    signer = load_local_signer(settings.signer, [Chain.BTC], data_dir=settings.data_dir)
    address = signer.address(Chain.BTC, BtcNetwork.REGTEST)
    assert out.strip() == address  # stdout: the address to fund, nothing else
    key_hex = signer.keys[Chain.BTC].secret.hex()
    assert key_hex not in out + err and PASSWORD not in out + err


def test_an_existing_key_file_is_never_overwritten(config: Path, tmp_path: Path) -> None:
    assert run(config, "create", "--chain", "eth")[0] == 0
    before = (tmp_path / "keys" / "eth.json").read_bytes()
    code, out, err = run(config, "create", "--chain", "eth")
    assert code == 1 and out == ""
    assert "refusing to overwrite" in err
    assert (tmp_path / "keys" / "eth.json").read_bytes() == before


def test_addresses_unlocks_each_file_and_names_the_chains_without_one(config: Path) -> None:
    eth = run(config, "create", "--chain", "eth")[1].strip()
    code, out, err = run(config, "addresses")
    assert code == 0, err
    assert out.splitlines() == [f"eth\t{eth}"]
    assert "btc: no key" in err and "tron: no key" in err


def test_a_wrong_password_fails_addresses_and_a_short_one_fails_create(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(config, "create", "--chain", "tron")[0] == 0
    monkeypatch.setenv(PASSWORD_ENV, "not the password at all")  # the variable wins
    code, _out, err = run(config, "addresses")
    assert code == 1 and "cannot unlock" in err

    monkeypatch.setenv(PASSWORD_ENV, "short")
    code, _out, err = run(config, "create", "--chain", "btc")
    assert code == 1 and "shorter than 12" in err
    assert not (tmp_path / "keys" / "btc.json").exists()
