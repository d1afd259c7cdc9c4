"""The devnet faucet: pays any address on the local chains with a real, signed transaction.

Nothing is minted out of thin air or written into a node's state: each payment is a transaction
from a funded devnet key, signed in Python and broadcast like the ones Kassa's payout worker will
send, so a deposit watcher sees exactly what it would see on mainnet.

| asset      | paid by                              | how                                         |
|------------|--------------------------------------|---------------------------------------------|
| ETH        | ganache account 0                    | EIP-1559 value transfer (eth_account)       |
| USDT-ERC20 | ganache account 0 (TestUSDT's owner) | TestUSDT `transfer`                         |
| BTC        | the devnet faucet key (P2WPKH)       | spends mature faucet UTXOs, change back     |
| TRX        | the simulator's genesis account      | offline-signed TransferContract (tronpy ID) |
| USDT-TRC20 | the simulator's genesis account      | TRC-20 `transfer`, signed offline           |

`fund` waits until the transaction is in a block, mining one on demand where the chain allows
(ganache `evm_mine`, bcoin `generatetoaddress`, the TRON simulator's `/debug/mine`).
Amounts are `Money` in minor units (wei, satoshi, sun, micro-USDT) end to end.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import coincurve
import httpx
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.types import Wei

from kassa.chains.btc.address import parse_btc_address
from kassa.chains.btc.tx import (
    Coin,
    OutPoint,
    TxOut,
    build_transaction,
    dust_threshold,
    estimate_vsize,
    fee_for_vsize,
)
from kassa.chains.errors import InvalidAddress, InvalidTransaction
from kassa.chains.network import BtcNetwork
from kassa.chains.tron.address import parse_tron_address
from kassa.chains.tron.tx import sign_trc20_transfer, sign_trx_transfer, tron_address_for_key
from kassa.money import AssetCode, Money
from kassa_dev.devnet import bitcoin as btc
from kassa_dev.devnet import ganache, tron_node
from kassa_dev.devnet.rpc import JsonRpcError
from kassa_dev.devnet.tron.config import DEFAULT_GENESIS_KEY_HEX

__all__ = ["DevnetEndpoints", "Faucet", "FaucetError"]

BTC_FEE_RATE = 10_000
"""Satoshi per 1000 vbytes the faucet pays: 10 sat/vB (regtest has no fee market; floor 1)."""

TRC20_FEE_LIMIT = 30_000_000
"""Sun a USDT-TRC20 transfer may burn for energy (30 TRX, ample for a TRC-20 transfer)."""


class FaucetError(RuntimeError):
    """The faucet could not pay: chain not running, bad address, funds short, tx refused."""


@dataclass(frozen=True, slots=True)
class DevnetEndpoints:
    """Where the local chains answer; None for a chain that is not running."""

    eth_url: str | None = None
    usdt_erc20: str | None = None
    """TestUSDT contract address (0x…)."""
    btc_url: str | None = None
    btc_api_key: str | None = None
    tron_url: str | None = None


class Faucet:
    """Pays devnet funds; see the module docstring for who pays what and how."""

    def __init__(self, endpoints: DevnetEndpoints, *, mine: bool = True, timeout: float = 60.0):
        self.endpoints = endpoints
        self.mine = mine
        self.timeout = timeout
        # One BTC payment at a time per faucet: two would pick the same coins.
        self._btc_lock = threading.Lock()

    def fund(self, address: str, amount: Money) -> str:
        """Send `amount` to `address`; return the transaction id once it is in a block.

        ETH-style ids are `0x`-prefixed, BTC and TRON ids are bare hex, as each chain prints them.
        """
        if amount.amount <= 0:
            raise FaucetError(f"amount must be positive, got {amount}")
        code = amount.asset.code
        if code is AssetCode.ETH:
            return self._fund_eth(address, amount.amount)
        if code is AssetCode.USDT_ERC20:
            return self._fund_usdt_erc20(address, amount.amount)
        if code is AssetCode.BTC:
            return self._fund_btc(address, amount.amount)
        if code is AssetCode.TRX:
            return self._fund_tron(address, amount.amount, token=False)
        if code is AssetCode.USDT_TRC20:
            return self._fund_tron(address, amount.amount, token=True)
        raise FaucetError(f"the devnet faucet does not pay {code.value}")

    # -- Ethereum ------------------------------------------------------------------------

    def _web3(self) -> Web3:
        if self.endpoints.eth_url is None:
            raise FaucetError("the Ethereum devnet (ganache) is not running")
        return ganache.web3_for(self.endpoints.eth_url)

    @staticmethod
    def _eth_address(address: str) -> ChecksumAddress:
        if not Web3.is_address(address):
            raise FaucetError(f"{address!r} is not an Ethereum address")
        return Web3.to_checksum_address(address)

    def _fund_eth(self, address: str, wei: int) -> str:
        to = self._eth_address(address)
        w3 = self._web3()
        receipt = ganache.send_transaction(
            w3, ganache.dev_account(0), {"to": to, "value": Wei(wei)}, mine=self.mine
        )
        return receipt["transactionHash"].to_0x_hex()

    def _fund_usdt_erc20(self, address: str, micro_usdt: int) -> str:
        to = self._eth_address(address)
        if self.endpoints.usdt_erc20 is None:
            raise FaucetError("TestUSDT is not deployed on the Ethereum devnet")
        w3 = self._web3()
        token = ganache.usdt_contract(w3, self.endpoints.usdt_erc20)
        receipt = ganache.send_call(
            w3, ganache.dev_account(0), token.functions.transfer(to, micro_usdt), mine=self.mine
        )
        return receipt["transactionHash"].to_0x_hex()

    # -- Bitcoin -------------------------------------------------------------------------

    def _btc_rpc(self) -> btc.BitcoinRpc:
        if self.endpoints.btc_url is None or self.endpoints.btc_api_key is None:
            raise FaucetError("the Bitcoin devnet (bcoin regtest) is not running")
        return btc.BitcoinRpc(self.endpoints.btc_url, self.endpoints.btc_api_key)

    def _fund_btc(self, address: str, satoshi: int) -> str:
        try:
            destination = parse_btc_address(address, BtcNetwork.REGTEST).script_pubkey
        except InvalidAddress as error:
            raise FaucetError(str(error)) from None
        rpc = self._btc_rpc()
        key = btc.faucet_key()
        with self._btc_lock:
            tip = rpc.height()
            # Largest coins first: few inputs, and the many small coinbases stay for later.
            coins = sorted(
                (c for c in rpc.utxos(key.address) if c.spendable_at(tip)),
                key=lambda c: (-c.value, c.txid, c.vout),
            )
            if sum(c.value for c in coins) < satoshi * 2:
                # A persistent chain's address index is empty (see mature_coinbases).
                coins += rpc.mature_coinbases(key.address, tip, satoshi * 2 + 100_000)
            chosen: list[btc.Utxo] = []
            fee = 0
            for coin in coins:
                chosen.append(coin)
                # Size the fee as if there will be change; without change it only grows.
                vsize = estimate_vsize(len(chosen), [destination, key.script_pubkey])
                fee = fee_for_vsize(vsize, BTC_FEE_RATE)
                if sum(c.value for c in chosen) >= satoshi + fee:
                    break
            else:
                available = sum(c.value for c in coins)
                raise FaucetError(
                    f"the BTC faucet has {available} spendable satoshi, "
                    f"not enough for {satoshi} plus fee"
                )
            change = sum(c.value for c in chosen) - satoshi - fee
            outputs = [TxOut(satoshi, destination)]
            if change >= dust_threshold(key.script_pubkey):
                outputs.append(TxOut(change, key.script_pubkey))
            secret = coincurve.PrivateKey(key.private_key)
            try:
                unsigned = build_transaction(
                    [Coin(OutPoint(c.txid, c.vout), c.value, c.script_pubkey) for c in chosen],
                    outputs,
                )
                raw = unsigned.sign([secret] * len(chosen)).serialize()
            except InvalidTransaction as error:
                raise FaucetError(f"cannot pay {satoshi} satoshi: {error}") from None
            try:
                txid = rpc.send_raw_transaction(raw)
            except JsonRpcError as error:
                raise FaucetError(f"bcoin refused the faucet transaction: {error}") from None
            if self.mine:
                rpc.generate(1, key.address)
            self._wait_btc(rpc, txid)
        return txid

    def _wait_btc(self, rpc: btc.BitcoinRpc, txid: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            found = rpc.call("getrawtransaction", txid, 1)
            if isinstance(found, dict) and int(found.get("confirmations") or 0) >= 1:
                return
            if time.monotonic() > deadline:
                raise FaucetError(f"BTC transaction {txid} was not mined within {self.timeout} s")
            time.sleep(0.2)

    # -- TRON ----------------------------------------------------------------------------

    def _fund_tron(self, address: str, amount: int, *, token: bool) -> str:
        url = self.endpoints.tron_url
        if url is None:
            raise FaucetError("the TRON devnet (simulator) is not running")
        try:
            to = parse_tron_address(address)
        except InvalidAddress as error:
            raise FaucetError(str(error)) from None
        info = tron_node.debug_info(url)
        genesis = coincurve.PrivateKey(bytes.fromhex(DEFAULT_GENESIS_KEY_HEX))
        if tron_address_for_key(genesis).text != info.genesis_address:
            raise FaucetError(
                f"the TRON simulator's genesis account is {info.genesis_address}, not the default "
                "devnet key's; was it started with --genesis-key?"
            )
        # Build on the newest solidified block, as java-tron clients do (it cannot be rolled
        # back, so the TAPoS reference stays valid), and date the transaction by the chain's
        # clock, which `/debug/mine` may have moved ahead of the wall clock.
        try:
            if token:
                signed = sign_trc20_transfer(
                    genesis,
                    token=parse_tron_address(info.usdt_contract),
                    to=to,
                    amount=amount,
                    fee_limit_sun=TRC20_FEE_LIMIT,
                    ref_block_id=info.solid_head_id,
                    timestamp_ms=info.chain_time_ms,
                )
            else:
                signed = sign_trx_transfer(
                    genesis,
                    to=to,
                    amount_sun=amount,
                    ref_block_id=info.solid_head_id,
                    timestamp_ms=info.chain_time_ms,
                )
        except InvalidTransaction as error:
            raise FaucetError(f"cannot pay {address}: {error}") from None
        answer = httpx.post(
            f"{url}/wallet/broadcasttransaction", json=signed.payload(), timeout=30.0
        ).json()
        if not answer.get("result"):
            raise FaucetError(f"the TRON simulator refused the faucet transaction: {_tron(answer)}")
        if self.mine:
            tron_node.mine(url)
        self._wait_tron(url, signed.txid)
        return signed.txid

    def _wait_tron(self, url: str, txid: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            info = httpx.post(
                f"{url}/wallet/gettransactioninfobyid", json={"value": txid}, timeout=30.0
            ).json()
            if info.get("blockNumber") is not None:
                if info.get("result") == "FAILED":
                    raise FaucetError(f"TRON transaction {txid} failed: {_tron(info)}")
                return
            if time.monotonic() > deadline:
                raise FaucetError(f"TRON transaction {txid} was not mined within {self.timeout} s")
            time.sleep(0.2)


def _tron(answer: dict[str, Any]) -> str:
    """java-tron hex-encodes error messages; show them as text."""
    message = str(answer.get("message") or answer.get("resMessage") or "")
    with contextlib.suppress(ValueError):
        message = bytes.fromhex(message).decode("utf-8", errors="replace")
    return f"{answer.get('code', answer.get('result', 'error'))}: {message}".strip()
