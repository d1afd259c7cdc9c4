"""The devnet's payout hot wallets: one encrypted key file per chain, funded from the faucet.

`kassa up` calls `ensure_hot_wallets` after the local chains are up. The first time, it writes a
random password to ``<data_dir>/signer/password`` (mode 0600), creates ``btc.json``,
``eth.json`` and ``tron.json`` (Web3 Secret Storage, scrypt) with fresh random keys, and funds
each hot address from the faucet with real transactions (`HOT_FUNDING`), recorded in
``funding.jsonl`` for `kassa up` to book in the ledger (reconciliation compares the hot wallets
with it). Later runs reuse the keys. If the chains were reset but the keys kept, payouts wait
with "hot wallet short"; fund the printed address with `kassa devnet fund`.

DEVELOPMENT ONLY: a password next to the key file protects nothing; production sets
``[signer]`` to key files whose password comes from the environment (or a remote signer).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from kassa.assets import ASSETS_OF_CHAIN
from kassa.chains.network import Chain
from kassa.deposits.settings import ChainsSettings
from kassa.money import Money, asset
from kassa.payouts.settings import SignerSettings
from kassa.payouts.signer import create_key_file, key_dir, load_local_signer
from kassa.reports.reconciliation.funding import FUNDING_FILE
from kassa_dev.devnet.faucet import Faucet, FaucetError

HOT_FUNDING: dict[str, str] = {
    "BTC": "10",
    "ETH": "100",
    "USDT-ERC20": "1000000",
    "TRX": "100000",
    "USDT-TRC20": "1000000",
}
"""What a new devnet hot wallet is funded with, per asset."""

DEVNET_KDF_ITERATIONS = 2**14
"""scrypt cost of the devnet key files (the library default, 2**18, takes seconds per unlock)."""


def ensure_hot_wallets(
    data_dir: Path,
    signer: SignerSettings,
    chains: ChainsSettings,
    faucet: Faucet,
    *,
    echo: Callable[[str], None] = print,
) -> SignerSettings:
    """Create and fund the missing hot wallets; return signer settings that can unlock them."""
    directory = key_dir(signer, data_dir)
    password_file = signer.password_file or directory / "password"
    if not password_file.exists():
        directory.mkdir(parents=True, exist_ok=True)
        _write_secret(password_file, secrets.token_urlsafe(24))
    password = password_file.read_text(encoding="utf-8").strip()
    settings = signer.model_copy(update={"password_file": password_file})
    for chain in chains.enabled():
        path = directory / f"{chain.value}.json"
        if path.exists():
            continue
        create_key_file(path, password, iterations=DEVNET_KDF_ITERATIONS)
        loaded = load_local_signer(settings, [chain], data_dir=data_dir, environ={})
        address = loaded.address(chain, chains.of(chain).network_value())
        echo(f"created the {chain.display_name} hot wallet {address} ({path})")
        _fund(faucet, chain, address, echo, directory / FUNDING_FILE)
    return settings


def _fund(
    faucet: Faucet, chain: Chain, address: str, echo: Callable[[str], None], record: Path
) -> None:
    """Fund from the faucet and record each funding for the ledger (`kassa up` books it, see
    `kassa.reports.reconciliation.funding`)."""
    for code in ASSETS_OF_CHAIN[chain]:
        amount = Money.parse(HOT_FUNDING[code], asset(code))
        try:
            txid = faucet.fund(address, amount)
        except FaucetError as error:
            echo(f"could not fund {address} with {amount.format()} {code}: {error}")
        else:
            echo(f"funded {address} with {amount.format()} {code}")
            with record.open("a", encoding="utf-8") as handle:
                line = {"asset": code, "amount": amount.format(), "txid": txid}
                handle.write(json.dumps(line) + "\n")


def _write_secret(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
