"""`kassa signer …`: the payout signer's key files, made and checked on the signer's own host.

``create`` writes a new encrypted key file for one chain (`kassa.payouts.signer.create_key_file`:
the Web3 Secret Storage format, scrypt) in ``[signer] key_dir`` and prints the hot wallet's
address to fund; ``addresses`` unlocks the key files the payout worker would load and prints
each hot wallet's address, so an operator checks the files and the password before starting
the worker. Both read the password exactly as the payout worker does (the variable named by
``[signer] password_env``, else ``[signer] password_file``): what ``create`` writes is what the
worker opens. No command prints or logs a private key or the password; addresses go to stdout,
everything else to stderr.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from kassa.chains.network import Chain
from kassa.cli._common import fail, say, settings_of

if TYPE_CHECKING:
    from kassa.chains.network import Network
    from kassa.config import Settings

app = typer.Typer(
    rich_markup_mode=None,
    help="The payout signer's key files: create one, show the hot wallets' addresses.",
    no_args_is_help=True,
)

# A key file's password guards a hot wallet: refuse the trivially guessable.
MIN_PASSWORD_LENGTH = 12


def _network(settings: Settings, chain: Chain) -> Network:
    return settings.chains.of(chain).network_value()


@app.command("create")
def signer_create(
    ctx: typer.Context,
    chain: Annotated[Chain, typer.Option(help="The chain whose hot wallet the key is for")],
) -> None:
    """Create the encrypted key file <key_dir>/<chain>.json and print its hot wallet address.

    Refuses to overwrite an existing file (that would lose the wallet's funds)."""
    from kassa.payouts.signer import (
        KEY_ENV,
        LocalKeySigner,
        SignerError,
        create_key_file,
        key_dir,
        password_of,
    )

    settings = settings_of(ctx)
    password = password_of(settings.signer, os.environ)
    if password is None:
        fail(
            f"no password: set {settings.signer.password_env} or [signer] password_file "
            "(the payout worker reads the same)"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        fail(f"the password is shorter than {MIN_PASSWORD_LENGTH} characters")
    variable = KEY_ENV.format(chain=chain.value.upper())
    if variable in os.environ:
        say(f"note: {variable} is set; the payout worker prefers it over the key file")
    path = key_dir(settings.signer, settings.data_dir) / f"{chain.value}.json"
    try:
        key = create_key_file(path, password)
    except SignerError as error:
        fail(error.detail)
    address = LocalKeySigner({chain: key}).address(chain, _network(settings, chain))
    say(f"created {path} (mode 0600); back it up with its password, apart from each other")
    say(f"the {chain.display_name} hot wallet to fund:")
    typer.echo(address)


@app.command("addresses")
def signer_addresses(ctx: typer.Context) -> None:
    """Unlock the key files (and KASSA_SIGNER_<CHAIN>_KEY variables) the payout worker would
    load and print each enabled chain's hot wallet address; fail if one cannot be unlocked."""
    from kassa.payouts.signer import SignerError, load_local_signer

    settings = settings_of(ctx)
    chains = settings.chains.enabled()
    try:
        signer = load_local_signer(settings.signer, chains, data_dir=settings.data_dir)
    except SignerError as error:
        fail(error.detail)
    for chain in chains:
        if chain not in signer.keys:
            say(f"{chain.value}: no key (its payouts wait, saying so)")
            continue
        typer.echo(f"{chain.value}\t{signer.address(chain, _network(settings, chain))}")
