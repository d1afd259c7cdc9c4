"""DEVELOPMENT AND TEST HELPERS ONLY: keys from a BIP39 mnemonic.

Production never derives keys from a mnemonic in-process: the API and watchers get an account
*public* key (`kassa.chains.hd`), and payouts sign through a signer. These helpers exist so
tests and the local devnet can produce, from one well-known mnemonic, the account xpub the
watch-only code is configured with and the private keys its faucet and payout tests spend with.
Never call them with a mnemonic that guards real money.
"""

from __future__ import annotations

from typing import Any

import coincurve
from bip_utils import (
    Bip39MnemonicValidator,
    Bip39SeedGenerator,
    Bip44,
    Bip44Changes,
    Bip44Coins,
    Bip84,
    Bip84Coins,
)

from kassa.chains.network import BtcNetwork, EthNetwork, Network

__all__ = ["dev_account_xpub", "dev_private_key"]

_BTC_COINS = {
    BtcNetwork.MAINNET: Bip84Coins.BITCOIN,
    BtcNetwork.TESTNET: Bip84Coins.BITCOIN_TESTNET,
    BtcNetwork.REGTEST: Bip84Coins.BITCOIN_REGTEST,
}


def _account(mnemonic: str, network: Network, account: int, passphrase: str) -> Any:
    if not Bip39MnemonicValidator().IsValid(mnemonic):
        raise ValueError("not a valid BIP39 mnemonic (wrong words or checksum)")
    seed = Bip39SeedGenerator(mnemonic).Generate(passphrase)
    if isinstance(network, BtcNetwork):
        wallet = Bip84.FromSeed(seed, _BTC_COINS[network])
    elif isinstance(network, EthNetwork):
        wallet = Bip44.FromSeed(seed, Bip44Coins.ETHEREUM)
    else:
        wallet = Bip44.FromSeed(seed, Bip44Coins.TRON)
    return wallet.Purpose().Coin().Account(account)


def dev_account_xpub(
    mnemonic: str, network: Network, *, account: int = 0, passphrase: str = ""
) -> str:
    """DEVELOPMENT ONLY. The account public key (zpub/vpub for Bitcoin BIP84, xpub for
    Ethereum and TRON BIP44) that `kassa.chains.hd.parse_account_key` accepts."""
    return str(_account(mnemonic, network, account, passphrase).PublicKey().ToExtended())


def dev_private_key(
    mnemonic: str,
    network: Network,
    index: int,
    *,
    account: int = 0,
    change: bool = False,
    passphrase: str = "",
) -> coincurve.PrivateKey:
    """DEVELOPMENT ONLY. The private key of address ``index`` (m/…/account'/change/index),
    the counterpart of what `kassa.chains.hd` derives watch-only."""
    chain = Bip44Changes.CHAIN_INT if change else Bip44Changes.CHAIN_EXT
    node = _account(mnemonic, network, account, passphrase).Change(chain).AddressIndex(index)
    return coincurve.PrivateKey(bytes(node.PrivateKey().Raw().ToBytes()))
