"""Signers: the only code that touches the hot wallets' private keys.

Rails never see a key. They hand a signer an unsigned transaction (or the fields of one) and
get the signed transaction back, so a remote signer (an HSM or a signing service) can implement
the same `Signer` protocol without any rail changing.

`LocalKeySigner` is the one shipped: one secp256k1 key per chain, read at start-up from

* an environment secret, ``KASSA_SIGNER_<CHAIN>_KEY`` (64 hex digits), or
* an encrypted key file ``<key_dir>/<chain>.json`` (the Web3 Secret Storage format, scrypt and
  AES-128-CTR with a MAC, via eth-account), unlocked with the password in the environment
  variable named by ``password_env``.

The devnet (`kassa up`) creates key files with fresh random keys and a generated password file
(mode 0600) under ``data/signer/``; see `create_key_file`.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import coincurve
from eth_account import Account

from kassa.chains.btc.keys import p2wpkh_address_for_key
from kassa.chains.btc.tx import Transaction, UnsignedTransaction
from kassa.chains.eth.address import EthAddress
from kassa.chains.eth.tx import (
    DEFAULT_ERC20_GAS_LIMIT,
    NATIVE_TRANSFER_GAS,
    EthFees,
    SignedEthTransaction,
    eth_address_for_key,
    sign_erc20_transfer,
    sign_eth_transfer,
)
from kassa.chains.network import BtcNetwork, Chain, EthNetwork
from kassa.chains.tron.address import TronAddress
from kassa.chains.tron.tx import (
    DEFAULT_TRC20_FEE_LIMIT,
    SignedTronTransaction,
    sign_trc20_transfer,
    sign_trx_transfer,
    tron_address_for_key,
)
from kassa.db.engine import create_private_dir
from kassa.errors import KassaError
from kassa.payouts.settings import SignerSettings

KEY_ENV = "KASSA_SIGNER_{chain}_KEY"


class SignerError(KassaError):
    code = "signer_error"
    title = "Signer not usable"


class Signer(Protocol):
    """Signs payout transactions for the hot wallet of each chain."""

    def address(self, chain: Chain, network: object) -> str:
        """The hot address of ``chain`` on ``network`` (a BtcNetwork for BTC)."""
        ...

    def sign_btc(self, unsigned: UnsignedTransaction) -> Transaction:
        """Sign every input (all spend the BTC hot address's P2WPKH coins)."""
        ...

    def sign_eth_transfer(
        self,
        *,
        network: EthNetwork,
        nonce: int,
        to: EthAddress,
        value_wei: int,
        fees: EthFees,
        gas_limit: int = NATIVE_TRANSFER_GAS,
    ) -> SignedEthTransaction: ...

    def sign_erc20_transfer(
        self,
        *,
        network: EthNetwork,
        nonce: int,
        token: EthAddress,
        to: EthAddress,
        amount: int,
        fees: EthFees,
        gas_limit: int = DEFAULT_ERC20_GAS_LIMIT,
    ) -> SignedEthTransaction: ...

    def sign_trx_transfer(
        self,
        *,
        to: TronAddress,
        amount_sun: int,
        ref_block_id: str,
        timestamp_ms: int,
        expiration_ms: int | None = None,
    ) -> SignedTronTransaction: ...

    def sign_trc20_transfer(
        self,
        *,
        token: TronAddress,
        to: TronAddress,
        amount: int,
        ref_block_id: str,
        timestamp_ms: int,
        expiration_ms: int | None = None,
        fee_limit_sun: int = DEFAULT_TRC20_FEE_LIMIT,
    ) -> SignedTronTransaction: ...


@dataclass(frozen=True)
class LocalKeySigner:
    """Keys held in this process (see the module docstring for where they come from)."""

    keys: Mapping[Chain, coincurve.PrivateKey]

    def _key(self, chain: Chain) -> coincurve.PrivateKey:
        key = self.keys.get(chain)
        if key is None:
            raise SignerError(
                f"no signing key for {chain.display_name}: set "
                f"{KEY_ENV.format(chain=chain.value.upper())} or create "
                f"{chain.value}.json in the signer's key directory"
            )
        return key

    def address(self, chain: Chain, network: object) -> str:
        key = self._key(chain)
        if chain is Chain.BTC:
            if not isinstance(network, BtcNetwork):
                raise TypeError("a BTC hot address needs a BtcNetwork")
            return p2wpkh_address_for_key(key, network).text
        if chain is Chain.ETH:
            return eth_address_for_key(key).text
        return tron_address_for_key(key).text

    def sign_btc(self, unsigned: UnsignedTransaction) -> Transaction:
        key = self._key(Chain.BTC)
        return unsigned.sign([key] * len(unsigned.coins))

    def sign_eth_transfer(
        self,
        *,
        network: EthNetwork,
        nonce: int,
        to: EthAddress,
        value_wei: int,
        fees: EthFees,
        gas_limit: int = NATIVE_TRANSFER_GAS,
    ) -> SignedEthTransaction:
        return sign_eth_transfer(
            self._key(Chain.ETH),
            network=network,
            nonce=nonce,
            to=to,
            value_wei=value_wei,
            fees=fees,
            gas_limit=gas_limit,
        )

    def sign_erc20_transfer(
        self,
        *,
        network: EthNetwork,
        nonce: int,
        token: EthAddress,
        to: EthAddress,
        amount: int,
        fees: EthFees,
        gas_limit: int = DEFAULT_ERC20_GAS_LIMIT,
    ) -> SignedEthTransaction:
        return sign_erc20_transfer(
            self._key(Chain.ETH),
            network=network,
            nonce=nonce,
            token=token,
            to=to,
            amount=amount,
            fees=fees,
            gas_limit=gas_limit,
        )

    def sign_trx_transfer(
        self,
        *,
        to: TronAddress,
        amount_sun: int,
        ref_block_id: str,
        timestamp_ms: int,
        expiration_ms: int | None = None,
    ) -> SignedTronTransaction:
        return sign_trx_transfer(
            self._key(Chain.TRON),
            to=to,
            amount_sun=amount_sun,
            ref_block_id=ref_block_id,
            timestamp_ms=timestamp_ms,
            expiration_ms=expiration_ms,
        )

    def sign_trc20_transfer(
        self,
        *,
        token: TronAddress,
        to: TronAddress,
        amount: int,
        ref_block_id: str,
        timestamp_ms: int,
        expiration_ms: int | None = None,
        fee_limit_sun: int = DEFAULT_TRC20_FEE_LIMIT,
    ) -> SignedTronTransaction:
        return sign_trc20_transfer(
            self._key(Chain.TRON),
            token=token,
            to=to,
            amount=amount,
            ref_block_id=ref_block_id,
            timestamp_ms=timestamp_ms,
            expiration_ms=expiration_ms,
            fee_limit_sun=fee_limit_sun,
        )


def _parse_hex_key(text: str, where: str) -> coincurve.PrivateKey:
    cleaned = text.strip().removeprefix("0x")
    if len(cleaned) != 64:
        raise SignerError(f"{where}: a private key is 64 hex digits")
    try:
        return coincurve.PrivateKey(bytes.fromhex(cleaned))
    except ValueError as error:
        raise SignerError(f"{where}: not a valid secp256k1 private key ({error})") from None


def key_dir(settings: SignerSettings, data_dir: Path) -> Path:
    return settings.key_dir if settings.key_dir is not None else data_dir / "signer"


def password_of(settings: SignerSettings, environ: Mapping[str, str]) -> str | None:
    """The key files' password: the variable named by `password_env`, else `password_file`."""
    if settings.password_env in environ:
        return environ[settings.password_env]
    if settings.password_file is not None and settings.password_file.exists():
        return settings.password_file.read_text(encoding="utf-8").strip()
    return None


def load_local_signer(
    settings: SignerSettings,
    chains: list[Chain],
    *,
    data_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> LocalKeySigner:
    """Read one key per chain in ``chains``; a chain with no key is left out (its payouts wait
    with the reason). A key that is present but unreadable fails here, at start-up."""
    if settings.kind != "local":
        raise SignerError(f"signer kind {settings.kind!r} is not available; use 'local'")
    env = os.environ if environ is None else environ
    keys: dict[Chain, coincurve.PrivateKey] = {}
    for chain in chains:
        variable = KEY_ENV.format(chain=chain.value.upper())
        if variable in env:
            keys[chain] = _parse_hex_key(env[variable], variable)
            continue
        path = key_dir(settings, data_dir) / f"{chain.value}.json"
        if not path.exists():
            continue
        password = password_of(settings, env)
        if password is None:
            raise SignerError(f"{path} is encrypted: set {settings.password_env} to its password")
        keys[chain] = _decrypt(path, password)
    return LocalKeySigner(keys)


def _decrypt(path: Path, password: str) -> coincurve.PrivateKey:
    try:
        keyfile = json.loads(path.read_text(encoding="utf-8"))
        secret = bytes(Account.decrypt(keyfile, password))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SignerError(f"{path}: cannot unlock the key file ({error})") from None
    return coincurve.PrivateKey(secret)


def create_key_file(
    path: Path, password: str, *, key: bytes | None = None, iterations: int | None = None
) -> coincurve.PrivateKey:
    """Write a new encrypted key file (mode 0600) holding ``key`` (default: 32 random bytes).
    Refuses to overwrite an existing file: that would lose the hot wallet's funds."""
    if path.exists():
        raise SignerError(f"{path} exists; refusing to overwrite a key file")
    secret = key if key is not None else secrets.token_bytes(32)
    private = coincurve.PrivateKey(secret)
    keyfile = Account.encrypt(private.secret, password, kdf="scrypt", iterations=iterations)
    create_private_dir(path.parent)  # 0700: the directory lists the hot wallets' key files
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(keyfile, handle)
    return private
